// Mask settings, their result-line fields and the mean-ablation calibration.
#include "conditions/masks.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <set>
#include <sstream>
#include "analysis/stats.h"
#include "io/error.h"
#include "io/json.h"
#include "io/mapped_file.h"
#include "io/text.h"
#include "model/generate.h"

namespace rhead {

using nlohmann::json;

const char* mask_kind_name(SelectionKind kind) {
  return selection_kind_name(kind == SelectionKind::kv ? SelectionKind::heads : kind);
}

void add_mask_fields(const MaskSetting& mask, json& line) {
  line["mask"] = mask.label;
  line["mask_kind"] = mask_kind_name(mask.kind);
  line["mask_k"] = mask.k;
  line["mask_seed"] = mask.seed;
  line["mask_heads"] = head_keys(mask.heads);
}

LineCondition line_condition(const MaskSetting& mask, int head_dim, KvType kv_type, int64_t chunk, int64_t length) {
  json fields;
  add_mask_fields(mask, fields);
  add_kv_fields(mask.kv, head_dim, kv_type, chunk, length, fields);
  return condition_from_json(fields, "mask condition '" + mask.label + "'");
}

json MaskSetting::to_json() const {
  json j = {{"label", label},
            {"kind", mask_kind_name(kind)},
            {"k", k},
            {"seed", seed},
            {"heads", head_keys(heads)},
            {"mode", mask_mode_name(mask.mode)},
            {"phase", mask_phase_name(mask.phase)}};
  if (kv.policy.active()) j["kv_policy"] = kv.to_json();
  return j;
}

std::vector<MaskSetting> with_kv_settings(const std::vector<MaskSetting>& masks, const std::vector<KvSetting>& kvs) {
  std::vector<MaskSetting> out;
  for (const MaskSetting& m : masks)
    for (const KvSetting& kv : kvs) {
      MaskSetting s = m;
      s.kv = kv;
      if (kv.policy.active()) s.label = m.kind == SelectionKind::none ? kv.label : m.label + " + " + kv.label;
      out.push_back(std::move(s));
    }
  return out;
}

std::string mask_label(SelectionKind kind, int k, uint64_t seed, const std::string& spec_text, MaskMode mode,
                       MaskPhase phase) {
  std::string label;
  switch (kind) {
    case SelectionKind::none: return "none";
    case SelectionKind::top: label = "top:" + std::to_string(k); break;
    case SelectionKind::random: label = "random:" + std::to_string(k) + " seed " + std::to_string(seed); break;
    case SelectionKind::all:
    case SelectionKind::heads:
    case SelectionKind::kv: label = spec_text; break;
  }
  std::vector<std::string> notes;
  if (mode != MaskMode::uniform) notes.push_back(mask_mode_name(mode));
  if (phase != MaskPhase::decode) notes.push_back(mask_phase_name(phase));
  if (!notes.empty()) {
    label += " [";
    for (size_t i = 0; i < notes.size(); ++i) label += (i ? ", " : "") + notes[i];
    label += "]";
  }
  return label;
}

namespace {

MaskSetting make_setting(const HeadSelection& spec, const ModelConfig& config, const analysis::ScoreMap* scores,
                         uint64_t seed, MaskMode mode, MaskPhase phase) {
  MaskSetting s;
  s.kind = spec.kind;
  s.seed = spec.kind == SelectionKind::random ? seed : 0;
  s.heads = select_heads(spec, config, scores ? &scores->mean : nullptr, seed);
  s.k = static_cast<int>(s.heads.size());
  if (s.heads.empty()) s.kind = SelectionKind::none;
  s.label = mask_label(s.kind, s.k, s.seed, spec.text, mode, phase);
  s.mask = make_head_mask(s.heads, config, mode, phase);
  return s;
}

}  // namespace

std::vector<MaskSetting> mask_settings(const MaskRequest& req, const ModelConfig& config,
                                       const analysis::ScoreMap* scores) {
  if (req.seeds.empty()) throw Error("no --seed given");
  std::vector<MaskSetting> out;
  std::set<std::string> seen;
  auto add = [&](MaskSetting s) {
    if (seen.insert(s.label).second) out.push_back(std::move(s));
  };
  const HeadSelection none = parse_head_selection("none");
  if (req.baseline) add(make_setting(none, config, scores, 0, req.mode, req.phase));
  if (!req.sweep.empty()) {
    const auto [kind, ks] = parse_sweep_spec(req.sweep);
    std::vector<SelectionKind> kinds = {kind};
    if (req.sweep_random && kind != SelectionKind::random) kinds.push_back(SelectionKind::random);
    const int n_heads = config.n_layer * config.n_head;
    for (SelectionKind kd : kinds)
      for (int k : ks) {
        // A sweep list written for large models (top:0,5,...,100) still runs on a small one:
        // Ks beyond the heads available to this kind are skipped, with a warning.
        const int available = kd == SelectionKind::random && scores
                                  ? n_heads - static_cast<int>(random_exclusions(scores->mean).size())
                                  : n_heads;
        if (k > available) {
          std::cerr << "warning: sweep skips " << mask_kind_name(kd) << ":" << k << ": only " << available
                    << " heads are available\n";
          continue;
        }
        const HeadSelection spec = parse_head_selection(
            k == 0 ? std::string("none") : std::string(mask_kind_name(kd)) + ":" + std::to_string(k));
        if (spec.kind == SelectionKind::random)
          for (uint64_t seed : req.seeds) add(make_setting(spec, config, scores, seed, req.mode, req.phase));
        else
          add(make_setting(spec, config, scores, 0, req.mode, req.phase));
      }
    return out;
  }
  const HeadSelection spec = parse_head_selection(req.mask);
  if (spec.kind == SelectionKind::random)
    for (uint64_t seed : req.seeds) add(make_setting(spec, config, scores, seed, req.mode, req.phase));
  else
    add(make_setting(spec, config, scores, 0, req.mode, req.phase));
  return out;
}

std::vector<HeadId> sink_heads_for(const analysis::ScoreMap* scores, int n) {
  std::vector<HeadId> out;
  if (!scores) return out;
  for (size_t i : heads_by_score(scores->mean)) {
    if (static_cast<int>(out.size()) >= n || !(scores->mean[i] > kRetrievalThreshold)) break;
    out.push_back(scores->mean.head_at(i));
  }
  return out;
}

std::vector<float> calibrate_head_means(const LoadedModel& lm, const std::vector<int32_t>& tokens) {
  if (tokens.empty()) throw Error("mean ablation: no calibration tokens");
  SessionOptions so;
  so.n_ctx = static_cast<int64_t>(tokens.size());
  return record_head_means(lm.model, tokens, so);
}

}  // namespace rhead
