// `rhead detect -m MODEL`: score every attention head with the retrieval-head method.
#include <iostream>

#include "cli/command.h"
#include "cli/niah_options.h"
#include "experiments/detect.h"
#include "experiments/synthetic_heads.h"
#include "io/atomic_file.h"
#include "io/json.h"

namespace rhead::cli {
namespace {

struct DetectCliOptions {
  NiahCliOptions niah;
  std::string merge_into;
  int top = 20;
  bool until_stable = false;
  int stable_k = 0;
  std::string methods = "copy";
};

void run(const DetectCliOptions& o) {
  const DetectMethods methods = parse_detect_methods(o.methods);
  LoadedModel lm = load_model_from_options(o.niah.model);
  DetectOptions d;
  d.merge_into = o.merge_into;
  d.until_stable = o.until_stable;
  d.stable_k = o.stable_k;
  d.stable_check = [&](int tests, bool stable) {
    if (o.niah.quiet) return;
    std::cerr << "\n" << tests << " tests: top-K set " << (stable ? "stable, stopping" : "not stable yet") << "\n";
  };
  ProgressBar bar(!o.niah.quiet);
  int passed = 0;
  d.progress = [&](int done, int total, const TestResult& r, double elapsed) {
    passed += r.counted;
    bar.update(done, total, passed, elapsed, r.test_id);
  };
  DetectSummary s = run_detect_from_options(lm, o.niah, d);
  bar.finish();
  if (!methods.synthetic.empty()) {
    // The synthetic detectors run on their own sequences; their agreement with copy goes to
    // summary.json ("methods").
    const nlohmann::json agreement = write_method_scores(o.niah.output, lm, methods, SyntheticOptions{});
    const std::string summary_path = o.niah.output + "/summary.json";
    nlohmann::json summary = read_json_file(summary_path);
    summary["methods"] = agreement;
    write_file_atomic(summary_path, summary.dump(2) + "\n");
    std::cout << "method agreement (Spearman, top-5 overlap):\n";
    for (const auto& p : agreement["pairs"]) {
      const std::string rho = p["spearman"].is_null() ? "n/a" : std::to_string(p["spearman"].get<double>());
      std::cout << "  " << p["a"].get<std::string>() << " vs " << p["b"].get<std::string>() << ": " << rho << ", "
                << p["top_k_overlap"][0]["shared"].get<int>() << "/" << p["top_k_overlap"][0]["k"].get<int>() << "\n";
    }
  }
  std::cout << format_summary(s, o.top);
  std::cout << "\nwrote " << o.niah.output << "/{results.jsonl, head_score.json, head_stats.json, summary.json}\n";
}

CLI::App* add_command(CLI::App& app, DetectCliOptions& o) {
  auto* cmd = app.add_subcommand("detect", "find retrieval heads: NIAH grid + copy-paste scoring of every query head");
  add_niah_options(cmd, o.niah, "runs/detect");
  cmd->add_option("--merge-into", o.merge_into,
                  "also extend this reference head_score JSON file with the run's scores");
  cmd->add_option("--top", o.top, "heads shown in the table")->capture_default_str()->check(at_least(0));
  cmd->add_flag("--until-stable", o.until_stable,
                "run the grid in a stratified order and stop once the top-K set is stable (docs/head_stats.md)");
  cmd->add_option("--stable-k", o.stable_k, "K of --until-stable's top-K set (default: the top 5% of the heads)")
      ->check(at_least(1));
  cmd->add_option("--methods", o.methods,
                  "detectors, comma-separated: copy (the retrieval score, always), previous-token, duplicate-token, "
                  "induction (on repeated random tokens; each writes head_score.<method>.json)")
      ->capture_default_str();
  cmd->footer(
      "A test is counted when its answer reaches ROUGE-1 recall > 50; only counted tests score heads. A head's score "
      "is "
      "its retrieval score averaged over the counted tests; its frequency the share of counted tests in which it "
      "copied at least one needle token. With no counted test nothing is ranked. --lengths are context lengths as the "
      "reference counts them: the haystack holds each length minus --buffer tokens.");
  return cmd;
}

const Command<DetectCliOptions> command("detect", add_command, run);

}  // namespace
}  // namespace rhead::cli
