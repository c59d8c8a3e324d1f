// Conditions of a run: masks x KV conditions, and single-command KV policies.
#include "conditions/conditions.h"

#include <cstdio>

#include "io/error.h"
#include "io/text.h"

namespace rhead {

Conditions resolve_masks(const MaskRequest& req, const LoadedModel& lm,
                         const std::function<std::vector<int32_t>()>& calibration_tokens) {
  Conditions r;
  if (!req.scores.empty()) r.scores = analysis::load_score_map(req.scores);
  if (req.sweep_random && req.sweep.empty()) throw Error("--sweep-random needs --sweep");
  if (!req.sweep.empty() && req.mask != "none") throw Error("give either --mask or --sweep, not both");
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

Conditions resolve_conditions(const MaskRequest& masks, const KvRequest& kv_request, const LoadedModel& lm,
                              const std::function<std::vector<int32_t>()>& calibration_tokens) {
  const bool sweep = !kv_request.sweep_windows.empty() || !kv_request.sweep_full.empty();
  MaskRequest mask_request = masks;
  if (sweep && masks.sweep.empty()) mask_request.sweep_random = false;  // the flag belongs to the KV sweep
  Conditions r = resolve_masks(mask_request, lm, calibration_tokens);
  r.kv_sweep = sweep;
  KvRequest kv = kv_request;
  kv.seeds = masks.seeds;
  kv.sweep_random = masks.sweep_random;
  std::vector<KvSetting> kvs = kv_settings(kv, lm.model->config, r.scores ? &*r.scores : nullptr);
  if (kvs.front().policy.active() && (sweep || masks.baseline)) kvs.insert(kvs.begin(), KvSetting{});
  r.settings = with_kv_settings(r.settings, kvs);
  return r;
}

void record_mask_settings(const MaskRequest& masks, const Conditions& conditions, nlohmann::json& settings) {
  settings["mask_mode"] = mask_mode_name(masks.mode);
  settings["mask_phase"] = mask_phase_name(masks.phase);
  settings["scores"] = masks.scores;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& s : conditions.settings) list.push_back(s.to_json());
  settings["masks"] = list;
}

KvPolicy kv_policy_for(const KvRequest& kv, const ModelConfig& config, const std::string& scores_path, uint64_t seed) {
  std::optional<analysis::ScoreMap> scores;
  if (!scores_path.empty() && parse_head_selection(kv.full).needs_scores())
    scores = analysis::load_score_map(scores_path);
  KvRequest r = kv;
  r.sweep_windows.clear();
  r.sweep_full.clear();
  r.sweep_random = false;
  r.seeds = {seed};
  return kv_settings(r, config, scores ? &*scores : nullptr).front().policy;
}

SessionOptions with_kv_policy(SessionOptions so, const KvPolicy& policy) {
  if (policy.active()) so.kv_policy = policy;
  return so;
}

std::string describe_kv_policy(const KvPolicy& p, const ModelConfig& c, KvType kv_type, int64_t length) {
  if (!p.active()) return "KV policy: none (every head keeps the whole cache)";
  const KvAccounting a = kv_accounting(p, c.head_dim, kv_type, length);
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "KV policy: window %lld, sink %lld, %d of %d query heads full (%d of %d KV heads); at %lld positions "
                "it keeps %.1f%% per query head, %.1f%% per KV head (%s of %s)",
                static_cast<long long>(p.window), static_cast<long long>(p.sink), a.full_query_heads,
                c.n_layer * c.n_head, a.full_kv_heads, c.n_layer * c.n_kv_head, static_cast<long long>(length),
                100 * a.query_kept_fraction(), 100 * a.kv_kept_fraction(), human_bytes(a.kv_bytes_kept()).c_str(),
                human_bytes(a.kv_bytes_full()).c_str());
  return buf;
}

}  // namespace rhead
