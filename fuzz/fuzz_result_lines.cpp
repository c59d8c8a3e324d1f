// Fuzz target: result lines (results.jsonl) as detect resumes them and as the analyses
// read them.
#include "analysis/run_files.h"
#include "fuzz_support.h"
#include "records/results.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rhead;
  const std::string path = fuzz::write_scratch("results.jsonl", fuzz::as_text(data, size));
  fuzz::expect_clean([&] {
    for (const auto& line : read_results_lines(path, false)) test_result_from_json(line, path);
  });
  fuzz::expect_clean([&] {
    auto tests = analysis::read_detect_results(path);
    analysis::score_map_from_detect_results(tests, 0, 0, path);
  });
  fuzz::expect_clean([&] { analysis::read_niah_results(path); });
  return 0;
}
