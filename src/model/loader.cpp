// Model loaders. Every format is first turned into one set of named tensor views in
// canonical (GGUF-style) names with row-major shapes; bind_weights then checks every shape
// against the config and builds the Model. Nothing is copied except small norm/bias vectors.
#include "model/loader.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "io/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "model/builtin.h"
#include "model/family.h"
#include "ops/quant.h"

namespace rhead {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct TensorRef {
  DType type;
  std::vector<int64_t> shape;  // row-major, outermost first: a Linear weight is [out, in]
  const void* data;
  std::string file;
};
using TensorSet = std::map<std::string, TensorRef>;

Weight bind_matrix(const TensorSet& ts, const std::string& name, int64_t rows, int64_t cols,
                   const std::string& where) {
  auto it = ts.find(name);
  if (it == ts.end()) fail(where, "missing tensor '" + name + "'");
  const TensorRef& t = it->second;
  if (t.shape.size() != 2 || t.shape[0] != rows || t.shape[1] != cols)
    fail(t.file, "tensor '" + name + "' has shape mismatch: expected [" + std::to_string(rows) + ", " +
                     std::to_string(cols) + "]");
  return Weight{t.type, t.data, rows, cols};
}

std::vector<float> bind_vector(const TensorSet& ts, const std::string& name, int64_t n,
                               const std::string& where) {
  auto it = ts.find(name);
  if (it == ts.end()) fail(where, "missing tensor '" + name + "'");
  const TensorRef& t = it->second;
  int64_t count = 1;
  for (int64_t d : t.shape) count *= d;
  if (count != n)
    fail(t.file, "tensor '" + name + "' has shape mismatch: expected " + std::to_string(n) + " elements");
  std::vector<float> v(n);
  dequantize_row(t.type, t.data, v.data(), n);
  return v;
}

void bind_weights(Model& m, const TensorSet& ts, const FamilyTraits& fam, const std::string& where) {
  const ModelConfig& c = m.config;
  m.tok_embd = bind_matrix(ts, "token_embd.weight", c.n_vocab, c.n_embd, where);
  m.output_norm = bind_vector(ts, "output_norm.weight", c.n_embd, where);
  if (ts.count("output.weight") && !c.tied_embeddings)
    m.output = bind_matrix(ts, "output.weight", c.n_vocab, c.n_embd, where);
  else
    m.output = m.tok_embd;
  if (ts.count("rope_freqs.weight"))
    m.rope_freq_factors = bind_vector(ts, "rope_freqs.weight", c.head_dim / 2, where);
  m.layers.resize(c.n_layer);
  for (int i = 0; i < c.n_layer; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    LayerWeights& l = m.layers[i];
    l.attn_norm = bind_vector(ts, p + "attn_norm.weight", c.n_embd, where);
    l.wq = bind_matrix(ts, p + "attn_q.weight", c.q_dim(), c.n_embd, where);
    l.wk = bind_matrix(ts, p + "attn_k.weight", c.kv_dim(), c.n_embd, where);
    l.wv = bind_matrix(ts, p + "attn_v.weight", c.kv_dim(), c.n_embd, where);
    l.wo = bind_matrix(ts, p + "attn_output.weight", c.n_embd, c.q_dim(), where);
    if (fam.qkv_bias || ts.count(p + "attn_q.bias")) {
      l.bq = bind_vector(ts, p + "attn_q.bias", c.q_dim(), where);
      l.bk = bind_vector(ts, p + "attn_k.bias", c.kv_dim(), where);
      l.bv = bind_vector(ts, p + "attn_v.bias", c.kv_dim(), where);
    }
    l.ffn_norm = bind_vector(ts, p + "ffn_norm.weight", c.n_embd, where);
    l.w_gate = bind_matrix(ts, p + "ffn_gate.weight", c.n_ff, c.n_embd, where);
    l.w_up = bind_matrix(ts, p + "ffn_up.weight", c.n_ff, c.n_embd, where);
    l.w_down = bind_matrix(ts, p + "ffn_down.weight", c.n_embd, c.n_ff, where);
  }
}

void check_config(const ModelConfig& c, const std::string& where) {
  auto positive = [&](int v, const char* what) {
    if (v <= 0) fail(where, std::string("invalid or missing ") + what);
  };
  positive(c.n_layer, "layer count");
  positive(c.n_embd, "embedding width");
  positive(c.n_ff, "feed-forward width");
  positive(c.n_head, "head count");
  positive(c.n_kv_head, "KV head count");
  positive(c.head_dim, "head dimension");
  positive(c.n_vocab, "vocabulary size");
  if (c.n_head % c.n_kv_head != 0) fail(where, "head count is not a multiple of the KV head count");
  if (c.head_dim % 2 != 0) fail(where, "head dimension must be even for RoPE");
  if (c.n_ctx_train <= 0) fail(where, "invalid or missing context length");
}

// ---- GGUF ----

ModelConfig config_from_gguf(const GGUFFile& g, const FamilyTraits& fam) {
  const std::string a = fam.gguf_arch + ".";
  auto need_int = [&](const std::string& key) -> int {
    auto v = g.get_int(a + key);
    if (!v) fail(g.path(), "missing metadata key '" + a + key + "'");
    return static_cast<int>(*v);
  };
  ModelConfig c;
  c.family = fam.family;
  c.architecture = fam.gguf_arch;
  c.n_layer = need_int("block_count");
  c.n_embd = need_int("embedding_length");
  c.n_ff = need_int("feed_forward_length");
  c.n_head = need_int("attention.head_count");
  c.n_kv_head = static_cast<int>(g.get_int(a + "attention.head_count_kv").value_or(c.n_head));
  c.head_dim = static_cast<int>(g.get_int(a + "attention.key_length").value_or(c.n_head ? c.n_embd / c.n_head : 0));
  c.n_ctx_train = static_cast<int>(g.get_int(a + "context_length").value_or(2048));
  c.rms_eps = static_cast<float>(g.get_float(a + "attention.layer_norm_rms_epsilon").value_or(1e-5));
  c.rope_theta = static_cast<float>(g.get_float(a + "rope.freq_base").value_or(10000.0));
  c.rope_pairing = fam.gguf_rope_pairing;
  c.qkv_bias = fam.qkv_bias;
  if (auto type = g.get_string(a + "rope.scaling.type")) {
    if (*type == "linear") {
      c.rope_scaling = RopeScaling::linear;
      c.rope_factor = static_cast<float>(g.get_float(a + "rope.scaling.factor").value_or(1.0));
    } else if (*type != "none") {
      fail(g.path(), "unsupported RoPE scaling type '" + *type + "'");
    }
  }
  if (const GGUFTensorInfo* t = g.find_tensor("token_embd.weight"))
    c.n_vocab = static_cast<int>(t->dims.size() == 2 ? t->dims[1] : 0);
  c.tied_embeddings = g.find_tensor("output.weight") == nullptr;
  return c;
}

}  // namespace

