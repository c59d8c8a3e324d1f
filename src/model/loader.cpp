// Model loaders. The family's hparams reader builds the config (refusing keys it does not
// implement); every file tensor is then mapped through the family's tensor table to a
// canonical (GGUF-style) name with a row-major shape, or refused; bind_weights checks every
// shape against the config and builds the Model. Nothing is copied except small norm/bias
// vectors.
#include "model/loader.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "io/checked.h"
#include "io/error.h"
#include "io/gguf.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/builtin.h"
#include "model/config_checks.h"
#include "model/family.h"
#include "model/hparams.h"
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
  float add = 0.0f;  // added to every element of a vector when read (TensorEntry::hf_add)
};
// A canonical tensor: one piece, or one piece per expert when the file stores experts separately.
struct CanonicalTensor {
  std::vector<TensorRef> pieces;
  bool per_expert = false;
};
using TensorSet = std::map<std::string, CanonicalTensor>;

int64_t dim_value(Dim d, const ModelConfig& c) {
  switch (d) {
    case Dim::embd: return c.n_embd;
    case Dim::ff: return c.n_ff;
    case Dim::q: return c.q_dim();
    case Dim::kv: return c.kv_dim();
    case Dim::vocab: return c.n_vocab;
    case Dim::head_dim: return c.head_dim;
    case Dim::rope_half: return c.head_dim / 2;
    case Dim::expert: return c.n_expert;
    case Dim::ff_expert: return c.n_ff_expert;
  }
  return 0;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Matches `name` against a pattern with "{L}" / "{E}" placeholders (decimal indices).
bool match_pattern(std::string_view pattern, std::string_view name, int& layer, int& expert) {
  layer = expert = -1;
  size_t p = 0, n = 0;
  while (p < pattern.size()) {
    if (pattern.compare(p, 3, "{L}") == 0 || pattern.compare(p, 3, "{E}") == 0) {
      size_t end = n;
      while (end < name.size() && end - n < 9 && name[end] >= '0' && name[end] <= '9') ++end;
      if (end == n) return false;
      const int v = std::stoi(std::string(name.substr(n, end - n)));
      (pattern[p + 1] == 'L' ? layer : expert) = v;
      n = end;
      p += 3;
    } else {
      if (n >= name.size() || name[n] != pattern[p]) return false;
      ++n;
      ++p;
    }
  }
  return n == name.size();
}

std::string substitute(std::string pattern, int layer) {
  if (size_t at = pattern.find("{L}"); at != std::string::npos) pattern.replace(at, 3, std::to_string(layer));
  return pattern;
}

// Files name tensors their own way: through the family's table, every file tensor becomes a
// canonical tensor, a row block of a fused one, a per-expert piece, or a tensor ignored on
// purpose. Any other tensor is refused.
void add_file_tensor(TensorSet& ts, const FamilyDef& fam, const ModelConfig& c, bool gguf, const std::string& name,
                     const TensorRef& ref) {
  bool known = false;
  for (const TensorEntry& e : fam.tensors) {
    const std::string& pattern = gguf ? e.gguf : e.hf;
    int layer = -1, expert = -1;
    if (pattern.empty() || !match_pattern(pattern, name, layer, expert)) continue;
    if (layer >= c.n_layer)
      fail(ref.file, "tensor '" + name + "' names a layer beyond the model's " + std::to_string(c.n_layer));
    known = true;
    if (e.canonical.empty()) continue;
    TensorRef r = ref;
    if (!gguf) r.add = e.hf_add;
    if (!e.fused_rows.empty()) {
      int64_t total = 0, begin = 0;
      for (size_t i = 0; i < e.fused_rows.size(); ++i) {
        if (static_cast<int>(i) == e.part) begin = total;
        total += dim_value(e.fused_rows[i], c);
      }
      if (r.shape.size() != 2 || r.shape[0] != total)
        fail(r.file, "fused tensor '" + name + "' has shape " + shape_text(r.shape) + ", expected " +
                         std::to_string(total) + " rows");
      r.shape[0] = dim_value(e.fused_rows[e.part], c);
      r.data = static_cast<const uint8_t*>(r.data) + begin * row_bytes(r.type, r.shape[1]);
    }
    const std::string canon = substitute(e.canonical, layer);
    CanonicalTensor& t = ts[canon];
    if (expert >= 0) {
      if (expert >= c.n_expert)
        fail(r.file,
             "tensor '" + name + "' names expert " + std::to_string(expert) + " of " + std::to_string(c.n_expert));
      if (!t.per_expert && !t.pieces.empty()) fail(r.file, "tensor '" + canon + "' is given twice");
      t.per_expert = true;
      t.pieces.resize(c.n_expert, TensorRef{DType::F32, {}, nullptr, ""});
      if (t.pieces[expert].data) fail(r.file, "tensor '" + name + "' is given twice");
      t.pieces[expert] = r;
    } else {
      if (!t.pieces.empty()) fail(r.file, "tensor '" + canon + "' is given twice");
      t.pieces = {r};
    }
  }
  if (!known) fail(ref.file, "tensor '" + name + "' is not part of the " + fam.name + " family");
}

Weight as_matrix(const TensorRef& t) { return Weight{t.type, t.data, t.shape[0], t.shape[1]}; }

// The small tensors that feed the maths directly (norms, biases, RoPE factors, the router) are
// scanned at load: a NaN or an infinity there turns every output into NaN. Large weight
// matrices are not scanned.
void check_finite(const float* v, int64_t n, const TensorRef& t, const std::string& name, bool positive = false) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i]) || (positive && !(v[i] > 0)))
      fail(t.file, "tensor '" + name + "' holds " + std::to_string(v[i]) + " at element " + std::to_string(i) +
                       (positive ? " (must be positive and finite)" : " (must be finite)"));
}

