#!/usr/bin/env python3
"""Independent reference for Streamline's SmolLM2 import, tokenizer and forward pass.

Computes the perplexity of SmolLM2-135M-Instruct (the Q4_1 GGUF from `make models`) on the first
WINDOWS non-overlapping WINDOW-token windows of a text (no BOS), plus the token ids of that text,
and writes them as JSON. Shares no code with Streamline:
  - weights: dequantised by the PyPI `gguf` package (gguf.quants.dequantize);
  - tokenizer: the Hugging Face `tokenizers` package, built from the GGUF's vocab and merges with the
    pre-tokenizer SmolLM2 ships (split each digit, then byte-level GPT-2 regex);
  - forward: plain numpy in float64, using llama.cpp's adjacent-pair RoPE on the Q/K weights exactly as
    stored in the GGUF (Streamline un-permutes them and uses rotate-half RoPE instead, so agreement
    also checks that un-permutation).
Window w holds tokens [w*WINDOW, (w+1)*WINDOW); every position but the last predicts the next token,
so each window scores WINDOW-1 tokens. Perplexity = exp(mean NLL over all scored tokens).

Reproduce (from the repository root, after `make models corpora`):
  python3 scripts/reference/smollm2_perplexity.py \
      --model models/smollm2/SmolLM2-135M-Instruct-Q4_1.gguf \
      --text data/shakespeare/tragedies/hamlet.md --windows 8 --window 512 \
      --out Tests/DataTests/Fixtures/smollm2-hamlet-reference.json
Needs: numpy, gguf, tokenizers (pip install numpy gguf tokenizers).
"""
import argparse
import hashlib
import json
import time

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize
from tokenizers import Tokenizer, decoders, models, pre_tokenizers


def field(reader, key):
    f = reader.fields[key]
    if len(f.data) == 1:
        v = f.parts[f.data[0]]
        return bytes(v).decode() if f.types[0].name == "STRING" else v.tolist()[0]
    return [bytes(f.parts[i]).decode() for i in f.data]


def build_tokenizer(reader):
    tokens = field(reader, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field(reader, "tokenizer.ggml.merges")]
    assert field(reader, "tokenizer.ggml.pre") == "smollm"
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    return tok


def load_weights(reader, dtype):
    w = {}
    for t in reader.tensors:
        a = dequantize(t.data, t.tensor_type)
        w[t.name] = np.asarray(a, dtype=dtype).reshape([int(n) for n in reversed(t.shape)])
    return w


def rmsnorm(x, scale, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * scale


def rope_adjacent(x, theta):
    """x: (T, H, HD); rotates pairs (x[2i], x[2i+1]) by pos * theta^(-2i/HD) (llama.cpp 'normal' mode)."""
    T, H, HD = x.shape
    inv = theta ** (-np.arange(0, HD, 2, dtype=np.float64) / HD)        # (HD/2,)
    ang = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]        # (T, HD/2)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = a * cos - b * sin
    out[..., 1::2] = a * sin + b * cos
    return out


def forward_logits(w, cfg, ids, dtype):
    L, NH, NKV, HD, eps, theta = cfg["L"], cfg["NH"], cfg["NKV"], cfg["HD"], cfg["eps"], cfg["theta"]
    T = len(ids)
    x = w["token_embd.weight"][ids].astype(dtype)                       # (T, C)
    mask = np.triu(np.full((T, T), -np.inf, dtype=dtype), k=1)
    for l in range(L):
        p = f"blk.{l}."
        h = rmsnorm(x, w[p + "attn_norm.weight"], eps)
        q = (h @ w[p + "attn_q.weight"].T).reshape(T, NH, HD)
        k = (h @ w[p + "attn_k.weight"].T).reshape(T, NKV, HD)
        v = (h @ w[p + "attn_v.weight"].T).reshape(T, NKV, HD)
        q, k = rope_adjacent(q, theta).astype(dtype), rope_adjacent(k, theta).astype(dtype)
        rep = NH // NKV
        k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)       # (T, NH, HD)
        att = np.einsum("thd,shd->hts", q, k) / np.sqrt(HD) + mask        # (NH, T, T)
        att = np.exp(att - att.max(axis=-1, keepdims=True))
        att /= att.sum(axis=-1, keepdims=True)
        y = np.einsum("hts,shd->thd", att, v).reshape(T, NH * HD)
        x = x + y @ w[p + "attn_output.weight"].T
        h = rmsnorm(x, w[p + "ffn_norm.weight"], eps)
        g = h @ w[p + "ffn_gate.weight"].T
        u = h @ w[p + "ffn_up.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ w[p + "ffn_down.weight"].T
    x = rmsnorm(x, w["output_norm.weight"], eps)
    head = w.get("output.weight", w["token_embd.weight"])                # tied when absent
    return x @ head.T                                                     # (T, V)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--window", type=int, default=512)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    dtype = np.float64 if args.dtype == "float64" else np.float32

    reader = GGUFReader(args.model)
    cfg = dict(L=field(reader, "llama.block_count"), NH=field(reader, "llama.attention.head_count"),
               NKV=field(reader, "llama.attention.head_count_kv"),
               eps=field(reader, "llama.attention.layer_norm_rms_epsilon"),
               theta=field(reader, "llama.rope.freq_base"))
    cfg["HD"] = field(reader, "llama.embedding_length") // cfg["NH"]
    tok = build_tokenizer(reader)
    raw = open(args.text, "rb").read()
    ids = tok.encode(raw.decode("utf-8"), add_special_tokens=False).ids
    need = args.windows * args.window
    assert len(ids) >= need, f"text has {len(ids)} tokens, need {need}"
    ids = ids[:need]
    w = load_weights(reader, dtype)

    nll_sums, start = [], time.time()
    for win in range(args.windows):
        seg = np.array(ids[win * args.window:(win + 1) * args.window])
        logits = forward_logits(w, cfg, seg, dtype).astype(np.float64)
        m = logits.max(axis=-1, keepdims=True)
        logp = logits - m - np.log(np.exp(logits - m).sum(axis=-1, keepdims=True))
        nll = -logp[np.arange(len(seg) - 1), seg[1:]]
        nll_sums.append(float(nll.sum()))
        print(f"window {win}: mean nll {nll.mean():.6f}  ({time.time() - start:.1f}s)", flush=True)
    scored = args.windows * (args.window - 1)
    mean_nll = sum(nll_sums) / scored
    result = {
        "command": "python3 scripts/reference/smollm2_perplexity.py --model " + args.model + " --text " + args.text
                   + f" --windows {args.windows} --window {args.window} --dtype {args.dtype} --out {args.out}",
        "model_sha256": hashlib.sha256(open(args.model, "rb").read()).hexdigest(),
        "text": args.text,
        "text_sha256": hashlib.sha256(raw).hexdigest(),
        "protocol": {"window": args.window, "windows": args.windows, "stride": args.window, "bos": False,
                     "scored_per_window": args.window - 1},
        "dtype": args.dtype,
        "tokens_scored": scored,
        "window_nll_sums": nll_sums,
        "mean_nll": mean_nll,
        "perplexity": float(np.exp(mean_nll)),
        "token_ids": ids,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"perplexity {result['perplexity']:.6f} over {scored} tokens -> {args.out}")


if __name__ == "__main__":
    main()
