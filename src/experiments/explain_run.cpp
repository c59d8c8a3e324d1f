// The explain run (see explain_run.h).
#include "experiments/explain_run.h"

#include <algorithm>

#include "analysis/score_map.h"
#include "experiments/generation.h"
#include "io/error.h"
#include "model/generate.h"

namespace rhead {

void check_explain_options(const ExplainRunOptions& o) {
  if (o.question.find_first_not_of(" \t\r\n") == std::string::npos) throw Error("--question is empty");
  if (o.context.empty()) {
    if (o.context_file.empty()) throw Error("context is empty");
    fail(o.context_file, "the context file is empty");
  }
  if (o.top_heads < 0) throw Error("--top-heads " + std::to_string(o.top_heads) + ": expected a positive count");
  if (o.max_new_tokens < 1)
    throw Error("--max-new-tokens " + std::to_string(o.max_new_tokens) + ": expected at least 1");
  if (!(o.tau >= 0 && o.tau <= 1)) throw Error("--tau " + std::to_string(o.tau) + ": expected 0 to 1");
  parse_mask_mode(o.mask_mode);
  parse_mask_phase(o.mask_phase);
}

ExplainRun explain_from_options(const LoadedModel& lm, const ModelOptions& model, const ExplainRunOptions& o) {
  check_explain_options(o);
  const Tokenizer& tok = lm.require_tokenizer();
  const ModelConfig& c = lm.model->config;
  const analysis::ScoreMap scores = analysis::load_score_map(o.scores);

  ExplainRequest request;
  request.context = o.context;
  request.question = o.question;
  request.format = prompt_format_from_options(o.chat_template, o.no_chat, o.prompt_template, lm);
  // 0, the default: 10 heads, or every head of a smaller model. A count given is taken as is.
  const int n_heads = c.n_layer * c.n_head;
  if (o.top_heads > n_heads)
    throw Error("--top-heads " + std::to_string(o.top_heads) + " is more than the model's " + std::to_string(n_heads) +
                " heads");
  const int top = o.top_heads > 0 ? o.top_heads : std::min(kDefaultExplainHeads, n_heads);
  request.heads = support_heads_for(&scores.mean, top, c);  // heads scoring 0 are never top heads
  request.tau = o.tau;
  request.max_new_tokens = o.max_new_tokens;

  SessionOptions so = session_options(model);
  // The KV cache holds what the model can read: its trained context unless --ctx says less.
  so.n_ctx = model.n_ctx > 0 ? std::min<int64_t>(model.n_ctx, c.n_ctx_train) : c.n_ctx_train;
  ExplainRun run;
  const MaskMode mode = parse_mask_mode(o.mask_mode);
  const MaskPhase phase = parse_mask_phase(o.mask_phase);
  if (o.mask != "none" && !o.mask.empty()) {
    run.mask = make_head_mask(select_heads(o.mask, c, &scores.mean, o.seed), c, mode, phase);
    if (run.mask.mode == MaskMode::mean && !run.mask.empty()) {
      const ExplainPrompt prompt = build_explain_prompt(tok, request);
      run.mask.means = record_head_means(lm.model, prompt.tokens, so);
    }
    request.mask = &run.mask;
  }

  // KV policy: windowed heads see only the sink and their window; their probes report over
  // those keys, so a source outside a head's window cannot be its argmax.
  run.kv_policy = kv_policy_from_options(o.kv, c, o.scores, o.seed);
  Session session(lm.model, with_kv_policy(so, run.kv_policy));
  run.explanation = explain(session, tok, request);
  request.mask = nullptr;

  run.document = explanation_to_json(run.explanation);
  run.document["model"] = lm.model->source;
  run.document["context_file"] = o.context_file;
  run.document["question"] = o.question;
  run.document["mask"] =
      run.mask.empty() ? "none" : o.mask + " " + mask_mode_name(run.mask.mode) + "/" + mask_phase_name(run.mask.phase);
  return run;
}

}  // namespace rhead