std::vector<float> as_vector(const TensorRef& t, const std::string& name, bool positive = false) {
  const int64_t n = checked_element_count(t.shape, t.file, "tensor shape", /*allow_zero=*/true);
  std::vector<float> v(n);
  dequantize_row(t.type, t.data, v.data(), n);
  if (t.add != 0.0f)
    for (float& x : v) x += t.add;
  check_finite(v.data(), n, t, name, positive);
  return v;
}

// A router matrix (n_expert rows), scanned row by row.
Weight as_checked_router(const TensorRef& t, const std::string& name) {
  const Weight w = as_matrix(t);
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(t.type, static_cast<const uint8_t*>(t.data) + r * row_bytes(t.type, w.cols), row.data(), w.cols);
    check_finite(row.data(), w.cols, t, name);
  }
  return w;
}

// Where a canonical tensor goes in the Model.
void store(Model& m, const std::string& canon, int layer, const CanonicalTensor& t) {
  static const std::map<std::string, Weight LayerWeights::*> matrices = {
      {"attn_q.weight", &LayerWeights::wq},       {"attn_k.weight", &LayerWeights::wk},
      {"attn_v.weight", &LayerWeights::wv},       {"attn_output.weight", &LayerWeights::wo},
      {"ffn_gate.weight", &LayerWeights::w_gate}, {"ffn_up.weight", &LayerWeights::w_up},
      {"ffn_down.weight", &LayerWeights::w_down}, {"ffn_gate_inp.weight", &LayerWeights::router}};
  static const std::map<std::string, std::vector<Weight> LayerWeights::*> experts = {
      {"ffn_gate_exps.weight", &LayerWeights::exp_gate},
      {"ffn_up_exps.weight", &LayerWeights::exp_up},
      {"ffn_down_exps.weight", &LayerWeights::exp_down}};
  static const std::map<std::string, std::vector<float> LayerWeights::*> vectors = {
      {"attn_norm.weight", &LayerWeights::attn_norm},
      {"attn_q.bias", &LayerWeights::bq},
      {"attn_k.bias", &LayerWeights::bk},
      {"attn_v.bias", &LayerWeights::bv},
      {"attn_output.bias", &LayerWeights::bo},
      {"attn_q_norm.weight", &LayerWeights::q_norm},
      {"attn_k_norm.weight", &LayerWeights::k_norm},
      {"post_attention_norm.weight", &LayerWeights::post_attn_norm},
      {"ffn_norm.weight", &LayerWeights::ffn_norm},
      {"post_ffw_norm.weight", &LayerWeights::post_ffn_norm}};
  const TensorRef& first = t.pieces.front();
  if (layer < 0) {
    if (canon == "token_embd.weight")
      m.tok_embd = as_matrix(first);
    else if (canon == "output.weight")
      m.output = as_matrix(first);
    else if (canon == "output_norm.weight")
      m.output_norm = as_vector(first, canon);
    else if (canon == "rope_freqs.weight")
      m.rope_freq_factors = as_vector(first, canon, true);
    else if (canon == "rope_factors_short.weight")
      m.config.rope_short_factors = as_vector(first, canon, true);
    else if (canon == "rope_factors_long.weight")
      m.config.rope_long_factors = as_vector(first, canon, true);
    else
      throw Error("internal: no place for tensor '" + canon + "'");
    return;
  }
  const std::string base = canon.substr(canon.find('.', 4) + 1);  // after "blk.N."
  LayerWeights& l = m.layers[layer];
  if (base == "ffn_gate_inp.weight") {
    l.router = as_checked_router(first, substitute(canon, layer));
  } else if (auto it = matrices.find(base); it != matrices.end()) {
    l.*(it->second) = as_matrix(first);
  } else if (auto ie = experts.find(base); ie != experts.end()) {
    std::vector<Weight>& out = l.*(ie->second);
    out.clear();
    if (t.per_expert) {
      for (const TensorRef& p : t.pieces) out.push_back(as_matrix(p));
    } else {  // one [n_expert, rows, cols] tensor
      const int64_t rows = first.shape[1], cols = first.shape[2];
      for (int64_t e = 0; e < first.shape[0]; ++e)
        out.push_back(Weight{
            first.type, static_cast<const uint8_t*>(first.data) + e * rows * row_bytes(first.type, cols), rows, cols});
    }
  } else if (auto iv = vectors.find(base); iv != vectors.end()) {
    l.*(iv->second) = as_vector(first, substitute(canon, layer));
  } else {
    throw Error("internal: no place for tensor '" + canon + "'");
  }
}

