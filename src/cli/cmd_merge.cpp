// `rhead merge DIR... -o OUT`: join the shard directories of one run, of any kind (detect,
// niah, qa, cot), and rebuild its summaries and figures.
#include <iostream>

#include "cli/command.h"
#include "experiments/experiment.h"

namespace rhead::cli {
namespace {

struct MergeOptions {
  std::vector<std::string> dirs;
  std::string output;
};

CommandRegistrar reg(
    "merge",
    [](CLI::App& app) {
      auto o = std::make_shared<MergeOptions>();
      auto* cmd =
          app.add_subcommand("merge", "join the shard directories of one run (detect, niah, qa or cot) into one");
      cmd->add_option("dirs", o->dirs, "shard output directories")->required();
      cmd->add_option("-o,--output", o->output, "merged output directory")->required();
      cmd->callback([o] {
        const RunDir merged = merge_run_dirs(o->dirs, o->output);
        if (const auto* p = merged.record().contains("partial") ? &merged.record()["partial"] : nullptr)
          std::cerr << "warning: " << o->output << " is partial: " << p->value("missing_keys", nlohmann::json(0)).dump()
                    << " of " << p->value("keys", nlohmann::json(0)).dump()
                    << " keys are missing (merge the other shards, or finish them, then merge again)\n";
        std::cout << write_run_outputs(merged);
        std::cout << "\nwrote " << o->output << " (" << merged.lines().size() << " results)\n";
      });
    },
    Compute::files_only);

}  // namespace
}  // namespace rhead::cli
