#!/usr/bin/env python3
"""A consumer of `streamline export --format hf` that shares no code with Streamline.

Reads an exported folder the way a Hugging Face user's stack would, without transformers or torch:
  - config.json with the json module (LlamaForCausalLM keys: hidden_size, head_dim, num_key_value_heads,
    rms_norm_eps, rope_theta, tie_word_embeddings ...);
  - model.safetensors with the `safetensors` package (numpy arrays; F32, F16 or BF16 as stored);
  - tokenizer.json with the `tokenizers` package (special tokens included as added tokens);
and runs LLaMA's forward pass in plain numpy float64 (rotate-half RoPE as transformers applies it,
grouped-query attention, SiLU-gated MLP, RMSNorm y = x / sqrt(mean(x^2) + eps) * w).

Usage: hf_forward.py FOLDER REQUEST.json OUT.json
REQUEST: {"tokens": [ids]} scores those ids; {"text": "..."} also encodes the text with the folder's
tokenizer (no special tokens added) and returns its ids. OUT: {"ids": [...], "logits": [[...] per
position]}. With {"text": ..., "encode_only": true} no weights are read.
Needs numpy, safetensors, tokenizers (make pyenv installs them into .build/pyenv).
"""
import json
import sys

import numpy as np


def rms_norm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def rope(x, theta):
    """x: (heads, T, head_dim); transformers' rotate-half convention (first half pairs with second)."""
    _, T, d = x.shape
    inv = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
    angles = np.outer(np.arange(T, dtype=np.float64), inv)          # (T, d/2)
    cos = np.concatenate([np.cos(angles)] * 2, axis=-1)
    sin = np.concatenate([np.sin(angles)] * 2, axis=-1)
    half = d // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated * sin


def forward(config, weights, ids):
    w = lambda name: weights[name].astype(np.float64)
    heads, kv = config["num_attention_heads"], config["num_key_value_heads"]
    dh = config.get("head_dim") or config["hidden_size"] // heads
    eps, theta = config["rms_norm_eps"], config.get("rope_theta", 10000.0)
    T = len(ids)
    x = w("model.embed_tokens.weight")[ids]                          # (T, d)
    mask = np.triu(np.full((T, T), -np.inf), k=1)
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms_norm(x, w(p + "input_layernorm.weight"), eps)
        q = (h @ w(p + "self_attn.q_proj.weight").T).reshape(T, heads, dh).transpose(1, 0, 2)
        k = (h @ w(p + "self_attn.k_proj.weight").T).reshape(T, kv, dh).transpose(1, 0, 2)
        v = (h @ w(p + "self_attn.v_proj.weight").T).reshape(T, kv, dh).transpose(1, 0, 2)
        q, k = rope(q, theta), rope(k, theta)
        group = heads // kv
        k, v = np.repeat(k, group, axis=0), np.repeat(v, group, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(dh) + mask
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        attention = (scores / scores.sum(axis=-1, keepdims=True)) @ v  # (heads, T, dh)
        x = x + attention.transpose(1, 0, 2).reshape(T, heads * dh) @ w(p + "self_attn.o_proj.weight").T
        h = rms_norm(x, w(p + "post_attention_layernorm.weight"), eps)
        gate, up = h @ w(p + "mlp.gate_proj.weight").T, h @ w(p + "mlp.up_proj.weight").T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w(p + "mlp.down_proj.weight").T
    x = rms_norm(x, w("model.norm.weight"), eps)
    head = "model.embed_tokens.weight" if config.get("tie_word_embeddings") else "lm_head.weight"
    return x @ w(head).T


def main():
    folder, request_path, out_path = sys.argv[1:4]
    request = json.load(open(request_path))
    out = {}
    ids = request.get("tokens")
    if "text" in request:
        from tokenizers import Tokenizer
        tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")
        ids = tokenizer.encode(request["text"], add_special_tokens=False).ids
        out["ids"] = ids
    if not request.get("encode_only"):
        from safetensors.numpy import load_file
        config = json.load(open(f"{folder}/config.json"))
        out["logits"] = forward(config, load_file(f"{folder}/model.safetensors"), ids).tolist()
    json.dump(out, open(out_path, "w"))


if __name__ == "__main__":
    main()