// Checks every canonical tensor of the family's table against the config (present unless
// optional, shape) and builds the Model's weights.
void bind_weights(Model& m, const TensorSet& ts, const FamilyDef& fam, const std::string& where) {
  ModelConfig& c = m.config;
  m.layers.assign(c.n_layer, LayerWeights{});
  std::set<std::string> done;
  for (const TensorEntry& e : fam.tensors) {
    if (e.canonical.empty() || !done.insert(e.canonical).second) continue;
    const bool per_layer = e.canonical.find("{L}") != std::string::npos;
    bool optional = false;  // optional if any entry for this canonical name says so
    for (const TensorEntry& o : fam.tensors)
      if (o.canonical == e.canonical && o.optional) optional = true;
    std::vector<int64_t> expected;
    for (Dim d : e.shape) expected.push_back(dim_value(d, c));
    for (int layer = per_layer ? 0 : -1; layer < (per_layer ? c.n_layer : 0); ++layer) {
      const std::string name = per_layer ? substitute(e.canonical, layer) : e.canonical;
      auto it = ts.find(name);
      if (it == ts.end()) {
        if (optional) continue;
        fail(where, "missing tensor '" + name + "'");
      }
      const CanonicalTensor& t = it->second;
      if (t.per_expert) {
        const std::vector<int64_t> piece(expected.begin() + 1, expected.end());
        for (size_t i = 0; i < t.pieces.size(); ++i) {
          if (!t.pieces[i].data) fail(where, "tensor '" + name + "' lacks expert " + std::to_string(i));
          if (t.pieces[i].shape != piece)
            fail(t.pieces[i].file, "tensor '" + name + "' expert " + std::to_string(i) + " has shape " +
                                       shape_text(t.pieces[i].shape) + ", expected " + shape_text(piece));
        }
      } else {
        const TensorRef& r = t.pieces.front();
        const int64_t count = checked_element_count(r.shape, r.file, "tensor '" + name + "'", /*allow_zero=*/true);
        const int64_t want = checked_element_count(expected, where, "expected shape of '" + name + "'", true);
        const bool vector = expected.size() == 1;
        if (vector ? count != want : r.shape != expected)
          fail(r.file, "tensor '" + name + "' has shape " + shape_text(r.shape) + ", expected " + shape_text(expected));
      }
      store(m, e.canonical, layer, t);
    }
  }
  if (!m.output.data || c.tied_embeddings) m.output = m.tok_embd;
  if (c.rope_scaling == RopeScaling::longrope || !c.rope_long_factors.empty() || !c.rope_short_factors.empty()) {
    const size_t half = static_cast<size_t>(c.head_dim / 2);
    if (c.rope_long_factors.size() != half || c.rope_short_factors.size() != half)
      fail(where, "longrope needs short and long factors of head_dim / 2 = " + std::to_string(half) + " entries");
    c.rope_scaling = RopeScaling::longrope;
  }
}

