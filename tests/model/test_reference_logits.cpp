// rhead's logits against the PyTorch reference (scripts/torch_reference.py), which writes
// tests/data/model/*.json: the trained fmt-tiny model from ../shared, and random-weight
// Qwen2 (q/k/v biases, tied head), Llama-3 RoPE scaling and linear RoPE scaling models that
// this test rebuilds from their seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "model/loader.h"
#include "model/session.h"
#include "model/random_weights.h"
#include "test_support.h"

namespace rhead {
namespace {

using nlohmann::json;
using testing::TempDir;

json read_fixture(const std::string& name) {
  const std::string path = testing::test_data_path("model/" + name + ".json");
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing fixture " << path << " (run scripts/torch_reference.py)";
  return json::parse(in);
}

struct Comparison {
  double max_abs_diff = 0;
  double tolerance = 0;
  int argmax_mismatches = 0;
};

// Runs the fixture's tokens through `model` in one forward pass and compares the logits at the
// fixture's positions. Tolerance: 1e-4 (absolute) with an f32 KV cache; the f16 cache rounds
// K and V to 11 significant bits, and is allowed 1e-3 of the logit scale (max |logit|, at least 1).
Comparison compare_with_fixture(std::shared_ptr<const Model> model, const json& fx, SessionOptions so = {}) {
  const auto tokens = fx.at("tokens").get<std::vector<int32_t>>();
  const auto positions = fx.at("positions").get<std::vector<int>>();
  const auto expected = fx.at("logits").get<std::vector<std::vector<float>>>();
  so.n_ctx = static_cast<int64_t>(tokens.size());
  Session session(model, so);
  ForwardOptions fo;
  fo.all_logits = true;
  const std::vector<float> logits = session.forward(tokens, fo);
  const int64_t V = model->config.n_vocab;
  EXPECT_EQ(logits.size(), tokens.size() * V);
  Comparison c;
  c.tolerance = so.kv_f16 ? 1e-3 * std::max(1.0, fx.at("max_abs_logit").get<double>()) : 1e-4;
  for (size_t i = 0; i < positions.size(); ++i) {
    const float* row = &logits[static_cast<size_t>(positions[i]) * V];
    EXPECT_EQ(expected[i].size(), static_cast<size_t>(V));
    for (int64_t v = 0; v < V; ++v)
      c.max_abs_diff = std::max(c.max_abs_diff, std::fabs(double(row[v]) - expected[i][v]));
    const auto& e = expected[i];
    if (std::max_element(row, row + V) - row != std::max_element(e.begin(), e.end()) - e.begin()) ++c.argmax_mismatches;
  }
  return c;
}

TEST(ReferenceLogits, FmtTinyHfF32MatchesTorch) {
  const json fx = read_fixture("fmt_tiny_hf_f32");
  const std::string dir = testing::shared_path(fx.at("model").get<std::string>());
  RHEAD_REQUIRE_FILE(dir + "/model.safetensors");
  LoadedModel lm = load_model(dir);
  // The tokenizer gives the same ids as SentencePiece did for the script.
  ASSERT_TRUE(lm.tokenizer);
  EXPECT_EQ(lm.tokenizer->encode(fx.at("text").get<std::string>(), true), fx.at("tokens").get<std::vector<int32_t>>());
  for (bool kv_f16 : {false, true}) {
    SessionOptions so;
    so.kv_f16 = kv_f16;
    Comparison c = compare_with_fixture(lm.model, fx, so);
    const double tol = c.tolerance;
    EXPECT_LE(c.max_abs_diff, tol) << "kv_f16=" << kv_f16;
    EXPECT_EQ(c.argmax_mismatches, 0) << "kv_f16=" << kv_f16;
    std::printf("fmt-tiny hf-f32 vs torch (kv %s): max |dlogit| = %.3g (tolerance %.3g)\n", kv_f16 ? "f16" : "f32",
                c.max_abs_diff, tol);
  }
}

// The same fixture through the other two exact formats: BF16 upcasts exactly, and the GGUF
// f32 file holds Q/K in llama.cpp's permuted layout.
TEST(ReferenceLogits, FmtTinyOtherExactFormatsMatchTorch) {
  const json fx = read_fixture("fmt_tiny_hf_f32");
  for (const char* rel : {"models/fmt-tiny/hf-bf16", "models/fmt-tiny/fmt-tiny-f32.gguf"}) {
    const std::string path = testing::shared_path(rel);
    RHEAD_REQUIRE_FILE(path);
    SessionOptions so;
    so.kv_f16 = false;
    Comparison c = compare_with_fixture(load_model(path).model, fx, so);
    EXPECT_LE(c.max_abs_diff, c.tolerance) << rel;
    EXPECT_EQ(c.argmax_mismatches, 0) << rel;
  }
}

class RandomReference : public ::testing::TestWithParam<std::string> {};

TEST_P(RandomReference, MatchesTorch) {
  const json fx = read_fixture(GetParam());
  const json cfg = fx.at("config");
  const uint64_t seed = fx.at("seed").get<uint64_t>();
  // The tokens come from the same generator: a check that both sides implement it alike.
  ASSERT_EQ(testing::random_tokens(seed, static_cast<int>(fx.at("tokens").size()), cfg.at("vocab_size")),
            fx.at("tokens").get<std::vector<int32_t>>());
  TempDir dir("rhead-" + GetParam());
  testing::write_random_hf_model(dir.path, cfg, seed);
  auto model = load_model(dir.path).model;
  SessionOptions so;
  so.kv_f16 = false;
  Comparison c = compare_with_fixture(model, fx, so);
  EXPECT_LE(c.max_abs_diff, c.tolerance);
  EXPECT_EQ(c.argmax_mismatches, 0);
  std::printf("%s vs torch: max |dlogit| = %.3g (tolerance %.3g)\n", GetParam().c_str(), c.max_abs_diff, c.tolerance);

  // Chunked prefill and the f16 cache reach the same logits.
  so.prefill_chunk = 7;
  so.kv_f16 = true;
  Comparison chunked = compare_with_fixture(model, fx, so);
  EXPECT_LE(chunked.max_abs_diff, chunked.tolerance);
  EXPECT_EQ(chunked.argmax_mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RandomReference,
                         ::testing::Values("random_qwen2", "random_llama3", "random_linear", "random_mistral",
                                           "random_mixtral", "random_qwen3", "random_qwen3moe", "random_gemma2",
                                           "random_phi3", "random_phi3_short"),
                         [](const auto& info) { return info.param; });

// The fixtures would not notice a wrong feature if it barely moved the logits. Each feature
// is switched off in turn and the logits must then miss the reference by far more than the
// tolerance.
TEST(ReferenceLogits, FixturesAreSensitiveToWhatTheyTest) {
  struct Case {
    const char* fixture;
    std::function<void(json&)> change;
    const char* what;
  };
  const Case cases[] = {
      {"random_llama3", [](json& c) { c.erase("rope_scaling"); }, "llama3 scaling removed"},
      {"random_llama3",
       [](json& c) {
         c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", c["rope_scaling"]["factor"]}};
       },
       "llama3 scaling as linear"},
      {"random_linear", [](json& c) { c.erase("rope_scaling"); }, "linear scaling removed"},
      {"random_qwen2", [](json& c) { c["rope_theta"] = 10000.0; }, "rope_theta changed"},
      {"random_mistral", [](json& c) { c.erase("sliding_window"); }, "mistral window removed"},
      {"random_mixtral", [](json& c) { c["num_experts_per_tok"] = 1; }, "mixtral top-1"},
      {"random_qwen3moe", [](json& c) { c["norm_topk_prob"] = true; }, "qwen3moe weights renormalized"},
      {"random_gemma2", [](json& c) { c["attn_logit_softcapping"] = nullptr; }, "gemma2 attention soft-cap removed"},
      {"random_gemma2", [](json& c) { c["final_logit_softcapping"] = nullptr; }, "gemma2 final soft-cap removed"},
      {"random_gemma2", [](json& c) { c["query_pre_attn_scalar"] = 16; }, "gemma2 query_pre_attn_scalar = head_dim"},
      {"random_gemma2", [](json& c) { c["sliding_window"] = 1000; }, "gemma2 window removed"},
      {"random_phi3", [](json& c) { c["sliding_window"] = 1000; }, "phi3 window removed"},
      {"random_phi3", [](json& c) { c.erase("rope_scaling"); }, "phi3 LongRoPE removed"},
      {"random_phi3_short", [](json& c) { c["rope_scaling"]["short_factor"] = c["rope_scaling"]["long_factor"]; },
       "phi3 long factors where the short apply"},
  };
  for (const auto& cs : cases) {
    const json fx = read_fixture(cs.fixture);
    json cfg = fx.at("config");
    const uint64_t seed = fx.at("seed").get<uint64_t>();
    cs.change(cfg);
    TempDir dir("rhead-sensitivity");
    testing::write_random_hf_model(dir.path, cfg, seed);
    SessionOptions so;
    so.kv_f16 = false;
    Comparison c = compare_with_fixture(load_model(dir.path).model, fx, so);
    EXPECT_GT(c.max_abs_diff, 50 * c.tolerance) << cs.what;
  }
}

// Qwen2's biases matter too: zeroing them in the written file must move the logits.
TEST(ReferenceLogits, QwenBiasesAreUsed) {
  const json fx = read_fixture("random_qwen2");
  const json cfg = fx.at("config");
  auto weights = testing::random_hf_weights(cfg, fx.at("seed").get<uint64_t>());
  for (auto& t : weights)
    if (t.name.find("_proj.bias") != std::string::npos) std::fill(t.values.begin(), t.values.end(), 0.0f);
  TempDir dir("rhead-qwen-nobias");
  std::ofstream(dir / "config.json") << cfg.dump();
  testing::write_safetensors_f32(dir / "model.safetensors", weights);
  SessionOptions so;
  so.kv_f16 = false;
  Comparison c = compare_with_fixture(load_model(dir.path).model, fx, so);
  EXPECT_GT(c.max_abs_diff, 50 * c.tolerance);
}

}  // namespace
}  // namespace rhead
