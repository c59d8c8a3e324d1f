// `rhead attn -m MODEL (-p PROMPT | --context FILE --question Q) -n N [--heads SPEC] [--layers L]
// [--mask SPEC --scores S] [--top-k K] [--json]`: greedy generation that shows, for every
// generated token, where each chosen query head looks. The trace itself (decoding, probes,
// copy events) is experiments/attn_trace; this file parses options and prints.
//
// Text output: one block per step, one line per chosen head (argmax position, its token,
// weight, sink mass; top-k positions with their tokens). --json: one JSON object per line and
// step (attn_step_to_json), each with "prompt_tokens".
//
// Masks (--mask, the head grammar: heads:L-H,..., kv:L-G,..., top:K and random:K with
// --scores / --seed) act on query heads. --mask-mode mean replaces a head's output by its mean
// over a calibration run: the whole prompt, run once through a separate session without any
// mask (see record_head_means); the masked generation follows.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "analysis/score_map.h"
#include "cli/command.h"
#include "cli/common.h"
#include "cli/kv_options.h"
#include "cli/niah_options.h"
#include "experiments/attn_trace.h"
#include "support/explain.h"
#include "io/error.h"
#include "io/text.h"
#include "io/mapped_file.h"
#include "model/generate.h"
#include "report/drawing.h"

