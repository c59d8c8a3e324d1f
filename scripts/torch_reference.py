#!/usr/bin/python3
"""Reference logits for rhead's engine tests, from a plain Llama written in PyTorch.

Run with Debian's Python (python3-torch, python3-numpy):

    /usr/bin/python3 scripts/torch_reference.py [--shared ../shared] [--out tests/data/model]

The model below is written from the equations, in float64, in the Hugging Face layout
(shown for Llama; forward() notes what each other family changes):
  x = embed[tokens]
  per layer:
    h  = rmsnorm(x) * w_in                      rmsnorm(v) = v / sqrt(mean(v^2) + eps)
    q, k, v = h Wq^T (+bq), h Wk^T (+bk), h Wv^T (+bv)      (biases: Qwen2)
    q, k = rope(q), rope(k)                     rotate_half pairing: (i, i + head_dim/2)
    a  = softmax(q k^T / sqrt(head_dim) + causal mask) v,  KV head = query head // group
    x  = x + a Wo^T
    h  = rmsnorm(x) * w_post
    x  = x + (silu(h Wg^T) * (h Wu^T)) Wd^T
  logits = (rmsnorm(x) * w_norm) W_head^T       (W_head = embed when tied)
RoPE inverse frequencies: theta^(-2i/d); "linear" divides them by factor; "llama3"
divides the long wavelengths (> original_ctx / low_freq_factor) by factor, keeps the
short ones (< original_ctx / high_freq_factor) and blends the band between.

Fixtures (one JSON file each in tests/data/model/):
  fmt_tiny_hf_f32.json  the trained fmt-tiny model read from ../shared (hf-f32); a fixed
                        text tokenized with tok512; logits at every 8th position and the last.
  random_qwen2.json     random weights, model_type qwen2: q/k/v biases, GQA 4:2, tied head,
                        rope_theta 1e6.
  random_llama3.json    random weights, llama with rope_scaling llama3 (factor 8, low 1,
                        high 4, original_max_position_embeddings 64), GQA 8:2.
  random_linear.json    random weights, llama with linear rope scaling (factor 4), one KV head.
  random_mistral.json   llama family (model_type mistral), sliding window 12 < 40 tokens.
  random_mixtral.json   4 experts, top-2, softmax over the chosen experts' router logits.
  random_qwen3.json     per-head q_norm/k_norm before RoPE, head_dim 32 (q width != hidden).
  random_qwen3moe.json  8 experts, top-2, norm_topk_prob false, q/k norms.
  random_gemma2.json    (1 + w) norms, sqrt(d) embedding scale, GeGLU, post-norms,
                        query_pre_attn_scalar 24, attention / final soft-caps 2 / 3, window 16
                        on even layers (3 layers), tied head.
  random_phi3.json      fused qkv_proj / gate_up_proj, window 20 < 48 tokens, LongRoPE with the
                        long factors (48 > original 32) and attention factor sqrt(1 + ln 8 / ln 32).
  random_phi3_short.json  the same model on 30 tokens: the short factors.
  niah_tiny_synthetic_heads.json  previous-token / duplicate-token / induction scores.
  niah_tiny_head_methods.json     qrhead and lookback scores of one NIAH-shaped prompt.

Random weights are not committed. Each fixture names a seed, and the weights come from
this generator, which tests/model/random_weights.h implements identically:
  splitmix64 is counter-based: draw number n (n = 1, 2, ...) of a stream with seed s is
    z = s + n * 0x9E3779B97F4A7C15 (mod 2^64)
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    return z ^ (z >> 31)
  unit(draw) = ((draw >> 48) - 32768) / 32768, a multiple of 2^-15 in [-1, 1).
  One stream runs over the tensors in the order of hf_tensor_list(); each tensor is filled
  in row-major order with base + unit * scale, where
    embed_tokens, lm_head and every Linear weight [out, in] (routers and experts included):
      base 0, scale 2^-s with s the largest integer such that 4^s <= in (embed_tokens:
      in = hidden_size)
    norms: base 1, scale 1/4 (Gemma-2, whose HF norms hold w of (1 + w): base 0);
    biases: base 0, scale 1/2.
  All of these are exact in float32, so both sides hold bit-identical weights.
  Tokens: a second stream with seed s + 1; token i = (draw >> 32) % vocab_size.
"""

