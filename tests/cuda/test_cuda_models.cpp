// Whole models on the CUDA backend against the CPU backend (real weights from ../shared/models):
// fmt-tiny and niah-tiny give identical greedy tokens over a 100-token generation and the same
// probe argmax at every step for every head (prefill in one chunk and in chunks of 7). Logits
// agree within 1e-3 at every step with an f32 KV cache; with the default f16 cache a last-bit
// difference upstream can flip the rounding of a cached value (one f16 ulp, 2^-11 relative), so
// there the bound is 1e-2. The 16-bit and Q8_0 files agree on top-1 tokens; `rhead detect` on
// niah-tiny's README grid writes the same head_score.json on both devices. Every family
// (llama, mistral, qwen2, qwen3, mixtral, qwen3moe, gemma2, phi3) runs its random-weight
// transformers fixture on the GPU within 1e-3 of transformers' logits and of the CPU backend.
// Under a KV policy the compacted cache gives the whole cache's run bit for bit.
// Without a usable GPU every test skips, naming the reason.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "model/generate.h"
#include "model/kv_policy.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "model/session.h"
#include "ops/backend.h"
#include "test_support.h"

namespace rhead {
namespace {

#define SKIP_WITHOUT_CUDA()                                                                     \
  do {                                                                                          \
    if (!cuda_available()) GTEST_SKIP() << "CUDA tests skipped: " << cuda_unavailable_reason(); \
  } while (0)

// Skips (or fails in CI) when a shared file is missing.
#define REQUIRE_SHARED(path)                                            \
  do {                                                                  \
    if (!std::filesystem::exists(path)) {                               \
      if (testing::in_ci()) FAIL() << "missing shared file " << (path); \
      GTEST_SKIP() << "missing shared file " << (path);                 \
    }                                                                   \
  } while (0)

const char kPrompt[] =
    "What hard liquor, cigarettes, heroin, and crack have in common is that they're all more concentrated forms "
    "of less addictive predecessors. The secret code of the wall is star oil nest. Most if not all the things we "
    "describe as addictive are.\nQuestion: What is the secret code of the wall?\nAnswer:";

struct Trace {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;    // per step [n_vocab]
  std::vector<std::vector<int32_t>> argmax;  // per step [n_layer * n_head]
  std::vector<std::vector<float>> argmax_w;
};

// Greedy steps from kPrompt with argmax probes, in a session of `so`.
// inspect (if set) sees the session after the generation.
Trace run_greedy(const LoadedModel& lm, const SessionOptions& so, int steps,
                 const std::function<void(const Session&)>& inspect = {}) {
  Session s(lm.model, so);
  const std::vector<int32_t> prompt = lm.tokenizer->encode(kPrompt, true);
  ProbeRequest req;
  req.argmax = true;
  GreedyOptions g;
  g.max_new_tokens = steps;
  g.probes = &req;
  Trace tr;
  g.on_token = [&](const DecodeStep& st) {
    tr.tokens.push_back(st.token);
    tr.logits.push_back(*st.logits);
    tr.argmax.push_back(st.probes->argmax);
    tr.argmax_w.push_back(st.probes->argmax_weight);
    return true;
  };
  generate_greedy(s, prompt, g);
  if (inspect) inspect(s);
  return tr;
}

Trace run_greedy(const LoadedModel& lm, Device device, int64_t chunk, int steps, bool kv_f16 = true) {
  SessionOptions so;
  so.device = device;
  so.prefill_chunk = chunk;
  so.kv_f16 = kv_f16;
  return run_greedy(lm, so, steps);
}

void check_same_generation(const std::string& rel) {
  SKIP_WITHOUT_CUDA();
  const std::string path = testing::shared_path(rel);
  REQUIRE_SHARED(path);
  LoadedModel lm = load_model(path);
  const int kSteps = 100;
  for (bool kv_f16 : {false, true}) {
    const Trace cpu = run_greedy(lm, Device::cpu, 0, kSteps, kv_f16);
    for (int64_t chunk : {0, 7}) {
      SCOPED_TRACE(rel + " prefill chunk " + std::to_string(chunk) + (kv_f16 ? " f16 cache" : " f32 cache"));
      const Trace gpu = run_greedy(lm, Device::cuda, chunk, kSteps, kv_f16);
      ASSERT_EQ(gpu.tokens, cpu.tokens) << "greedy tokens differ";
      double max_diff = 0;
      int64_t compared = 0, flips = 0;
      for (size_t i = 0; i < cpu.tokens.size(); ++i) {
        for (size_t v = 0; v < cpu.logits[i].size(); ++v)
          max_diff = std::max(max_diff, static_cast<double>(std::fabs(gpu.logits[i][v] - cpu.logits[i][v])));
        for (size_t h = 0; h < cpu.argmax[i].size(); ++h) {
          ++compared;
          if (gpu.argmax[i][h] == cpu.argmax[i][h]) continue;
          ++flips;
          ADD_FAILURE() << "step " << i << " head " << h << ": argmax " << gpu.argmax[i][h] << " (weight "
                        << gpu.argmax_w[i][h] << ") vs " << cpu.argmax[i][h] << " (weight " << cpu.argmax_w[i][h]
                        << ")";
        }
      }
      EXPECT_LT(max_diff, kv_f16 ? 1e-2 : 1e-3) << "largest logit difference";
      std::printf(
          "[ cuda vs cpu ] %s %s cache, chunk %lld: %zu tokens identical, max |logit diff| %.2e, "
          "%lld/%lld head-steps differ in argmax\n",
          rel.c_str(), kv_f16 ? "f16" : "f32", static_cast<long long>(chunk), cpu.tokens.size(), max_diff,
          static_cast<long long>(flips), static_cast<long long>(compared));
    }
  }
}

TEST(CudaModels, FmtTinyGreedyLogitsAndProbesMatchCpu) { check_same_generation("models/fmt-tiny/fmt-tiny-f32.gguf"); }
TEST(CudaModels, NiahTinyGreedyLogitsAndProbesMatchCpu) {
  check_same_generation("models/niah-tiny/niah-tiny-f32.gguf");
}

// 16-bit and Q8_0 weights run through the tensor-core GEMMs and the per-type mat-vecs: top-1
// tokens over the CPU's greedy text, fed to both (teacher forcing), agree at nearly all positions.
TEST(CudaModels, SixteenBitAndQ8WeightsAgreeOnTop1) {
  SKIP_WITHOUT_CUDA();
  for (const char* rel : {"models/fmt-tiny/fmt-tiny-f16.gguf", "models/fmt-tiny/fmt-tiny-q8_0.gguf",
                          "models/fmt-tiny/hf-bf16", "models/niah-tiny/niah-tiny-f16.gguf"}) {
    const std::string path = testing::shared_path(rel);
    REQUIRE_SHARED(path);
    LoadedModel lm = load_model(path);
    const Trace cpu = run_greedy(lm, Device::cpu, 0, 60);
    std::vector<int32_t> seq = lm.tokenizer->encode(kPrompt, true);
    seq.insert(seq.end(), cpu.tokens.begin(), cpu.tokens.end());
    std::vector<std::vector<float>> logits(2);
    for (Device d : {Device::cpu, Device::cuda}) {
      SessionOptions so;
      so.device = d;
      Session s(lm.model, so);
      ForwardOptions fo;
      fo.all_logits = true;
      logits[d == Device::cuda] = s.forward(seq, fo);
    }
    const int64_t V = lm.model->config.n_vocab, n = static_cast<int64_t>(seq.size());
    int64_t agree = 0;
    for (int64_t p = 0; p < n; ++p)
      agree += argmax_token({&logits[0][p * V], static_cast<size_t>(V)}) ==
               argmax_token({&logits[1][p * V], static_cast<size_t>(V)});
    EXPECT_GE(agree * 100, n * 97) << rel << ": " << agree << " of " << n << " positions agree on top-1";
    std::printf("[ cuda vs cpu ] %s: top-1 agrees at %lld of %lld positions\n", rel, static_cast<long long>(agree),
                static_cast<long long>(n));
  }
}

// The compacted KV cache on the GPU (rings for windowed KV heads, growing whole heads) against
// the whole cache under the same policy: the kernels read the same values in the same order,
// so tokens, logits and probes are identical; the session holds what kv_accounting predicts.
TEST(CudaModels, CompactedCacheGivesTheWholeCacheRun) {
  SKIP_WITHOUT_CUDA();
  const std::string path = testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf");
  REQUIRE_SHARED(path);
  LoadedModel lm = load_model(path);
  const ModelConfig& c = lm.model->config;
  KvPolicy policy(c, 8, 4);
  policy.set_full(0, 0);
  policy.set_full(c.n_layer - 1, c.n_head - 1);
  const int kSteps = 24;
  for (bool kv_f16 : {true, false})
    for (int64_t chunk : {7, 32, 0}) {
      SCOPED_TRACE(std::string(kv_f16 ? "f16" : "f32") + " cache, chunk " + std::to_string(chunk));
      SessionOptions so;
      so.device = Device::cuda;
      so.prefill_chunk = chunk;
      so.kv_f16 = kv_f16;
      so.kv_policy = policy;
      Trace tr[2];
      int64_t held[2] = {0, 0};
      for (bool compact : {true, false}) {
        so.kv_compact = compact;
        tr[compact] = run_greedy(lm, so, kSteps, [&](const Session& s) {
          held[compact] = s.kv_bytes_held();
          if (compact)
            EXPECT_EQ(held[1],
                      kv_accounting(policy, c.head_dim, so.kv_type(), s.n_past(), prefill_chunk_of(so), s.capacity())
                          .kv_bytes_held());
        });
      }
      EXPECT_EQ(tr[1].tokens, tr[0].tokens);
      EXPECT_EQ(tr[1].logits, tr[0].logits);
      EXPECT_EQ(tr[1].argmax, tr[0].argmax);
      EXPECT_EQ(tr[1].argmax_w, tr[0].argmax_w);
      if (chunk > 0) EXPECT_LT(held[1], held[0]);  // (the default chunk's rings outgrow this prompt)
    }
}

// Detection on niah-tiny's README grid (150 tests): the same head scores on both devices.
TEST(CudaModels, DetectHeadScoresMatchCpuOnNiahTinyGrid) {
  SKIP_WITHOUT_CUDA();
  const std::string model = testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf");
  const std::string needles = testing::shared_path("models/niah-tiny/needles.jsonl");
  const std::string haystack = testing::shared_path("data/haystack/paul_graham_essays");
  REQUIRE_SHARED(model);
  REQUIRE_SHARED(haystack);
  testing::MkdtempDir dir("rhead_cuda_detect_");
  nlohmann::json scores[2];
  for (const char* device : {"cpu", "cuda"}) {
    const std::string out = dir.sub(device);
    const std::string cmd =
        testing::shell_quote(testing::rhead_binary()) + " detect -m " + testing::shell_quote(model) + " --needles " +
        testing::shell_quote(needles) + " --haystack " + testing::shell_quote(haystack) + " --prompt-template " +
        testing::shell_quote("{context}\nQuestion: {question}\nAnswer:") +
        " --lengths 300:500:5 --depths 10 -q --device " + device + " -o " + testing::shell_quote(out) + " 2>&1";
    const testing::CommandResult r = testing::run_command(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    scores[std::string(device) == "cuda"] = nlohmann::json::parse(testing::read_text_file(out + "/head_score.json"));
  }
  EXPECT_EQ(scores[1], scores[0]) << "head_score.json differs between cpu and cuda";
}

// Every family on the GPU: the random-weight fixtures of tests/model/test_hf_reference.cpp
// (logits from transformers' own modeling code), prefilled in one chunk and in chunks of 3
// (decode-sized mat-vecs and the row attention kernel), then 6 greedy steps with argmax probes
// on every head compared with the CPU backend.
class CudaFamilies : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaFamilies, MatchTransformersAndCpu) {
  SKIP_WITHOUT_CUDA();
  const std::string path = testing::test_data_path("model/hf/" + GetParam() + ".json");
  REQUIRE_SHARED(path);
  const nlohmann::json fx = nlohmann::json::parse(testing::read_text_file(path));
  testing::TempDir dir("rhead-cuda-" + GetParam());
  std::ofstream(dir / "config.json") << fx.at("hf_config").dump(2);
  testing::write_safetensors_f32(dir / "model.safetensors", testing::random_hf_weights(fx.at("config"), fx.at("seed")));
  auto model = load_model(dir.path).model;
  const auto tokens = fx.at("tokens").get<std::vector<int32_t>>();
  const auto expected = fx.at("logits").get<std::vector<std::vector<float>>>();
  const auto positions = fx.at("positions").get<std::vector<int>>();
  const int64_t V = model->config.n_vocab, n = static_cast<int64_t>(tokens.size());
  const int kSteps = 6;

