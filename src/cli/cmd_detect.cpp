// `rhead detect -m MODEL`: score every attention head with the retrieval-head method.
#include <iostream>

#include "cli/command.h"
#include "cli/niah_options.h"
#include "experiments/detect.h"

namespace rhead::cli {
namespace {

struct DetectCliOptions {
  NiahCliOptions niah;
  std::string merge_into;
  int top = 20;
  bool grow = false;
};

void run(const DetectCliOptions& o) {
  LoadedModel lm = load_model_from_options(o.niah.model);
  nlohmann::json settings;
  NiahRunConfig config = make_niah_config(o.niah, lm, DefaultNeedles::builtin_facts, settings);
  const auto [shard_i, shard_n] = parse_shard(o.niah.shard);
  settings["shard"] = o.niah.shard;
  NiahRunner runner(lm, session_options(o.niah.model), config);
  DetectOptions d;
  d.output_dir = o.niah.output;
  d.shard_index = shard_i;
  d.shard_count = shard_n;
  d.merge_into = o.merge_into;
  d.grow_grid = o.grow;
  d.settings = settings;
  ProgressBar bar(!o.niah.quiet);
  int passed = 0;
  d.progress = [&](int done, int total, const TestResult& r, double elapsed) {
    passed += r.counted;
    bar.update(done, total, passed, elapsed, r.test_id);
  };
  DetectSummary s = run_detect(runner, d);
  bar.finish();
  std::cout << format_summary(s, o.top);
  std::cout << "\nwrote " << o.niah.output << "/{results.jsonl, head_score.json, summary.json}\n";
}

CommandRegistrar reg("detect", [](CLI::App& app) {
  auto o = std::make_shared<DetectCliOptions>();
  auto* cmd = app.add_subcommand("detect", "find retrieval heads: NIAH grid + copy-paste scoring of every query head");
  add_niah_options(cmd, o->niah, "runs/detect");
  cmd->add_option("--merge-into", o->merge_into, "also extend this reference head_score JSON file with the run's scores");
  cmd->add_flag("--grow", o->grow,
                "resume a folder whose run had a smaller grid (more --lengths or --depths): its lines are kept and "
                "only the new tests run; every other setting must match");
  cmd->add_option("--top", o->top, "heads shown in the table")->capture_default_str()->check(at_least(0));
  cmd->callback([o] { run(*o); });
});

}  // namespace
}  // namespace rhead::cli