import argparse
import json
import math
import os
import struct

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1

# ---------------------------------------------------------------------------
# Deterministic weights


def splitmix64(seed, first, count):
    """Draws first+1 .. first+count of the stream `seed`, as a uint64 array."""
    with np.errstate(over="ignore"):
        n = np.arange(first + 1, first + count + 1, dtype=np.uint64)
        z = np.uint64(seed & MASK64) + n * np.uint64(GOLDEN)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def linear_scale(n_in):
    s = 0
    while 4 ** (s + 1) <= n_in:
        s += 1
    return 2.0 ** -s


def hf_tensor_list(cfg):
    """(name, shape, base, scale) in generation order, for any family's HF config."""
    mt = cfg["model_type"]
    d = cfg["hidden_size"]
    f = cfg["intermediate_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or d // nh
    v = cfg["vocab_size"]
    bias = mt == "qwen2" or cfg.get("attention_bias", False)
    norm_base = 0.0 if mt == "gemma2" else 1.0  # Gemma's HF norms store w of (1 + w)
    qk_norm = mt in ("qwen3", "qwen3_moe")
    out = [("model.embed_tokens.weight", [v, d], 0.0, linear_scale(d))]
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        out.append((p + "input_layernorm.weight", [d], norm_base, 0.25))
        if mt == "phi3":
            out.append((p + "self_attn.qkv_proj.weight", [(nh + 2 * nkv) * hd, d], 0.0, linear_scale(d)))
        else:
            for proj, rows in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
                out.append((p + "self_attn.%s_proj.weight" % proj, [rows, d], 0.0, linear_scale(d)))
                if bias:
                    out.append((p + "self_attn.%s_proj.bias" % proj, [rows], 0.0, 0.5))
        if qk_norm:
            out.append((p + "self_attn.q_norm.weight", [hd], 1.0, 0.25))
            out.append((p + "self_attn.k_norm.weight", [hd], 1.0, 0.25))
        out.append((p + "self_attn.o_proj.weight", [d, nh * hd], 0.0, linear_scale(nh * hd)))
        if cfg.get("attention_bias", False) and mt == "llama":
            out.append((p + "self_attn.o_proj.bias", [d], 0.0, 0.5))
        out.append((p + "post_attention_layernorm.weight", [d], norm_base, 0.25))
        if mt == "gemma2":
            out.append((p + "pre_feedforward_layernorm.weight", [d], norm_base, 0.25))
            out.append((p + "post_feedforward_layernorm.weight", [d], norm_base, 0.25))
        if mt == "mixtral":
            ne = cfg["num_local_experts"]
            out.append((p + "block_sparse_moe.gate.weight", [ne, d], 0.0, linear_scale(d)))
            for e in range(ne):
                q = p + "block_sparse_moe.experts.%d." % e
                out.append((q + "w1.weight", [f, d], 0.0, linear_scale(d)))
                out.append((q + "w2.weight", [d, f], 0.0, linear_scale(f)))
                out.append((q + "w3.weight", [f, d], 0.0, linear_scale(d)))
        elif mt == "qwen3_moe":
            ne, fe = cfg["num_experts"], cfg["moe_intermediate_size"]
            out.append((p + "mlp.gate.weight", [ne, d], 0.0, linear_scale(d)))
            for e in range(ne):
                q = p + "mlp.experts.%d." % e
                out.append((q + "gate_proj.weight", [fe, d], 0.0, linear_scale(d)))
                out.append((q + "up_proj.weight", [fe, d], 0.0, linear_scale(d)))
                out.append((q + "down_proj.weight", [d, fe], 0.0, linear_scale(fe)))
        elif mt == "phi3":
            out.append((p + "mlp.gate_up_proj.weight", [2 * f, d], 0.0, linear_scale(d)))
            out.append((p + "mlp.down_proj.weight", [d, f], 0.0, linear_scale(f)))
        else:
            out.append((p + "mlp.gate_proj.weight", [f, d], 0.0, linear_scale(d)))
            out.append((p + "mlp.up_proj.weight", [f, d], 0.0, linear_scale(d)))
            out.append((p + "mlp.down_proj.weight", [d, f], 0.0, linear_scale(f)))
    out.append(("model.norm.weight", [d], norm_base, 0.25))
    if not cfg.get("tie_word_embeddings", mt == "gemma2"):
        out.append(("lm_head.weight", [v, d], 0.0, linear_scale(d)))
    return out


def random_weights(cfg, seed):
    weights = {}
    drawn = 0
    for name, shape, base, scale in hf_tensor_list(cfg):
        count = int(np.prod(shape))
        draws = splitmix64(seed, drawn, count)
        drawn += count
        unit = ((draws >> np.uint64(48)).astype(np.int64) - 32768).astype(np.float64) / 32768.0
        values = (base + unit * scale).astype(np.float32)
        assert np.all(values.astype(np.float64) == base + unit * scale), name  # exact in f32
        weights[name] = torch.from_numpy(values.reshape(shape))
    return weights


def random_tokens(seed, count, vocab):
    draws = splitmix64(seed + 1, 0, count)
    return [int(x) for x in (draws >> np.uint64(32)) % np.uint64(vocab)]


# ---------------------------------------------------------------------------
# safetensors, parsed by hand: u64 header length | JSON header | raw little-endian data


def read_safetensors(path):
    with open(path, "rb") as fh:
        blob = fh.read()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + header_len])
    data = blob[8 + header_len :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        shape = info["shape"]
        if info["dtype"] == "F32":
            arr = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        elif info["dtype"] == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << np.uint32(16)
            arr = bits.view(np.float32)
        else:
            raise ValueError("%s: tensor %s has unsupported dtype %s" % (path, name, info["dtype"]))
        tensors[name] = torch.from_numpy(arr.reshape(shape).copy())
    return tensors


# ---------------------------------------------------------------------------
# The model


def rope_inv_freq(cfg, head_dim, seq_len):
    """Inverse frequencies [head_dim/2] and the cos/sin magnitude (LongRoPE's attention factor)."""
    theta = float(cfg.get("rope_theta", 10000.0))
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv, 1.0
    kind = rs.get("rope_type", rs.get("type"))
    if kind in ("longrope", "su"):
        orig = cfg.get("original_max_position_embeddings", cfg["max_position_embeddings"])
        factors = rs["long_factor"] if seq_len > orig else rs["short_factor"]
        scale = cfg["max_position_embeddings"] / orig
        attn = math.sqrt(1 + math.log(scale) / math.log(orig)) if scale > 1 else 1.0
        return inv / torch.tensor(factors, dtype=torch.float64), attn
    factor = float(rs["factor"])
    if kind == "linear":
        return inv / factor, 1.0
    if kind == "llama3":
        low = float(rs.get("low_freq_factor", 1.0))
        high = float(rs.get("high_freq_factor", 4.0))
        orig = float(rs.get("original_max_position_embeddings", 8192))
        wavelen = 2 * math.pi / inv
        low_wavelen, high_wavelen = orig / low, orig / high
        smooth = (orig / wavelen - low) / (high - low)
        blended = (1 - smooth) * inv / factor + smooth * inv
        out = torch.where(wavelen > low_wavelen, inv / factor, inv)
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        return torch.where(medium, blended, out), 1.0
    raise ValueError("unsupported rope scaling %r" % kind)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def layer_window(cfg, layer):
    """Sliding window of a layer (0: full): Gemma-2 on even layers, Mistral/Mixtral/Phi-3 on all."""
    w = cfg.get("sliding_window") or 0
    if cfg["model_type"] in ("qwen2", "qwen3", "qwen3_moe"):
        return 0  # only with use_sliding_window, which the fixtures leave off
    if cfg["model_type"] == "gemma2":
        return w if layer % 2 == 0 else 0
    return w


def moe(cfg, W, prefix, h):
    """Top-k routing: softmax over all router logits, the top k kept; Mixtral (and
    Qwen3-MoE with norm_topk_prob) renormalizes them over the chosen experts."""
    if cfg["model_type"] == "mixtral":
        ne, k, norm = cfg["num_local_experts"], cfg["num_experts_per_tok"], True
        router, names = prefix + "block_sparse_moe.gate.weight", ("w1", "w3", "w2")
        expert = prefix + "block_sparse_moe.experts.%d.%s.weight"
    else:
        ne, k, norm = cfg["num_experts"], cfg["num_experts_per_tok"], cfg.get("norm_topk_prob", False)
        router, names = prefix + "mlp.gate.weight", ("gate_proj", "up_proj", "down_proj")
        expert = prefix + "mlp.experts.%d.%s.weight"
    probs = torch.softmax(h @ W[router].T, -1)       # [T, ne]
    top_p, top_i = torch.topk(probs, k, dim=-1)       # [T, k]
    if norm:
        top_p = top_p / top_p.sum(-1, keepdim=True)
    out = torch.zeros_like(h)
    for e in range(ne):
        g, u, dn = (W[expert % (e, n)] for n in names)
        y = (torch.nn.functional.silu(h @ g.T) * (h @ u.T)) @ dn.T  # [T, d]
        weight = (top_p * (top_i == e)).sum(-1, keepdim=True)      # [T, 1], 0 if not chosen
        out = out + weight * y
    return out


def forward(cfg, w, tokens, attention_out=None):
    """Logits [T, vocab] in float64 for `tokens` starting at position 0. With a list as
    attention_out, each layer's attention probabilities [heads, T, T] are appended to it."""
    W = {k: v.to(torch.float64) for k, v in w.items()}
    mt = cfg["model_type"]
    gemma = mt == "gemma2"
    d = cfg["hidden_size"]
    f = cfg["intermediate_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or d // nh
    eps = float(cfg.get("rms_norm_eps", 1e-6))
    T = len(tokens)

    def norm(x, name):  # Gemma multiplies by (1 + w)
        return rmsnorm(x, (1 + W[name]) if gemma else W[name], eps)

    x = W["model.embed_tokens.weight"][torch.tensor(tokens)]  # [T, d]
    if gemma:
        x = x * math.sqrt(d)
    pos = torch.arange(T, dtype=torch.float64)
    inv, mag = rope_inv_freq(cfg, hd, T)
    angles = pos[:, None] * inv[None, :]   # [T, hd/2]
    cos = mag * torch.cat((angles.cos(), angles.cos()), -1)[:, None, :]  # [T, 1, hd]
    sin = mag * torch.cat((angles.sin(), angles.sin()), -1)[:, None, :]
    scale = float(cfg["query_pre_attn_scalar"]) ** -0.5 if gemma else 1 / math.sqrt(hd)
    softcap = cfg.get("attn_logit_softcapping") if gemma else None
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer

        def lin(name, h):
            y = h @ W[p + name + ".weight"].T
            b = W.get(p + name + ".bias")
            return y if b is None else y + b

        h = norm(x, p + "input_layernorm.weight")
        if mt == "phi3":
            qkv = lin("self_attn.qkv_proj", h)
            q, k, v = qkv.split([nh * hd, nkv * hd, nkv * hd], -1)
            q, k, v = q.reshape(T, nh, hd), k.reshape(T, nkv, hd), v.reshape(T, nkv, hd)
        else:
            q = lin("self_attn.q_proj", h).view(T, nh, hd)
            k = lin("self_attn.k_proj", h).view(T, nkv, hd)
            v = lin("self_attn.v_proj", h).view(T, nkv, hd)
        if mt in ("qwen3", "qwen3_moe"):  # per-head RMSNorm before RoPE
            q = rmsnorm(q, W[p + "self_attn.q_norm.weight"], eps)
            k = rmsnorm(k, W[p + "self_attn.k_norm.weight"], eps)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        group = nh // nkv
        k = k.repeat_interleave(group, dim=1)  # query head j reads KV head j // group
        v = v.repeat_interleave(group, dim=1)
        scores = torch.einsum("thd,shd->hts", q, k) * scale
        if softcap:
            scores = softcap * torch.tanh(scores / softcap)
        window = layer_window(cfg, layer)
        hidden = (j > i) | ((i - j >= window) if window else torch.zeros_like(j > i))
        scores = scores.masked_fill(hidden, float("-inf"))
        probs = torch.softmax(scores, -1)
        if attention_out is not None:
            attention_out.append(probs)
        att = torch.einsum("hts,shd->thd", probs, v).reshape(T, nh * hd)
        a = lin("self_attn.o_proj", att)
        if gemma:
            a = norm(a, p + "post_attention_layernorm.weight")
        x = x + a
        h = norm(x, p + ("pre_feedforward_layernorm.weight" if gemma else "post_attention_layernorm.weight"))
        if mt in ("mixtral", "qwen3_moe"):
            y = moe(cfg, W, p, h)
        elif mt == "phi3":
            gate, up = (h @ W[p + "mlp.gate_up_proj.weight"].T).split([f, f], -1)
            y = (torch.nn.functional.silu(gate) * up) @ W[p + "mlp.down_proj.weight"].T
        else:
            gate = h @ W[p + "mlp.gate_proj.weight"].T
            up = h @ W[p + "mlp.up_proj.weight"].T
            act = gelu_tanh(gate) if gemma else torch.nn.functional.silu(gate)
            y = (act * up) @ W[p + "mlp.down_proj.weight"].T
        if gemma:
            y = norm(y, p + "post_feedforward_layernorm.weight")
        x = x + y
    x = norm(x, "model.norm.weight")
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    logits = x @ head.T
    if gemma and cfg.get("final_logit_softcapping"):
        cap = cfg["final_logit_softcapping"]
        logits = cap * torch.tanh(logits / cap)
    return logits


# ---------------------------------------------------------------------------
# Fixtures

FMT_TINY_TEXT = (
    "The way to get startup ideas is not to try to think of startup ideas. It's to look for "
    "problems, preferably problems you have yourself. The very best startup ideas tend to have "
    "three things in common: they're something the founders themselves want, that they "
    "themselves can build, and that few others realize are worth doing."
)

RANDOM_FIXTURES = [
    {
        "name": "random_qwen2",
        "seed": 0x5EED0001,
        "n_tokens": 72,
        "config": {
            "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64,
            "intermediate_size": 160, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0, "hidden_act": "silu", "vocab_size": 128,
            "tie_word_embeddings": True, "torch_dtype": "float32",
        },
    },
    {
        "name": "random_llama3",
        "seed": 0x5EED0002,
        "n_tokens": 96,
        "config": {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 8,
            "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 512,
            "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "hidden_act": "silu",
            "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
            "vocab_size": 128, "tie_word_embeddings": False, "torch_dtype": "float32",
        },
    },
    {
        "name": "random_linear",
        "seed": 0x5EED0003,
        "n_tokens": 64,
        "config": {
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
            "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 2,
            "num_key_value_heads": 1, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "hidden_act": "silu",
            "rope_scaling": {"type": "linear", "factor": 4.0},
            "vocab_size": 96, "tie_word_embeddings": False, "torch_dtype": "float32",
        },
    },
]



def _longrope_factors(half, lo, hi):
    return [lo + (hi - lo) * i / (half - 1) for i in range(half)]


# One fixture per family the engine runs, sized so the whole set runs in seconds.
RANDOM_FIXTURES += [
    {
        "name": "random_mistral",  # llama family with a sliding window shorter than the prompt
        "seed": 0x5EED0004,
        "n_tokens": 40,
        "config": {
            "architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 64,
            "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0, "hidden_act": "silu", "sliding_window": 12,
            "vocab_size": 96, "tie_word_embeddings": False, "torch_dtype": "float32",
        },
    },
    {
        "name": "random_mixtral",
        "seed": 0x5EED0005,
        "n_tokens": 48,
        "config": {
            "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": 64,
            "intermediate_size": 80, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 256, "rms_norm_eps": 1e-5,
            "rope_theta": 1000000.0, "hidden_act": "silu", "num_local_experts": 4,
            "num_experts_per_tok": 2, "sliding_window": None, "router_aux_loss_coef": 0.02,
            "output_router_logits": False, "vocab_size": 128, "tie_word_embeddings": False,
            "torch_dtype": "float32",
        },
    },
    {
        "name": "random_qwen3",
        "seed": 0x5EED0006,
        "n_tokens": 48,
        "config": {
            "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 32, "max_position_embeddings": 256,
            "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "hidden_act": "silu",
            "attention_bias": False, "use_sliding_window": False, "sliding_window": None,
            "max_window_layers": 2, "vocab_size": 128, "tie_word_embeddings": True,
            "torch_dtype": "float32",
        },
    },
    {
        "name": "random_qwen3moe",
        "seed": 0x5EED0007,
        "n_tokens": 40,
        "config": {
            "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "hidden_size": 64,
            "intermediate_size": 128, "moe_intermediate_size": 32, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "hidden_act": "silu", "num_experts": 8, "num_experts_per_tok": 2,
            "norm_topk_prob": False, "decoder_sparse_step": 1, "mlp_only_layers": [],
            "attention_bias": False, "use_sliding_window": False, "vocab_size": 128,
            "tie_word_embeddings": False, "torch_dtype": "float32",
        },
    },
    {
        "name": "random_gemma2",  # soft-caps that bite, query_pre_attn_scalar != head_dim, window 16
        "seed": 0x5EED0008,
        "n_tokens": 40,
        "config": {
            "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "hidden_size": 64,
            "intermediate_size": 128, "num_hidden_layers": 3, "num_attention_heads": 4,
            "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 256,
            "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_activation": "gelu_pytorch_tanh",
            "query_pre_attn_scalar": 24, "sliding_window": 16, "attn_logit_softcapping": 2.0,
            "final_logit_softcapping": 3.0, "attention_bias": False, "vocab_size": 128,
            "tie_word_embeddings": True, "torch_dtype": "float32",
        },
    },
    {
        "name": "random_phi3",  # window 20 < prompt; LongRoPE long factors (prompt > original 32)
        "seed": 0x5EED0009,
        "n_tokens": 48,
        "config": {
            "architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "hidden_size": 64,
            "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 4, "max_position_embeddings": 256,
            "original_max_position_embeddings": 32, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "hidden_act": "silu", "sliding_window": 20,
            "rope_scaling": {"type": "longrope", "short_factor": _longrope_factors(8, 1.0, 1.5),
                             "long_factor": _longrope_factors(8, 1.0, 6.0)},
            "vocab_size": 128, "tie_word_embeddings": False, "torch_dtype": "float32",
        },
    },
]
# The same Phi-3 with a prompt within the original context: the short factors.
RANDOM_FIXTURES.append(dict(RANDOM_FIXTURES[-1], name="random_phi3_short", n_tokens=30))


def write_fixture(path, payload, logits, positions):
    payload = dict(payload)
    payload["positions"] = positions
    payload["max_abs_logit"] = float(logits.abs().max())
    payload["logits"] = [[float("%.8g" % v) for v in logits[p].tolist()] for p in positions]
    with open(path, "w") as fh:
        json.dump(payload, fh, separators=(",", ":"))
        fh.write("\n")
    print("wrote %s (%d bytes)" % (os.path.relpath(path, REPO), os.path.getsize(path)))


def fmt_tiny_fixture(shared, out_dir):
    model_dir = os.path.join(shared, "models", "fmt-tiny", "hf-f32")
    with open(os.path.join(model_dir, "config.json")) as fh:
        cfg = json.load(fh)
    import sentencepiece  # python3-sentencepiece; only needed for this fixture

    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
    tokens = [sp.bos_id()] + sp.encode(FMT_TINY_TEXT)
    weights = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    with torch.no_grad():
        logits = forward(cfg, weights, tokens)
    positions = sorted(set(range(0, len(tokens), 8)) | {len(tokens) - 1})
    payload = {
        "name": "fmt_tiny_hf_f32",
        "model": "models/fmt-tiny/hf-f32",
        "text": FMT_TINY_TEXT,
        "tokens": tokens,
    }
    write_fixture(os.path.join(out_dir, "fmt_tiny_hf_f32.json"), payload, logits, positions)


def random_fixture(fx, out_dir):
    cfg = fx["config"]
    weights = random_weights(cfg, fx["seed"])
    tokens = random_tokens(fx["seed"], fx["n_tokens"], cfg["vocab_size"])
    with torch.no_grad():
        logits = forward(cfg, weights, tokens)
    payload = {"name": fx["name"], "seed": fx["seed"], "config": cfg, "tokens": tokens}
    write_fixture(os.path.join(out_dir, fx["name"] + ".json"), payload, logits, list(range(len(tokens))))


def synthetic_heads_fixture(shared, out_dir):
    """niah-tiny (hf-f32) on BOS + 24 distinct random tokens repeated twice: per head, the
    mean attention on the pattern's target (experiments/synthetic_heads.h) over the rows that
    have one: previous-token i-1, duplicate-token i-n, induction i-n+1."""
    model_dir = os.path.join(shared, "models", "niah-tiny", "hf-f32")
    with open(os.path.join(model_dir, "config.json")) as fh:
        cfg = json.load(fh)
    n = 24
    draws = splitmix64(77, 1, 4 * n)
    pool = list(range(3, cfg["vocab_size"]))  # tok512: 0-2 are <unk>, <s>, </s>
    for i in range(n):  # partial Fisher-Yates shuffle
        j = i + (int(draws[i]) >> 32) % (len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    tokens = [1] + pool[:n] + pool[:n]
    weights = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    probs = []
    with torch.no_grad():
        forward(cfg, weights, tokens, probs)
    T = len(tokens)
    targets = {
        "previous-token": [(i, i - 1) for i in range(1, T)],
        "duplicate-token": [(i, i - n) for i in range(1 + n, T)],
        "induction": [(i, i - n + 1) for i in range(1 + n, T)],
    }
    scores = {}
    for name, pairs in targets.items():
        rows = torch.tensor([i for i, _ in pairs])
        cols = torch.tensor([j for _, j in pairs])
        scores[name] = {"%d-%d" % (layer, h): float(p[h][rows, cols].mean())
                        for layer, p in enumerate(probs) for h in range(p.shape[0])}
    payload = {"name": "niah_tiny_synthetic_heads", "model": "models/niah-tiny/hf-f32", "tokens": tokens,
               "offset": 1, "n": n, "scores": scores}
    path = os.path.join(out_dir, "niah_tiny_synthetic_heads.json")
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=1)
        fh.write("\n")
    print("wrote %s" % os.path.relpath(path, REPO))


NIAH_METHODS_HAYSTACK = (
    "The river town kept its old mill long after the last miller left. Children learned to swim "
    "below the weir, and in winter the ice held the sound of skates for miles. Every spring the "
    "council argued about the bridge, and every spring they painted it the same dull green. The "
    "baker rose at four and the postman at six, and between them the town woke one window at a "
    "time. Visitors said nothing ever happened there, which the people took as praise. In the "
    "library a clock ran seven minutes fast, and nobody had corrected it in forty years, because "
    "the librarian liked to close early without seeming to. The orchard on the hill gave more "
    "apples than anyone could eat, so the school held a fair each autumn to give them away."
)
NIAH_METHODS_NEEDLE = " The secret ingredient in the mayor's soup is smoked paprika from the hill farm."
NIAH_METHODS_AFTER = "\nQuestion: What is the secret ingredient in the mayor's soup?\nAnswer:"
NIAH_METHODS_NULL_AFTER = "\nQuestion: N/A\nAnswer:"


def niah_methods_documents(context, needle, doc_tokens):
    """qrhead's documents (experiments/head_methods.h): cuts every doc_tokens tokens from the
    context's start; a cut inside the needle moves to its end. Returns (docs, gold index)."""
    docs, begin, gold = [], context[0], None
    while begin < context[1]:
        end = min(context[1], begin + doc_tokens)
        if needle[0] < end < needle[1]:
            end = needle[1]
        if begin <= needle[0] < end:
            gold = len(docs)
        docs.append((begin, end))
        begin = end
    return docs, gold


def niah_methods_fixture(shared, out_dir):
    """qrhead and lookback (docs/head_methods.md) on niah-tiny (hf-f32) for one NIAH-shaped
    prompt: BOS, haystack with a needle, question. Greedy answer of up to 8 tokens in float64.
      qrhead: mean attention of the question rows (the prompt tokens after the context but the
        last) on each context key, minus the same for the null question "N/A" on the same
        prefix; in the gold document (64-token documents, the needle's), the sum of the tokens
        above mean - 2 * sample std.
      lookback: per decode step (query = the token fed), (mean weight on the context keys) /
        (that + mean weight on the keys after the context), averaged over the steps."""
    import sentencepiece  # python3-sentencepiece

    model_dir = os.path.join(shared, "models", "niah-tiny", "hf-f32")
    with open(os.path.join(model_dir, "config.json")) as fh:
        cfg = json.load(fh)
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
    hay = sp.encode(NIAH_METHODS_HAYSTACK)
    needle = sp.encode(NIAH_METHODS_NEEDLE)
    after = sp.encode(NIAH_METHODS_AFTER)
    null_after = sp.encode(NIAH_METHODS_NULL_AFTER)
    cut = 118  # the needle then crosses the cut at 129 (64-token documents from position 1)
    tokens = [sp.bos_id()] + hay[:cut] + needle + hay[cut:]
    context = (1, len(tokens))
    needle_span = (1 + cut, 1 + cut + len(needle))
    tokens += after
    P = len(tokens)
    weights = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    docs, gold = niah_methods_documents(context, needle_span, 64)

    def question_rows(seq, first, last):
        probs = []
        with torch.no_grad():
            forward(cfg, weights, seq, probs)
        # [layer, head, key]: mean over rows [first, last) of the weights on the context keys
        return torch.stack([p[:, first:last, :context[1]].mean(1) for p in probs])

    real = question_rows(tokens[:P - 1], context[1], P - 1)
    null_seq = tokens[:context[1]] + null_after[:-1]
    null = question_rows(null_seq, context[1], len(null_seq))
    cal = real - null
    g0, g1 = docs[gold]
    qrhead = {}
    for layer in range(cal.shape[0]):
        for h in range(cal.shape[1]):
            v = cal[layer, h, g0:g1]
            keep = v > v.mean() - 2 * v.std(unbiased=True)
            qrhead["%d-%d" % (layer, h)] = float((v * keep).sum())

    seq, generated = list(tokens), []
    ratio_sum = None
    for _ in range(8):
        probs = []
        with torch.no_grad():
            logits = forward(cfg, weights, seq, probs)
        i = len(seq) - 1
        n_ctx, n_new = context[1], i + 1 - context[1]
        ratios = torch.stack([p[:, i, :n_ctx].sum(-1) / n_ctx /
                              (p[:, i, :n_ctx].sum(-1) / n_ctx + p[:, i, n_ctx:i + 1].sum(-1) / n_new)
                              for p in probs])
        ratio_sum = ratios if ratio_sum is None else ratio_sum + ratios
        tok = int(torch.argmax(logits[-1]))
        generated.append(tok)
        seq.append(tok)
    lookback = {"%d-%d" % (layer, h): float(ratio_sum[layer, h] / len(generated))
                for layer in range(ratio_sum.shape[0]) for h in range(ratio_sum.shape[1])}
    payload = {"name": "niah_tiny_head_methods", "model": "models/niah-tiny/hf-f32", "tokens": tokens,
               "context": list(context), "needle": list(needle_span), "null_after": null_after,
               "documents": [list(d) for d in docs], "gold": gold, "generated": generated,
               "scores": {"qrhead": qrhead, "lookback": lookback}}
    path = os.path.join(out_dir, "niah_tiny_head_methods.json")
    with open(path, "w") as fh:
        json.dump(payload, fh, indent=1)
        fh.write("\n")
    print("wrote %s" % os.path.relpath(path, REPO))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(REPO, "..", "shared"))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "model"))
    ap.add_argument("--only", help="write only this fixture (its name without .json)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)  # nothing random is drawn from torch; fixed for good measure
    writers = [("fmt_tiny_hf_f32", lambda: fmt_tiny_fixture(args.shared, args.out)),
               ("niah_tiny_synthetic_heads", lambda: synthetic_heads_fixture(args.shared, args.out)),
               ("niah_tiny_head_methods", lambda: niah_methods_fixture(args.shared, args.out))]
    writers += [(fx["name"], lambda fx=fx: random_fixture(fx, args.out)) for fx in RANDOM_FIXTURES]
    if args.only and args.only not in [name for name, _ in writers]:
        ap.error("--only: no fixture named %s" % args.only)
    for name, write in writers:
        if not args.only or args.only == name:
            write()


if __name__ == "__main__":
    main()
