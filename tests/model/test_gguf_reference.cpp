// The random-weight reference fixtures again, this time written as GGUF files the way
// llama.cpp's converter writes them, and compared with the same PyTorch logits:
//   - llama: Q/K rows permuted to the adjacent-pair RoPE layout; linear scaling as
//     rope.scaling.type/factor; Llama-3 scaling as a rope_freqs.weight tensor of per-pair
//     divisors (llama.cpp writes no scaling type for it);
//   - qwen2: no permutation (its GGUF keeps the half-split layout), q/k/v biases, tied head.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/gguf.h"
#include "io/gguf_writer.h"
#include "model/loader.h"
#include "model/random_weights.h"
#include "model/reference_fixture.h"
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

// llama.cpp's permute(): within each head, row j of the first half goes to row 2j and row j
// of the second half to row 2j + 1.
std::vector<float> permute_rows_to_adjacent(const std::vector<float>& w, int64_t n_heads, int64_t head_dim,
                                            int64_t cols) {
  std::vector<float> out(w.size());
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t j = 0; j < half; ++j)
      for (int s = 0; s < 2; ++s) {
        const int64_t from = h * head_dim + s * half + j, to = h * head_dim + 2 * j + s;
        std::copy(&w[from * cols], &w[(from + 1) * cols], &out[to * cols]);
      }
  return out;
}

// Per-pair divisors for Llama-3 scaling, as llama.cpp's converter computes them.
std::vector<float> llama3_freq_factors(const json& cfg, int64_t head_dim) {
  const json& rs = cfg.at("rope_scaling");
  const double theta = cfg.at("rope_theta"), factor = rs.at("factor");
  const double low = rs.at("low_freq_factor"), high = rs.at("high_freq_factor");
  const double orig = rs.at("original_max_position_embeddings");
  std::vector<float> out;
  for (int64_t i = 0; i < head_dim; i += 2) {
    const double freq = 1.0 / std::pow(theta, static_cast<double>(i) / head_dim);
    const double wavelen = 2 * M_PI / freq;
    if (wavelen < orig / high)
      out.push_back(1.0f);
    else if (wavelen > orig / low)
      out.push_back(static_cast<float>(factor));
    else {
      const double smooth = (orig / wavelen - low) / (high - low);
      out.push_back(static_cast<float>(1.0 / ((1 - smooth) / factor + smooth)));
    }
  }
  return out;
}

// GGUF architecture name of an HF model_type, as llama.cpp's converter names it.
std::string gguf_arch(const std::string& model_type) {
  if (model_type == "llama" || model_type == "mistral" || model_type == "mixtral") return "llama";
  if (model_type == "qwen3_moe") return "qwen3moe";
  return model_type;  // qwen2, qwen3, gemma2, phi3
}

struct GgufWriteOptions {
  bool old_expert_layout = false;          // Mixtral: one tensor per expert instead of 3-D *_exps
  std::vector<std::string> extra_tensors;  // names of extra 1-element tensors (refusal tests)
};

