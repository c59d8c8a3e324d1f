// Fuzz target: a needles JSONL file ({needle, question, real_needle[, haystack]} a line).
#include "fuzz_support.h"
#include "prompts/inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rhead;
  const std::string path = fuzz::write_scratch("needles.jsonl", fuzz::as_text(data, size));
  fuzz::expect_clean([&] { read_needle_sets(path); });
  return 0;
}
