#!/usr/bin/env python3
"""Builds the seed corpora of the fuzz targets (fuzz/fuzz_*.cpp) from the fixtures under the
shared data folder. Large fixtures are cut down to small files that still parse, so that
mutations reach the parsers' logic instead of megabytes of weights or vocabulary.

usage: fuzz_seeds.py SHARED_DIR OUT_DIR     (writes OUT_DIR/<target>/seed_*)
"""
import json
import os
import struct
import sys


def write(out, target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- GGUF: the header, metadata and tensor table (everything before the data section) ----

def gguf_table_end(b):
    pos = 8
    n_tensors, n_kv = struct.unpack_from("<QQ", b, pos)
    pos += 16
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip_value(pos, t):
        if t in sizes:
            return pos + sizes[t]
        if t == 8:
            (n,) = struct.unpack_from("<Q", b, pos)
            return pos + 8 + n
        if t == 9:
            et, n = struct.unpack_from("<IQ", b, pos)
            pos += 12
            if et in sizes:
                return pos + sizes[et] * n
            for _ in range(n):
                pos = skip_value(pos, et)
            return pos
        raise ValueError("unknown GGUF type %d" % t)

    for _ in range(n_kv):
        (n,) = struct.unpack_from("<Q", b, pos)
        pos += 8 + n
        (t,) = struct.unpack_from("<I", b, pos)
        pos = skip_value(pos + 4, t)
    for _ in range(n_tensors):
        (n,) = struct.unpack_from("<Q", b, pos)
        pos += 8 + n
        (nd,) = struct.unpack_from("<I", b, pos)
        pos += 4 + 8 * nd + 4 + 8
    return pos


def gguf_seeds(shared, out):
    models = os.path.join(shared, "models")
    for rel in ["niah-tiny/niah-tiny-q8_0.gguf", "fmt-tiny/fmt-tiny-f16.gguf", "stories260K/stories260K.gguf"]:
        path = os.path.join(models, rel)
        if not os.path.exists(path):
            continue
        b = read(path)
        name = os.path.basename(rel)
        write(out, "fuzz_gguf", "table_" + name, b[: gguf_table_end(b)])
        if len(b) < 600_000:
            write(out, "fuzz_gguf", "whole_" + name, b)
    vocab_dir = os.path.join(shared, "data", "tokenizers", "llama_cpp_vocab")
    if os.path.isdir(vocab_dir):
        ggufs = sorted((os.path.getsize(os.path.join(vocab_dir, f)), f) for f in os.listdir(vocab_dir)
                       if f.endswith(".gguf"))
        for _, f in ggufs[:1]:  # the smallest vocabulary-only file
            write(out, "fuzz_gguf", "vocab_" + f, read(os.path.join(vocab_dir, f)))


# ---- safetensors + config.json: config, NUL, safetensors ----

def safetensors_seeds(shared, out):
    for rel in ["niah-tiny/hf-bf16", "fmt-tiny/hf-bf16"]:
        d = os.path.join(shared, "models", rel)
        if not os.path.isdir(d):
            continue
        config = read(os.path.join(d, "config.json"))
        st = read(os.path.join(d, "model.safetensors"))
        (n,) = struct.unpack_from("<Q", st, 0)
        tag = rel.replace("/", "_")
        write(out, "fuzz_safetensors", "header_" + tag, config + b"\0" + st[: 8 + n])
        if len(st) < 1_000_000:
            write(out, "fuzz_safetensors", "whole_" + tag, config + b"\0" + st)
        write(out, "fuzz_safetensors", "config_only_" + tag, config)


# ---- llama2.c checkpoint ----

def llama2c_seeds(shared, out):
    path = os.path.join(shared, "models", "stories260K", "stories260K.bin")
    if os.path.exists(path):
        b = read(path)
        write(out, "fuzz_llama2c", "header", b[:28])
        write(out, "fuzz_llama2c", "whole", b)
    tok = os.path.join(shared, "models", "stories260K", "tok512.bin")
    if os.path.exists(tok):
        write(out, "fuzz_llama2c", "tok512", read(tok))


# ---- tokenizer.json: the first few hundred vocab entries and the merges among them ----

def small_tokenizer_json(doc, keep):
    model = doc["model"]
    vocab = {t: i for t, i in model["vocab"].items() if i < keep}
    merges = []
    for m in model.get("merges", []):
        a, b = (m.split(" ", 1) if isinstance(m, str) else m)
        if a in vocab and b in vocab and (a + b) in vocab:
            merges.append(m)
    small = dict(doc)
    small["model"] = dict(model, vocab=vocab, merges=merges)
    small["added_tokens"] = [dict(t, id=keep + k) for k, t in enumerate(doc.get("added_tokens", [])[:8])]
    return small


def tokenizer_json_seeds(shared, out):
    base = os.path.join(shared, "data", "tokenizers")
    for name in ["hf_llama2", "hf_llama3", "hf_qwen3"]:
        path = os.path.join(base, name, "tokenizer.json")
        if not os.path.exists(path):
            continue
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        write(out, "fuzz_tokenizer_json", name, json.dumps(small_tokenizer_json(doc, 400), ensure_ascii=False))


def tokenizer_model_seeds(shared, out):
    for rel in ["models/niah-tiny/hf-bf16/tokenizer.model", "models/stories260K/tok512.model"]:
        path = os.path.join(shared, rel)
        if os.path.exists(path):
            write(out, "fuzz_tokenizer_model", rel.replace("/", "_"), read(path))
            break


# ---- needles JSONL, head_score JSON, result lines ----

def text_seeds(shared, out):
    for rel in ["data/needles/detect_needles.jsonl", "models/niah-tiny/needles.jsonl"]:
        path = os.path.join(shared, rel)
        if os.path.exists(path):
            write(out, "fuzz_needles", rel.replace("/", "_"), read(path))
    hs = os.path.join(shared, "data", "head_scores", "llama-2-7b-80k.json")
    if os.path.exists(hs):
        with open(hs) as f:
            doc = json.load(f)
        small = {f"{l}-{h}": doc[f"{l}-{h}"][:6] for l in range(4) for h in range(4)}
        write(out, "fuzz_head_score", "llama2_4x4", json.dumps(small))
        # Result lines in rhead's results.jsonl shape, with scores from the same file.
        lines = []
        for t in range(3):
            scores = {k: v[t] for k, v in small.items()}
            lines.append(json.dumps({
                "test_id": f"n0-L1000-d{t * 50}", "needle_id": 0, "length": 1000, "depth": t * 50,
                "needle_span": [400, 420], "answer": "eat a sandwich", "rouge_recall": 0.8, "counted": True,
                "head_scores": scores, "seconds": 1.5, "prompt_tokens": 1000, "generated_tokens": 12,
                "timing": {"prefill": 1.0, "decode": 0.4, "scoring": 0.1}}))
        write(out, "fuzz_result_lines", "detect_3_lines", "\n".join(lines) + "\n")


# ---- head policy, run directory, qa and cot items (hand-made: no fixture holds them) ----

def hand_made_seeds(shared, out):
    policy = {"format": "rhead-head-policy", "version": 1,
              "model": {"source": "m.gguf", "n_layer": 4, "n_head": 8, "n_kv_head": 4, "head_dim": 16},
              "window": 64, "sink": 4, "length": 1024, "budget": 0.25, "kv_dtype": "f16",
              "full_kv_heads": [{"layer": 1, "kv_head": 2, "query_heads": [4, 5], "score": 0.5}],
              "full_query_heads": ["1-4", "1-5"]}
    write(out, "fuzz_head_policy", "plan", json.dumps(policy, indent=2))
    run = {"kind": "niah", "settings": {"fingerprint": {"model": "m"}, "shard": "0/1"}, "n_layer": 2, "n_head": 2,
           "grid": {"keys": 3, "digest": "0000000000000000"}}
    lines = [json.dumps({"test_id": k, "score": 100.0, "seconds": 0.5}) for k in ["a", "c"]]
    write(out, "fuzz_run_dir", "two_lines", json.dumps(run) + "\0" + "\n".join(lines) + "\n" + '{"test_id": "b", "sc')
    write(out, "fuzz_task_data", "qa", json.dumps({"id": "q1", "context": "Paris is in France.",
                                                    "question": "Where is Paris?", "answers": ["France"]}) + "\n")
    write(out, "fuzz_task_data", "cot", json.dumps({"id": "c1", "question": "What is 3 + 4?",
                                                     "answer": "3 + 4 = <<3+4=7>>7.\n#### 7"}) + "\n")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    shared, out = sys.argv[1], sys.argv[2]
    if not os.path.isdir(shared):
        sys.exit(f"{shared}: shared data folder not found")
    for build in [gguf_seeds, safetensors_seeds, llama2c_seeds, tokenizer_json_seeds, tokenizer_model_seeds,
                  text_seeds, hand_made_seeds]:
        build(shared, out)


if __name__ == "__main__":
    main()
