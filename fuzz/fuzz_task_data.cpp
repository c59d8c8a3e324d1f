// Fuzz target: the item files of the qa ({context, question, answers}) and cot ({question,
// answer ending in "#### N"}) tasks, read by --data and --fewshot.
#include "fuzz_support.h"
#include "experiments/cot_task.h"
#include "experiments/qa_task.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rhead;
  const std::string text(fuzz::as_text(data, size));
  fuzz::expect_clean([&] { parse_qa_jsonl(text, "qa.jsonl"); });
  fuzz::expect_clean([&] { parse_cot_jsonl(text, "cot.jsonl"); });
  return 0;
}
