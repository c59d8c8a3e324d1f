// `rhead kv-plan -m MODEL --scores head_score.json --budget F [--length N]`: which (layer, KV
// head) pairs keep the whole KV cache under a memory budget, written as head_policy.json (the
// format is described in niah/kv_conditions.h and the README) for --kv-policy-file or another
// engine.
#include <iostream>

#include "cli/common.h"
#include "cli/command.h"
#include "io/duo_pattern.h"
#include "io/checked.h"
#include "io/error.h"
#include "conditions/kv_conditions.h"
#include "records/results.h"

namespace rhead::cli {
namespace {

struct KvPlanOptions {
  ModelOptions model;
  std::string scores;
  std::string budget;
  int64_t length = 0;
  int64_t window = 64;
  int64_t sink = 4;
  std::string output;           // default: head_policy.json (json) or duo_pattern (duo)
  std::string format = "json";  // json: head_policy.json; duo: a DuoAttention pattern folder
  std::string duo_gates = "binary";
};

// "0.25" or "25%" -> 0.25.
double parse_budget(const std::string& text) {
  std::string s = text;
  const bool percent = !s.empty() && s.back() == '%';
  if (percent) s.pop_back();
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0') throw Error("--budget '" + text + "': expected a fraction such as 0.25 or 25%");
  const double f = percent ? v / 100.0 : v;
  if (!(f >= 0.0 && f <= 1.0)) throw Error("--budget '" + text + "' must be in [0, 1] (or 0% to 100%)");
  return f;
}

void run(const KvPlanOptions& o) {
  LoadedModel lm = load_model_from_options(o.model);
  const ModelConfig& c = lm.model->config;
  const analysis::ScoreMap scores = analysis::load_score_map(o.scores);
  KvPlanRequest r;
  r.budget = parse_budget(o.budget);
  r.length = o.length != 0 ? o.length : c.n_ctx_train;
  r.window = o.window;
  r.sink = o.sink;
  const SessionOptions so = session_options(o.model);
  r.kv_type = so.kv_type();
  r.chunk = prefill_chunk_of(so);
  const KvPlan plan = plan_kv_cache(scores, c, r);
  const bool duo = o.format == "duo";
  const std::string output = !o.output.empty() ? o.output : duo ? "duo_pattern" : "head_policy.json";
  if (duo) {
    const DuoPattern pattern =
        duo_pattern_of_plan(plan, c, o.duo_gates == "score" ? DuoGates::score : DuoGates::binary);
    // The plan's own fields go along (DuoAttention's readers take sink_size, recent_size, threshold).
    write_duo_pattern(output, pattern,
                      {{"format", "rhead-kv-plan"},
                       {"model", lm.model->source},
                       {"scores", o.scores},
                       {"length", r.length},
                       {"budget", r.budget},
                       {"kv_dtype", o.model.kv_type}});
  } else {
    write_file_atomic(output, kv_plan_json(plan, c, lm.model->source, o.scores).dump(2) + "\n");
  }

  const KvAccounting& a = plan.predicted;
  std::printf("budget %.1f%% of the %s KV cache at %lld positions (%s); window %lld, sink %lld\n", 100 * r.budget,
              o.model.kv_type.c_str(), static_cast<long long>(r.length), human_bytes(a.kv_bytes_full()).c_str(),
              static_cast<long long>(r.window), static_cast<long long>(r.sink));
  std::printf(" KV head  score   query heads\n");
  const int group = c.group_size();
  for (const KvGroupScore& g : plan.ranking) {
    bool chosen = false;
    for (const KvGroupScore& f : plan.full) chosen |= f.layer == g.layer && f.kv_head == g.kv_head;
    std::printf(" %3d-%-3d  %.3f  %d..%d%s\n", g.layer, g.kv_head, g.score, g.kv_head * group,
                (g.kv_head + 1) * group - 1, chosen ? "  full" : "");
  }
  std::printf(
      "full KV heads: %zu of %d; predicted KV memory %s = %.1f%% (per query head %.1f%%); "
      "with no full head %.1f%%; the CPU's compacted cache allocates %s (rings of window + %lld-token prefill "
      "chunks, --chunk)\n",
      plan.full.size(), c.n_layer * c.n_kv_head, human_bytes(a.kv_bytes_kept()).c_str(), 100 * a.kv_kept_fraction(),
      100 * a.query_kept_fraction(), 100 * plan.floor_fraction, human_bytes(a.kv_bytes_held()).c_str(),
      static_cast<long long>(r.chunk));
  // Why: KV heads are taken best first while the prediction stays within the budget. Every KV
  // head holds the same share of the cache, so each one kept whole adds the same amount.
  const int kv_heads = c.n_layer * c.n_kv_head;
  const double per_head = kv_heads > 0 ? (1.0 - plan.floor_fraction) / kv_heads : 0.0;
  std::printf(
      "why: every head keeps %lld sink + %lld window positions of %lld (%.1f%%); each KV head kept whole adds "
      "%.1f points; KV heads are kept whole best score first (scores above 0 only) while the total stays "
      "within %.1f%%\n",
      static_cast<long long>(r.sink), static_cast<long long>(r.window), static_cast<long long>(r.length),
      100 * plan.floor_fraction, 100 * per_head, 100 * r.budget);
  const KvGroupScore* next = nullptr;
  for (const KvGroupScore& g : plan.ranking) {
    bool chosen = false;
    for (const KvGroupScore& f : plan.full) chosen |= f.layer == g.layer && f.kv_head == g.kv_head;
    if (!chosen && g.score > 0) {
      next = &g;
      break;
    }
  }
  if (next)
    std::printf("next: KV head %d-%d (score %.3f) would cost %.1f points, %.1f%% in all, over the %.1f%% budget\n",
                next->layer, next->kv_head, next->score, 100 * per_head, 100 * (a.kv_kept_fraction() + per_head),
                100 * r.budget);
  else
    std::printf("next: none; no other KV head scores above 0\n");
  std::printf("wrote %s\n", output.c_str());
}

CLI::App* add_command(CLI::App& app, KvPlanOptions& o) {
  auto* cmd = app.add_subcommand(
      "kv-plan",
      "plan a KV cache under a memory budget: the KV heads of the best retrieval heads keep the whole cache, every "
      "other head a sink plus a recent window; writes head_policy.json for --kv-policy-file");
  add_model_options(cmd, o.model);
  cmd->add_option("--scores", o.scores, "retrieval scores: a head_score JSON or a detect directory")->required();
  cmd->add_option("--budget", o.budget, "KV memory kept, as a fraction of the full cache (0.25 or 25%)")->required();
  cmd->add_option("--length", o.length, "positions the budget is stated at (default: the model's context length)")
      ->check(in_range(1, static_cast<double>(kMaxTensorElements)));
  cmd->add_option("--kv-window", o.window, "window of the restricted heads")
      ->check(CLI::Range(int64_t{1}, int64_t{INT32_MAX}))
      ->capture_default_str();
  cmd->add_option("--kv-sink", o.sink, "sink positions every head keeps")
      ->check(CLI::Range(int64_t{0}, int64_t{INT32_MAX}))
      ->capture_default_str();
  cmd->add_option("-o,--output", o.output,
                  "the plan: a file (--format json, default head_policy.json) or a folder (--format duo, default "
                  "duo_pattern)");
  cmd->add_option("--format", o.format,
                  "json: rhead's head_policy.json; duo: a DuoAttention pattern folder (full_attention_heads.tsv, "
                  "n_layer rows x n_kv_head columns, and config.json with sink_size = --kv-sink, recent_size = "
                  "--kv-window)")
      ->check(CLI::IsMember({"json", "duo"}))
      ->capture_default_str();
  cmd->add_option("--duo-gates", o.duo_gates,
                  "--format duo: binary (1 full, 0 streaming) or score (each KV head's score, with the threshold in "
                  "config.json that selects the plan's full heads)")
      ->check(CLI::IsMember({"binary", "score"}))
      ->capture_default_str();
  cmd->footer(
      "A KV head keeps the whole cache when one of its query heads does (GQA), so KV heads are ranked by their best "
      "query head's mean retrieval score; heads scoring 0 are never kept whole. Apply the plan (either format) with "
      "--kv-policy-file in niah, qa, cot, generate and attn.");
  return cmd;
}

const Command<KvPlanOptions> command("kv-plan", add_command, run);

}  // namespace
}  // namespace rhead::cli
