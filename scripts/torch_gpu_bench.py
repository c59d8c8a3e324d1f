#!/usr/bin/env python3
"""The PyTorch side of scripts/gpu_check.sh's benchmarks, on the same shapes as make_bench_model.

Builds LlamaForCausalLM.from_config (random bf16 weights, on the GPU) in the Llama-2-7B (7b) or
Llama-3-8B (8b) shape and prints one "name: value" line per figure:
  - prefill tokens/s at each --prefill length with scaled_dot_product_attention (the reference
    method's flash-attention prefill), logits of the last position only;
  - decode tokens/s at --decode-context with transformers' generate (greedy): the time of
    generate(N + 1 tokens) minus generate(1 token), over N;
  - the reference method's detection step: after an SDPA prefill, eager attention with
    output_attentions=True at every decode step, plus the argmax of every head's last row;
  - peak GPU memory (torch.cuda.max_memory_allocated) of each part.

  python3 scripts/torch_gpu_bench.py --preset 7b --prefill 4096,16384,32768,51200 \
      --decode-context 32768 --decode-tokens 16
"""
import argparse
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def config_for(preset, attn):
    if preset == "7b":
        shape = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=32, vocab_size=32000, rope_theta=10000.0)
    elif preset == "8b":
        shape = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=128256, rope_theta=500000.0)
    else:
        raise SystemExit(f"unknown preset {preset}")
    return LlamaConfig(max_position_embeddings=65536, rms_norm_eps=1e-5, tie_word_embeddings=False,
                       attn_implementation=attn, **shape)


def build(preset):
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config_for(preset, "sdpa"))
    torch.set_default_dtype(torch.float32)
    return model.eval()


def set_attention(model, impl):
    try:
        model.set_attn_implementation(impl)
    except Exception:  # older transformers: the layers read the shared config at call time
        model.config._attn_implementation = impl


def sync_time():
    torch.cuda.synchronize()
    return time.perf_counter()


def forward_last(model, ids, **kw):
    try:
        return model(ids, logits_to_keep=1, **kw)
    except TypeError:
        return model(ids, num_logits_to_keep=1, **kw)


def say(name, value):
    print(f"{name}: {value}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="7b")
    ap.add_argument("--prefill", default="4096,16384,32768,51200")
    ap.add_argument("--decode-context", type=int, default=32768)
    ap.add_argument("--decode-tokens", type=int, default=16)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: prefill,generate,eager")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    t = time.perf_counter()
    model = build(a.preset)
    say("torch_version", f"{torch.__version__}")
    say("torch_build_s", f"{time.perf_counter() - t:.1f}")
    vocab = model.config.vocab_size
    gen = torch.Generator(device="cuda").manual_seed(1)

    def tokens(n):
        return torch.randint(3, vocab, (1, n), device="cuda", generator=gen)

    with torch.inference_mode():
        forward_last(model, tokens(512), use_cache=False)  # warm-up
        if "prefill" not in skip:
            for L in [int(x) for x in a.prefill.split(",") if x]:
                torch.cuda.reset_peak_memory_stats()
                ids = tokens(L)
                t0 = sync_time()
                forward_last(model, ids, use_cache=False)
                sec = sync_time() - t0
                say(f"torch_prefill_tok_s L={L}", f"{L / sec:.1f} ({sec:.3f} s, peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB)")

        ctx = tokens(a.decode_context)
        n = a.decode_tokens
        if "generate" not in skip:
            torch.cuda.reset_peak_memory_stats()
            kw = dict(do_sample=False, pad_token_id=0)
            t0 = sync_time()
            model.generate(ctx, max_new_tokens=1, min_new_tokens=1, **kw)
            t_one = sync_time() - t0
            t0 = sync_time()
            model.generate(ctx, max_new_tokens=n + 1, min_new_tokens=n + 1, **kw)
            t_all = sync_time() - t0
            per = (t_all - t_one) / n
            say(f"torch_generate_decode_tok_s ctx={a.decode_context}",
                f"{1 / per:.2f} ({1e3 * per:.2f} ms/token, peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB)")

        if "eager" not in skip:
            # The reference's detection loop: SDPA prefill, then eager attention with the full
            # attention rows returned at every decode step and each head's argmax read off them.
            torch.cuda.reset_peak_memory_stats()
            out = forward_last(model, ctx, use_cache=True)
            past = out.past_key_values
            nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            set_attention(model, "eager")
            t0 = sync_time()
            for _ in range(n):
                out = model(nxt, past_key_values=past, use_cache=True, output_attentions=True)
                past = out.past_key_values
                argmax = [att[0, :, -1].argmax(-1) for att in out.attentions]  # [n_head] per layer
                torch.stack(argmax).cpu()
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
            per = (sync_time() - t0) / n
            say(f"torch_eager_detection_step_tok_s ctx={a.decode_context}",
                f"{1 / per:.2f} ({1e3 * per:.2f} ms/step, peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB)")
            set_attention(model, "sdpa")
    return 0


if __name__ == "__main__":
    sys.exit(main())
