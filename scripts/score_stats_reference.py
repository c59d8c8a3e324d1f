#!/usr/bin/python3
"""Independent expected values for rhead's score-map statistics, computed with numpy.

Reads the reference head_score files in ../shared/data/head_scores and writes
tests/data/analysis/score_stats_expected.json with, per file, its shape, the number of
heads above 0.1, selected head means and activation frequencies; per pair of files of
one shape, Pearson (numpy.corrcoef), Spearman (Pearson of average ranks, the ranks
counted as #smaller + (#equal + 1) / 2) and top-K overlaps; and the same statistics
on small hand-made vectors with ties.

usage: /usr/bin/python3 scripts/score_stats_reference.py [SHARED_DIR] [OUT_JSON]
"""
import itertools
import json
import pathlib
import sys

import numpy as np

FILES = ["llama-2-7b-80k", "Mistral-7B-v0.2-hf", "Qwen1.5-14B", "Qwen1.5-14B-Chat"]
KS = [10, 20, 50]


def average_ranks(values):
    values = np.asarray(values, dtype=float)
    order = np.sort(values)
    smaller = np.searchsorted(order, values, side="left")
    not_larger = np.searchsorted(order, values, side="right")
    return smaller + (not_larger - smaller + 1) / 2.0


def pearson(x, y):
    return float(np.corrcoef(np.asarray(x, float), np.asarray(y, float))[0, 1])


def spearman(x, y):
    # Means that are equal up to float summation order must tie: rank them rounded to
    # 12 decimals (rhead groups neighbours closer than 1e-12).
    return pearson(average_ranks(np.round(x, 12)), average_ranks(np.round(y, 12)))


def top_k(means, k):
    # highest first; equal means keep layer-major order (stable sort of -mean)
    return set(np.argsort(-np.asarray(means), kind="stable")[:k].tolist())


def load(path):
    raw = json.loads(path.read_text())
    keys = [tuple(map(int, k.split("-"))) for k in raw]
    n_layer = max(l for l, _ in keys) + 1
    n_head = max(h for _, h in keys) + 1
    means = np.zeros(n_layer * n_head)
    freq = np.zeros(n_layer * n_head)
    for key, scores in raw.items():
        l, h = map(int, key.split("-"))
        s = np.asarray(scores, dtype=float)
        means[l * n_head + h] = s.mean() if s.size else 0.0
        freq[l * n_head + h] = (s > 0).mean() if s.size else 0.0
    return n_layer, n_head, means, freq, max(len(v) for v in raw.values())


def main():
    repo = pathlib.Path(__file__).resolve().parent.parent
    shared = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else repo.parent / "shared"
    out = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else repo / "tests/data/analysis/score_stats_expected.json"
    maps = {}
    result = {"generator": "scripts/score_stats_reference.py (numpy " + np.__version__ + ")",
              "files": {}, "pairs": [], "vectors": []}
    for name in FILES:
        n_layer, n_head, means, freq, tests = load(shared / "data/head_scores" / f"{name}.json")
        maps[name] = (n_layer, n_head, means)
        order = np.argsort(-means, kind="stable")
        result["files"][name] = {
            "n_layer": n_layer, "n_head": n_head, "tests": tests,
            "above_0_1": int((means > 0.1).sum()),
            "zero": int((means <= 0).sum()),
            "top_heads": [{"layer": int(i // n_head), "head": int(i % n_head), "mean": float(means[i]),
                           "frequency": float(freq[i])} for i in order[:10]],
        }
    for a, b in itertools.combinations(FILES, 2):
        la, ha, ma = maps[a]
        lb, hb, mb = maps[b]
        if (la, ha) != (lb, hb):
            continue
        result["pairs"].append({
            "a": a, "b": b, "pearson": pearson(ma, mb), "spearman": spearman(ma, mb),
            "top_k": [{"k": k, "shared": len(top_k(ma, k) & top_k(mb, k)),
                       "jaccard": len(top_k(ma, k) & top_k(mb, k)) / len(top_k(ma, k) | top_k(mb, k))}
                      for k in KS],
        })
    vectors = [
        ([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]),
        ([0, 0, 0, 1, 2, 2, 3], [0, 1, 0, 0, 2, 3, 3]),
        ([0.5, -1.25, 3.0, 3.0, 0.0, 7.5], [1.0, 1.0, 2.0, -4.0, 0.25, 9.0]),
    ]
    for x, y in vectors:
        result["vectors"].append({"x": x, "y": y, "pearson": pearson(x, y), "spearman": spearman(x, y),
                                  "ranks_x": average_ranks(x).tolist()})
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
