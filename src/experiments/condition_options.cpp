// Mask and KV conditions from options (see condition_options.h).
#include "experiments/condition_options.h"

#include "experiments/generation.h"
#include "io/error.h"

namespace rhead {

MaskMode mask_mode_from_name(const std::string& s) {
  if (s == "uniform") return MaskMode::uniform;
  if (s == "zero") return MaskMode::zero;
  if (s == "mean") return MaskMode::mean;
  throw Error("mask mode '" + s + "': expected uniform, zero or mean");
}

MaskPhase mask_phase_from_name(const std::string& s) {
  if (s == "decode") return MaskPhase::decode;
  if (s == "all") return MaskPhase::all;
  throw Error("mask phase '" + s + "': expected decode or all");
}

KvRequest kv_request_of(const KvOptions& o) {
  KvRequest r;
  r.window = o.window;
  r.sink = o.sink;
  r.full = o.full;
  r.policy_file = o.policy_file;
  if (!o.sweep_window.empty()) r.sweep_windows = parse_window_list(o.sweep_window);
  r.sweep_full = o.sweep_full;
  return r;
}

KvPolicy kv_policy_from_options(const KvOptions& o, const ModelConfig& config, const std::string& scores_path,
                                uint64_t seed) {
  KvRequest r = kv_request_of(o);
  r.seeds = {seed};
  return single_kv_policy(r, config, scores_path);
}

std::vector<KvSetting> kv_settings_from_options(const KvOptions& o, const ModelConfig& config,
                                                const analysis::ScoreMap* scores, const std::vector<uint64_t>& seeds,
                                                bool sweep_random) {
  KvRequest r = kv_request_of(o);
  r.seeds = seeds;
  r.sweep_random = sweep_random;
  return kv_settings(r, config, scores);
}

ResolvedMasks resolve_masks(const MaskOptions& o, const LoadedModel& lm, bool baseline,
                            const std::function<std::vector<int32_t>()>& calibration_tokens) {
  ResolvedMasks r;
  if (!o.scores.empty()) {
    r.scores = analysis::load_score_map(o.scores);
  }
  MaskRequest req;
  req.mask = o.mask;
  req.scores = o.scores;
  req.seeds = o.seeds;
  req.mode = mask_mode_from_name(o.mode);
  req.phase = mask_phase_from_name(o.phase);
  req.sweep = o.sweep;
  req.sweep_random = o.sweep_random;
  req.baseline = baseline;
  if (o.sweep_random && o.sweep.empty()) throw Error("--sweep-random needs --sweep");
  if (!o.sweep.empty() && o.mask != "none") throw Error("give either --mask or --sweep, not both");
  r.settings = mask_settings(req, lm.model->config, r.scores ? &*r.scores : nullptr);
  if (req.mode == MaskMode::mean) {
    bool any = false;
    for (const auto& s : r.settings) any |= !s.mask.empty();
    if (any) {
      const std::vector<float> means = calibrate_head_means(lm, calibration_tokens());
      for (auto& s : r.settings) s.mask.means = means;
    }
  }
  return r;
}

ResolvedMasks resolve_conditions(const MaskOptions& masks, const KvOptions& kv, const LoadedModel& lm,
                                 bool baseline, const std::function<std::vector<int32_t>()>& calibration_tokens,
                                 bool* kv_sweep) {
  const bool sweep = !kv.sweep_window.empty() || !kv.sweep_full.empty();
  if (kv_sweep) *kv_sweep = sweep;
  MaskOptions mask_options = masks;
  if (sweep && masks.sweep.empty()) mask_options.sweep_random = false;  // the flag belongs to the KV sweep
  ResolvedMasks r = resolve_masks(mask_options, lm, baseline, calibration_tokens);
  std::vector<KvSetting> kvs =
      kv_settings_from_options(kv, lm.model->config, r.scores ? &*r.scores : nullptr, masks.seeds, masks.sweep_random);
  if (kvs.front().policy.active() && (sweep || baseline)) kvs.insert(kvs.begin(), KvSetting{});
  r.settings = with_kv_settings(r.settings, kvs);
  return r;
}

void record_mask_settings(const MaskOptions& o, const ResolvedMasks& masks, nlohmann::json& settings) {
  settings["mask_mode"] = o.mode;
  settings["mask_phase"] = o.phase;
  settings["scores"] = o.scores;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& s : masks.settings) list.push_back(s.to_json());
  settings["masks"] = list;
}

}  // namespace rhead
