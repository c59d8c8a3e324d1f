// `rhead export DIR --csv [-o OUT]`: flat CSV files of a detect or niah run folder (per-head
// scores, per-test results, summaries; columns in report/flat_export.h).
#include <iostream>
#include <memory>
#include <string>

#include "cli/command.h"
#include "report/flat_export.h"

namespace rhead::cli {
namespace {

struct ExportCliOptions {
  std::string dir;
  std::string output;
  bool csv = true;
};

const CommandRegistrar registrar(
    "export",
    [](CLI::App& app) {
      auto opt = std::make_shared<ExportCliOptions>();
      auto* cmd = app.add_subcommand("export",
                                     "Write flat CSV files of a detect or niah run folder: heads.csv (head, layer, "
                                     "mean, frequency, counted tests, "
                                     "rank), tests.csv (one row per test and condition) and summary.csv");
      cmd->add_option("dir", opt->dir, "output directory of rhead detect or niah")->required();
      cmd->add_option("-o,--output", opt->output, "folder for the CSV files (default: DIR/export)");
      cmd->add_flag("--csv", opt->csv, "CSV, comma separated with a header row (the only format, and the default)");
      cmd->callback([opt] {
        const std::string out = opt->output.empty() ? opt->dir + "/export" : opt->output;
        for (const std::string& path : report::write_flat_exports(opt->dir, out)) std::cout << "wrote " << path << "\n";
      });
    },
    Compute::files_only);

}  // namespace
}  // namespace rhead::cli
