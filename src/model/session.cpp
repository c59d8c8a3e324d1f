// The forward pass: embedding (times embd_scale), the family's layer forward per layer
// (model/arch_*.cpp, built from model/blocks.h), the final norm, the output head and the final
// soft-cap, every op on the Session's backend. The Session owns the backend, the KV cache and
// runs attention (cache append, probes, masks) for the family's attention block.
#include "model/session.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "io/error.h"
#include "io/text.h"
#include "model/family.h"
#include "ops/attention.h"

namespace rhead {

namespace {
// The layer's attention variant into the kernel's arguments.
void set_attention_variant(AttentionArgs& a, const AttentionVariant& v) {
  a.window = v.window;
  a.scale = v.scale;
  a.softcap = v.softcap;
}
}  // namespace

std::vector<float> rope_inv_freq(const ModelConfig& c, const std::vector<float>& freq_factors) {
  const int half = c.head_dim / 2;
  std::vector<float> inv(half);
  for (int i = 0; i < half; ++i) {
    double f = 1.0 / std::pow(static_cast<double>(c.rope_theta), 2.0 * i / c.head_dim);
    if (c.rope_scaling == RopeScaling::linear) {
      f /= c.rope_factor;
    } else if (c.rope_scaling == RopeScaling::llama3) {
      // Long wavelengths are slowed by `factor`, short ones kept, the band between blended.
      const double low_wavelen = c.rope_original_ctx / c.rope_low_freq_factor;
      const double high_wavelen = c.rope_original_ctx / c.rope_high_freq_factor;
      const double wavelen = 2.0 * M_PI / f;
      if (wavelen > low_wavelen) {
        f /= c.rope_factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (c.rope_original_ctx / wavelen - c.rope_low_freq_factor) /
                              (c.rope_high_freq_factor - c.rope_low_freq_factor);
        f = (1.0 - smooth) * f / c.rope_factor + smooth * f;
      }
    }
    if (!freq_factors.empty()) f /= freq_factors[i];
    inv[i] = static_cast<float>(f);
  }
  return inv;
}

int64_t default_prefill_chunk(Device d) { return d == Device::cuda ? 4096 : kCpuPrefillChunk; }
int64_t prefill_chunk_of(const SessionOptions& o) {
  return o.prefill_chunk > 0 ? o.prefill_chunk : default_prefill_chunk(o.device);
}

Session::Session(std::shared_ptr<const Model> model, SessionOptions options)
    : model_(std::move(model)), options_(options) {
  const ModelConfig& c = model_->config;
  capacity_ = options_.n_ctx > 0 ? options_.n_ctx : c.n_ctx_train;
  options_.prefill_chunk = prefill_chunk_of(options_);
  backend_ = make_backend(options_.device);
  kv_.type = options_.kv_type();
  if (kv_.type == KvType::q8_0 && options_.device != Device::cpu)
    throw Error("--kv-type q8_0: only the CPU backend has a q8_0 KV cache (use --device cpu, or f16)");
  kv_.n_layer = c.n_layer;
  kv_.n_kv_head = c.n_kv_head;
  kv_.head_dim = c.head_dim;
  kv_.capacity = capacity_;
  const KvPolicy& kv = options_.kv_policy;
  // Compacted cache (either backend): every KV head allocates as it goes.
  const bool compact = kv.active() && options_.kv_compact;
  if (!compact) {
    try {
      kv_.k = backend_->alloc(kv_.bytes());
      kv_.v = backend_->alloc(kv_.bytes());
    } catch (const Error& e) {
      backend_->free(kv_.k);
      throw Error(model_->source + ": a KV cache of " + std::to_string(capacity_) + " positions" +
                  (options_.n_ctx > 0 ? " (--ctx)" : " (the model's context length; --ctx holds fewer)") + " needs " +
                  human_bytes(2.0 * static_cast<double>(kv_.bytes())) + ": " + e.what());
    }
  }
  // LongRoPE: the long factors when the session may hold more positions than the original
  // context (llama.cpp chooses by context size; HF by the positions of the call).
  const std::vector<float>& factors = c.rope_scaling != RopeScaling::longrope ? model_->rope_freq_factors
                                      : capacity_ > c.rope_original_ctx       ? c.rope_long_factors
                                                                              : c.rope_short_factors;
  inv_freq_ = rope_inv_freq(c, factors);
  if (kv.active()) {
    if (kv.n_layer != c.n_layer || kv.n_head != c.n_head || kv.n_kv_head != c.n_kv_head)
      throw Error("KV policy of " + std::to_string(kv.n_layer) + " layers x " + std::to_string(kv.n_head) +
                  " heads does not fit a model of " + std::to_string(c.n_layer) + " layers x " +
                  std::to_string(c.n_head) + " heads");
    for (int l = 0; l < c.n_layer; ++l) {
      const std::vector<int32_t> w = kv.head_windows(l);
      head_windows_.insert(head_windows_.end(), w.begin(), w.end());
    }
    if (compact) {
      kv_.heads.resize(static_cast<size_t>(c.n_layer) * c.n_kv_head);
      for (int l = 0; l < c.n_layer; ++l)
        for (int g = 0; g < c.n_kv_head; ++g)
          if (!kv.kv_is_full(l, g))
            kv_.heads[static_cast<size_t>(l) * c.n_kv_head + g].map = {kv.sink, kv.window + options_.prefill_chunk};
    }
  }
}

void Session::reserve_kv(int64_t length) {
  const KvPolicy& p = options_.kv_policy;
  const int64_t rb = kv_row_bytes(kv_.type, kv_.head_dim);
  for (int l = 0; l < kv_.n_layer; ++l)
    for (int g = 0; g < kv_.n_kv_head; ++g) {
      KvHeadRows& h = kv_.heads[static_cast<size_t>(l) * kv_.n_kv_head + g];
      const int64_t rows =
          kv_rows_allocated(length, h.map.ring == 0, p.window, p.sink, options_.prefill_chunk, capacity_);
      if (rows <= h.rows) continue;
      // Rows below sink + ring sit at their own position: the held ones move as they are.
      for (void** buf : {&h.k, &h.v}) {
        void* grown = backend_->alloc(static_cast<size_t>(rows * rb));
        if (*buf) {
          backend_->copy(grown, *buf, static_cast<size_t>(h.rows * rb));
          backend_->free(*buf);
        }
        *buf = grown;
      }
      h.rows = rows;
    }
}

Session::~Session() {
  act_.release();
  backend_->free(kv_.k);
  backend_->free(kv_.v);
  for (KvHeadRows& h : kv_.heads) {
    backend_->free(h.k);
    backend_->free(h.v);
  }
}

bool Session::can_truncate(int64_t n) const {
  if (n < 0 || n > n_past_) return false;
  if (!kv_.compacted() || n == n_past_) return true;
  // Position n (and the chunk after it) sees the keys from n - window + 1 on, and the sink.
  const KvPolicy& p = options_.kv_policy;
  const int64_t need = std::max(p.sink, n - p.window + 1);
  if (need >= n) return true;
  for (const KvHeadRows& h : kv_.heads)
    if (!h.map.holds(need, kv_written_)) return false;
  return true;
}

void Session::truncate(int64_t n) {
  if (n < 0 || n > n_past_)
    throw Error("cannot truncate a session of " + std::to_string(n_past_) + " tokens to " + std::to_string(n));
  if (!can_truncate(n))
    throw Error("cannot truncate a session of " + std::to_string(n_past_) + " tokens to " + std::to_string(n) +
                ": the compacted KV cache no longer holds the window before it");
  n_past_ = n;
}

const void* Session::kv_layer_on_host(int layer, bool value) const {
  if (kv_.compacted())
    throw Error("the compacted KV cache has no contiguous layer (run with SessionOptions::kv_compact false)");
  const void* layer_data = value ? kv_.v_layer(layer) : kv_.k_layer(layer);
  if (backend_->device() == Device::cpu) return layer_data;
  kv_host_.resize(kv_.layer_bytes());
  backend_->to_host(kv_host_.data(), layer_data, kv_host_.size());
  return kv_host_.data();
}

const void* Session::k_cache(int layer) const { return kv_layer_on_host(layer, false); }
const void* Session::v_cache(int layer) const { return kv_layer_on_host(layer, true); }

std::vector<float> Session::forward(std::span<const int32_t> tokens, const ForwardOptions& options) {
  const ModelConfig& c = model_->config;
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (T == 0) throw Error("forward called with no tokens");
  if (n_past_ + T > capacity_)
    throw Error("context overflow: " + std::to_string(n_past_ + T) + " tokens exceed the session capacity of " +
                std::to_string(capacity_));
  for (int32_t t : tokens)
    if (t < 0 || t >= c.n_vocab) throw Error("token id " + std::to_string(t) + " is outside the vocabulary");

  // A mask is indexed by (layer, head) of this model: one built for another shape is refused.
  if (options.mask && !options.mask->empty() &&
      (options.mask->n_layer != c.n_layer || options.mask->n_head != c.n_head))
    throw Error("head mask of " + std::to_string(options.mask->n_layer) + " layers x " +
                std::to_string(options.mask->n_head) + " heads does not fit a model of " + std::to_string(c.n_layer) +
                " layers x " + std::to_string(c.n_head) + " heads");
  if (options.mask && !options.mask->empty() && options.mask->mode == MaskMode::mean &&
      options.mask->means.size() != static_cast<size_t>(c.n_layer) * c.n_head * c.head_dim)
    throw Error("mean-ablation mask has no recorded means for this model");

  // Map observed absolute positions to slots.
  std::vector<int32_t> obs_slot;  // per token of this call
  if (options.probes) {
    if (!options.probe_out) throw Error("probe request without a probe record");
    std::vector<int64_t> positions = options.probes->positions;
    if (positions.empty()) positions.push_back(n_past_ + T - 1);
    obs_slot.assign(T, -1);
    for (size_t o = 0; o < positions.size(); ++o) {
      int64_t rel = positions[o] - n_past_;
      if (rel < 0 || rel >= T)
        throw Error("probe position " + std::to_string(positions[o]) + " is not in this forward call");
      if (obs_slot[rel] >= 0) throw Error("probe position " + std::to_string(positions[o]) + " is requested twice");
      obs_slot[rel] = static_cast<int32_t>(o);
    }
    ProbeRecord& r = *options.probe_out;
    r.n_obs = static_cast<int>(positions.size());
    r.n_layer = c.n_layer;
    r.n_head = c.n_head;
    r.top_k = options.probes->top_k;
    r.positions = positions;
    const size_t n = static_cast<size_t>(r.n_obs) * c.n_layer * c.n_head;
    r.argmax.assign(options.probes->argmax ? n : 0, -1);
    r.argmax_weight.assign(options.probes->argmax ? n : 0, 0.0f);
    r.topk.assign(n * r.top_k, -1);
    r.topk_weight.assign(n * r.top_k, 0.0f);
    r.span_mass.assign(options.probes->span_begin >= 0 ? n : 0, 0.0f);
    r.sink_mass.assign(options.probes->sink ? n : 0, 0.0f);
    r.key_weights_len = options.probes->key_weights_len;
    if (r.key_weights_len < 0 || r.key_weights_len > n_past_ + T)
      throw Error("probe key_weights_len " + std::to_string(r.key_weights_len) + " is outside the keys of this call");
    r.key_mean.assign(static_cast<size_t>(c.n_layer) * c.n_head * r.key_weights_len, 0.0f);
    r.key_rows.assign(options.probes->key_rows ? n * static_cast<size_t>(r.key_weights_len) : 0, 0.0f);
  }

  if (kv_.compacted()) {
    reserve_kv(n_past_ + T);
    kv_written_ = std::max(kv_written_, n_past_ + T);
  }

  std::vector<float> logits;
  // Chunks end at multiples of the chunk size counted from position 0, wherever this call
  // starts: a position is then computed in the same chunk (same tokens, same tiling of the
  // kernels) whether the cache before it was filled by this call or reused from an earlier
  // prompt, so results do not depend on what ran before (see NiahRunner's prefix reuse).
  const int64_t chunk = options_.prefill_chunk;
  for (int64_t s = 0, n = 0; s < T; s += n) {
    n = std::min(chunk - (n_past_ + s) % chunk, T - s);
    std::vector<int32_t> slots;
    if (!obs_slot.empty()) slots.assign(obs_slot.begin() + s, obs_slot.begin() + s + n);
    const bool last = s + n == T;
    std::vector<float> chunk_logits;
    forward_chunk(tokens.subspan(s, n), options, slots, chunk_logits);
    if (options.all_logits)
      logits.insert(logits.end(), chunk_logits.begin(), chunk_logits.end());
    else if (last)
      logits = std::move(chunk_logits);
  }
  if (options.probes && !options.probe_out->key_mean.empty()) {
    const float inv = 1.0f / static_cast<float>(options.probe_out->n_obs);
    for (float& v : options.probe_out->key_mean) v *= inv;
  }
  return logits;
}

void Session::forward_chunk(std::span<const int32_t> tokens, const ForwardOptions& options,
                            const std::vector<int32_t>& obs_slot, std::vector<float>& logits_out) {
  const Model& m = *model_;
  const ModelConfig& c = m.config;
  Backend& be = *backend_;
  const int64_t T = static_cast<int64_t>(tokens.size());
  const int64_t D = c.n_embd, hd = c.head_dim;
  const int64_t pos0 = n_past_;
  // Output head: only the rows the caller needs.
  const int64_t first = options.all_logits ? 0 : T - 1;
  const int64_t n_out = T - first;
  act_.reserve(be, c, T, n_out);

  be.embed(m.tok_embd, tokens.data(), T, act_.x);  // x: [T, D] residual stream
  if (c.embd_scale != 0.0f) be.scale(act_.x, c.embd_scale, T * D);

  const bool masking =
      options.mask && !options.mask->empty() && (options.mask->phase == MaskPhase::all || options.decode);
  std::vector<HeadOverride> overrides;
  std::vector<float> row_weights;  // per observed row and head: key weights (ProbeRequest::key_weights_len)

  // The family's blocks call this for attention: KV cache append, then the probe kernel.
  auto attend = [&](int l, const float* q, const float* kb, const float* vb, float* out,
                    const AttentionVariant& variant) {
    be.kv_append(kv_, l, pos0, T, kb, vb);  // cache: [n_kv_head][capacity][hd]

    AttentionArgs a;
    a.n_tokens = T;
    a.pos0 = pos0;
    a.n_head = c.n_head;
    a.n_kv_head = c.n_kv_head;
    a.head_dim = c.head_dim;
    a.q = q;
    const KvLayerView kv = kv_.view(l);
    a.k = kv.k;
    a.v = kv.v;
    a.kv_f16 = kv.f16;
    a.kv_q8_0 = kv.type == KvType::q8_0;
    a.kv_head_stride = kv.head_stride;
    a.kv_heads = kv.heads;
    a.out = out;
    set_attention_variant(a, variant);
    if (!head_windows_.empty()) {
      a.head_window = head_windows_.data() + static_cast<size_t>(l) * c.n_head;
      a.head_sink = options_.kv_policy.sink;
    }
    if (masking) {
      const HeadMask& mask = *options.mask;
      overrides.assign(c.n_head, HeadOverride::none);
      bool any = false;
      for (int h = 0; h < c.n_head; ++h)
        if (mask.contains(l, h)) {
          any = true;
          overrides[h] = mask.mode == MaskMode::uniform ? HeadOverride::uniform
                         : mask.mode == MaskMode::zero  ? HeadOverride::zero
                                                        : HeadOverride::mean;
        }
      if (any) {
        a.overrides = overrides.data();
        if (mask.mode == MaskMode::mean) a.head_means = mask.means.data() + static_cast<size_t>(l) * c.n_head * hd;
      }
    }
    if (!obs_slot.empty()) {
      ProbeRecord& r = *options.probe_out;
      const ProbeRequest& req = *options.probes;
      a.obs_slot = obs_slot.data();
      AttentionProbeOut& p = a.probes;
      const size_t base = static_cast<size_t>(l) * c.n_head;
      p.obs_stride = static_cast<int64_t>(c.n_layer) * c.n_head;
      if (req.argmax) {
        p.argmax = r.argmax.data() + base;
        p.argmax_weight = r.argmax_weight.data() + base;
      }
      if (req.top_k > 0) {
        p.top_k = req.top_k;
        p.topk = r.topk.data() + base * req.top_k;
        p.topk_weight = r.topk_weight.data() + base * req.top_k;
      }
      if (req.span_begin >= 0) {
        p.span_begin = req.span_begin;
        p.span_end = req.span_end;
        p.span_mass = r.span_mass.data() + base;
      }
      if (req.sink) p.sink_mass = r.sink_mass.data() + base;
      if (req.key_weights_len > 0) {
        // The kernel writes each observed row's weights; their sum over the rows (in
        // observation order, so the result does not depend on threads or chunks) goes into
        // the record, divided by the number of rows at the end of forward().
        p.key_weights_len = req.key_weights_len;
        p.key_weights_stride = c.n_head;
        row_weights.resize(static_cast<size_t>(c.n_head) * r.n_obs * req.key_weights_len);  // rows are written whole
        p.key_weights = row_weights.data();
      }
    }
    if (options.record_means)
      a.head_out_sum = options.record_means->sum.data() + static_cast<size_t>(l) * c.n_head * hd;
    be.attention(a);
    if (a.probes.key_weights) {
      ProbeRecord& r = *options.probe_out;
      const int64_t len = r.key_weights_len;
      for (int64_t t = 0; t < T; ++t) {
        if (obs_slot[t] < 0) continue;
        for (int h = 0; h < c.n_head; ++h) {
          const float* w = a.probes.key_weights + (obs_slot[t] * c.n_head + h) * len;
          float* acc = r.key_mean.data() + (static_cast<size_t>(l) * c.n_head + h) * len;
          for (int64_t j = 0; j < len; ++j) acc[j] += w[j];
          if (!r.key_rows.empty()) std::copy(w, w + len, r.key_rows.data() + (r.index(obs_slot[t], l, h)) * len);
        }
      }
    }
  };

  LayerContext ctx{m, be, T, pos0, act_.x, act_, inv_freq_, attend};
  const FamilyDef& family = family_def(c.family);
  for (int l = 0; l < c.n_layer; ++l) family.forward_layer(ctx, l);
  if (options.record_means) options.record_means->n_tokens += T;
  n_past_ += T;

  be.rmsnorm(act_.x + first * D, m.output_norm, act_.xn, n_out, D, c.rms_eps);
  be.matmul(m.output, act_.xn, n_out, act_.logits);  // logits: [n_out, n_vocab]
  if (c.final_softcap != 0.0f) be.softcap(act_.logits, c.final_softcap, n_out * c.n_vocab);
  logits_out.resize(n_out * c.n_vocab);
  be.to_host(logits_out.data(), act_.logits, logits_out.size() * sizeof(float));
}

}  // namespace rhead