std::string write_gguf(const std::string& path, const json& cfg, const std::vector<NamedTensor>& hf,
                       const GgufWriteOptions& opt = {}) {
  const std::string mt = cfg.at("model_type");
  const std::string arch = gguf_arch(mt);
  const bool permute = arch == "llama";  // llama.cpp permutes Q/K of llama-arch files only
  const int64_t d = cfg.at("hidden_size"), nh = cfg.at("num_attention_heads");
  const int64_t nkv = cfg.value("num_key_value_heads", nh);
  const int64_t hd = cfg.contains("head_dim") ? cfg.at("head_dim").get<int64_t>() : d / nh;
  GGUFWriter w;
  w.set("general.architecture", arch);
  w.set(arch + ".block_count", cfg.at("num_hidden_layers").get<uint32_t>());
  w.set(arch + ".context_length", cfg.at("max_position_embeddings").get<uint32_t>());
  w.set(arch + ".embedding_length", static_cast<uint32_t>(d));
  w.set(arch + ".feed_forward_length", cfg.at("intermediate_size").get<uint32_t>());
  w.set(arch + ".attention.head_count", static_cast<uint32_t>(nh));
  w.set(arch + ".attention.head_count_kv", static_cast<uint32_t>(nkv));
  w.set(arch + ".attention.key_length", static_cast<uint32_t>(hd));
  w.set(arch + ".attention.value_length", static_cast<uint32_t>(hd));
  w.set(arch + ".attention.layer_norm_rms_epsilon", cfg.at("rms_norm_eps").get<double>(), GGUFValueType::F32);
  w.set(arch + ".rope.freq_base", cfg.at("rope_theta").get<double>(), GGUFValueType::F32);
  if (cfg.contains("sliding_window") && !cfg.at("sliding_window").is_null() && mt != "qwen3" && mt != "qwen3_moe")
    w.set(arch + ".attention.sliding_window", cfg.at("sliding_window").get<uint32_t>());
  if (mt == "mixtral") {
    w.set(arch + ".expert_count", cfg.at("num_local_experts").get<uint32_t>());
    w.set(arch + ".expert_used_count", cfg.at("num_experts_per_tok").get<uint32_t>());
  } else if (mt == "qwen3_moe") {
    w.set(arch + ".expert_count", cfg.at("num_experts").get<uint32_t>());
    w.set(arch + ".expert_used_count", cfg.at("num_experts_per_tok").get<uint32_t>());
    w.set(arch + ".expert_feed_forward_length", cfg.at("moe_intermediate_size").get<uint32_t>());
    w.set(arch + ".expert_weights_norm", cfg.value("norm_topk_prob", false));
  } else if (mt == "gemma2") {
    w.set(arch + ".attn_logit_softcapping", cfg.at("attn_logit_softcapping").get<double>(), GGUFValueType::F32);
    w.set(arch + ".final_logit_softcapping", cfg.at("final_logit_softcapping").get<double>(), GGUFValueType::F32);
    // llama.cpp scales by 1/sqrt(head_dim); a different query_pre_attn_scalar travels as attention.scale.
    const double qpas = cfg.at("query_pre_attn_scalar");
    if (qpas != hd) w.set(arch + ".attention.scale", 1.0 / std::sqrt(qpas), GGUFValueType::F32);
  }
  std::vector<std::vector<float>> keep;  // tensors converted here, alive until write()
  auto add = [&](const std::string& name, std::vector<int64_t> row_major, std::vector<float> values) {
    keep.push_back(std::move(values));
    std::vector<int64_t> dims(row_major.rbegin(), row_major.rend());  // row-major -> ggml order
    w.add_tensor(name, DType::F32, dims, keep.back().data(), keep.back().size() * 4);
  };
  if (cfg.contains("rope_scaling")) {
    const json& rs = cfg.at("rope_scaling");
    const std::string type = rs.value("rope_type", rs.value("type", std::string()));
    if (type == "linear") {
      w.set(arch + ".rope.scaling.type", "linear");
      w.set(arch + ".rope.scaling.factor", rs.at("factor").get<double>(), GGUFValueType::F32);
    } else if (type == "llama3") {
      add("rope_freqs.weight", {hd / 2}, llama3_freq_factors(cfg, hd));
    } else if (type == "longrope") {
      const double orig = cfg.at("original_max_position_embeddings"), max_pos = cfg.at("max_position_embeddings");
      const double scale = max_pos / orig;
      w.set(arch + ".rope.scaling.original_context_length", static_cast<uint32_t>(orig));
      w.set(arch + ".rope.scaling.attn_factor", std::sqrt(1 + std::log(scale) / std::log(orig)), GGUFValueType::F32);
      add("rope_factors_long.weight", {hd / 2}, rs.at("long_factor").get<std::vector<float>>());
      add("rope_factors_short.weight", {hd / 2}, rs.at("short_factor").get<std::vector<float>>());
    }
  }
  static const std::vector<std::pair<std::string, std::string>> names = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.qkv_proj.weight", "attn_qkv.weight"},
      {"self_attn.q_norm.weight", "attn_q_norm.weight"},
      {"self_attn.k_norm.weight", "attn_k_norm.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"},
      {"mlp.gate_up_proj.weight", "ffn_up.weight"},
      {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"},
      {"mlp.gate.weight", "ffn_gate_inp.weight"}};
  // Gemma-2's norms (GGUF stores w + 1) and its own norm names.
  static const std::vector<std::pair<std::string, std::string>> gemma_names = {
      {"post_attention_layernorm.weight", "post_attention_norm.weight"},
      {"pre_feedforward_layernorm.weight", "ffn_norm.weight"},
      {"post_feedforward_layernorm.weight", "post_ffw_norm.weight"}};
  // Experts: HF per-expert names -> GGUF 3-D stacks (or the older per-expert names).
  static const std::vector<std::pair<std::string, std::string>> expert_names = {
      {"w1.weight", "ffn_gate"},        {"w3.weight", "ffn_up"},      {"w2.weight", "ffn_down"},
      {"gate_proj.weight", "ffn_gate"}, {"up_proj.weight", "ffn_up"}, {"down_proj.weight", "ffn_down"}};
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> stacks;  // 3-D expert tensors
  for (const auto& t : hf) {
    std::string rest = t.name, prefix;
    if (rest.rfind("model.layers.", 0) == 0) {
      const size_t dot = rest.find('.', 13);
      prefix = "blk." + rest.substr(13, dot - 13) + ".";
      rest = rest.substr(dot + 1);
    }
    std::vector<float> values = t.values;
    const bool is_norm = rest.find("norm") != std::string::npos && rest.find("q_norm") == std::string::npos &&
                         rest.find("k_norm") == std::string::npos;
    if (mt == "gemma2" && is_norm)
      for (float& x : values) x += 1.0f;
    for (const std::string& ep : {std::string("block_sparse_moe.experts."), std::string("mlp.experts.")}) {
      if (rest.rfind(ep, 0) != 0) continue;
      const size_t dot = rest.find('.', ep.size());
      const std::string e = rest.substr(ep.size(), dot - ep.size()), what = rest.substr(dot + 1);
      for (const auto& [from, to] : expert_names)
        if (from == what) {
          if (opt.old_expert_layout) {
            add(prefix + to + "." + e + ".weight", t.shape, values);
          } else {
            auto& [shape, data] = stacks[prefix + to + "_exps.weight"];
            shape = {std::stoll(e) + 1, t.shape[0], t.shape[1]};
            data.insert(data.end(), values.begin(), values.end());  // experts arrive in order
          }
        }
      rest.clear();
    }
    if (rest.empty()) continue;
    std::string name;
    if (mt == "gemma2")
      for (const auto& [from, to] : gemma_names)
        if (from == rest) name = prefix + to;
    for (const auto& [from, to] : names)
      if (name.empty() && from == rest) name = prefix + to;
    EXPECT_FALSE(name.empty()) << t.name;
    const bool is_q = rest == "self_attn.q_proj.weight", is_k = rest == "self_attn.k_proj.weight";
    if (permute && (is_q || is_k)) values = permute_rows_to_adjacent(values, is_q ? nh : nkv, hd, d);
    add(name, t.shape, std::move(values));
  }
  for (auto& [name, st] : stacks) add(name, st.first, std::move(st.second));
  for (const auto& extra : opt.extra_tensors) add(extra, {1}, {0.0f});
  w.write(path);
  return path;
}

