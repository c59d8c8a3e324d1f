"""The rhead Python module against the rhead command and outside references.

- detect writes the same run folder (head_score.json, results) as `rhead detect` on
  niah-tiny's README grid, and its scores show the heads the model card describes;
- generate's probes equal `rhead attn --json` step by step; its text equals `rhead generate`;
- tokenize equals SentencePiece's own encoder on niah-tiny's tokenizer;
- a bad model path, a bad mask and bad options raise rhead.Error with one line;
- a run stopped by KeyboardInterrupt (from a progress callback, or Ctrl-C) resumes to the
  same results as an uninterrupted run.
"""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import rhead
from conftest import PROMPT, run_cli

# niah-tiny's README grid.
GRID = dict(lengths="300:500:5", depths=10)
# A smaller grid for the interrupt tests (3 needles x 2 lengths x 3 depths = 18 tests).
SMALL = dict(lengths="300:400:2", depths=3)
# Fields of a result line that depend on how the run went, not on the test: its timing, and the
# prompt prefix reused from the test run before it in the same process.
TIMING = ("seconds", "timing")
EXECUTION = TIMING + ("reused_tokens",)


def test_version_and_config(model):
    assert rhead.__version__.count(".") == 2
    c = model.config
    # niah-tiny's card: 3 layers, 6 query heads, 2 KV heads, head_dim 16, vocab 512, context 512.
    assert (c.family, c.layers, c.heads, c.kv_heads, c.head_dim, c.vocab, c.context) == ("llama", 3, 6, 2, 16, 512, 512)
    assert "3 layers x 6 heads" in repr(model)


def test_tokenize_matches_sentencepiece(model, niah_tiny):
    spm = pytest.importorskip("sentencepiece")
    sp = spm.SentencePieceProcessor(model_file=niah_tiny["tokenizer_model"])
    text = "The secret code of the wall is star oil nest.\nQuestion: What is it?"
    ids = model.tokenize(text)
    assert ids == [sp.bos_id()] + sp.encode(text)
    assert model.tokenize(text, add_bos=False) == sp.encode(text)
    assert model.detokenize(ids) == sp.decode(sp.encode(text))


def _attn_json(binary, gguf, prompt, n, *extra):
    out = run_cli(binary, "attn", "-m", gguf, "--device", "cpu", "-p", prompt, "-n", str(n), "--json", *extra)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_generate_probes_equal_attn(model, niah_tiny, rhead_binary):
    prompt = ("The secret code of the wall is star oil nest. Paul wrote about startups and essays for years.\n"
              "Question: What is the secret code of the wall?\nAnswer:")
    steps = _attn_json(rhead_binary, niah_tiny["gguf"], prompt, 24, "--top-k", "3")
    g = model.generate(prompt, max_new_tokens=24, top_k=3)
    p = g.probes
    L, H = model.config.layers, model.config.heads
    assert len(steps) == len(g.tokens) == p.argmax.shape[0] > 0
    assert p.argmax.shape == (len(steps), L, H) and p.topk.shape == (len(steps), L, H, 3)
    for s, step in enumerate(steps):
        assert step["token"] == g.tokens[s]
        assert step["position"] == p.positions[s]
        for l in range(L):
            k = f"blocks.{l}.attn."
            assert step[k + "argmax"] == p.argmax[s, l].tolist()
            assert step[k + "argmax_token"] == p.argmax_token[s, l].tolist()
            assert step[k + "copy"] == p.copy[s, l].tolist()
            np.testing.assert_array_equal(np.float32(step[k + "argmax_weight"]), p.argmax_weight[s, l])
            np.testing.assert_array_equal(np.float32(step[k + "sink_mass"]), p.sink_mass[s, l])
            assert step[k + "topk"] == p.topk[s, l].tolist()
            np.testing.assert_array_equal(np.float32(step[k + "topk_weight"]), p.topk_weight[s, l])
    # The model restates the needle: the layer-2 heads copy it.
    assert "star oil nest" in g.text
    assert p.copy[:, 2, :].any() and not g.masked.any() and g.kv_full.all()
    # The text is the one `rhead generate` prints after the prompt.
    cli = run_cli(rhead_binary, "generate", "-m", niah_tiny["gguf"], "--device", "cpu", "-p", prompt, "-n", "24")
    assert cli == model.detokenize(g.prompt_tokens) + g.text + "\n"


