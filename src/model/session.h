// Session: one sequence being run through a shared Model. Owns the KV cache (f16 by default)
// and the activation buffers; forward() appends tokens, prefilling in chunks.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "model/blocks.h"
#include "model/kv_policy.h"
#include "model/model.h"
#include "model/probes.h"

namespace rhead {

struct SessionOptions {
  int64_t n_ctx = 0;            // KV capacity in tokens; 0: the model's trained context length
  bool kv_f16 = true;           // f16 KV cache (else f32)
  int64_t prefill_chunk = 256;  // tokens per forward chunk during prefill
  KvPolicy kv_policy;           // streaming-cache visibility per query head, every phase; inactive: none
};

struct ForwardOptions {
  const ProbeRequest* probes = nullptr;  // what to observe (needs probe_out)
  ProbeRecord* probe_out = nullptr;
  const HeadMask* mask = nullptr;        // interventions (nullptr or empty: none)
  bool decode = false;                   // this call is a decode step (MaskPhase::decode applies)
  bool all_logits = false;               // return [n_tokens, n_vocab] instead of the last row
  HeadMeanRecorder* record_means = nullptr;  // calibration for MaskMode::mean
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model, SessionOptions options = {});

  // Runs `tokens` at positions n_past()..; returns the logits of the last token ([n_vocab]),
  // or of every token ([n_tokens, n_vocab]) with all_logits.
  std::vector<float> forward(std::span<const int32_t> tokens, const ForwardOptions& options = {});

  int64_t n_past() const { return n_past_; }
  int64_t capacity() const { return capacity_; }
  // Forgets every position >= n (the cache rows stay but are overwritten by the next forward).
  void truncate(int64_t n);
  const Model& model() const { return *model_; }
  const SessionOptions& options() const { return options_; }

  // Raw KV cache of a layer: [n_kv_head][capacity][head_dim] in f16 or f32.
  const void* k_cache(int layer) const;
  const void* v_cache(int layer) const;
  size_t kv_cache_bytes() const { return (k_.size() + v_.size()); }

 private:
  void forward_chunk(std::span<const int32_t> tokens, const ForwardOptions& options,
                     const std::vector<int32_t>& obs_slot, std::vector<float>& logits_out);

  size_t layer_offset(int layer) const;  // bytes from the start of k_ / v_ to a layer's cache

  std::shared_ptr<const Model> model_;
  SessionOptions options_;
  int64_t capacity_ = 0;
  int64_t n_past_ = 0;
  std::vector<uint8_t> k_, v_;  // [n_layer][n_kv_head][capacity][head_dim] elements of 2 or 4 bytes
  std::vector<float> inv_freq_; // [head_dim / 2]
  std::vector<int32_t> head_windows_;  // [n_layer, n_head] KV-policy window per query head (0: full); empty: no policy
  std::vector<float> x_;  // [chunk, n_embd] residual stream
  Activations act_;       // the blocks' scratch buffers, sized for the largest chunk seen
};

// RoPE inverse frequencies for a config (theta, linear / llama3 scaling, GGUF freq factors).
std::vector<float> rope_inv_freq(const ModelConfig& c, const std::vector<float>& freq_factors);

}  // namespace rhead