class GgufReference : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufReference, MatchesTorch) {
  const json fx = read_fixture(GetParam());
  const json cfg = fx.at("config");
  TempDir dir("rhead-gguf-" + GetParam());
  const std::string path =
      write_gguf(dir / "model.gguf", cfg, testing::random_hf_weights(cfg, fx.at("seed").get<uint64_t>()));
  auto model = load_model(path).model;
  EXPECT_EQ(model->config.rope_pairing,
            gguf_arch(cfg.at("model_type")) == "llama" ? RopePairing::adjacent : RopePairing::half);
  const double max_diff = testing::fixture_max_logit_diff(model, fx);
  std::printf("%s as GGUF vs torch: max |dlogit| = %.3g\n", GetParam().c_str(), max_diff);
  EXPECT_LE(max_diff, 1e-4);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GgufReference,
                         ::testing::Values("random_qwen2", "random_llama3", "random_linear", "random_mistral",
                                           "random_mixtral", "random_qwen3", "random_qwen3moe", "random_gemma2",
                                           "random_phi3", "random_phi3_short"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace rhead

namespace rhead {
namespace {

double gguf_max_diff(const std::string& path, const json& fx) {
  return testing::fixture_max_logit_diff(load_model(path).model, fx);
}

// Mixtral GGUFs from older converters hold one 2-D tensor per expert.
TEST(GgufFamilies, MixtralOlderPerExpertLayoutMatchesTorch) {
  const json fx = read_fixture("random_mixtral");
  const json cfg = fx.at("config");
  TempDir dir("rhead-gguf-mixtral-old");
  GgufWriteOptions opt;
  opt.old_expert_layout = true;
  const std::string path =
      write_gguf(dir / "model.gguf", cfg, testing::random_hf_weights(cfg, fx.at("seed").get<uint64_t>()), opt);
  ASSERT_NE(GGUFFile::open(path).find_tensor("blk.0.ffn_gate.3.weight"), nullptr);
  EXPECT_LE(gguf_max_diff(path, fx), 1e-4);
}

// A GGUF with a tensor the family does not know, or a metadata key of the architecture that
// the family does not implement, is refused with one line naming the file and the culprit.
TEST(GgufFamilies, ExtraTensorAndUnknownKeyAreRefused) {
  const json fx = read_fixture("random_linear");
  const json cfg = fx.at("config");
  const auto weights = testing::random_hf_weights(cfg, fx.at("seed").get<uint64_t>());
  TempDir dir("rhead-gguf-refuse");
  GgufWriteOptions opt;
  opt.extra_tensors = {"blk.0.attn_sinks.weight"};
  const std::string path = write_gguf(dir / "extra.gguf", cfg, weights, opt);
  try {
    load_model(path);
    ADD_FAILURE() << "extra tensor accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": tensor 'blk.0.attn_sinks.weight' is not part of the llama family");
  }
  // A metadata key of the architecture that changes the maths.
  GGUFFile g = GGUFFile::open(write_gguf(dir / "key.gguf", cfg, weights));
  g.metadata["llama.attn_logit_softcapping"] = 30.0;
  try {
    model_from_gguf(g);
    ADD_FAILURE() << "unknown key accepted";
  } catch (const Error& e) {
    EXPECT_EQ(
        std::string(e.what()),
        dir / "key.gguf" + ": metadata key 'llama.attn_logit_softcapping' is not implemented by the llama family");
  }
}

}  // namespace
}  // namespace rhead