def test_generate_mask_and_kv_policy_equal_attn(model, niah_tiny, rhead_binary):
    prompt = "The secret code of the wall is star oil nest. Some filler text here.\nQuestion: What is the secret code of the wall?\nAnswer:"
    args = ("--mask", "heads:2-0,2-3", "--mask-phase", "all", "--kv-window", "16", "--kv-full", "kv:2-1")
    steps = _attn_json(rhead_binary, niah_tiny["gguf"], prompt, 6, *args)
    g = model.generate(prompt, max_new_tokens=6, mask="heads:2-0,2-3", mask_phase="all", kv_window=16,
                       kv_full="kv:2-1")
    assert [s["token"] for s in steps] == g.tokens
    for s, step in enumerate(steps):
        for l in range(3):
            k = f"blocks.{l}.attn."
            assert step[k + "argmax"] == g.probes.argmax[s, l].tolist()
            assert step[k + "masked"] == g.masked[l].tolist()
            assert step[k + "kv_full"] == g.kv_full[l].tolist()
            assert step[k + "copy"] == g.probes.copy[s, l].tolist()
    assert g.masked[2, 0] and g.masked[2, 3] and g.masked.sum() == 2
    assert g.kv_full[2, 3:].all() and not g.kv_full[:2].any()


def test_generate_reports_kv_bytes_held(model):
    # niah-tiny: 3 layers x 2 KV heads, head_dim 16 (f16 rows of 32 bytes), context 512.
    c = model.config
    row = 2 * c.head_dim
    g = model.generate("Hello", max_new_tokens=2, probes=False)
    assert g.kv_bytes_held == 2 * c.layers * c.kv_heads * c.context * row  # the whole cache: K and V
    # Under a KV policy the compacted cache of ops/kv_cache.h: past 256 tokens the full KV head
    # 2-1 holds 512 rows (steps of 256), each windowed one its sink + window + prefill chunk
    # (4 + 16 + 256).
    prompt = "Some filler text here. " * 22
    n = len(model.tokenize(prompt))
    assert 276 < n and n + 4 < c.context
    g = model.generate(prompt, max_new_tokens=4, probes=False, kv_window=16, kv_sink=4, kv_full="kv:2-1")
    assert g.kv_bytes_held == 2 * (512 + (c.layers * c.kv_heads - 1) * (4 + 16 + 256)) * row


def test_bad_model_path_raises_one_line():
    with pytest.raises(rhead.Error) as e:
        rhead.load("/nonexistent/model.gguf")
    msg = str(e.value)
    assert "/nonexistent/model.gguf" in msg and "\n" not in msg
    with pytest.raises(rhead.Error, match="device"):
        rhead.load("builtin:induction", device="tpu")


@pytest.mark.parametrize("mask, words", [("heads:7-0", "7-0"), ("bogus:3", "bogus:3"), ("top:2", "scores")])
def test_bad_mask_raises_one_line(model, mask, words):
    with pytest.raises(rhead.Error) as e:
        model.generate("Hello", max_new_tokens=2, mask=mask)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_bad_options_raise(model, tmp_path):
    with pytest.raises(rhead.Error, match="mask mode"):
        model.generate("Hello", mask="heads:0-0", mask_mode="half")
    with pytest.raises(rhead.Error, match="kv-full|kv_full|bogus"):
        model.generate("Hello", kv_window=8, kv_full="bogus")
    with pytest.raises(rhead.Error, match="lengths"):
        rhead.detect(model, out=str(tmp_path / "r"), lengths="300", progress=False)
    with pytest.raises(rhead.Error, match="results.jsonl"):
        rhead.read_run(str(tmp_path))
    with pytest.raises(rhead.Error, match="token id"):
        model.detokenize([100000])


def _lines_without_timing(run_dir, ignore=TIMING):
    out = {}
    for line in rhead.read_run(run_dir, frame=False):
        out[line["test_id"]] = {k: v for k, v in line.items() if k not in ignore}
    return out


def _json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def detect_runs(model, niah_tiny, rhead_binary, tmp_path_factory):
    """The README grid run by the command and by the module."""
    base = tmp_path_factory.mktemp("detect")
    cli_dir, py_dir = str(base / "cli"), str(base / "py")
    run_cli(rhead_binary, "detect", "-m", niah_tiny["gguf"], "--device", "cpu", "--needles", niah_tiny["needles"],
            "--haystack", niah_tiny["haystack"], "--prompt-template", PROMPT, "--lengths", GRID["lengths"],
            "--depths", str(GRID["depths"]), "-q", "-o", cli_dir)
    scores = rhead.detect(model, needles=niah_tiny["needles"], haystack=niah_tiny["haystack"], prompt_template=PROMPT,
                          out=py_dir, progress=False, **GRID)
    return cli_dir, py_dir, scores


