// Session: one sequence being run through a shared Model on one backend (CPU or CUDA). Owns
// the backend, the KV cache (f16 by default) and the activation buffers, all in the backend's
// memory; forward() appends tokens, prefilling in chunks.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/activations.h"
#include "model/blocks.h"
#include "model/kv_policy.h"
#include "model/model.h"
#include "model/probes.h"
#include "ops/backend.h"
#include "ops/kv_cache.h"

namespace rhead {

struct SessionOptions {
  int64_t n_ctx = 0;          // KV capacity in tokens; 0: the model's trained context length
  bool kv_f16 = true;         // f16 KV cache (else f32)
  bool kv_q8_0 = false;       // Q8_0 KV cache (CPU backend; ops/kv_cache.h); overrides kv_f16
  int64_t prefill_chunk = 0;  // tokens per forward chunk during prefill; 0: the device's default
  KvPolicy kv_policy;         // streaming-cache visibility per query head, every phase; inactive: none
  // With an active kv_policy: store only what the policy keeps (ops/kv_cache.h's compacted
  // layout, on either backend; results are the same bit for bit). False: the whole cache, the
  // policy applied by the kernels' visibility alone.
  bool kv_compact = true;
  Device device = Device::cpu;  // where the forward pass runs

  KvType kv_type() const { return kv_q8_0 ? KvType::q8_0 : kv_f16 ? KvType::f16 : KvType::f32; }
};

// Prefill chunk used when SessionOptions::prefill_chunk is 0: 256 tokens on the CPU (cache
// friendly), 4096 on CUDA (GEMMs big enough for the tensor cores).
int64_t default_prefill_chunk(Device d);
// The prefill chunk a session with these options uses (prefill_chunk, or the device's default).
int64_t prefill_chunk_of(const SessionOptions& o);

struct ForwardOptions {
  const ProbeRequest* probes = nullptr;  // what to observe (needs probe_out)
  ProbeRecord* probe_out = nullptr;
  const HeadMask* mask = nullptr;            // interventions (nullptr or empty: none)
  bool decode = false;                       // this call is a decode step (MaskPhase::decode applies)
  bool all_logits = false;                   // return [n_tokens, n_vocab] instead of the last row
  HeadMeanRecorder* record_means = nullptr;  // calibration for MaskMode::mean
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model, SessionOptions options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Runs `tokens` at positions n_past()..; returns the logits of the last token ([n_vocab]),
  // or of every token ([n_tokens, n_vocab]) with all_logits.
  std::vector<float> forward(std::span<const int32_t> tokens, const ForwardOptions& options = {});

  int64_t n_past() const { return n_past_; }
  int64_t capacity() const { return capacity_; }
  // Forgets every position >= n (the cache rows stay but are overwritten by the next forward).
  // A compacted cache must still hold the keys position n will see: can_truncate says so;
  // truncate refuses otherwise (0 always works).
  void truncate(int64_t n);
  bool can_truncate(int64_t n) const;
  // Bytes of K and V the cache holds now (allocated, both layouts).
  int64_t kv_bytes_held() const { return kv_.held_bytes(); }
  const Model& model() const { return *model_; }
  const SessionOptions& options() const { return options_; }

  // Raw KV cache of a layer in host memory: [n_kv_head][capacity][head_dim] in f16 or f32.
  // On CUDA this copies the layer to a host buffer, valid until the next call. Not for a
  // compacted cache (an error).
  const void* k_cache(int layer) const;
  const void* v_cache(int layer) const;
  const KvCache& kv_cache() const { return kv_; }
  Backend& backend() const { return *backend_; }

 private:
  void forward_chunk(std::span<const int32_t> tokens, const ForwardOptions& options,
                     const std::vector<int32_t>& obs_slot, std::vector<float>& logits_out);

  const void* kv_layer_on_host(int layer, bool value) const;
  // Compacted cache: grows every KV head's rows to hold `length` positions.
  void reserve_kv(int64_t length);

  std::shared_ptr<const Model> model_;
  SessionOptions options_;
  int64_t capacity_ = 0;
  int64_t n_past_ = 0;
  int64_t kv_written_ = 0;  // compacted cache: one past the highest position ever written
  std::unique_ptr<Backend> backend_;
  KvCache kv_;                         // k, v: [n_layer][n_kv_head][capacity][head_dim] in backend memory
  std::vector<float> inv_freq_;        // [head_dim / 2]
  std::vector<int32_t> head_windows_;  // [n_layer, n_head] KV-policy window per query head (0: full); empty: no policy
  Activations act_;                    // sized for the largest chunk seen
  mutable std::vector<uint8_t> kv_host_;  // k_cache / v_cache copy of one layer (CUDA)
};

// RoPE inverse frequencies for a config (theta, linear / llama3 scaling, GGUF freq factors).
std::vector<float> rope_inv_freq(const ModelConfig& c, const std::vector<float>& freq_factors);

}  // namespace rhead
