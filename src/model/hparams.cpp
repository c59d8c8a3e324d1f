// Hyper-parameter readers with key accounting (see hparams.h).
#include "model/hparams.h"

#include <cmath>

#include "io/error.h"
#include "io/gguf.h"
#include "io/json.h"

namespace rhead {

using nlohmann::json;

namespace {
// Keys of every config.json that never change the forward pass.
const char* const kHfCommonIgnored[] = {
    "architectures", "torch_dtype", "dtype", "transformers_version", "bos_token_id", "eos_token_id", "pad_token_id",
    "initializer_range", "use_cache", "attention_dropout", "_name_or_path", "tokenizer_class", "output_attentions",
    "output_hidden_states", "return_dict", "auto_map",
    // Tensor-parallel slicing of the same matmuls during pre-training: identical maths.
    "pretraining_tp"};
}  // namespace

HfConfigReader::HfConfigReader(const json& j, std::string path) : j_(j), path_(std::move(path)) {
  if (!j_.is_object()) fail(path_, "config is not a JSON object");
  for (const char* k : kHfCommonIgnored) seen_.insert(k);
}

bool HfConfigReader::has(const char* key) {
  seen_.insert(key);
  return j_.contains(key) && !j_[key].is_null();
}

const json& HfConfigReader::get(const char* key) {
  if (!has(key)) fail(path_, std::string("missing field '") + key + "'");
  return j_[key];
}

namespace {
// One strict reader (io/json.h): true or 2.9 is not an integer, "4" is not a number.
template <typename T>
T convert(const json& v, const std::string& path, const char* key) {
  const std::string what = std::string("field '") + key + "'";
  if constexpr (std::is_same_v<T, bool>)
    return json_bool(v, path, what);
  else if constexpr (std::is_same_v<T, int>)
    return json_int(v, path, what);
  else if constexpr (std::is_floating_point_v<T>)
    return static_cast<T>(json_number(v, path, what));
  else
    return json_string(v, path, what);
}
}  // namespace

int HfConfigReader::need_int(const char* key) { return convert<int>(get(key), path_, key); }
int HfConfigReader::opt_int(const char* key, int fallback) {
  return has(key) ? convert<int>(j_[key], path_, key) : fallback;
}
double HfConfigReader::opt_double(const char* key, double fallback) {
  return has(key) ? convert<double>(j_[key], path_, key) : fallback;
}
bool HfConfigReader::opt_bool(const char* key, bool fallback) {
  return has(key) ? convert<bool>(j_[key], path_, key) : fallback;
}
std::string HfConfigReader::opt_string(const char* key, const std::string& fallback) {
  return has(key) ? convert<std::string>(j_[key], path_, key) : fallback;
}

void HfConfigReader::ignore(std::initializer_list<const char*> keys) {
  for (const char* k : keys) seen_.insert(k);
}

void HfConfigReader::refuse_unless(const char* key, const json& allowed) {
  if (has(key) && j_[key] != allowed)
    fail(path_, std::string("config key '") + key + "' = " + j_[key].dump() + " is not implemented (only " +
                    allowed.dump() + ")");
}

void HfConfigReader::finish(const std::string& family) {
  for (const auto& [key, value] : j_.items())
    if (!seen_.count(key)) fail(path_, "config key '" + key + "' is not implemented by the " + family + " family");
}

GgufConfigReader::GgufConfigReader(const GGUFFile& g, std::string arch) : g_(g), prefix_(std::move(arch) + ".") {}

const std::string& GgufConfigReader::path() const { return g_.path(); }

bool GgufConfigReader::has(const std::string& key) {
  seen_.insert(key);
  return g_.find(prefix_ + key) != nullptr;
}

int GgufConfigReader::need_int(const std::string& key) {
  if (!has(key)) fail(path(), "missing metadata key '" + prefix_ + key + "'");
  return opt_int(key, 0);
}

int GgufConfigReader::opt_int(const std::string& key, int fallback) {
  seen_.insert(key);
  auto v = g_.get_int(prefix_ + key);
  if (!v) return fallback;
  if (*v < 0 || *v > std::numeric_limits<int>::max())
    fail(path(), "metadata key '" + prefix_ + key + "' = " + std::to_string(*v) + " is out of range");
  return static_cast<int>(*v);
}

double GgufConfigReader::opt_double(const std::string& key, double fallback) {
  seen_.insert(key);
  return g_.get_float(prefix_ + key).value_or(fallback);
}

bool GgufConfigReader::opt_bool(const std::string& key, bool fallback) {
  seen_.insert(key);
  return g_.get_bool(prefix_ + key).value_or(fallback);
}

std::string GgufConfigReader::opt_string(const std::string& key, const std::string& fallback) {
  seen_.insert(key);
  return g_.get_string(prefix_ + key).value_or(fallback);
}

void GgufConfigReader::ignore(std::initializer_list<const char*> keys) {
  for (const char* k : keys) seen_.insert(k);
}

void GgufConfigReader::finish(const std::string& family) {
  for (const auto& [key, value] : g_.metadata)
    if (key.rfind(prefix_, 0) == 0 && !seen_.count(key.substr(prefix_.size())))
      fail(path(), "metadata key '" + key + "' is not implemented by the " + family + " family");
}

// ---- Shared Llama-like keys ----

namespace {

std::vector<float> float_list(const json& v, const std::string& path, const char* key) {
  if (!v.is_array()) fail(path, std::string("rope_scaling: '") + key + "' is not a list");
  std::vector<float> out;
  for (const json& e : v) {
    if (!e.is_number()) fail(path, std::string("rope_scaling: '") + key + "' holds a non-number");
    out.push_back(e.get<float>());
  }
  return out;
}

void read_rope_scaling_hf(HfConfigReader& r, const json& rs, ModelConfig& c, bool allow_longrope) {
  const std::string& path = r.path();
  if (!rs.is_object()) fail(path, "field 'rope_scaling' is not an object");
  std::set<std::string> read;
  auto field = [&](const char* key) -> const json* {
    read.insert(key);
    return rs.contains(key) && !rs[key].is_null() ? &rs[key] : nullptr;
  };
  auto number = [&](const char* key, double fallback) {
    const json* v = field(key);
    if (!v) return fallback;
    if (!v->is_number()) fail(path, std::string("rope_scaling: '") + key + "' is not a number");
    return v->get<double>();
  };
  // Newer configs carry theta inside "rope_parameters".
  if (const json* theta = field("rope_theta")) {
    if (!theta->is_number()) fail(path, "rope_parameters: 'rope_theta' is not a number");
    c.rope_theta = theta->get<float>();
  }
  if (number("partial_rotary_factor", 1.0) != 1.0) fail(path, "partial rotary embeddings are not implemented");
  std::string type;
  if (const json* t = field("rope_type")) type = t->is_string() ? t->get<std::string>() : "";
  if (const json* t = field("type"); t && type.empty()) type = t->is_string() ? t->get<std::string>() : "";
  if (const json* a = field("rope_type"), *b = field("type"); a && b && *a != *b)
    fail(path, "rope_scaling: 'rope_type' " + a->dump() + " and 'type' " + b->dump() + " disagree");
  if (type == "linear") {
    c.rope_scaling = RopeScaling::linear;
    c.rope_factor = static_cast<float>(number("factor", 0));
  } else if (type == "llama3") {
    c.rope_scaling = RopeScaling::llama3;
    c.rope_factor = static_cast<float>(number("factor", 0));
    c.rope_low_freq_factor = static_cast<float>(number("low_freq_factor", 1.0));
    c.rope_high_freq_factor = static_cast<float>(number("high_freq_factor", 4.0));
    c.rope_original_ctx = static_cast<int>(number("original_max_position_embeddings", 8192));
    if (!(c.rope_high_freq_factor > c.rope_low_freq_factor))
      fail(path, "rope_scaling: high_freq_factor must exceed low_freq_factor");
  } else if (allow_longrope && (type == "longrope" || type == "su")) {
    c.rope_scaling = RopeScaling::longrope;
    const json* s = field("short_factor");
    const json* l = field("long_factor");
    if (!s || !l) fail(path, "rope_scaling: longrope needs short_factor and long_factor");
    c.rope_short_factors = float_list(*s, path, "short_factor");
    c.rope_long_factors = float_list(*l, path, "long_factor");
    c.rope_original_ctx = static_cast<int>(
        number("original_max_position_embeddings", r.opt_int("original_max_position_embeddings", c.n_ctx_train)));
    const double factor = number("factor", static_cast<double>(c.n_ctx_train) / c.rope_original_ctx);
    c.rope_attn_factor = static_cast<float>(
        number("attention_factor", factor > 1 ? std::sqrt(1 + std::log(factor) / std::log(c.rope_original_ctx)) : 1.0));
    c.rope_factor = 1.0f;
  } else if (type != "default") {
    fail(path, "unsupported rope_scaling type '" + type + "'");
  }
  if ((c.rope_scaling == RopeScaling::linear || c.rope_scaling == RopeScaling::llama3) && !(c.rope_factor > 0))
    fail(path, "rope_scaling: factor must be positive");
  for (const auto& [key, value] : rs.items())
    if (!read.count(key)) fail(path, "rope_scaling key '" + key + "' is not implemented");
}

}  // namespace

void read_llama_hf(HfConfigReader& r, ModelConfig& c, bool allow_longrope) {
  c.architecture = r.opt_string("model_type", "");
  c.n_layer = r.need_int("num_hidden_layers");
  c.n_embd = r.need_int("hidden_size");
  c.n_ff = r.opt_int("intermediate_size", 0);
  c.n_head = r.need_int("num_attention_heads");
  c.n_kv_head = r.opt_int("num_key_value_heads", c.n_head);
  c.head_dim = r.opt_int("head_dim", c.n_head > 0 ? c.n_embd / c.n_head : 0);
  c.n_vocab = r.need_int("vocab_size");
  c.n_ctx_train = r.opt_int("max_position_embeddings", 2048);
  c.rms_eps = static_cast<float>(r.opt_double("rms_norm_eps", 1e-6));
  c.rope_theta = static_cast<float>(r.opt_double("rope_theta", 10000.0));
  c.tied_embeddings = r.opt_bool("tie_word_embeddings", false);
  c.rope_pairing = RopePairing::half;
  if (r.has("rope_scaling")) read_rope_scaling_hf(r, r.get("rope_scaling"), c, allow_longrope);
  if (r.has("rope_parameters")) read_rope_scaling_hf(r, r.get("rope_parameters"), c, allow_longrope);
  r.refuse_unless("partial_rotary_factor", 1.0);
  r.refuse_unless("mlp_bias", false);
}

void read_layer_types_hf(HfConfigReader& r, const ModelConfig& c) {
  if (!r.has("layer_types")) return;
  const json& types = r.get("layer_types");
  bool same = types.is_array() && static_cast<int>(types.size()) == c.n_layer;
  for (int l = 0; same && l < c.n_layer; ++l)
    same = types[l] == (c.layer_window(l) > 0 ? "sliding_attention" : "full_attention");
  if (!same)
    fail(r.path(), "config key 'layer_types' = " + types.dump() + " does not match the family's attention pattern");
}

void read_llama_gguf(GgufConfigReader& r, ModelConfig& c) {
  c.n_layer = r.need_int("block_count");
  c.n_embd = r.need_int("embedding_length");
  c.n_ff = r.opt_int("feed_forward_length", 0);
  c.n_head = r.need_int("attention.head_count");
  c.n_kv_head = r.opt_int("attention.head_count_kv", c.n_head);
  c.head_dim = r.opt_int("attention.key_length", c.n_head ? c.n_embd / c.n_head : 0);
  if (r.opt_int("attention.value_length", c.head_dim) != c.head_dim)
    fail(r.path(), "attention.value_length differs from key_length (not implemented)");
  if (r.opt_int("rope.dimension_count", c.head_dim) != c.head_dim)
    fail(r.path(), "rope.dimension_count differs from the head dimension (partial rotary is not implemented)");
  c.n_ctx_train = r.opt_int("context_length", 2048);
  c.rms_eps = static_cast<float>(r.opt_double("attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = static_cast<float>(r.opt_double("rope.freq_base", 10000.0));
  const std::string type = r.opt_string("rope.scaling.type", "none");
  if (type == "linear") {
    c.rope_scaling = RopeScaling::linear;
    c.rope_factor = static_cast<float>(r.opt_double("rope.scaling.factor", 1.0));
    if (!(c.rope_factor > 0)) fail(r.path(), "rope.scaling.factor must be positive");
  } else if (type != "none") {
    fail(r.path(), "unsupported RoPE scaling type '" + type + "'");
  }
  // Some converters write zero expert counts into dense files; a non-zero count makes the
  // file an MoE family's (family_for_gguf), whose reader reads them again.
  if (r.opt_int("expert_count", 0) == 0 && r.opt_int("expert_used_count", 0) != 0)
    fail(r.path(), "expert_used_count " + std::to_string(r.opt_int("expert_used_count", 0)) +
                       " with expert_count 0: the counts contradict each other");
  // vocab_size is checked against token_embd by the tensor table; the rest records training.
  r.ignore({"vocab_size", "rope.scaling.finetuned", "rope.scaling.original_context_length", "rope.scaling.factor"});
}

void require_silu(HfConfigReader& r, ModelConfig& c, const std::string& family) {
  const std::string act = r.opt_string("hidden_act", "silu");
  if (act != "silu") fail(r.path(), "hidden_act '" + act + "' is not implemented by the " + family + " family (silu)");
  c.activation = Activation::silu;
}

void read_qwen_window_hf(HfConfigReader& r) {
  r.refuse_unless("use_sliding_window", false);
  r.ignore({"sliding_window", "max_window_layers"});
}

void read_moe_gguf(GgufConfigReader& r, ModelConfig& c, bool has_ff_key) {
  c.n_expert = r.opt_int("expert_count", 0);
  c.n_expert_used = r.opt_int("expert_used_count", 0);
  c.n_ff_expert = has_ff_key ? r.opt_int("expert_feed_forward_length", c.n_ff) : c.n_ff;
}

}  // namespace rhead