// ---- GGUF ----

ModelConfig config_from_gguf(const GGUFFile& g, const FamilyDef& fam) {
  ModelConfig c;
  c.family = fam.name;
  c.architecture = fam.gguf_arch;
  c.rope_pairing = fam.gguf_rope_pairing;
  GgufConfigReader r(g, fam.gguf_arch);
  fam.read_gguf(r, c);
  r.finish(fam.name);
  if (const GGUFTensorInfo* t = g.find_tensor("token_embd.weight"))
    c.n_vocab = checked_int(t->dims.size() == 2 ? static_cast<int64_t>(t->dims[1]) : 0, g.path(),
                            "token_embd.weight row count", 0);
  if (!c.tied_embeddings) c.tied_embeddings = g.find_tensor("output.weight") == nullptr;
  return c;
}

}  // namespace

std::shared_ptr<Model> model_from_gguf(const GGUFFile& g) {
  const std::string& path = g.path();
  auto arch = g.get_string("general.architecture");
  if (!arch) fail(path, "missing metadata key 'general.architecture'");
  const FamilyDef* fam = family_for_gguf(g);
  if (!fam) fail(path, "unsupported architecture '" + *arch + "'");
  auto m = std::make_shared<Model>();
  m->config = config_from_gguf(g, *fam);
  m->source = path;
  m->format = "gguf";
  validate_model_config(m->config, path);
  {
    std::vector<std::string> names;
    for (const auto& t : g.tensors) names.push_back(t.name);
    check_block_tensors(names, m->config.n_layer, path);
  }
  TensorSet ts;
  for (const auto& t : g.tensors) {
    std::vector<int64_t> shape(t.dims.rbegin(), t.dims.rend());  // ggml order -> row-major
    add_file_tensor(ts, *fam, m->config, true, t.name, TensorRef{t.type, shape, t.data, path});
  }
  bind_weights(*m, ts, *fam, path);
  m->keep_alive.push_back(g.file);
  return m;
}

// ---- Hugging Face directory ----

