// Mask and KV conditions from the front ends' options (see options.h).
#include "conditions/options.h"

#include "io/checked.h"

namespace rhead {

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
  return kv_policy_for(kv_request_of(o), config, scores_path, seed);
}

MaskRequest mask_request_of(const MaskOptions& o, bool baseline) {
  refuse_duplicates(o.seeds, "--seed");
  MaskRequest req;
  req.mask = o.mask;
  req.scores = o.scores;
  req.seeds = o.seeds;
  req.mode = parse_mask_mode(o.mode);
  req.phase = parse_mask_phase(o.phase);
  req.sweep = o.sweep;
  req.sweep_random = o.sweep_random;
  req.baseline = baseline;
  return req;
}

Conditions resolve_conditions(const MaskOptions& masks, const KvOptions& kv, const LoadedModel& lm, bool baseline,
                              const std::function<std::vector<int32_t>()>& calibration_tokens, bool* kv_sweep) {
  Conditions c = resolve_conditions(mask_request_of(masks, baseline), kv_request_of(kv), lm, calibration_tokens);
  if (kv_sweep) *kv_sweep = c.kv_sweep;
  return c;
}

void record_mask_settings(const MaskOptions& o, const Conditions& conditions, nlohmann::json& settings) {
  record_mask_settings(mask_request_of(o, false), conditions, settings);
}

}  // namespace rhead