std::shared_ptr<Model> load_gguf_model(const std::string& path) { return model_from_gguf(GGUFFile::open(path)); }

std::shared_ptr<Model> model_from_gguf(const GGUFFile& g) {
  const std::string& path = g.path();
  auto arch = g.get_string("general.architecture");
  if (!arch) fail(path, "missing metadata key 'general.architecture'");
  const FamilyTraits* fam = family_for_gguf_arch(*arch);
  if (!fam) fail(path, "unsupported architecture '" + *arch + "'");
  auto m = std::make_shared<Model>();
  m->config = config_from_gguf(g, *fam);
  m->source = path;
  m->format = "gguf";
  check_config(m->config, path);
  TensorSet ts;
  for (const auto& t : g.tensors) {
    std::vector<int64_t> shape(t.dims.rbegin(), t.dims.rend());  // ggml order -> row-major
    ts[t.name] = TensorRef{t.type, shape, t.data, path};
  }
  bind_weights(*m, ts, *fam, path);
  m->keep_alive.push_back(g.file);
  return m;
}

// ---- Hugging Face directory ----

namespace {

std::string canonical_hf_name(const std::string& hf) {
  static const std::regex layer_re(R"(model\.layers\.(\d+)\.(.+))");
  static const std::map<std::string, std::string> top = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"}};
  static const std::map<std::string, std::string> per_layer = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  if (auto it = top.find(hf); it != top.end()) return it->second;
  std::smatch m;
  if (std::regex_match(hf, m, layer_re)) {
    if (auto it = per_layer.find(m[2].str()); it != per_layer.end())
      return "blk." + m[1].str() + "." + it->second;
  }
  return "";
}

ModelConfig config_from_hf(const json& j, const std::string& path, const FamilyTraits& fam) {
  // Field readers that name the field in their error: nlohmann's own messages do not.
  auto field = [&](const json& obj, const char* key) -> const json& {
    if (!obj.contains(key) || obj[key].is_null()) fail(path, std::string("missing field '") + key + "'");
    return obj[key];
  };
  auto as = [&]<typename T>(const json& v, const char* key, T) -> T {
    try {
      return v.get<T>();
    } catch (const json::exception&) {
      fail(path, std::string("field '") + key + "' has the wrong type (" + v.type_name() + ")");
    }
  };
  auto need_int = [&](const char* key) { return as(field(j, key), key, int{}); };
  auto opt = [&]<typename T>(const json& obj, const char* key, T fallback) -> T {
    if (!obj.contains(key) || obj[key].is_null()) return fallback;
    return as(obj[key], key, fallback);
  };
  ModelConfig c;
  c.family = fam.family;
  c.architecture = as(field(j, "model_type"), "model_type", std::string());
  c.n_layer = need_int("num_hidden_layers");
  c.n_embd = need_int("hidden_size");
  c.n_ff = need_int("intermediate_size");
  c.n_head = need_int("num_attention_heads");
  c.n_kv_head = opt(j, "num_key_value_heads", c.n_head);
  c.head_dim = opt(j, "head_dim", c.n_head > 0 ? c.n_embd / c.n_head : 0);
  c.n_vocab = need_int("vocab_size");
  c.n_ctx_train = opt(j, "max_position_embeddings", 2048);
  c.rms_eps = opt(j, "rms_norm_eps", 1e-6f);
  c.rope_theta = opt(j, "rope_theta", 10000.0f);
  c.tied_embeddings = opt(j, "tie_word_embeddings", false);
  c.rope_pairing = RopePairing::half;
  c.qkv_bias = fam.qkv_bias || opt(j, "attention_bias", false);
  std::string act = opt(j, "hidden_act", std::string("silu"));
  if (act != "silu") fail(path, "unsupported hidden_act '" + act + "' (need silu)");
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    if (!rs.is_object()) fail(path, "field 'rope_scaling' is not an object");
    std::string type = opt(rs, "rope_type", opt(rs, "type", std::string("")));
    if (type == "linear") {
      c.rope_scaling = RopeScaling::linear;
      c.rope_factor = as(field(rs, "factor"), "factor", float{});
    } else if (type == "llama3") {
      c.rope_scaling = RopeScaling::llama3;
      c.rope_factor = as(field(rs, "factor"), "factor", float{});
      c.rope_low_freq_factor = opt(rs, "low_freq_factor", 1.0f);
      c.rope_high_freq_factor = opt(rs, "high_freq_factor", 4.0f);
      c.rope_original_ctx = opt(rs, "original_max_position_embeddings", 8192);
      if (!(c.rope_high_freq_factor > c.rope_low_freq_factor))
        fail(path, "rope_scaling: high_freq_factor must exceed low_freq_factor");
    } else if (type != "default") {
      fail(path, "unsupported rope_scaling type '" + type + "'");
    }
    if (c.rope_scaling != RopeScaling::none && !(c.rope_factor > 0))
      fail(path, "rope_scaling: factor must be positive");
  }
  return c;
}

}  // namespace

