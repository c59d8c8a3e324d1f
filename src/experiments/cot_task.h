// Arithmetic reasoning under head masking (`rhead cot`): GSM8K-style items {"question",
// "answer"} whose answer ends with "#### N", few-shot exemplars, two prompting styles
// (answer only, chain of thought) and numeric answer extraction (text/qa_metrics.h).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "model/probes.h"
#include "model/session.h"
#include "prompts/prompt.h"
#include "tokenizer/tokenizer.h"

namespace rhead {

struct CotItem {
  std::string id;
  std::string question;
  std::string answer;        // as given: reasoning, then "#### N"
  std::string final_answer;  // the text after the last "####", trimmed
  double gold = 0;           // its number
};

// JSONL {"question", "answer", optional "id"}; the answer must end with "#### N".
std::vector<CotItem> parse_cot_jsonl(const std::string& text, const std::string& where);
std::vector<CotItem> read_cot_items(const std::string& path);

// Shipped data (data/arith_small.jsonl, data/arith_fewshot.jsonl, embedded).
const char* builtin_arith_jsonl();
const char* builtin_arith_fewshot_jsonl();

enum class CotStyle { answer_only, chain_of_thought };
const char* cot_style_name(CotStyle s);                 // "answer_only", "cot"
CotStyle cot_style_from_name(const std::string& name);  // also accepts "answer", "chain_of_thought"

// An exemplar's reasoning: the answer before "####", calculator notes "<<...>>" removed,
// lines joined with spaces.
std::string cot_reasoning(const std::string& answer);

// The prompt text: each shot as "Question: {q}\nAnswer: {body}\n\n", then
// "Question: {q}\nAnswer:". body is "The answer is N." for answer_only and
// "{reasoning} The answer is N." for chain_of_thought.
std::string cot_prompt_text(const std::vector<CotItem>& shots, const std::string& question, CotStyle style);

struct CotAnswer {
  std::string completion;           // what the model wrote, up to the stop
  std::optional<double> predicted;  // extract_predicted_number(completion)
  bool correct = false;
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double seconds = 0;
};

// Generates greedily from an empty session state under `mask` (nullptr: none). Stops at
// end of generation, at a blank line or a new "Question:", or for answer_only at the first
// newline. `format` wraps the prompt text (as its {context}) in a chat template when set.
CotAnswer run_cot_item(Session& session, const Tokenizer& tok, const PromptFormat& format, const std::string& prompt,
                       const CotItem& item, CotStyle style, const HeadMask* mask, int max_new_tokens);

}  // namespace rhead