def test_detect_equals_cli(detect_runs):
    cli_dir, py_dir, scores = detect_runs
    assert _json(os.path.join(py_dir, "head_score.json")) == _json(os.path.join(cli_dir, "head_score.json"))
    assert _lines_without_timing(py_dir) == _lines_without_timing(cli_dir)
    assert len(_lines_without_timing(py_dir)) == 150
    # The same run record: either front end resumes the other's folder.
    assert _json(os.path.join(py_dir, "run.json"))["settings"] == _json(os.path.join(cli_dir, "run.json"))["settings"]
    # The returned scores are the folder's.
    ref = _json(os.path.join(cli_dir, "head_score.json"))
    for name, values in ref.items():
        assert scores.mean[name] == pytest.approx(np.mean(values) if values else 0.0)
        l, h = map(int, name.split("-"))
        np.testing.assert_allclose(scores.per_test[:, l, h], values)
    # niah-tiny's card: every layer-2 head is a retrieval head (about 0.35 to 1.0), layers 0-1 score 0.
    assert all(scores.grid[2] > 0.3) and not scores.grid[:2].any()
    assert set(scores.top(6)) == {f"2-{h}" for h in range(6)}
    assert scores.summary["tests"] == 150


def test_read_run(detect_runs):
    _, py_dir, _ = detect_runs
    lines = rhead.read_run(py_dir, frame=False)
    assert len(lines) == 150 and all(isinstance(l, dict) for l in lines)
    assert {"test_id", "length", "depth", "rouge_recall", "head_scores"} <= set(lines[0])
    try:
        import pandas  # noqa: F401 (only whether it is installed)
    except ImportError:
        assert isinstance(rhead.read_run(py_dir), list)
    else:
        df = rhead.read_run(py_dir)
        assert len(df) == 150 and list(df["test_id"]) == [l["test_id"] for l in lines]


def _small_detect(model, niah_tiny, out, **kw):
    return rhead.detect(model, needles=niah_tiny["needles"], haystack=niah_tiny["haystack"], prompt_template=PROMPT,
                        out=out, **SMALL, **kw)


def test_interrupt_then_resume(model, niah_tiny, tmp_path):
    whole = str(tmp_path / "whole")
    _small_detect(model, niah_tiny, whole, progress=False)
    cut = str(tmp_path / "cut")
    seen = []

    def stop_after_five(done, total, line):
        seen.append(line["test_id"])
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _small_detect(model, niah_tiny, cut, progress=stop_after_five)
    # Five tests are on disk, nothing was summarized, and the rest resumes.
    assert [l["test_id"] for l in rhead.read_run(cut, frame=False)] == seen
    assert len(seen) == 5 and not os.path.exists(os.path.join(cut, "head_score.json"))
    rest = []
    scores = _small_detect(model, niah_tiny, cut, progress=lambda d, t, line: rest.append(line["test_id"]))
    assert len(rest) == 13 and not set(rest) & set(seen)
    assert _json(os.path.join(cut, "head_score.json")) == _json(os.path.join(whole, "head_score.json"))
    assert _lines_without_timing(cut, EXECUTION) == _lines_without_timing(whole, EXECUTION)
    assert scores.mean == rhead.read_scores(whole).mean


CTRL_C_SCRIPT = """
import sys, rhead
m = rhead.load(sys.argv[1], device="cpu", threads=1)
print("loaded", flush=True)
rhead.detect(m, needles=sys.argv[2], haystack=sys.argv[3], prompt_template=sys.argv[4], out=sys.argv[5],
             lengths="300:500:5", depths=10, progress=True)
"""


def test_ctrl_c_stops_cleanly(model, niah_tiny, detect_runs, tmp_path):
    out = str(tmp_path / "run")
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT, niah_tiny["gguf"], niah_tiny["needles"],
                             niah_tiny["haystack"], PROMPT, out], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    results = os.path.join(out, "results.jsonl")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(results) and os.path.getsize(results) > 0:
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before it could be interrupted: " + proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err and "terminate" not in err, err
    done = rhead.read_run(out, frame=False)
    assert 1 <= len(done) < 150
    # The folder resumes to the whole grid, with the command's scores.
    scores = rhead.detect(model, needles=niah_tiny["needles"], haystack=niah_tiny["haystack"], prompt_template=PROMPT,
                          out=out, progress=False, **GRID)
    assert len(rhead.read_run(out, frame=False)) == 150
    cli_dir, _, _ = detect_runs
    assert scores.mean == rhead.read_scores(cli_dir).mean


