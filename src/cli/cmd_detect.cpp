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
};

void run(const DetectCliOptions& o) {
  LoadedModel lm = load_model_from_options(o.niah.model);
  ProgressBar bar(!o.niah.quiet);
  int passed = 0;
  DetectSummary s = run_detect_from_options(lm, o.niah, o.merge_into, [&](int done, int total, const TestResult& r, double elapsed) {
    passed += r.counted;
    bar.update(done, total, passed, elapsed, r.test_id);
  });
  bar.finish();
  std::cout << format_summary(s, o.top);
  std::cout << "\nwrote " << o.niah.output << "/{results.jsonl, head_score.json, summary.json}\n";
}

CommandRegistrar reg("detect", [](CLI::App& app) {
  auto o = std::make_shared<DetectCliOptions>();
  auto* cmd = app.add_subcommand("detect", "find retrieval heads: NIAH grid + copy-paste scoring of every query head");
  add_niah_options(cmd, o->niah, "runs/detect");
  cmd->add_option("--merge-into", o->merge_into, "also extend this reference head_score JSON file with the run's scores");
  cmd->add_option("--top", o->top, "heads shown in the table")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->footer(
      "A test is counted when its answer reaches ROUGE-1 recall > 50; only counted tests score heads. A head's score is "
      "its retrieval score averaged over the counted tests; its frequency the share of counted tests in which it "
      "copied at least one needle token. With no counted test nothing is ranked. --lengths are context lengths as the "
      "reference counts them: the haystack holds each length minus --buffer tokens.");
  cmd->callback([o] { run(*o); });
});

}  // namespace
}  // namespace rhead::cli