std::shared_ptr<Model> load_hf_model(const std::string& dir) {
  const std::string config_path = dir + "/config.json";
  if (!fs::exists(config_path)) fail(dir, "missing config.json");
  const json cfg = read_json_file(config_path);
  if (!cfg.is_object()) fail(config_path, "config is not a JSON object");
  const json& type_field = cfg.contains("model_type") ? cfg["model_type"] : json();
  const std::string model_type = type_field.is_string() ? type_field.get<std::string>() : "";
  const FamilyDef* fam = family_for_hf_model_type(model_type);
  if (!fam) fail(config_path, "unsupported model_type '" + model_type + "'");
  auto m = std::make_shared<Model>();
  m->config.family = fam->name;
  m->config.rope_pairing = RopePairing::half;
  {
    HfConfigReader r(cfg, config_path);
    fam->read_hf(r, m->config);
    r.finish(fam->name);
  }
  m->source = dir;
  m->format = "hf";
  validate_model_config(m->config, config_path);

  std::vector<std::string> files;
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (fs::exists(dir + "/model.safetensors")) {
    files.push_back(dir + "/model.safetensors");
  } else if (fs::exists(index_path)) {
    const json index = read_json_file(index_path);
    const json& weight_map = json_required(index, "weight_map", index_path);
    if (!weight_map.is_object()) fail(index_path, "field 'weight_map' is not an object");
    std::set<std::string> unique;
    for (auto& [name, file] : weight_map.items())
      unique.insert(json_string(file, index_path, "weight_map['" + name + "']"));
    for (const auto& f : unique) {
      if (f.find('/') != std::string::npos) fail(index_path, "shard name '" + f + "' is not a plain file name");
      files.push_back(dir + "/" + f);
    }
  } else {
    fail(dir, "no model.safetensors or model.safetensors.index.json");
  }
  TensorSet ts;
  for (const auto& f : files) {
    auto st = std::make_shared<SafetensorsFile>(SafetensorsFile::open(f));
    for (const auto& [name, t] : st->tensors)
      add_file_tensor(ts, *fam, m->config, false, name, TensorRef{t.type, t.shape, t.data, f});
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
  c.family = "llama";
  c.architecture = "llama";
  c.n_embd = h[0];
  c.n_ff = h[1];
  c.n_layer = h[2];
  c.n_head = h[3];
  c.n_kv_head = h[4];
  // Range first: std::abs(INT32_MIN) below would be undefined.
  for (int v : h)
    if (v == 0 || std::abs(static_cast<int64_t>(v)) > (1 << 24)) fail(path, "corrupt header");
  c.tied_embeddings = h[5] > 0;
  c.n_vocab = std::abs(h[5]);
  c.n_ctx_train = h[6];
  c.head_dim = c.n_head > 0 ? c.n_embd / c.n_head : 0;
  c.rope_pairing = RopePairing::adjacent;
  c.rms_eps = 1e-5f;
  m->source = path;
  m->format = "llama2c";
  validate_model_config(c, path);
  if (c.n_head * c.head_dim != c.n_embd) fail(path, "dim is not a multiple of n_heads");

  TensorSet ts;
  uint64_t off = sizeof(h);
  auto take = [&](const std::string& name, std::vector<int64_t> shape) {
    const uint64_t bytes =
        checked_mul(static_cast<uint64_t>(checked_element_count(shape, path, "tensor '" + name + "'")), uint64_t{4},
                    path, "tensor '" + name + "' byte size");
    const uint8_t* p = file->view(off, bytes, "truncated: tensor '" + name + "'");
    ts[name] = CanonicalTensor{{TensorRef{DType::F32, shape, p, path}}};
    off += bytes;
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
  // freq_cis_real, freq_cis_imag: unused
  off = checked_add(off, static_cast<uint64_t>(c.n_ctx_train) * c.head_dim * 4, path, "RoPE table offset");
  if (!c.tied_embeddings)
    take("output.weight", {c.n_vocab, D});
  else
    file->view(0, off, "truncated: RoPE tables");
  bind_weights(*m, ts, llama_family(), path);
  m->keep_alive.push_back(file);
  return m;
}

namespace {
LoadedModel load_model_unguarded(const std::string& path, const LoadOptions& options) {
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

}  // namespace

// Library failures (nlohmann, bad_alloc, length_error) become one line naming the model.
const Tokenizer& LoadedModel::require_tokenizer() const {
  if (!tokenizer) throw Error(model->source + ": model has no tokenizer (pass --tokenizer)");
  return *tokenizer;
}

LoadedModel load_model(const std::string& path, const LoadOptions& options) {
  return guard_input(path, [&] { return load_model_unguarded(path, options); });
}

}  // namespace rhead
