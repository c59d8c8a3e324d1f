#!/usr/bin/python3
"""Reference logits for rhead's engine tests, from a plain Llama written in PyTorch.

Run with Debian's Python (python3-torch, python3-numpy):

    /usr/bin/python3 scripts/torch_reference.py [--shared ../shared] [--out tests/data/model]

The model below is written from the equations, in float64, in the Hugging Face layout:
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

Random weights are not committed. Each fixture names a seed, and the weights come from
this generator, which tests/model/random_weights.h implements identically:
  splitmix64 is counter-based: draw number n (n = 1, 2, ...) of a stream with seed s is
    z = s + n * 0x9E3779B97F4A7C15 (mod 2^64)
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB
    return z ^ (z >> 31)
  unit(draw) = ((draw >> 48) - 32768) / 32768, a multiple of 2^-15 in [-1, 1).
  One stream runs over the tensors in the order of hf_tensor_list(); each tensor is filled
  in row-major order with base + unit * scale, where
    embed_tokens, lm_head and every Linear weight [out, in]: base 0, scale 2^-s with s the
      largest integer such that 4^s <= in (embed_tokens: in = hidden_size)
    norms: base 1, scale 1/4;   biases: base 0, scale 1/2.
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
    """(name, shape, base, scale) in generation order, for a Llama/Qwen2 config."""
    d = cfg["hidden_size"]
    f = cfg["intermediate_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or d // nh
    v = cfg["vocab_size"]
    bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    out = [("model.embed_tokens.weight", [v, d], 0.0, linear_scale(d))]
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer
        out.append((p + "input_layernorm.weight", [d], 1.0, 0.25))
        for proj, rows in (("q", nh * hd), ("k", nkv * hd), ("v", nkv * hd)):
            out.append((p + "self_attn.%s_proj.weight" % proj, [rows, d], 0.0, linear_scale(d)))
            if bias:
                out.append((p + "self_attn.%s_proj.bias" % proj, [rows], 0.0, 0.5))
        out.append((p + "self_attn.o_proj.weight", [d, nh * hd], 0.0, linear_scale(nh * hd)))
        out.append((p + "post_attention_layernorm.weight", [d], 1.0, 0.25))
        out.append((p + "mlp.gate_proj.weight", [f, d], 0.0, linear_scale(d)))
        out.append((p + "mlp.up_proj.weight", [f, d], 0.0, linear_scale(d)))
        out.append((p + "mlp.down_proj.weight", [d, f], 0.0, linear_scale(f)))
    out.append(("model.norm.weight", [d], 1.0, 0.25))
    if not cfg.get("tie_word_embeddings", False):
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


def rope_inv_freq(cfg, head_dim):
    theta = float(cfg.get("rope_theta", 10000.0))
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    rs = cfg.get("rope_scaling")
    if not rs:
        return inv
    kind = rs.get("rope_type", rs.get("type"))
    factor = float(rs["factor"])
    if kind == "linear":
        return inv / factor
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
        return torch.where(medium, blended, out)
    raise ValueError("unsupported rope scaling %r" % kind)


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def forward(cfg, w, tokens):
    """Logits [T, vocab] in float64 for `tokens` starting at position 0."""
    W = {k: v.to(torch.float64) for k, v in w.items()}
    d = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or d // nh
    eps = float(cfg.get("rms_norm_eps", 1e-6))
    T = len(tokens)
    x = W["model.embed_tokens.weight"][torch.tensor(tokens)]  # [T, d]
    pos = torch.arange(T, dtype=torch.float64)
    angles = pos[:, None] * rope_inv_freq(cfg, hd)[None, :]   # [T, hd/2]
    cos = torch.cat((angles.cos(), angles.cos()), -1)[:, None, :]  # [T, 1, hd]
    sin = torch.cat((angles.sin(), angles.sin()), -1)[:, None, :]
    causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for layer in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % layer

        def lin(name, h):
            y = h @ W[p + name + ".weight"].T
            b = W.get(p + name + ".bias")
            return y if b is None else y + b

        h = rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        q = lin("self_attn.q_proj", h).view(T, nh, hd)
        k = lin("self_attn.k_proj", h).view(T, nkv, hd)
        v = lin("self_attn.v_proj", h).view(T, nkv, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        group = nh // nkv
        k = k.repeat_interleave(group, dim=1)  # query head j reads KV head j // group
        v = v.repeat_interleave(group, dim=1)
        scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + causal
        att = torch.einsum("hts,shd->thd", torch.softmax(scores, -1), v).reshape(T, nh * hd)
        x = x + att @ W[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        gate = h @ W[p + "mlp.gate_proj.weight"].T
        up = h @ W[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ W[p + "mlp.down_proj.weight"].T
    x = rmsnorm(x, W["model.norm.weight"], eps)
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return x @ head.T


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default=os.path.join(REPO, "..", "shared"))
    ap.add_argument("--out", default=os.path.join(REPO, "tests", "data", "model"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)  # nothing random is drawn from torch; fixed for good measure
    fmt_tiny_fixture(args.shared, args.out)
    for fx in RANDOM_FIXTURES:
        random_fixture(fx, args.out)


if __name__ == "__main__":
    main()
