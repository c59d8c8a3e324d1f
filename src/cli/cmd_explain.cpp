// `rhead explain -m MODEL --scores head_score.json --context FILE --question TEXT`: answers the
// question over the document greedily, as a NIAH test would, and traces every answer token to
// the document tokens that the top retrieval heads copied it from (see experiments/explain.h).
//
// Output: a terminal view (answer tokens coloured by support when stdout is a terminal, then
// one line per token with its sources), or --json (the explanation document), and with
// --html OUT.html a self-contained page of the context and the answer.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "analysis/score_map.h"
#include "cli/command.h"
#include "cli/common.h"
#include "cli/kv_options.h"
#include "cli/niah_options.h"
#include "experiments/explain_run.h"
#include "io/enum_names.h"
#include "io/error.h"
#include "io/text.h"
#include "model/generate.h"
#include "model/heads.h"
#include "records/results.h"
#include "report/explain_page.h"

namespace rhead::cli {
namespace {

struct ExplainOptions {
  ModelOptions model;
  std::string context;  // the file; its text goes to run.context
  ExplainRunOptions run;
  bool json = false;
  std::string html;
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open the context file");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

constexpr EnumName<Support> kSupportColours[] = {
    {Support::copied, "\033[1;32m"}, {Support::attended, "\033[1;33m"}, {Support::unsupported, "\033[1;4;31m"}};

const char* support_colour(Support s) { return name_in(kSupportColours, s); }

void print_terminal(const Explanation& e, bool colour) {
  const char* reset = colour ? "\033[0m" : "";
  std::ostringstream out;
  out << "answer: ";
  for (const ExplainedToken& t : e.tokens)
    out << (colour ? support_colour(t.support) : "") << printable(t.piece) << reset;
  out << "\n";
  int copied = 0;
  for (const ExplainedToken& t : e.tokens) copied += t.support == Support::copied;
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "support share %.3f (%d of %zu answer tokens copied), tau %.2f, top heads:", e.support_share, copied,
                e.tokens.size(), e.tau);
  out << buf;
  for (const auto& h : e.heads) out << " " << h.key();
  out << "\n\n   #  token                 support      sink  document  sources (head weight @position [bytes])\n";
  for (size_t i = 0; i < e.tokens.size(); ++i) {
    const ExplainedToken& t = e.tokens[i];
    const std::string quoted = "\"" + printable(t.piece) + "\"";
    std::snprintf(buf, sizeof(buf), "%4zu  %-20s  %s%-11s%s  %.3f  %.3f    ", i, quoted.c_str(),
                  colour ? support_colour(t.support) : "", support_name(t.support), reset, t.sink_mass,
                  t.document_mass);
    out << buf;
    if (t.sources.empty()) out << "-";
    for (size_t k = 0; k < t.sources.size(); ++k) {
      const TokenSource& s = t.sources[k];
      std::snprintf(buf, sizeof(buf), "%s%s %.3f @%lld [%lld,%lld)", k ? ", " : "", s.head.key().c_str(), s.weight,
                    static_cast<long long>(s.pos), static_cast<long long>(s.char_begin),
                    static_cast<long long>(s.char_end));
      out << buf;
    }
    out << "\n";
  }
  std::cout << out.str() << std::flush;
}

void run_explain(const ExplainOptions& o) {
  ExplainRunOptions r = o.run;
  r.context = read_text_file(o.context);
  r.context_file = o.context;
  check_explain_options(r);
  LoadedModel lm = load_model_from_options(o.model);
  const ExplainRun run = explain_from_options(lm, o.model, r);
  if (run.kv_policy.active()) {
    const int64_t n_ctx = o.model.n_ctx > 0 ? std::min<int64_t>(o.model.n_ctx, lm.model->config.n_ctx_train)
                                            : lm.model->config.n_ctx_train;
    std::fprintf(
        stderr, "%s\n",
        describe_kv_policy(run.kv_policy, lm.model->config, session_options(o.model).kv_type(), n_ctx).c_str());
  }
  if (o.json)
    std::cout << run.document.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  else
    print_terminal(run.explanation, isatty(1) != 0);
  if (!o.html.empty()) {
    report::ExplainPageInfo info{lm.model->source, o.context, r.question, run.mask.empty() ? "" : r.mask};
    write_file_atomic(o.html, report::build_explain_page(run.explanation, r.context, info));
    std::fprintf(stderr, "wrote %s\n", o.html.c_str());
  }
}

CLI::App* add_command(CLI::App& app, ExplainOptions& o) {
  auto* cmd = app.add_subcommand("explain",
                                 "answer a question over a document and trace each answer token to the document "
                                 "tokens the top retrieval heads copied it from (copied / attended / unsupported)");
  add_model_options(cmd, o.model);
  cmd->add_option("--scores", o.run.scores, "head scores: head_score.json or a detect output directory")->required();
  cmd->add_option("--context", o.context, "the document (a text file)")->required();
  cmd->add_option("--question", o.run.question, "the question")->required();
  add_prompt_options(cmd, o.run.chat_template, o.run.no_chat, o.run.prompt_template);
  cmd->add_option("-n,--max-new-tokens", o.run.max_new_tokens, "longest answer in tokens")
      ->capture_default_str()
      ->check(at_least(1));
  cmd->add_option("--top-heads", o.run.top_heads,
                  "explain with the K highest-scoring heads of --scores (default 10, every head of a smaller model)")
      ->check(at_least(1));
  cmd->add_option("--tau", o.run.tau,
                  "a token no top head copied is 'attended' when the top heads' mean attention mass inside the "
                  "document is at least tau, else 'unsupported'")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--mask", o.run.mask,
                  "heads to mask: none, top:K, random:K (needs --seed), heads:L-H,..., kv:L-G,...")
      ->capture_default_str();
  cmd->add_option("--mask-mode", o.run.mask_mode,
                  "uniform (the reference's zeroed query), zero (remove the output), mean (replace it by its mean over "
                  "an unmasked run on the prompt)")
      ->capture_default_str()
      ->check(CLI::IsMember({"uniform", "zero", "mean"}));
  cmd->add_option("--mask-phase", o.run.mask_phase, "decode (the reference) or all (prefill too)")
      ->capture_default_str()
      ->check(CLI::IsMember({"decode", "all"}));
  cmd->add_option("--seed", o.run.seed, "seed of --mask random:K and --kv-full random:K")->capture_default_str();
  add_kv_options(cmd, o.run.kv);  // --kv-full top:K / random:K use --scores and --seed
  cmd->add_flag("--json", o.json, "print the explanation as JSON instead of the terminal view");
  cmd->add_option("--html", o.html, "also write a self-contained HTML page of the context and the answer");
  return cmd;
}

const Command<ExplainOptions> command("explain", add_command, run_explain);

}  // namespace
}  // namespace rhead::cli
