#!/usr/bin/env python3
"""Reference logits from Hugging Face transformers' own modeling code, for every family.

    python3 scripts/hf_reference.py [OUT_DIR]        (default OUT_DIR: tests/data/model/hf)

Needs torch, numpy and transformers (no network). For each random fixture of
scripts/torch_reference.py (same configs, same seeds, same splitmix64 weights, drawn with
numpy, nothing from torch's RNG) it:
  1. writes a checkpoint the way the hub holds them: the config through AutoConfig.for_model
     and save_pretrained (transformers' own config.json), the generated weights under their
     HF names in model.safetensors;
  2. loads it with AutoModelForCausalLM.from_pretrained (eager attention; a tensor name the
     modeling code does not know, or one it expects and does not get, is an error), converts
     it to float64 and runs the fixture's tokens in one forward pass;
  3. writes OUT_DIR/<name>.json: the fixture config, the config.json that transformers wrote
     ("hf_config"), versions, tokens, and the logits at every position.
It also prints each model's max |logit difference| against the float64 reference written
from the equations (torch_reference.forward), a check of both sides.
rhead's test tests/model/test_hf_reference.cpp reads these files when they are committed:
it writes "hf_config" with the same random weights, loads it with rhead and compares.
The checkpoints are written under OUT_DIR/checkpoints/ and removed at the end (--keep keeps them).
"""

import argparse
import json
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_reference as ref  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = ["random_mixtral", "random_qwen3", "random_qwen3moe", "random_gemma2", "random_phi3",
            "random_phi3_short", "random_mistral", "random_qwen2", "random_llama3", "random_linear"]


def hf_config_dict(cfg):
    """The fixture config as AutoConfig.for_model takes it."""
    d = {k: v for k, v in cfg.items() if k not in ("architectures", "torch_dtype", "model_type")}
    # Some configs default pad_token_id to an id of the full vocabulary (Phi-3: 32000), which
    # the tiny random vocabularies do not have; transformers then refuses the embedding.
    d.setdefault("pad_token_id", None)
    return d


def run_fixture(fx, out_dir, ckpt_root):
    import transformers
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    name, cfg, seed = fx["name"], fx["config"], fx["seed"]
    ckpt = os.path.join(ckpt_root, name)
    os.makedirs(ckpt, exist_ok=True)
    # The checkpoint as the hub holds them: transformers' config.json, per-tensor safetensors.
    config = AutoConfig.for_model(cfg["model_type"], **hf_config_dict(cfg))
    config.save_pretrained(ckpt)
    weights = ref.random_weights(cfg, seed)
    save_file({k: v.contiguous() for k, v in weights.items()}, os.path.join(ckpt, "model.safetensors"),
              metadata={"format": "pt"})
    model, info = AutoModelForCausalLM.from_pretrained(ckpt, attn_implementation="eager", output_loading_info=True)
    tied = getattr(config, "tie_word_embeddings", False)
    problems = {k: [n for n in v if not (tied and n == "lm_head.weight")] for k, v in info.items()
                if k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems = {k: v for k, v in problems.items() if v}
    if problems:
        raise RuntimeError("weights do not fit %s: %s" % (type(model).__name__, problems))
    # Float64 everywhere, except MoE: transformers' grouped expert matmul takes no doubles.
    moe = "num_local_experts" in cfg or "num_experts" in cfg
    model = (model.float() if moe else model.double()).eval()
    tokens = ref.random_tokens(seed, fx["n_tokens"], cfg["vocab_size"])
    with torch.no_grad():
        logits = model(torch.tensor([tokens]), use_cache=False).logits[0].to(torch.float64)
        ours = ref.forward(cfg, weights, tokens)
    with open(os.path.join(ckpt, "config.json")) as fh:
        saved_config = json.load(fh)
    payload = {
        "name": name,
        "seed": seed,
        "config": cfg,
        "hf_config": saved_config,
        "hf_class": type(model).__name__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "tokens": tokens,
    }
    ref.write_fixture(os.path.join(out_dir, name + ".json"), payload, logits, list(range(len(tokens))))
    diff = float((logits - ours).abs().max())
    print("%-18s %-24s max |HF - equations| = %.3g" % (name, type(model).__name__, diff))
    return diff


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", nargs="?", default=os.path.join(REPO, "tests", "data", "model", "hf"))
    ap.add_argument("--only", nargs="*", help="fixture names (default: all)")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoints")
    args = ap.parse_args()
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    os.makedirs(args.out, exist_ok=True)
    ckpt_root = os.path.join(args.out, "checkpoints")
    fixtures = {fx["name"]: fx for fx in ref.RANDOM_FIXTURES}
    worst = 0.0
    failed = []
    for name in args.only or FAMILIES:
        try:
            worst = max(worst, run_fixture(fixtures[name], args.out, ckpt_root))
        except Exception as e:  # one family failing (e.g. an older transformers) keeps the others
            failed.append(name)
            print("%s: FAILED: %s: %s" % (name, type(e).__name__, e))
    if not args.keep:
        shutil.rmtree(ckpt_root, ignore_errors=True)
    print("worst max |HF - equations| = %.3g; failed: %s" % (worst, failed or "none"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
