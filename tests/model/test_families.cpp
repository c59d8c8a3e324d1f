// Families beyond the fixtures' logits: what switching a feature on or off must and must not
// change (sliding window), Mixtral upcycled from fmt-tiny, refusal of config keys and tensors
// a family does not compute, `rhead info` for MoE, and `rhead detect` end to end on a random
// Mixtral and a random Gemma-2.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/safetensors.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "model/session.h"
#include "test_support.h"

namespace rhead {
namespace {

using nlohmann::json;
using testing::NamedTensor;
using testing::TempDir;

json read_fixture(const std::string& name) {
  std::ifstream in(testing::test_data_path("model/" + name + ".json"));
  return json::parse(in);
}

std::vector<float> run_logits(const std::string& dir, const std::vector<int32_t>& tokens, int64_t n_ctx = 0) {
  auto model = load_model(dir).model;
  SessionOptions so;
  so.kv_f16 = false;
  so.n_ctx = n_ctx > 0 ? n_ctx : static_cast<int64_t>(tokens.size());
  Session s(model, so);
  ForwardOptions fo;
  fo.all_logits = true;
  return s.forward(tokens, fo);
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

// The error a load raises, or "" when it loads.
std::string load_error(const std::string& path) {
  try {
    load_model(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A prompt shorter than the window gives bit-identical logits with and without the window;
// a longer one differs from full attention (and equals the reference: RandomReference).
TEST(SlidingWindow, ShorterPromptBitIdenticalLongerPromptDiffers) {
  for (const char* name : {"random_mistral", "random_gemma2", "random_phi3_short"}) {
    const json fx = read_fixture(name);
    const json cfg = fx.at("config");
    const uint64_t seed = fx.at("seed");
    const int64_t window = cfg.at("sliding_window");
    json full = cfg;
    full["sliding_window"] = 100000;  // wider than any prompt here: full attention
    TempDir with("rhead-window"), without("rhead-nowindow");
    testing::write_random_hf_model(with.path, cfg, seed);
    testing::write_random_hf_model(without.path, full, seed);
    const auto tokens = fx.at("tokens").get<std::vector<int32_t>>();
    const std::vector<int32_t> shorter(tokens.begin(), tokens.begin() + window);
    const auto a = run_logits(with.path, shorter), b = run_logits(without.path, shorter);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << name;
    const auto la = run_logits(with.path, tokens), lb = run_logits(without.path, tokens);
    EXPECT_GT(max_abs_diff(la, lb), 1e-2) << name;
  }
}

// Mixtral whose experts are all copies of fmt-tiny's MLP (any routing then sums weights
// that add up to 1 over one and the same MLP) gives fmt-tiny's logits.
TEST(Mixtral, UpcycledFromFmtTinyGivesFmtTinyLogits) {
  const std::string src = testing::shared_path("models/fmt-tiny/hf-f32");
  RHEAD_REQUIRE_FILE(src + "/model.safetensors");
  json cfg = json::parse(testing::read_text_file(src + "/config.json"));
  const int n_expert = 4;
  SafetensorsFile st = SafetensorsFile::open(src + "/model.safetensors");
  std::vector<NamedTensor> tensors;
  const int64_t d = cfg.at("hidden_size");
  auto copy = [&](const std::string& name, const SafetensorsTensor& t) {
    NamedTensor n{name, t.shape, std::vector<float>(t.bytes / 4)};
    ASSERT_EQ(t.type, DType::F32);
    std::memcpy(n.values.data(), t.data, t.bytes);
    tensors.push_back(std::move(n));
  };
  for (const auto& [name, t] : st.tensors) {
    const size_t mlp = name.find(".mlp.");
    if (mlp == std::string::npos) {
      copy(name, t);
      continue;
    }
    const std::string layer = name.substr(0, mlp) + ".block_sparse_moe.";
    const std::string what = name.substr(mlp + 5);
    const std::string w = what == "gate_proj.weight" ? "w1" : what == "down_proj.weight" ? "w2" : "w3";
    for (int e = 0; e < n_expert; ++e) copy(layer + "experts." + std::to_string(e) + "." + w + ".weight", t);
    if (w == "w1") {  // one router per layer, random
      NamedTensor router{layer + "gate.weight", {n_expert, d}, std::vector<float>(n_expert * d)};
      for (size_t i = 0; i < router.values.size(); ++i)
        router.values[i] = static_cast<float>(testing::unit_from_draw(testing::splitmix64_draw(99, i + 1)));
      tensors.push_back(std::move(router));
    }
  }
  cfg["model_type"] = "mixtral";
  cfg["architectures"] = {"MixtralForCausalLM"};
  cfg["num_local_experts"] = n_expert;
  cfg["num_experts_per_tok"] = 2;
  for (const char* k : {"attention_bias", "mlp_bias"}) cfg.erase(k);
  TempDir dir("rhead-upcycled");
  std::ofstream(dir / "config.json") << cfg.dump(2);
  testing::write_safetensors_f32(dir / "model.safetensors", tensors);

  const json fx = read_fixture("fmt_tiny_hf_f32");
  const auto tokens = fx.at("tokens").get<std::vector<int32_t>>();
  const auto moe = run_logits(dir.path, tokens), dense = run_logits(src, tokens);
  EXPECT_EQ(load_model(dir.path).model->config.n_expert, n_expert);
  const double diff = max_abs_diff(moe, dense);
  std::printf("upcycled Mixtral vs fmt-tiny: max |dlogit| = %.3g\n", diff);
  EXPECT_LE(diff, 1e-5);
}

// A config key that changes the maths and that the family does not implement is a one-line
// error naming the file and the key; so is a tensor the family does not know.
TEST(Refusal, HfConfigKeysAndTensorsTheFamilyDoesNotCompute) {
  const json fx = read_fixture("random_linear");
  struct Case {
    std::string key;
    json value;
    std::string expect;
  };
  const Case cases[] = {
      {"attn_logit_softcapping", 30.0, "config key 'attn_logit_softcapping' is not implemented by the llama family"},
      {"num_local_experts", 8, "config key 'num_local_experts' is not implemented by the llama family"},
      {"mlp_bias", true, "config key 'mlp_bias' = true is not implemented"},
      {"partial_rotary_factor", 0.5, "config key 'partial_rotary_factor' = 0.5 is not implemented"},
      {"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}, "unsupported rope_scaling type 'yarn'"},
      {"rope_scaling",
       {{"type", "linear"}, {"factor", 4.0}, {"beta_fast", 32}},
       "rope_scaling key 'beta_fast' is not implemented"},
  };
  for (const auto& cs : cases) {
    json cfg = fx.at("config");
    cfg[cs.key] = cs.value;
    TempDir dir("rhead-refuse");
    testing::write_random_hf_model(dir.path, cfg, fx.at("seed"));
    const std::string err = load_error(dir.path);
    EXPECT_NE(err.find(dir / "config.json"), std::string::npos) << err;
    EXPECT_NE(err.find(cs.expect), std::string::npos) << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  }
  // Qwen: a sliding window it would apply per layer range is refused; switched off it is fine.
  json qwen = read_fixture("random_qwen2").at("config");
  qwen["use_sliding_window"] = true;
  qwen["sliding_window"] = 16;
  TempDir q("rhead-refuse-qwen");
  testing::write_random_hf_model(q.path, qwen, 1);
  EXPECT_NE(load_error(q.path).find("config key 'use_sliding_window' = true is not implemented"), std::string::npos);

  // A tensor the family needs is missing.
  json cfg = fx.at("config");
  auto weights = testing::random_hf_weights(cfg, fx.at("seed"));
  {
    auto fewer = weights;
    std::erase_if(fewer, [](const NamedTensor& t) { return t.name == "model.layers.1.mlp.up_proj.weight"; });
    TempDir missing("rhead-refuse-missing");
    std::ofstream(missing / "config.json") << cfg.dump();
    testing::write_safetensors_f32(missing / "model.safetensors", fewer);
    EXPECT_EQ(load_error(missing.path), missing.path + ": missing tensor 'blk.1.ffn_up.weight'");
  }
  // An extra tensor in the safetensors file.
  weights.push_back({"model.layers.0.self_attn.rel_bias.weight", {4}, {0, 0, 0, 0}});
  TempDir dir("rhead-refuse-tensor");
  std::ofstream(dir / "config.json") << cfg.dump();
  testing::write_safetensors_f32(dir / "model.safetensors", weights);
  const std::string err = load_error(dir.path);
  EXPECT_NE(
      err.find("model.safetensors: tensor 'model.layers.0.self_attn.rel_bias.weight' is not part of the llama family"),
      std::string::npos)
      << err;
}

// A random model of `name`'s config with tok512's vocabulary and tokenizer, for the CLI.
std::string write_cli_model(const TempDir& dir, const std::string& name) {
  json cfg = read_fixture(name).at("config");
  cfg["vocab_size"] = 512;
  cfg["max_position_embeddings"] = 1024;
  testing::write_random_hf_model(dir.path, cfg, 7);
  std::filesystem::copy_file(testing::shared_path("models/fmt-tiny/hf-f32/tokenizer.model"), dir / "tokenizer.model");
  return dir.path;
}

TEST(FamiliesCli, InfoShowsExperts) {
  RHEAD_REQUIRE_FILE(testing::shared_path("models/fmt-tiny/hf-f32/tokenizer.model"));
  TempDir dir("rhead-info-moe");
  const auto r = testing::run_command(testing::rhead_binary() + " info -m " + write_cli_model(dir, "random_mixtral"));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("family mixtral"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("experts: 4, 2 used per token"), std::string::npos) << r.output;
}

// `rhead detect` on a random Mixtral and a random Gemma-2: the score file holds one entry per
// query head, keyed "L-H", n_layer x n_head of them.
TEST(FamiliesCli, DetectRunsOnMixtralAndGemma2) {
  RHEAD_REQUIRE_FILE(testing::shared_path("models/fmt-tiny/hf-f32/tokenizer.model"));
  for (const char* name : {"random_mixtral", "random_gemma2"}) {
    TempDir dir(std::string("rhead-detect-") + name);
    const std::string model = write_cli_model(dir, name);
    const json cfg = read_fixture(name).at("config");
    const std::string out = dir / "run";
    const auto r = testing::run_command(testing::rhead_binary() + " detect -m " + model +
                                        " --lengths 300:400:2 --depths 2 --max-new-tokens 6 -q -o " + out + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.output;
    const json scores = json::parse(testing::read_text_file(out + "/head_score.json"));
    const int n_layer = cfg.at("num_hidden_layers"), n_head = cfg.at("num_attention_heads");
    EXPECT_EQ(scores.size(), static_cast<size_t>(n_layer * n_head)) << name;
    for (int l = 0; l < n_layer; ++l)
      for (int h = 0; h < n_head; ++h)
        EXPECT_TRUE(scores.contains(std::to_string(l) + "-" + std::to_string(h))) << name << " " << l << "-" << h;
  }
}

}  // namespace
}  // namespace rhead
