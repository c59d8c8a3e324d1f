// `rhead heads SCORES --top K --format qrhead|redeep`: a score map's strongest heads as a
// published ranked head list (QRHead's "L-H,..." or ReDeEP's top-k heads JSON), for the
// tools that read them; rhead reads both back (--mask file:PATH, rhead compare).
#include <iostream>

#include "analysis/score_map.h"
#include "cli/command.h"
#include "io/atomic_file.h"
#include "io/error.h"

namespace rhead::cli {
namespace {

struct HeadsOptions {
  std::string scores, format = "qrhead", output;
  int top = 20;
};

void run(const HeadsOptions& o) {
  const analysis::ScoreMap map = analysis::load_score_map(o.scores);
  std::vector<HeadId> heads;
  for (std::size_t i : heads_by_score(map.mean)) {
    if (static_cast<int>(heads.size()) == o.top || !(map.mean[i] > 0)) break;  // heads that never copied are left out
    heads.push_back(map.head_at(i));
  }
  if (heads.empty()) fail(o.scores, "no head scores above 0: nothing to list");
  const std::string text = o.format == "qrhead" ? qrhead_head_list(heads) : redeep_head_list(heads);
  if (o.output.empty())
    std::cout << text;
  else
    write_file_atomic(o.output, text);
}

CLI::App* add_command(CLI::App& app, HeadsOptions& o) {
  auto* cmd = app.add_subcommand("heads", "write the strongest heads of a score map as a QRHead or ReDeEP head list");
  cmd->add_option("scores", o.scores, "head_score JSON, detect directory or head list")->required();
  cmd->add_option("--top", o.top, "heads listed (at most; heads scoring 0 are left out)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--format", o.format, "qrhead (\"L-H,L-H,...\") or redeep ([[L, H], ...])")
      ->capture_default_str()
      ->check(CLI::IsMember({"qrhead", "redeep"}));
  cmd->add_option("-o,--output", o.output, "file to write (default: stdout)");
  return cmd;
}

const Command<HeadsOptions> command("heads", add_command, run);

}  // namespace
}  // namespace rhead::cli