  struct Run {
    std::vector<float> logits;                 // [n, V] prefill
    std::vector<int32_t> generated;            // greedy tokens
    std::vector<std::vector<int32_t>> argmax;  // per step [n_layer * n_head]
  };
  auto run = [&](Device d, int64_t chunk) {
    SessionOptions so;
    so.device = d;
    so.kv_f16 = false;
    so.n_ctx = n;  // LongRoPE picks its factors by capacity: the fixture's own
    so.prefill_chunk = chunk;
    ForwardOptions fo;
    fo.all_logits = true;
    Run r;
    r.logits = Session(model, so).forward(tokens, fo);
    so.n_ctx = n + kSteps;
    Session s(model, so);
    const std::vector<float> prefill = s.forward(tokens);
    std::vector<float> last(prefill.end() - V, prefill.end());
    ProbeRequest req;
    req.argmax = true;
    for (int i = 0; i < kSteps; ++i) {
      const int32_t t = argmax_token(last);
      r.generated.push_back(t);
      ProbeRecord rec;
      ForwardOptions step;
      step.probes = &req;
      step.probe_out = &rec;
      step.decode = true;
      last = s.forward(std::span<const int32_t>(&t, 1), step);
      r.argmax.push_back(rec.argmax);
    }
    return r;
  };
  const Run cpu = run(Device::cpu, 0);
  for (int64_t chunk : {0, 3}) {
    SCOPED_TRACE(GetParam() + " prefill chunk " + std::to_string(chunk));
    const Run gpu = run(Device::cuda, chunk);
    ASSERT_EQ(gpu.logits.size(), cpu.logits.size());
    double vs_hf = 0, vs_cpu = 0;
    for (size_t i = 0; i < positions.size(); ++i)
      for (int64_t v = 0; v < V; ++v)
        vs_hf = std::max(vs_hf, std::fabs(double(gpu.logits[positions[i] * V + v]) - expected[i][v]));
    for (size_t i = 0; i < cpu.logits.size(); ++i)
      vs_cpu = std::max(vs_cpu, std::fabs(double(gpu.logits[i]) - cpu.logits[i]));
    EXPECT_LE(vs_hf, 1e-3) << "against transformers";
    EXPECT_LE(vs_cpu, 1e-3) << "against the CPU backend";
    EXPECT_EQ(gpu.generated, cpu.generated) << "greedy tokens";
    EXPECT_EQ(gpu.argmax, cpu.argmax) << "argmax probes";
    std::printf("[ cuda vs cpu ] %s chunk %lld: max |dlogit| %.2e vs transformers, %.2e vs cpu\n", GetParam().c_str(),
                static_cast<long long>(chunk), vs_hf, vs_cpu);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaFamilies,
                         ::testing::Values("random_llama3", "random_mistral", "random_qwen2", "random_qwen3",
                                           "random_mixtral", "random_qwen3moe", "random_gemma2", "random_phi3",
                                           "random_phi3_short"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace rhead
