// Deterministic random-weight Hugging Face models for the reference-logit tests.
// The generator and the tensor order are the ones scripts/torch_reference.py documents and
// uses; both sides produce bit-identical float32 weights, so only the seed is committed.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <system_error>
#include <vector>

#include <unistd.h>

namespace rhead::testing {

// Draw n (n >= 1) of the splitmix64 stream `seed`.
inline uint64_t splitmix64_draw(uint64_t seed, uint64_t n) {
  uint64_t z = seed + n * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A multiple of 2^-15 in [-1, 1).
inline double unit_from_draw(uint64_t draw) {
  return (static_cast<double>(static_cast<int64_t>(draw >> 48) - 32768)) / 32768.0;
}

// 2^-s, s the largest integer with 4^s <= n_in: about 1/sqrt(n_in), exact in float.
inline double linear_scale(int64_t n_in) {
  int s = 0;
  while ((int64_t{1} << (2 * (s + 1))) <= n_in) ++s;
  return 1.0 / static_cast<double>(int64_t{1} << s);
}

struct RandomTensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  double base, scale;
};

// Generation order and value ranges of every tensor of an HF config of any family
// (scripts/torch_reference.py: hf_tensor_list).
inline std::vector<RandomTensorSpec> hf_tensor_list(const nlohmann::json& cfg) {
  const std::string mt = cfg.at("model_type");
  const int64_t d = cfg.at("hidden_size"), f = cfg.at("intermediate_size");
  const int64_t nh = cfg.at("num_attention_heads");
  const int64_t nkv = cfg.value("num_key_value_heads", nh);
  const int64_t hd = cfg.contains("head_dim") ? cfg.at("head_dim").get<int64_t>() : d / nh;
  const int64_t v = cfg.at("vocab_size");
  const bool attention_bias = cfg.value("attention_bias", false);
  const bool bias = mt == "qwen2" || attention_bias;
  const double norm_base = mt == "gemma2" ? 0.0 : 1.0;  // Gemma's HF norms store w of (1 + w)
  const bool qk_norm = mt == "qwen3" || mt == "qwen3_moe";
  std::vector<RandomTensorSpec> out;
  out.push_back({"model.embed_tokens.weight", {v, d}, 0.0, linear_scale(d)});
  for (int layer = 0; layer < cfg.at("num_hidden_layers").get<int>(); ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    out.push_back({p + "input_layernorm.weight", {d}, norm_base, 0.25});
    if (mt == "phi3") {
      out.push_back({p + "self_attn.qkv_proj.weight", {(nh + 2 * nkv) * hd, d}, 0.0, linear_scale(d)});
    } else {
      const std::pair<const char*, int64_t> projections[] = {{"q", nh * hd}, {"k", nkv * hd}, {"v", nkv * hd}};
      for (const auto& [proj, rows] : projections) {
        out.push_back({p + "self_attn." + proj + "_proj.weight", {rows, d}, 0.0, linear_scale(d)});
        if (bias) out.push_back({p + "self_attn." + proj + "_proj.bias", {rows}, 0.0, 0.5});
      }
    }
    if (qk_norm) {
      out.push_back({p + "self_attn.q_norm.weight", {hd}, 1.0, 0.25});
      out.push_back({p + "self_attn.k_norm.weight", {hd}, 1.0, 0.25});
    }
    out.push_back({p + "self_attn.o_proj.weight", {d, nh * hd}, 0.0, linear_scale(nh * hd)});
    if (attention_bias && mt == "llama") out.push_back({p + "self_attn.o_proj.bias", {d}, 0.0, 0.5});
    out.push_back({p + "post_attention_layernorm.weight", {d}, norm_base, 0.25});
    if (mt == "gemma2") {
      out.push_back({p + "pre_feedforward_layernorm.weight", {d}, norm_base, 0.25});
      out.push_back({p + "post_feedforward_layernorm.weight", {d}, norm_base, 0.25});
    }
    if (mt == "mixtral") {
      const int64_t ne = cfg.at("num_local_experts");
      out.push_back({p + "block_sparse_moe.gate.weight", {ne, d}, 0.0, linear_scale(d)});
      for (int64_t e = 0; e < ne; ++e) {
        const std::string q = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
        out.push_back({q + "w1.weight", {f, d}, 0.0, linear_scale(d)});
        out.push_back({q + "w2.weight", {d, f}, 0.0, linear_scale(f)});
        out.push_back({q + "w3.weight", {f, d}, 0.0, linear_scale(d)});
      }
    } else if (mt == "qwen3_moe") {
      const int64_t ne = cfg.at("num_experts"), fe = cfg.at("moe_intermediate_size");
      out.push_back({p + "mlp.gate.weight", {ne, d}, 0.0, linear_scale(d)});
      for (int64_t e = 0; e < ne; ++e) {
        const std::string q = p + "mlp.experts." + std::to_string(e) + ".";
        out.push_back({q + "gate_proj.weight", {fe, d}, 0.0, linear_scale(d)});
        out.push_back({q + "up_proj.weight", {fe, d}, 0.0, linear_scale(d)});
        out.push_back({q + "down_proj.weight", {d, fe}, 0.0, linear_scale(fe)});
      }
    } else if (mt == "phi3") {
      out.push_back({p + "mlp.gate_up_proj.weight", {2 * f, d}, 0.0, linear_scale(d)});
      out.push_back({p + "mlp.down_proj.weight", {d, f}, 0.0, linear_scale(f)});
    } else {
      out.push_back({p + "mlp.gate_proj.weight", {f, d}, 0.0, linear_scale(d)});
      out.push_back({p + "mlp.up_proj.weight", {f, d}, 0.0, linear_scale(d)});
      out.push_back({p + "mlp.down_proj.weight", {d, f}, 0.0, linear_scale(f)});
    }
  }
  out.push_back({"model.norm.weight", {d}, norm_base, 0.25});
  if (!cfg.value("tie_word_embeddings", mt == "gemma2"))
    out.push_back({"lm_head.weight", {v, d}, 0.0, linear_scale(d)});
  return out;
}

struct NamedTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

inline std::vector<NamedTensor> random_hf_weights(const nlohmann::json& cfg, uint64_t seed) {
  std::vector<NamedTensor> out;
  uint64_t drawn = 0;
  for (const auto& spec : hf_tensor_list(cfg)) {
    int64_t count = 1;
    for (int64_t d : spec.shape) count *= d;
    NamedTensor t{spec.name, spec.shape, std::vector<float>(static_cast<size_t>(count))};
    for (int64_t i = 0; i < count; ++i)
      t.values[i] = static_cast<float>(spec.base + unit_from_draw(splitmix64_draw(seed, ++drawn)) * spec.scale);
    out.push_back(std::move(t));
  }
  return out;
}

inline std::vector<int32_t> random_tokens(uint64_t seed, int count, int vocab) {
  std::vector<int32_t> out;
  for (int i = 1; i <= count; ++i)
    out.push_back(static_cast<int32_t>((splitmix64_draw(seed + 1, i) >> 32) % static_cast<uint64_t>(vocab)));
  return out;
}

// Writes an F32 model.safetensors: u64 header length | JSON header | data.
inline void write_safetensors_f32(const std::string& path, const std::vector<NamedTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const uint64_t bytes = t.values.size() * sizeof(float);
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0) text.push_back(' ');
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = text.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : tensors)
    out.write(reinterpret_cast<const char*>(t.values.data()), static_cast<std::streamsize>(t.values.size() * 4));
}

// A fresh, empty directory under the system temp dir, removed with everything in it when
// the object goes out of scope.
struct TempDir {
  std::string path;
  explicit TempDir(const std::string& stem) {
    namespace fs = std::filesystem;
    static int counter = 0;
    for (;;) {
      fs::path p =
          fs::temp_directory_path() / (stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
      if (fs::create_directory(p)) {
        path = p.string();
        return;
      }
    }
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

// Writes config.json + model.safetensors for `cfg` with weights from `seed` into `dir`.
inline void write_random_hf_model(const std::string& dir, const nlohmann::json& cfg, uint64_t seed) {
  std::ofstream(dir + "/config.json") << cfg.dump(2);
  write_safetensors_f32(dir + "/model.safetensors", random_hf_weights(cfg, seed));
}

}  // namespace rhead::testing
