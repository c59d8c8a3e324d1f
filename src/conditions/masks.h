// Mask conditions of an experiment: one mask, a top-K / random-K sweep, each under the KV
// conditions; the mask fields of result lines; the mean-ablation calibration. Used by niah,
// qa and cot alike.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/score_map.h"
#include "conditions/kv_conditions.h"
#include "model/heads.h"
#include "model/loader.h"
#include "model/probes.h"
#include "records/niah_records.h"

namespace rhead {

// One mask condition of an experiment.
struct MaskSetting {
  std::string label;  // unique name in result files: "none", "top:3", "random:3 seed 1", "heads:2-0" (+ " [zero, all]")
  SelectionKind kind = SelectionKind::none;  // none when no head is masked
  int k = 0;                                 // heads masked
  uint64_t seed = 0;                         // random only
  std::vector<HeadId> heads;
  HeadMask mask;                   // empty for none
  KvSetting kv;                    // KV-cache policy of the condition (inactive: none); its label is part of `label`
  nlohmann::json to_json() const;  // {label, kind, k, seed, heads, mode, phase[, kv_policy]}
};

// Every mask condition under every KV condition (masks x kv, masks outer). A condition with a
// KV policy is labelled "<mask label> + <kv label>", or the kv label alone when the mask is none.
std::vector<MaskSetting> with_kv_settings(const std::vector<MaskSetting>& masks, const std::vector<KvSetting>& kvs);

// The mask_kind of result lines: the selection kind, except that a kv: list is a "heads"
// list (its heads are written out in mask_heads).
const char* mask_kind_name(SelectionKind kind);

// The mask fields every result line of niah / qa / cot carries: mask (the label), mask_kind,
// mask_k, mask_seed, mask_heads.
void add_mask_fields(const MaskSetting& mask, nlohmann::json& line);
// The condition of `mask` for a prompt of `length` tokens in a cache of `kv_type`, prefilled
// `chunk` tokens at a time (the KV bytes a compacted cache holds depend on it).
LineCondition line_condition(const MaskSetting& mask, int head_dim, KvType kv_type, int64_t chunk, int64_t length);

// What the mask options of niah / qa / cot ask for.
struct MaskRequest {
  std::string mask = "none";          // --mask
  std::string scores;                 // --scores: reference head_score JSON or a detect directory
  std::vector<uint64_t> seeds = {0};  // --seed (random:K; a sweep averages over every seed)
  MaskMode mode = MaskMode::uniform;  // --mask-mode
  MaskPhase phase = MaskPhase::decode;
  std::string sweep;          // --sweep top:0,5,10
  bool sweep_random = false;  // --sweep-random: random-K at the same Ks
  bool baseline = false;      // also run the unmasked model first
};

// The label of a mask condition; mode and phase are appended when not uniform / decode.
std::string mask_label(SelectionKind kind, int k, uint64_t seed, const std::string& spec_text, MaskMode mode,
                       MaskPhase phase);

// Expands a request into mask settings over the model's shape (baseline first, duplicates
// dropped). `scores` is loaded by the caller (null when --scores was not given).
std::vector<MaskSetting> mask_settings(const MaskRequest& request, const ModelConfig& config,
                                       const analysis::ScoreMap* scores);

// The heads whose attention-sink mass is recorded: the top `n` retrieval heads of the score
// map (mean above kRetrievalThreshold; none without a map).
std::vector<HeadId> sink_heads_for(const analysis::ScoreMap* scores, int n);

// Mean-ablation calibration: every head's mean attention output over `tokens`, run
// unmasked. Shape [n_layer, n_head, head_dim], as HeadMask::means expects.
std::vector<float> calibrate_head_means(const LoadedModel& model, const std::vector<int32_t>& tokens);

}  // namespace rhead
