// `rhead niah -m MODEL`: the NIAH grid under a head mask (or a top-K / random-K sweep),
// scored by ROUGE-1 recall x 100, with the error taxonomy of failed tests.
#include <iostream>

#include "cli/causal_options.h"
#include "cli/command.h"
#include "cli/niah_options.h"
#include "io/error.h"
#include "experiments/experiment.h"
#include "experiments/causal.h"
#include "report/kv_sweep.h"

namespace rhead::cli {
namespace {

struct NiahCommandOptions {
  NiahCliOptions niah;
  MaskCliOptions masks;
  KvCliOptions kv;
  bool baseline = false;
  int sink_heads = 5;
  int support_heads = 10;
  std::vector<std::string> merge_from;
};

std::vector<int32_t> haystack_calibration_tokens(const LoadedModel& lm, const std::string& haystack_dir) {
  const int64_t n = std::min<int64_t>(lm.model->config.n_ctx_train, 1024);
  const std::string text = haystack_dir.empty() ? builtin_haystack(n) : repeat_to_words(read_haystack_dir(haystack_dir), n);
  std::vector<int32_t> ids = lm.tokenizer->encode(text, true, false);
  if (static_cast<int64_t>(ids.size()) > n) ids.resize(n);
  return ids;
}

void run(const NiahCommandOptions& o) {
  if (!o.merge_from.empty()) {
    // The older spelling of `rhead merge DIR... -o OUT`.
    std::cout << write_run_outputs(merge_run_dirs(o.merge_from, o.niah.output)) << "\nwrote " << o.niah.output << "\n";
    return;
  }
  LoadedModel lm = load_model_from_options(o.niah.model);
  lm.require_tokenizer();
  nlohmann::json settings;
  NiahRunConfig config = make_niah_config(o.niah, lm, DefaultNeedles::sandwich, settings);
  const auto [shard_i, shard_n] = parse_shard(o.niah.shard);
  settings["shard"] = o.niah.shard;
  Conditions masks = resolve_conditions(o.masks, o.kv, lm, o.baseline,
                                           [&] { return haystack_calibration_tokens(lm, o.niah.haystack); });
  record_mask_settings(mask_request(o.masks, false), masks, settings);

  NiahCausalOptions c;
  c.output_dir = o.niah.output;
  c.shard_index = shard_i;
  c.shard_count = shard_n;
  c.settings = settings;
  c.masks = masks.settings;
  c.sweep = !o.masks.sweep.empty();
  c.kv_sweep = masks.kv_sweep;
  c.sink_heads = sink_heads_for(masks.scores ? &*masks.scores : nullptr, o.sink_heads);
  c.settings["sink_heads"] = head_keys(c.sink_heads);
  // support_share: copies by the top heads of --scores, else by every head.
  c.support_heads = support_heads_for(masks.scores ? &masks.scores->mean : nullptr, o.support_heads, lm.model->config);
  c.settings["support_heads"] = head_keys(c.support_heads);
  ProgressBar bar(!o.niah.quiet);
  int passed = 0;
  c.progress = [&](int done, int total, const std::string& mask, const TestResult& r, double elapsed) {
    passed += r.rouge_recall > kPassScore;
    bar.update(done, total, passed, elapsed, mask + " " + r.test_id);
  };
  NiahCausalSummary s = run_niah_causal(lm, session_options(o.niah.model), config, c);
  bar.finish();
  if (c.sink_heads.empty()) std::cout << "(no --scores: the attention-sink mass of the top retrieval heads is not recorded)\n";
  else std::cout << "sink mass: mean attention on the first token of heads " << nlohmann::json(head_keys(c.sink_heads)).dump() << "\n";
  std::cout << format_niah_summary(s);
  if (masks.kv_sweep)
    std::cout << "\n KV sweep: mean NIAH score by KV cache kept\n"
              << format_kv_sweep(read_kv_sweep_points(o.niah.output + "/kv_sweep.json"), "NIAH score");
  std::cout << "\nprefilled tokens: " << s.prefilled_tokens << "\n";
  std::cout << "\nwrote " << o.niah.output << "/{results.jsonl, summary.json, heatmap_*.png/svg"
            << (c.sweep ? ", sweep.json, sweep.png/svg" : "") << (masks.kv_sweep ? ", kv_sweep.json/tsv/png/svg" : "")
            << "}\n";
}

CommandRegistrar reg("niah", [](CLI::App& app) {
  auto o = std::make_shared<NiahCommandOptions>();
  auto* cmd = app.add_subcommand(
      "niah",
      "NIAH under head masking: score (ROUGE-1 recall x 100) over the length x depth grid with heads masked "
      "(default mask mode uniform, phase decode: the reference's setting), error taxonomy, heatmaps, sweeps");
  add_niah_options(cmd, o->niah, "runs/niah");
  add_mask_options(cmd, o->masks);
  add_kv_options(cmd, o->kv);
  add_kv_sweep_options(cmd, o->kv);
  cmd->add_flag("--baseline", o->baseline, "also run the unmasked model (a sweep always includes K = 0 when listed)");
  cmd->add_option("--sink-heads", o->sink_heads,
                  "record the first-token attention mass of this many top retrieval heads (score above the retrieval "
                  "threshold, from --scores)")
      ->capture_default_str();
  add_support_heads_option(cmd, o->support_heads);
  cmd->add_option("--merge-from", o->merge_from,
                  "instead of running: join these niah shard directories into -o (the model is not used)");
  cmd->footer(
      "Without --needles the single San Francisco needle of the paper is used. Results: one JSON line per test "
      "with the reference fields (model, context_length, depth_percent, needle, model_response, score) and "
      "mask, error_kind (incomplete / hallucination / wrong_extraction for score <= 50), per-step copy "
      "records and sink mass. Rerun with the same -o to resume.");
  cmd->callback([o] { run(*o); });
});

}  // namespace
}  // namespace rhead::cli
