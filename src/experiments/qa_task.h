// Extractive QA under head masking (`rhead qa`): items {"context", "question", "answers"},
// a prompt template with {context} and {question}, greedy answers cut at the first newline,
// SQuAD exact match and F1 (text/qa_metrics.h).
#pragma once
#include <string>
#include <vector>

#include "model/heads.h"
#include "model/probes.h"
#include "model/session.h"
#include "prompts/prompt.h"
#include "tokenizer/tokenizer.h"

namespace rhead {

// The default QA prompt: the context, then the question, then "Answer:". The model's answer
// is what it writes up to the first newline.
inline constexpr const char* kDefaultQaTemplate = "{context}\nQuestion: {question}\nAnswer:";

struct QaItem {
  std::string id;
  std::string context;
  std::string question;
  std::vector<std::string> answers;  // any of them is right
};

// JSONL: one {"context", "question", "answers": [..], optional "id"} per line. A missing id
// becomes "line N". Errors name `where` and the line.
std::vector<QaItem> parse_qa_jsonl(const std::string& text, const std::string& where);
std::vector<QaItem> read_qa_items(const std::string& path);

// The shipped data set (data/qa_small.jsonl, embedded): short passages of our own writing.
const char* builtin_qa_jsonl();

// An answer with F1 above this counts as right when support_share is compared across
// outcomes (support_auroc).
inline constexpr double kQaPassF1 = 0.5;

struct QaAnswer {
  std::string prediction;
  double exact_match = 0;  // 0 or 1
  double f1 = 0;           // 0..1
  int64_t prompt_tokens = 0, generated_tokens = 0;
  int64_t context_tokens_dropped = 0;  // the start of a context too long for the session
  double seconds = 0;
  // Share of the answer's tokens copied from the context by the support heads
  // (experiments/explain.h); -1 when no support heads were given.
  double support_share = -1;
};

// Prompt tokens of one item: frame before + context + frame after. A context that does not
// fit `max_prompt_tokens` loses its first tokens (counted in `dropped`).
std::vector<int32_t> qa_prompt_tokens(const Tokenizer& tok, const PromptFormat& format, const QaItem& item,
                                      int64_t max_prompt_tokens, int64_t& dropped);

// Answers one item greedily from an empty session state, under `mask` (nullptr: none), and
// measures its support_share by `support_heads` (none: not measured).
QaAnswer run_qa_item(Session& session, const Tokenizer& tok, const PromptFormat& format, const QaItem& item,
                     const HeadMask* mask, int max_new_tokens, const std::vector<HeadId>& support_heads = {});

}  // namespace rhead