std::shared_ptr<Model> load_hf_model(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  if (!fs::exists(config_path)) fail(dir, "missing config.json");
  json cfg;
  try {
    cfg = json::parse(read_text_file(config_path));
  } catch (const json::exception& e) {
    fail(config_path, std::string("invalid JSON: ") + e.what());
  }
  std::string model_type = cfg.value("model_type", std::string(""));
  const FamilyTraits* fam = family_for_hf_model_type(model_type);
  if (!fam) fail(config_path, "unsupported model_type '" + model_type + "'");
  auto m = std::make_shared<Model>();
  m->config = config_from_hf(cfg, config_path, *fam);
  m->source = dir;
  m->format = "hf";
  check_config(m->config, config_path);

  std::vector<std::string> files;
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (fs::exists(dir + "/model.safetensors")) {
    files.push_back(dir + "/model.safetensors");
  } else if (fs::exists(index_path)) {
    json index;
    try {
      index = json::parse(read_text_file(index_path));
      std::set<std::string> unique;
      for (auto& [name, file] : index.at("weight_map").items()) unique.insert(file.get<std::string>());
      for (const auto& f : unique) {
        if (f.find('/') != std::string::npos) fail(index_path, "shard name '" + f + "' is not a plain file name");
        files.push_back(dir + "/" + f);
      }
    } catch (const json::exception& e) {
      fail(index_path, std::string("invalid index: ") + e.what());
    }
  } else {
    fail(dir, "no model.safetensors or model.safetensors.index.json");
  }
  TensorSet ts;
  for (const auto& f : files) {
    auto st = std::make_shared<SafetensorsFile>(SafetensorsFile::open(f));
    for (const auto& [name, t] : st->tensors) {
      std::string canon = canonical_hf_name(name);
      if (!canon.empty()) ts[canon] = TensorRef{t.type, t.shape, t.data, f};
    }
    m->keep_alive.push_back(st);
  }
  bind_weights(*m, ts, *fam, dir);
  return m;
}

