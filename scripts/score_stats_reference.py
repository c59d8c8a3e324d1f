#!/usr/bin/python3
"""Independent expected values for rhead's score-map statistics, computed with numpy.

Reads the reference head_score files in ../shared/data/head_scores and writes
tests/data/analysis/score_stats_expected.json with, per file, its shape, the number of
heads above 0.1, selected head means and activation frequencies; per pair of files of
one shape, Pearson (numpy.corrcoef), Spearman (Pearson of average ranks, the ranks
counted as #smaller + (#equal + 1) / 2) and top-K overlaps; and the same statistics
on small hand-made vectors with ties.

usage: /usr/bin/python3 scripts/score_stats_reference.py [SHARED_DIR] [OUT_JSON]

With `head-stats [OUT_JSON]` it writes tests/data/analysis/head_stats_expected.json instead:
a small made-up score map with the needle set and length of each test, and the two-way
cluster bootstrap of docs/head_stats.md computed on it with numpy (weights as a matrix
product, numpy.percentile, top-K by a lexicographic sort, Jaccard from set-membership
products; heads tied with the K-th score share its remaining places); the resampling plan is
the same splitmix64 stream rhead draws from, so both sides resample the same clusters. It adds
each head's prediction interval for the mean of a grid of as many other needle sets (the mean
of the per-set means -/+ t x sqrt(max(their variance, the mean sampling variance of a set's
mean) x (1/G + 1/G)), the low end raised to 0 where below),
with the Student t quantile found by integrating the t density numerically (Simpson's rule,
math.gamma for the constant) and bisecting, and a table of t quantiles for rhead's series.
"""
import itertools
import json
import math
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


MASK64 = (1 << 64) - 1


def splitmix64(seed):
    state = seed & MASK64
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        yield z ^ (z >> 31)


def bootstrap_plan(n_needles, n_lengths, replicates, seed):
    rng = splitmix64(seed)
    needles = np.zeros((replicates, n_needles), dtype=np.int64)
    lengths = np.zeros((replicates, n_lengths), dtype=np.int64)
    for b in range(replicates):
        for i in range(n_needles):
            needles[b, i] = next(rng) % n_needles
        for i in range(n_lengths):
            lengths[b, i] = next(rng) % n_lengths
    return needles, lengths


def t_cdf_above_half(x, df):
    """P(0 < T < x) by Simpson's rule on the density over [0, x]."""
    const = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2))
    t = np.linspace(0.0, x, 40001)
    f = const * (1 + t * t / df) ** (-(df + 1) / 2)
    h = x / 40000
    return h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())


