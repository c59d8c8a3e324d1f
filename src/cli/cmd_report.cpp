// `rhead report DIR -o report.html`: one self-contained HTML page for detect/niah outputs.
#include <iostream>
#include <memory>
#include <string>

#include "cli/command.h"
#include "io/error.h"
#include "report/html_report.h"

namespace rhead::cli {
namespace {

struct ReportCliOptions {
  std::string dir;
  std::string output = "report.html";
  report::ReportOptions report;
};

const CommandRegistrar registrar(
    "report",
    [](CLI::App& app) {
      auto opt = std::make_shared<ReportCliOptions>();
      auto* cmd = app.add_subcommand(
          "report",
          "Write one self-contained HTML page (model, settings, tables, inline figures, raw-file links) for an rhead "
          "detect or niah output directory, or a directory of several");
      cmd->add_option("dir", opt->dir, "output directory of rhead detect / niah, or a folder of them")->required();
      cmd->add_option("-o,--output", opt->output, "HTML file to write")->capture_default_str();
      cmd->add_option("--title", opt->report.title, "page title");
      cmd->add_flag("--allow-shape-mismatch", opt->report.allow_shape_mismatch,
                    "compare detection runs of different shapes over their common heads");
      cmd->callback([opt] {
        report::write_report(opt->dir, opt->output, opt->report);
        std::cout << opt->output << "\n";
      });
    },
    Compute::files_only);

}  // namespace
}  // namespace rhead::cli