// ---- llama2.c checkpoint ----
// Layout: 7 x i32 {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len}
// (vocab_size < 0 means an unshared classifier follows), then f32 arrays:
// token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim],
// wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim],
// w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final [dim], freq_cis_real [seq, hd/2],
// freq_cis_imag [seq, hd/2], then wcls [vocab, dim] if unshared.
// Q/K rows are in the adjacent-pair RoPE layout; w1 = gate, w3 = up, w2 = down.

std::shared_ptr<Model> load_llama2c_model(const std::string& path) {
  auto file = MappedFile::open(path);
  int32_t h[7];
  std::memcpy(h, file->view(0, sizeof(h), "truncated: header"), sizeof(h));
  auto m = std::make_shared<Model>();
  ModelConfig& c = m->config;
  c.family = Family::llama;
  c.architecture = "llama";
  c.n_embd = h[0];
  c.n_ff = h[1];
  c.n_layer = h[2];
  c.n_head = h[3];
  c.n_kv_head = h[4];
  c.tied_embeddings = h[5] > 0;
  c.n_vocab = std::abs(h[5]);
  c.n_ctx_train = h[6];
  c.head_dim = c.n_head > 0 ? c.n_embd / c.n_head : 0;
  c.rope_pairing = RopePairing::adjacent;
  c.rms_eps = 1e-5f;
  m->source = path;
  m->format = "llama2c";
  for (int v : h)
    if (v == 0 || std::abs(static_cast<int64_t>(v)) > (1 << 24)) fail(path, "corrupt header");
  check_config(c, path);
  if (c.n_head * c.head_dim != c.n_embd) fail(path, "dim is not a multiple of n_heads");

  TensorSet ts;
  uint64_t off = sizeof(h);
  auto take = [&](const std::string& name, std::vector<int64_t> shape) {
    uint64_t n = 1;
    for (int64_t d : shape) n *= static_cast<uint64_t>(d);
    const uint8_t* p = file->view(off, n * 4, "truncated: tensor '" + name + "'");
    ts[name] = TensorRef{DType::F32, shape, p, path};
    off += n * 4;
  };
  auto take_layers = [&](const std::string& suffix, std::vector<int64_t> shape) {
    for (int l = 0; l < c.n_layer; ++l) take("blk." + std::to_string(l) + "." + suffix, shape);
  };
  const int64_t D = c.n_embd, F = c.n_ff, KV = c.kv_dim();
  take("token_embd.weight", {c.n_vocab, D});
  take_layers("attn_norm.weight", {D});
  take_layers("attn_q.weight", {D, D});
  take_layers("attn_k.weight", {KV, D});
  take_layers("attn_v.weight", {KV, D});
  take_layers("attn_output.weight", {D, D});
  take_layers("ffn_norm.weight", {D});
  take_layers("ffn_gate.weight", {F, D});
  take_layers("ffn_down.weight", {D, F});
  take_layers("ffn_up.weight", {F, D});
  take("output_norm.weight", {D});
  off += static_cast<uint64_t>(c.n_ctx_train) * c.head_dim * 4;  // freq_cis_real, freq_cis_imag: unused
  if (!c.tied_embeddings) take("output.weight", {c.n_vocab, D});
  else file->view(0, off, "truncated: RoPE tables");
  bind_weights(*m, ts, llama_family(), path);
  m->keep_alive.push_back(file);
  return m;
}

LoadedModel load_model(const std::string& path, const LoadOptions& options) {
  LoadedModel out;
  const std::string builtin_prefix = "builtin:";
  if (path.rfind(builtin_prefix, 0) == 0) return load_builtin_model(path.substr(builtin_prefix.size()));
  if (!fs::exists(path)) fail(path, "no such file or directory");
  if (fs::is_directory(path)) {
    out.model = load_hf_model(path);
    // Weights-only directories are valid models; the caller may pass a tokenizer separately.
    if (fs::exists(path + "/tokenizer.json") || fs::exists(path + "/tokenizer.model"))
      out.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_hf_dir(path));
  } else if (path.size() >= 5 && path.substr(path.size() - 5) == ".gguf") {
    GGUFFile g = GGUFFile::open(path);
    out.model = model_from_gguf(g);
    if (g.find("tokenizer.ggml.model")) out.tokenizer = std::make_shared<Tokenizer>(Tokenizer::from_gguf(g));
  } else {
    out.model = load_llama2c_model(path);
  }
  if (!options.tokenizer_path.empty())
    out.tokenizer = std::make_shared<Tokenizer>(Tokenizer::load(options.tokenizer_path));
  if (out.tokenizer && out.tokenizer->n_vocab() > out.model->config.n_vocab)
    fail(path, "tokenizer has " + std::to_string(out.tokenizer->n_vocab()) + " tokens but the model only " +
                   std::to_string(out.model->config.n_vocab));
  return out;
}

}  // namespace rhead