def test_niah_equals_cli(model, niah_tiny, rhead_binary, detect_runs, tmp_path):
    _, py_scores, _ = detect_runs
    common = dict(lengths="300:400:2", depths=3, mask="top:2", kv_window=32, kv_full="kv:2-0")
    cli_dir, py_dir = str(tmp_path / "cli"), str(tmp_path / "py")
    run_cli(rhead_binary, "niah", "-m", niah_tiny["gguf"], "--device", "cpu", "--needles", niah_tiny["needles"],
            "--haystack", niah_tiny["haystack"], "--prompt-template", PROMPT, "--lengths", common["lengths"],
            "--depths", "3", "--mask", "top:2", "--scores", py_scores, "--kv-window", "32",
            "--kv-full", "kv:2-0", "-q", "-o", cli_dir)
    summary = rhead.niah(model, needles=niah_tiny["needles"], haystack=niah_tiny["haystack"], prompt_template=PROMPT,
                         scores=py_scores, out=py_dir, progress=False, **common)
    assert _lines_without_timing(py_dir) == _lines_without_timing(cli_dir)
    cli_summary = _json(os.path.join(cli_dir, "summary.json"))
    for s in (summary, cli_summary):
        s.pop("prefilled_tokens", None)
    assert summary == cli_summary
    # One condition: the top two heads masked under the KV policy, over the 18 tests.
    assert len(summary["masks"]) == 1 and summary["masks"][0]["tests"] == 18


def test_explain_equals_cli(model, niah_tiny, rhead_binary, detect_runs, tmp_path):
    _, py_scores, _ = detect_runs
    doc = ("Paul wrote many essays about startups. The secret code of the wall is star oil nest. "
           "He also wrote about programming languages and painting.")
    path = tmp_path / "doc.txt"
    path.write_text(doc)
    html = tmp_path / "page.html"
    question = "What is the secret code of the wall?"
    cli = json.loads(run_cli(rhead_binary, "explain", "-m", niah_tiny["gguf"], "--device", "cpu", "--scores", py_scores,
                             "--context", str(path), "--question", question, "--prompt-template", PROMPT, "--json"))
    e = model.explain(doc, question, scores=py_scores, prompt_template=PROMPT, context_file=str(path), html=str(html))
    assert e == cli
    assert "star oil nest" in e["answer"] and e["support_share"] > 0
    assert html.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(rhead.Error, match="question is empty"):
        model.explain(doc, "  ", scores=py_scores)


def test_generate_releases_the_gil(model):
    """Another Python thread runs during a generation: some of its steps fall in the middle
    half of the call (while the call held the GIL, none could)."""
    import threading
    window = {}

    def work():
        window["start"] = time.perf_counter()
        window["g"] = model.generate("Paul wrote", max_new_tokens=400, probes=True, stop_at_eos=False)
        window["end"] = time.perf_counter()

    stamps = []
    t = threading.Thread(target=work)
    t.start()
    while t.is_alive():
        stamps.append(time.perf_counter())
    t.join()
    assert len(window["g"].tokens) == 400
    quarter = (window["end"] - window["start"]) / 4
    assert any(window["start"] + quarter < x < window["end"] - quarter for x in stamps)


def test_detect_methods_equal_cli(model, niah_tiny, rhead_binary, tmp_path):
    """methods= is --methods: the same per-method score files, the same agreement table."""
    small = dict(lengths="300:500:2", depths=2)
    cli_dir, py_dir = str(tmp_path / "cli"), str(tmp_path / "py")
    run_cli(rhead_binary, "detect", "-m", niah_tiny["gguf"], "--device", "cpu", "--needles", niah_tiny["needles"],
            "--haystack", niah_tiny["haystack"], "--prompt-template", PROMPT, "--lengths", small["lengths"],
            "--depths", str(small["depths"]), "--methods", "copy,lookback", "-q", "-o", cli_dir)
    rhead.detect(model, needles=niah_tiny["needles"], haystack=niah_tiny["haystack"], prompt_template=PROMPT,
                 out=py_dir, progress=False, methods="copy,lookback", **small)
    for name in ("head_score.json", "head_score.lookback.json"):
        assert _json(os.path.join(py_dir, name)) == _json(os.path.join(cli_dir, name)), name
    assert _json(os.path.join(py_dir, "summary.json"))["methods"] == _json(os.path.join(cli_dir, "summary.json"))["methods"]
    assert rhead.read_scores(os.path.join(py_dir, "head_score.lookback.json")).grid.shape == (3, 6)
    with pytest.raises(rhead.Error, match="methods"):
        rhead.detect(model, out=str(tmp_path / "bad"), progress=False, methods="copy,telepathy", **small)
    assert not os.path.exists(str(tmp_path / "bad"))
