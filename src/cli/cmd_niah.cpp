// `rhead niah -m MODEL`: the NIAH grid under a head mask (or a top-K / random-K sweep),
// scored by ROUGE-1 recall x 100, with the error taxonomy of failed tests.
#include <iostream>

#include "cli/causal_options.h"
#include "cli/command.h"
#include "report/kv_sweep.h"
#include "cli/niah_options.h"
#include "io/error.h"
#include "experiments/experiment.h"
#include "experiments/causal.h"

namespace rhead::cli {
namespace {

struct NiahCommandOptions {
  NiahCliOptions niah;
  NiahCausalRunOptions run;  // masks, KV conditions, baseline, sink and support heads
  std::vector<std::string> merge_from;
};

void run(const NiahCommandOptions& o) {
  if (!o.merge_from.empty()) {
    // The older spelling of `rhead merge DIR... -o OUT`.
    std::cout << write_run_outputs(merge_run_dirs(o.merge_from, o.niah.output)) << "\nwrote " << o.niah.output << "\n";
    return;
  }
  LoadedModel lm = load_model_from_options(o.niah.model);
  lm.require_tokenizer();
  ProgressBar bar(!o.niah.quiet);
  int passed = 0;
  NiahCausalOptions c;
  NiahCausalSummary s = run_niah_from_options(
      lm, o.niah, o.run,
      [&](int done, int total, const std::string& mask, const TestResult& t, double elapsed) {
        passed += t.rouge_recall > kPassScore;
        bar.update(done, total, passed, elapsed, mask + " " + t.test_id);
      },
      &c);
  bar.finish();
  if (c.sink_heads.empty())
    std::cout << "(no --scores: the attention-sink mass of the top retrieval heads is not recorded)\n";
  else
    std::cout << "sink mass: mean attention on the first token of heads "
              << nlohmann::json(head_keys(c.sink_heads)).dump() << "\n";
  std::cout << format_niah_summary(s);
  if (c.kv_sweep)
    std::cout << "\n KV sweep: mean NIAH score by KV cache kept\n"
              << format_kv_sweep(read_kv_sweep_points(o.niah.output + "/kv_sweep.json"), "NIAH score");
  std::cout << "\nprefilled tokens: " << s.prefilled_tokens << "\n";
  std::cout << "\nwrote " << o.niah.output << "/{results.jsonl, summary.json, heatmap_*.png/svg"
            << (c.sweep ? ", sweep.json, sweep.png/svg" : "") << (c.kv_sweep ? ", kv_sweep.json/tsv/png/svg" : "")
            << "}\n";
}

CLI::App* add_command(CLI::App& app, NiahCommandOptions& o) {
  auto* cmd = app.add_subcommand(
      "niah",
      "NIAH under head masking: score (ROUGE-1 recall x 100) over the length x depth grid with heads masked "
      "(default mask mode uniform, phase decode: the reference's setting), error taxonomy, heatmaps, sweeps");
  add_niah_options(cmd, o.niah, "runs/niah");
  add_mask_options(cmd, o.run.masks);
  add_kv_options(cmd, o.run.kv);
  add_kv_sweep_options(cmd, o.run.kv);
  cmd->add_flag("--baseline", o.run.baseline,
                "also run the unmasked model (a sweep always includes K = 0 when listed)");
  cmd->add_option("--sink-heads", o.run.sink_heads,
                  "record the first-token attention mass of this many top retrieval heads (score above the retrieval "
                  "threshold, from --scores)")
      ->capture_default_str();
  add_support_heads_option(cmd, o.run.support_heads);
  cmd->add_option("--merge-from", o.merge_from,
                  "instead of running: join these niah shard directories into -o (the model is not used)");
  cmd->footer(
      "Without --needles the single San Francisco needle of the paper is used. Results: one JSON line per test "
      "with the reference fields (model, context_length, depth_percent, needle, model_response, score) and "
      "mask, error_kind (incomplete / hallucination / wrong_extraction for score <= 50), per-step copy "
      "records and sink mass. Rerun with the same -o to resume.");
  return cmd;
}

const Command<NiahCommandOptions> command("niah", add_command, run);

}  // namespace
}  // namespace rhead::cli
