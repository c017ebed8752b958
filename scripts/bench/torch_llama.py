#!/usr/bin/python3
"""The PyTorch side of `streamline bench peers` (issue 13): a plain LLaMA in fp32, timed on command.

A minimal LLaMA written the way a PyTorch user would (nanoGPT's shape, LLaMA's parts): RMSNorm,
RoPE (rotate-half), grouped-query causal attention as explicit matmuls and a masked softmax (PyTorch
1.13 has no fused attention on CPU), a SwiGLU MLP, a head tied to the embedding, mean cross-entropy
over full logits, and torch.optim.AdamW. Nothing tuned: this is what a user of Debian's python3-torch
gets, as the yardstick to beat.

The Swift bench starts this once and drives it over stdin/stdout, one JSON object a line, so both
engines run interleaved in one invocation:
  {"op": "setup", "vocab": V, "hidden": C, "layers": L, "heads": NH, "kv_heads": NKV, "head_dim": HD,
   "ffn": F, "rope_theta": θ, "eps": ε, "B": B, "T": T, "threads": n}   -> {"parameters": count}
  {"op": "forward"}  (no_grad forward + loss, as perplexity evaluation)  -> {"seconds": s, "loss": x}
  {"op": "train"}    (zero_grad, forward, backward, AdamW step)          -> {"seconds": s, "loss": x}
  {"op": "quit"}
"""

import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, C, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(C))

    def forward(self, x):  # (B, T, C)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(T, HD, theta):
    inv = theta ** (-torch.arange(0, HD, 2, dtype=torch.float32) / HD)
    freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv)  # (T, HD/2)
    return freqs.cos(), freqs.sin()


def apply_rope(x, cos, sin):  # x (B, heads, T, HD); rotate-half pairing (i, i + HD/2), as HF LLaMA
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    def __init__(self, C, NH, NKV, HD):
        super().__init__()
        self.NH, self.NKV, self.HD = NH, NKV, HD
        self.wq = nn.Linear(C, NH * HD, bias=False)
        self.wk = nn.Linear(C, NKV * HD, bias=False)
        self.wv = nn.Linear(C, NKV * HD, bias=False)
        self.wo = nn.Linear(NH * HD, C, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.NH, self.HD).transpose(1, 2)  # (B, NH, T, HD)
        k = self.wk(x).view(B, T, self.NKV, self.HD).transpose(1, 2)  # (B, NKV, T, HD)
        v = self.wv(x).view(B, T, self.NKV, self.HD).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        group = self.NH // self.NKV
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, NH, T, HD)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.HD))  # (B, NH, T, T)
        att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, self.NH * self.HD)  # (B, T, NH·HD)
        return self.wo(y)


class MLP(nn.Module):
    def __init__(self, C, FF):
        super().__init__()
        self.gate = nn.Linear(C, FF, bias=False)
        self.up = nn.Linear(C, FF, bias=False)
        self.down = nn.Linear(FF, C, bias=False)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["hidden"]
        self.attn_norm = RMSNorm(C, cfg["eps"])
        self.attn = Attention(C, cfg["heads"], cfg["kv_heads"], cfg["head_dim"])
        self.mlp_norm = RMSNorm(C, cfg["eps"])
        self.mlp = MLP(C, cfg["ffn"])

    def forward(self, x, cos, sin, mask):
        x = x + self.attn(self.attn_norm(x), cos, sin, mask)
        return x + self.mlp(self.mlp_norm(x))


class LLaMA(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed = nn.Embedding(cfg["vocab"], cfg["hidden"])
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg["layers"]))
        self.norm = RMSNorm(cfg["hidden"], cfg["eps"])
        T = cfg["T"]
        cos, sin = rope_tables(T, cfg["head_dim"], cfg["rope_theta"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1), persistent=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, tokens, targets):  # (B, T) each
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, self.cos, self.sin, self.mask)
        logits = F.linear(self.norm(x), self.embed.weight)  # tied head, (B, T, V)
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    model = optimizer = tokens = targets = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "setup":
            torch.manual_seed(0)
            torch.set_num_threads(cmd["threads"])
            model = LLaMA(cmd)
            # Weight decay on matrices only, as Streamline's AdamW.
            decay = [p for p in model.parameters() if p.dim() >= 2]
            rest = [p for p in model.parameters() if p.dim() < 2]
            optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": rest, "weight_decay": 0.0}],
                                          lr=1e-4, betas=(0.9, 0.999), eps=1e-8)
            tokens = torch.randint(cmd["vocab"], (cmd["B"], cmd["T"]))
            targets = torch.randint(cmd["vocab"], (cmd["B"], cmd["T"]))
            reply = {"parameters": sum(p.numel() for p in model.parameters()), "threads": torch.get_num_threads(),
                     "torch": torch.__version__}
        elif op == "forward":
            start = time.perf_counter()
            with torch.no_grad():
                loss = model(tokens, targets)
            reply = {"seconds": time.perf_counter() - start, "loss": loss.item()}
        elif op == "train":
            start = time.perf_counter()
            optimizer.zero_grad()
            loss = model(tokens, targets)
            loss.backward()
            optimizer.step()
            reply = {"seconds": time.perf_counter() - start, "loss": loss.item()}
        elif op == "quit":
            return
        else:
            reply = {"error": f"unknown op {op!r}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