namespace rhead::cli {
namespace {

struct AttnOptions {
  ModelOptions model;
  std::string prompt;
  std::string context, question;
  std::string chat_template;
  bool no_chat = false;
  std::string prompt_template;
  int n = 16;
  std::string heads = "all";
  std::string layers;
  std::string mask;
  std::string mask_mode = "uniform";
  std::string mask_phase = "decode";
  bool json = false;
  int top_k = 0;
  std::string plot;       // figure of one head's attention (.png or .svg)
  std::string plot_head;  // default: the shown head that copied most
  bool no_bos = false;
  bool stop_at_eos = true;
  KvCliOptions kv;
};

// The head grammar, with a bare list "2-0,2-1" read as heads:2-0,2-1.
std::string head_spec(const std::string& s) {
  return s.find(':') == std::string::npos && s != "all" && s != "none" ? "heads:" + s : s;
}

std::string quoted_piece(const Tokenizer& tok, int32_t id) { return "\"" + printable(tok.piece(id), true) + "\""; }

void print_step(const AttnStep& s, const Tokenizer& tok, bool show_topk) {
  std::ostringstream out;
  char buf[256];
  std::snprintf(buf, sizeof(buf), "\nstep %d  pos %lld  emits %d %s\n", s.index, static_cast<long long>(s.position),
                s.token, quoted_piece(tok, s.token).c_str());
  out << buf << "  head    argmax  token                 weight   sink\n";
  for (const HeadLook& h : s.heads) {
    std::snprintf(buf, sizeof(buf), "  %-7s %6d  %-20s  %.4f  %.4f%s%s%s\n", h.head.key().c_str(), h.argmax,
                  quoted_piece(tok, h.argmax_token).c_str(), h.argmax_weight, h.sink_mass, h.copy ? "  copy" : "",
                  h.masked ? "  (masked)" : "", h.windowed ? "  (window)" : "");
    out << buf;
    if (show_topk && !h.topk.empty()) {
      out << "          top-" << h.topk.size() << ":";
      for (size_t k = 0; k < h.topk.size() && h.topk[k] >= 0; ++k) {
        std::snprintf(buf, sizeof(buf), " %d %s %.4f", h.topk[k], quoted_piece(tok, h.topk_token[k]).c_str(),
                      h.topk_weight[k]);
        out << buf << (k + 1 < h.topk.size() && h.topk[k + 1] >= 0 ? "," : "");
      }
      out << "\n";
    }
  }
  out << "  copying heads:";
  if (s.copying.empty()) out << " none";
  for (const auto& h : s.copying) out << " " << h.key();
  out << "\n";
  std::cout << out.str() << std::flush;
}

void run_attn(const AttnOptions& o) {
  LoadedModel lm = load_model_from_options(o.model);
  const Tokenizer& tok = lm.require_tokenizer();
  const ModelConfig& c = lm.model->config;
  if (!o.context.empty() && !o.prompt.empty()) throw Error("--prompt and --context exclude each other");
  if (!o.context.empty() && o.question.empty()) throw Error("--context needs --question");
  if (o.context.empty() && !o.question.empty()) throw Error("--question needs --context");

  // One score map for --heads top:K, --mask top:K / random:K and --kv-full.
  std::optional<analysis::ScoreMap> scores;
  if (!o.kv.scores.empty()) scores = analysis::load_score_map(o.kv.scores);
  const HeadGrid<double>* score_grid = scores ? &scores->mean : nullptr;

  AttnTraceRequest request;
  if (!o.context.empty()) {
    // explain's prompt: the document inside the NIAH frame of the chosen prompt format.
    ExplainRequest er;
    er.context = read_text_file(o.context);
    if (er.context.empty()) fail(o.context, "the context file is empty");
    er.question = o.question;
    er.format = prompt_format_from_options(o.chat_template, o.no_chat, o.prompt_template, lm);
    request.prompt = build_explain_prompt(tok, er).tokens;
  } else {
    if (!o.prompt_template.empty() || !o.chat_template.empty())
      throw Error(
          "--prompt-template and --chat-template format --context and --question; with --prompt the text is the "
          "prompt");
    request.prompt = tok.encode(o.prompt, !o.no_bos);
  }
  if (request.prompt.empty()) throw Error("prompt is empty and the tokenizer adds no BOS token");
  request.max_new_tokens = o.n;
  // The figure needs each step's top weights: 8 unless --top-k asks for more.
  request.top_k = !o.plot.empty() && o.top_k == 0 ? 8 : o.top_k;
  if (!o.plot.empty()) {
    const std::string ext = std::filesystem::path(o.plot).extension().string();
    if (ext != ".png" && ext != ".svg") fail(o.plot, "--plot: expected a .png or .svg file name");
  }
  try {
    request.heads = select_heads(head_spec(o.heads), c, score_grid, o.kv.seed);
  } catch (const Error& e) {
    throw Error(std::string("--heads: ") + e.what());
  }
  request.heads = heads_in_layers(
      request.heads, o.layers.empty() ? std::vector<int>{} : parse_layer_list(o.layers, c.n_layer, "--layers"));
  if (request.heads.empty())
    throw Error("--heads " + o.heads + (o.layers.empty() ? "" : " --layers " + o.layers) + " selects no head");
  if (o.stop_at_eos) request.stop_after = [&tok](int32_t id) { return tok.is_end_of_generation(id); };

  HeadMask mask;
  const bool masking = !o.mask.empty() && o.mask != "none";
  if (masking) {
    mask = make_head_mask(select_heads(head_spec(o.mask), c, score_grid, o.kv.seed), c, parse_mask_mode(o.mask_mode),
                          parse_mask_phase(o.mask_phase));
    request.mask = &mask;
  }
  const SessionOptions so = session_options(o.model);
  if (masking && mask.mode == MaskMode::mean && !mask.empty()) {
    mask.means = record_head_means(lm.model, request.prompt, so);
    std::fprintf(stderr, "mean ablation: head means recorded over the %zu prompt tokens (unmasked run)\n",
                 request.prompt.size());
  }

  // KV policy: restricted heads see only the sink and their window; their probes report over
  // those keys ("window" in the text view, blocks.{l}.attn.kv_full false in JSON).
  const KvPolicy policy = kv_policy_from_options(o.kv, c, o.kv.scores, o.kv.seed);
  if (policy.active())
    std::fprintf(stderr, "%s\n",
                 describe_kv_policy(policy, c, session_options(o.model).kv_type(),
                                    static_cast<int64_t>(request.prompt.size()) + o.n)
                     .c_str());
  request.kv_policy = &policy;
  Session session(lm.model, with_kv_policy(so, policy));

  const int64_t n_prompt = static_cast<int64_t>(request.prompt.size());
  if (!o.json) {
    std::string mask_text = "none";
    if (masking) {
      mask_text = o.mask + " " + mask_mode_name(mask.mode) + "/" + mask_phase_name(mask.phase) + " (";
      for (const HeadId& h : mask.heads()) mask_text += (mask_text.back() == '(' ? "" : ",") + h.key();
      mask_text += ")";
    }
    std::printf(
        "prompt: %lld tokens (positions 0-%lld; the last one is fed at step 0), %d layers x %d query heads "
        "(%d KV heads), showing %zu heads, mask: %s\n",
        static_cast<long long>(n_prompt), static_cast<long long>(n_prompt - 1), c.n_layer, c.n_head, c.n_kv_head,
        request.heads.size(), mask_text.c_str());
  }
  const AttnTrace trace = trace_attention(session, request, [&](const AttnStep& s) {
    if (!o.json) {
      print_step(s, tok, o.top_k > 0);
      return;
    }
    nlohmann::ordered_json j = attn_step_to_json(s, tok, masking, policy.active(), o.top_k > 0);
    j["prompt_tokens"] = n_prompt;
    std::cout << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  });

  if (!o.plot.empty()) {
    HeadId head = request.heads.front();
    if (!o.plot_head.empty()) {
      head = HeadId::parse(o.plot_head, "--plot-head");
    } else {
      for (const HeadId& h : request.heads)
        if (trace.copies[h] > trace.copies[head]) head = h;
    }
    report::save_figure(attention_figure(trace, tok, head), o.plot);
    std::fprintf(stderr, "wrote %s (head %s)\n", o.plot.c_str(), head.key().c_str());
  }
  if (!o.json) {
    std::cout << "\ngenerated: \"" << printable(generated_text(trace, tok), true) << "\"\n";
    std::cout << "copy events per head (of " << trace.steps.size() << " steps):";
    bool any = false;
    for (const HeadId& h : request.heads)
      if (int n = trace.copies[h]; n > 0) {
        std::cout << " " << h.key() << ":" << n;
        any = true;
      }
    std::cout << (any ? "\n" : " none\n");
  }
  const int64_t n_prefill = n_prompt - 1;
  std::fprintf(stderr, "prompt: %lld tokens (prefill %lld, %.1f tokens/s) | decode: %zu tokens, %.1f tokens/s\n",
               static_cast<long long>(n_prompt), static_cast<long long>(n_prefill),
               trace.prefill_seconds > 0 ? n_prefill / trace.prefill_seconds : 0.0, trace.steps.size(),
               trace.decode_seconds > 0 ? trace.steps.size() / trace.decode_seconds : 0.0);
}

CLI::App* add_command(CLI::App& app, AttnOptions& o) {
  auto* cmd = app.add_subcommand(
      "attn", "greedy generation showing each query head's argmax position, token and weight per step");
  add_model_options(cmd, o.model);
  cmd->add_option("-p,--prompt", o.prompt, "prompt text (default: empty, BOS only)");
  cmd->add_option("--context", o.context,
                  "a document (text file): the prompt is explain's, the document framed by the prompt format with "
                  "--question");
  cmd->add_option("--question", o.question, "the question asked about --context");
  add_prompt_options(cmd, o.chat_template, o.no_chat, o.prompt_template);
  cmd->add_option("-n,--n-tokens", o.n, "tokens to generate")->check(at_least(0));
  cmd->add_option("--heads", o.heads,
                  "query heads shown: all, L-H,... (or heads:L-H,...), kv:L-G,..., top:K (with --scores)")
      ->capture_default_str();
  cmd->add_option("--layers", o.layers, "only heads of these layers, e.g. 0,2 or 10-15");
  cmd->add_option("--mask", o.mask,
                  "heads to mask: heads:L-H[,L-H...] (query heads), kv:L-G[,L-G...] (all query heads of KV "
                  "group G of layer L), top:K and random:K (with --scores; random also --seed), or none");
  cmd->add_option("--mask-mode", o.mask_mode,
                  "uniform: attend uniformly to the causal prefix (the reference's zeroed query); zero: remove the "
                  "head's output; mean: replace it by its mean over an unmasked calibration run on the prompt")
      ->check(CLI::IsMember({"uniform", "zero", "mean"}));
  cmd->add_option("--mask-phase", o.mask_phase, "decode: mask decode steps only (the reference); all: prefill too")
      ->check(CLI::IsMember({"decode", "all"}));
  cmd->add_option("--top-k", o.top_k, "also report each head's top-k positions, their tokens and weights")
      ->check(CLI::Range(0, 1000));
  cmd->add_option("--plot", o.plot,
                  "also draw one head's attention at each step over the positions it looked at (argmax path "
                  "outlined, weights of its top-k, 8 unless --top-k says more): a .png or .svg file");
  cmd->add_option("--plot-head", o.plot_head,
                  "the head drawn by --plot, L-H (default: the shown head that copied most)");
  cmd->add_flag("--json", o.json, "one JSON object per step (blocks.{l}.attn.argmax, ...) on stdout");
  cmd->add_flag("--no-bos", o.no_bos, "do not add the BOS token");
  cmd->add_flag("!--ignore-eos", o.stop_at_eos, "keep generating past the end-of-sequence token");
  add_kv_options(cmd, o.kv);
  add_kv_selection_options(cmd, o.kv);  // --scores and --seed: also for --heads / --mask top:K, random:K
  return cmd;
}

const Command<AttnOptions> command("attn", add_command, run_attn);

}  // namespace
}  // namespace rhead::cli
