// Tokenizer throughput: encodes 1 MB of English text (the haystack essays, repeated) with
// each tokenizer family and reports MB/s. The target is 1 MB in under a second on one core.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "io/mapped_file.h"
#include "tokenizer/tokenizer.h"

namespace {

const std::string kShared = RHEAD_SHARED_DIR;

// The essays, concatenated and repeated, cut to exactly 1 MB at a character boundary.
const std::string& english_megabyte() {
  static const std::string text = [] {
    std::vector<std::string> paths;
    const std::string dir = kShared + "/data/haystack/paul_graham_essays";
    if (std::filesystem::is_directory(dir))
      for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().extension() == ".txt") paths.push_back(e.path().string());
    std::sort(paths.begin(), paths.end());
    std::string all;
    for (const auto& p : paths) all += rhead::read_text_file(p) + "\n";
    if (all.empty()) return all;
    std::string out;
    while (out.size() < 1'000'000) out += all;
    size_t cut = 1'000'000;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    return out;
  }();
  return text;
}

void encode_megabyte(benchmark::State& state, const std::string& rel) {
  const std::string path = kShared + "/" + rel;
  const std::string& text = english_megabyte();
  if (text.empty() || !std::filesystem::exists(path)) {
    state.SkipWithError(("missing " + (text.empty() ? std::string("essays") : path)).c_str());
    return;
  }
  static std::map<std::string, rhead::Tokenizer> loaded;  // loading is not what we measure
  auto it = loaded.find(path);
  if (it == loaded.end()) it = loaded.emplace(path, rhead::Tokenizer::load(path)).first;
  const rhead::Tokenizer& tok = it->second;
  size_t n_tokens = 0;
  for (auto _ : state) {
    std::vector<int32_t> ids = tok.encode(text, true);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
}

}  // namespace

BENCHMARK_CAPTURE(encode_megabyte, tok512_spm, std::string("models/stories260K/tok512.bin"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(encode_megabyte, llama2_spm_gguf,
                  std::string("data/tokenizers/llama_cpp_vocab/ggml-vocab-llama-spm.gguf"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(encode_megabyte, mistral_tokenizer_json, std::string("data/tokenizers/hf_llama2"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(encode_megabyte, gpt2_gguf, std::string("data/tokenizers/llama_cpp_vocab/ggml-vocab-gpt-2.gguf"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(encode_megabyte, llama3_tokenizer_json, std::string("data/tokenizers/hf_llama3"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(encode_megabyte, qwen3_tokenizer_json, std::string("data/tokenizers/hf_qwen3"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(encode_megabyte, deepseek_gguf,
                  std::string("data/tokenizers/llama_cpp_vocab/ggml-vocab-deepseek-llm.gguf"))
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
