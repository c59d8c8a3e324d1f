// Probe requests, probe records and head masks: what a caller asks the attention kernel to
// observe or change. Heads are always addressed as (layer, query head).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/heads.h"

namespace rhead {

// What to record at the observed query positions, for every layer and query head.
struct ProbeRequest {
  std::vector<int64_t> positions;  // absolute positions within the forward call; empty: its last token
  bool argmax = true;              // argmax key position and weight (ties: earliest position)
  int top_k = 0;                   // top-k positions and weights (0: off)
  int64_t span_begin = -1;         // attention mass inside [span_begin, span_end) (-1: off)
  int64_t span_end = -1;
  bool sink = false;  // attention mass on position 0
  // The attention weights of the keys [0, key_weights_len) (0: off): their
  // mean over the observed rows (QRHead's per-token scores), and with key_rows each row's.
  int64_t key_weights_len = 0;
  bool key_rows = false;
};

// Probe results: arrays shaped [n_obs, n_layer, n_head] (top-k: [n_obs, n_layer, n_head, top_k]).
// Names follow the interpretability convention: blocks.{l}.attn.argmax etc.
struct ProbeRecord {
  int n_obs = 0, n_layer = 0, n_head = 0, top_k = 0;
  std::vector<int64_t> positions;    // [n_obs]
  std::vector<int32_t> argmax;       // blocks.{l}.attn.argmax
  std::vector<float> argmax_weight;  // blocks.{l}.attn.argmax_weight
  std::vector<int32_t> topk;         // blocks.{l}.attn.topk
  std::vector<float> topk_weight;
  std::vector<float> span_mass;  // blocks.{l}.attn.span_mass
  std::vector<float> sink_mass;  // blocks.{l}.attn.sink_mass
  int64_t key_weights_len = 0;
  std::vector<float> key_mean;  // [n_layer, n_head, key_weights_len]: blocks.{l}.attn.key_mean
  std::vector<float> key_rows;  // [n_obs, n_layer, n_head, key_weights_len]: blocks.{l}.attn.key_rows
  int64_t index(int o, int l, int h) const { return (static_cast<int64_t>(o) * n_layer + l) * n_head + h; }
};

enum class MaskMode { uniform, zero, mean };
enum class MaskPhase { decode, all };

const char* mask_mode_name(MaskMode m);
const char* mask_phase_name(MaskPhase p);
// The names above read back; rhead::Error naming the value on anything else.
MaskMode parse_mask_mode(const std::string& name);
MaskPhase parse_mask_phase(const std::string& name);

// A set of (layer, query head) interventions. `mode` uniform reproduces the reference's zeroed
// query; `phase` decode leaves the prefill unmasked, as the reference does.
struct HeadMask {
  int n_layer = 0, n_head = 0;
  std::vector<uint8_t> masked;  // [n_layer * n_head]
  MaskMode mode = MaskMode::uniform;
  MaskPhase phase = MaskPhase::decode;
  std::vector<float> means;  // [n_layer, n_head, head_dim] for MaskMode::mean

  HeadMask() = default;
  HeadMask(int layers, int heads) : n_layer(layers), n_head(heads), masked(static_cast<size_t>(layers) * heads, 0) {}
  void add(HeadId head);
  void add(int layer, int head) { add(HeadId{layer, head}); }
  bool contains(int layer, int head) const { return masked[static_cast<size_t>(layer) * n_head + head] != 0; }
  bool contains(HeadId head) const { return contains(head.layer, head.head); }
  int count() const;
  bool empty() const { return count() == 0; }
  std::vector<HeadId> heads() const;  // sorted (layer, head)
};

// A mask over the model's shape holding `heads`.
HeadMask make_head_mask(const std::vector<HeadId>& heads, const ModelConfig& config, MaskMode mode = MaskMode::uniform,
                        MaskPhase phase = MaskPhase::decode);

// A mask from a head selection that needs no scores ("none", "all", "heads:...", "kv:...";
// see model/heads.h), mode uniform, phase decode: set them afterwards.
HeadMask parse_head_mask(const std::string& spec, const ModelConfig& config);

// Accumulates each head's attention output over a calibration run, for MaskMode::mean.
struct HeadMeanRecorder {
  int n_layer = 0, n_head = 0, head_dim = 0;
  std::vector<double> sum;  // [n_layer, n_head, head_dim]
  int64_t n_tokens = 0;     // tokens seen (per layer)
  HeadMeanRecorder(int layers, int heads, int dim)
      : n_layer(layers), n_head(heads), head_dim(dim), sum(static_cast<size_t>(layers) * heads * dim, 0.0) {}
  std::vector<float> means() const;  // [n_layer, n_head, head_dim]
};

}  // namespace rhead
