#!/usr/bin/env python3
"""Probe argmax agreement of one KV cache type against another (default q8_0 against f16).

For every prompt of a NIAH-shaped grid (each needle of NEEDLES inserted into the haystack at
10 depths, at each target length in words of haystack plus needle), runs `rhead attn --json` with both cache types and
compares, decode step by decode step, every (layer, query head)'s argmax position. Steps are
compared while the two runs have emitted the same tokens (after the first difference the
sequences differ and nothing is comparable); the count of such divergences is reported.

  bench/kv_type_agreement.py RHEAD MODEL NEEDLES HAYSTACK_DIR [--lengths 300,350,...]
      [--depths 10] [--steps 12] [--kv-type q8_0] [--base f16]

Prints: head-steps compared, argmax agreement, tests whose tokens diverged, and per layer.
"""
import argparse
import json
import os
import subprocess
import sys


def haystack_words(directory):
    words = []
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            words.extend(f.read().split())
    return words


def prompt_for(words, needle, question, length, depth):
    context = words[: max(0, length - len(needle.split()))]
    cut = int(len(context) * depth / 100)
    while 0 < cut < len(context) and not context[cut - 1].endswith("."):
        cut -= 1  # back to a sentence end, as the grid does
    body = " ".join(context[:cut] + needle.split() + context[cut:])
    return body + "\nQuestion: " + question + "\nAnswer:"


def attn_steps(rhead, model, prompt, steps, kv_type):
    out = subprocess.run([rhead, "attn", "-m", model, "-p", prompt, "-n", str(steps), "--json", "--kv-type", kv_type],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rhead")
    ap.add_argument("model")
    ap.add_argument("needles")
    ap.add_argument("haystack")
    # Words of haystack + needle. The defaults mirror niah-tiny's grid 300:500:5 with its 200-token
    # buffer: 100..300 tokens of context at about 3.6 tokens a word of these essays.
    ap.add_argument("--lengths", default="28,42,56,70,83")
    ap.add_argument("--depths", type=int, default=10)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--kv-type", default="q8_0")
    ap.add_argument("--base", default="f16")
    a = ap.parse_args()
    words = haystack_words(a.haystack)
    needles = [json.loads(l) for l in open(a.needles, encoding="utf-8") if l.strip()]
    lengths = [int(x) for x in a.lengths.split(",")]
    depths = [round(100 * i / (a.depths - 1)) for i in range(a.depths)] if a.depths > 1 else [50]
    compared = agree = diverged = tests = 0
    per_layer = {}
    for n in needles:
        for length in lengths:
            for depth in depths:
                p = prompt_for(words, n["needle"], n["question"], length, depth)
                base = attn_steps(a.rhead, a.model, p, a.steps, a.base)
                other = attn_steps(a.rhead, a.model, p, a.steps, a.kv_type)
                tests += 1
                for sb, so in zip(base, other):
                    for key, am in sb.items():
                        if not key.endswith(".attn.argmax"):
                            continue
                        layer = key.split(".")[1]
                        for x, y in zip(am, so[key]):
                            compared += 1
                            agree += x == y
                            c, g = per_layer.get(layer, (0, 0))
                            per_layer[layer] = (c + 1, g + (x == y))
                    if sb["token"] != so["token"]:
                        diverged += 1
                        break
    print(f"{tests} prompts, {compared} head-steps compared ({a.kv_type} against {a.base}): "
          f"argmax agreement {100.0 * agree / max(1, compared):.2f}%; {diverged} prompts whose tokens diverged")
    for layer in sorted(per_layer, key=int):
        c, g = per_layer[layer]
        print(f"  layer {layer}: {100.0 * g / c:.2f}% of {c}")


if __name__ == "__main__":
    sys.exit(main())