def t_quantile(p, df):
    """x with P(T <= x) = p, for p > 1/2: bisection on the integrated density."""
    lo, hi = 0.0, 1.0
    while 0.5 + t_cdf_above_half(hi, df) < p:
        hi *= 2
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 0.5 + t_cdf_above_half(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def head_stats_reference(out):
    rng = np.random.default_rng(7)
    n_layer, n_head = 2, 4
    n_heads = n_layer * n_head
    needle_labels, length_labels = [0, 1, 2], [300, 350, 400, 450]
    tests = [(n, l) for n in needle_labels for l in length_labels for _ in range(3)]
    keep = rng.random(len(tests)) < 0.7  # the counted tests
    tests = [t for t, k in zip(tests, keep) if k]
    scores = np.zeros((n_heads, len(tests)))
    for h in range(n_heads):
        if h in (0, 1):
            continue  # never copies
        fires = rng.random(len(tests)) < [0, 0, 0.2, 0.5, 0.9, 0.9, 0.6, 0.3][h]
        scores[h] = np.where(fires, np.round(rng.random(len(tests)), 3), 0.0)
    scores[6] = scores[5]  # an exact tie: broken by index on both sides
    # A needle-set effect: head 7 copies 0.9 in every test of set 0, so its set means differ more
    # than their sampling variance explains (the between-set term of the prediction interval).
    scores[7, [n == 0 for n, _ in tests]] = 0.9
    replicates, seed, level = 400, 11, 0.95
    ks = [("5", 5), ("10", 8), ("20", 8), ("5%", 1)]

    needle_idx = np.array([needle_labels.index(n) for n, _ in tests])
    length_idx = np.array([length_labels.index(l) for _, l in tests])
    plan_n, plan_l = bootstrap_plan(len(needle_labels), len(length_labels), replicates, seed)
    count_n = np.stack([np.bincount(r, minlength=len(needle_labels)) for r in plan_n]).astype(float)
    count_l = np.stack([np.bincount(r, minlength=len(length_labels)) for r in plan_l]).astype(float)
    weights = count_n[:, needle_idx] * count_l[:, length_idx]  # [replicate, test]
    total = weights.sum(axis=1)
    valid = total > 0
    means = (weights[valid] @ scores.T) / total[valid, None]  # [valid replicate, head]
    point = scores.mean(axis=1)
    lo, hi = np.percentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2], axis=0)
    # Prediction interval for the mean of G other needle sets: each set's mean is one observation;
    # its variance is the larger of the between-set variance and the mean sampling variance of a
    # set's mean (per set: variance of its scores over its tests, sets with two tests or more).
    sets = sorted(set(needle_idx.tolist()))
    set_means = np.stack([scores[:, needle_idx == g].mean(axis=1) for g in sets], axis=1)  # [head, set]
    sampling = np.stack([scores[:, needle_idx == g].var(axis=1, ddof=1) / (needle_idx == g).sum()
                         for g in sets if (needle_idx == g).sum() >= 2], axis=1).mean(axis=1)
    g = len(sets)
    t_pred = t_quantile((1 + level) / 2, g - 1)
    var = np.maximum(set_means.var(axis=1, ddof=1), sampling)
    half = t_pred * np.sqrt(var * (1 / g + 1 / g))
    pred_lo = np.maximum(set_means.mean(axis=1) - half, 0)
    pred_hi = set_means.mean(axis=1) + half
    p_top, jac = {}, {}
    index = np.arange(n_heads)
    for label, k in ks:
        member = np.zeros(means.shape, dtype=bool)
        share = np.zeros(means.shape)
        for b, m in enumerate(means):
            order = [i for i in np.lexsort((index, -m)) if m[i] > 0][:k]
            member[b, order] = True
            if order:
                last = m[order].min()
                above, tied = (m > last).sum(), ((m == last) & (m > 0)).sum()
                share[b] = np.where(m > last, 1.0, np.where((m == last) & (m > 0), (len(order) - above) / tied, 0.0))
        p_top[label] = share.mean(axis=0)
        inter = member.astype(float) @ member.T.astype(float)
        size = member.sum(axis=1).astype(float)
        union = size[:, None] + size[None, :] - inter
        pair = np.where(union > 0, inter / np.where(union > 0, union, 1), 1.0)
        upper = np.triu_indices(len(means), 1)
        jac[label] = float(pair[upper].mean())
    result = {
        "generator": "scripts/score_stats_reference.py head-stats (numpy " + np.__version__ + ")",
        "n_layer": n_layer, "n_head": n_head, "replicates": replicates, "seed": seed, "level": level,
        "tests": [{"needle": n, "length": l} for n, l in tests],
        "scores": {f"{h // n_head}-{h % n_head}": scores[h].tolist() for h in range(n_heads)},
        "plan_head": {"needles": plan_n[:3].tolist(), "lengths": plan_l[:3].tolist()},
        "top_k": [{"label": label, "k": k} for label, k in ks],
        "valid_replicates": int(valid.sum()),
        "expected_jaccard": jac,
        "prediction": {"needle_sets": g, "t": t_pred},
        "t_quantiles": [{"p": p, "df": df, "t": t_quantile(p, df)}
                        for p, df in [(0.975, 1), (0.975, 2), (0.975, 3), (0.975, 4), (0.975, 10), (0.975, 29),
                                      (0.95, 1), (0.95, 7), (0.995, 2), (0.995, 30), (0.9, 5), (0.6, 3)]],
        "heads": [{"head": f"{h // n_head}-{h % n_head}", "mean": float(point[h]),
                   "frequency": float((scores[h] > 0).mean()), "ci_low": float(lo[h]), "ci_high": float(hi[h]),
                   "predict_low": float(pred_lo[h]), "predict_high": float(pred_hi[h]),
                   "p_top": {label: float(p_top[label][h]) for label, _ in ks}} for h in range(n_heads)],
    }
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "head-stats":
        repo = pathlib.Path(__file__).resolve().parent.parent
        head_stats_reference(pathlib.Path(sys.argv[2]) if len(sys.argv) > 2
                             else repo / "tests/data/analysis/head_stats_expected.json")
    else:
        main()
