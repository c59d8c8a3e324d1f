// Hyper-parameter readers for the family files. Each reader marks the keys a family reads or
// deliberately ignores; finish() refuses every other key of the family's namespace, so a key
// that changes the maths is never dropped silently (one-line error naming file and key).
// read_llama_gguf / read_llama_hf read the keys every Llama-like family shares.
#pragma once
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "model/config.h"

namespace rhead {

class GGUFFile;

// config.json of a Hugging Face checkpoint.
class HfConfigReader {
 public:
  HfConfigReader(const nlohmann::json& j, std::string path);
  const std::string& path() const { return path_; }
  bool has(const char* key);  // present and not null; marks the key read
  int need_int(const char* key);
  int opt_int(const char* key, int fallback);
  double opt_double(const char* key, double fallback);
  bool opt_bool(const char* key, bool fallback);
  std::string opt_string(const char* key, const std::string& fallback);
  const nlohmann::json& get(const char* key);  // the raw value (must be present)
  // Known keys that do not change the computation (training settings, token ids, dtype).
  void ignore(std::initializer_list<const char*> keys);
  // A key the family cannot compute unless it is absent, null or `allowed`.
  void refuse_unless(const char* key, const nlohmann::json& allowed);
  // Refuses the first key neither read nor ignored.
  void finish(const std::string& family);

 private:
  const nlohmann::json& j_;
  std::string path_;
  std::set<std::string> seen_;
};

// Metadata keys "<arch>.*" of a GGUF file (general.* and tokenizer.* are not the family's).
class GgufConfigReader {
 public:
  GgufConfigReader(const GGUFFile& g, std::string arch);
  const GGUFFile& file() const { return g_; }
  const std::string& path() const;
  bool has(const std::string& key);  // key without the "<arch>." prefix
  int need_int(const std::string& key);
  int opt_int(const std::string& key, int fallback);
  double opt_double(const std::string& key, double fallback);
  bool opt_bool(const std::string& key, bool fallback);
  std::string opt_string(const std::string& key, const std::string& fallback);
  void ignore(std::initializer_list<const char*> keys);
  void finish(const std::string& family);

 private:
  const GGUFFile& g_;
  std::string prefix_;
  std::set<std::string> seen_;
};

// Shared keys of Llama-like families: shape, context, norm eps, RoPE theta and scaling
// (none, linear, llama3; longrope when allow_longrope; in rope_scaling or, as newer configs
// write it, rope_parameters with rope_theta inside), tied embeddings; refuses mlp_bias and
// partial_rotary_factor unless default. The activation is the family's (require_silu).
void read_llama_hf(HfConfigReader& r, ModelConfig& c, bool allow_longrope = false);
void read_llama_gguf(GgufConfigReader& r, ModelConfig& c);
// layer_types (newer configs: "sliding_attention" / "full_attention" per layer) must say what
// the config's window already implies; call after the window is read.
void read_layer_types_hf(HfConfigReader& r, const ModelConfig& c);
// Reads hidden_act and refuses any but silu (families whose MLP and experts are SwiGLU).
void require_silu(HfConfigReader& r, ModelConfig& c, const std::string& family);
// Qwen's sliding-window keys: use_sliding_window must be false; then sliding_window and
// max_window_layers have no effect and are ignored.
void read_qwen_window_hf(HfConfigReader& r);

// MoE keys: GGUF expert_count / expert_used_count (and expert_feed_forward_length when
// has_ff_key); validated.
void read_moe_gguf(GgufConfigReader& r, ModelConfig& c, bool has_ff_key);

}  // namespace rhead
