// `rhead merge DIR... -o OUT`: join the outputs of detection shards.
#include <iostream>

#include "cli/command.h"
#include "niah/detect.h"

namespace rhead::cli {
namespace {

struct MergeOptions {
  std::vector<std::string> dirs;
  std::string output;
};

CommandRegistrar reg("merge", [](CLI::App& app) {
  auto o = std::make_shared<MergeOptions>();
  auto* cmd = app.add_subcommand("merge", "join detection shard directories into one run");
  cmd->add_option("dirs", o->dirs, "shard output directories")->required();
  cmd->add_option("-o,--output", o->output, "merged output directory")->required();
  cmd->callback([o] {
    DetectSummary s = merge_runs(o->dirs, o->output);
    std::cout << format_summary(s);
    std::cout << "\nwrote " << o->output << "/{results.jsonl, head_score.json, summary.json}\n";
  });
});

}  // namespace
}  // namespace rhead::cli
