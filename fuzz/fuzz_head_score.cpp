// Fuzz target: a reference head_score JSON ({"L-H": [scores]}) read as a score map, then
// the summaries built from it.
#include "analysis/score_map.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rhead;
  const std::string path = fuzz::write_scratch("head_score.json", fuzz::as_text(data, size));
  fuzz::expect_clean([&] {
    analysis::ScoreMap map = analysis::read_head_score_json(path);
    analysis::count_above(map, 0.1);
    analysis::bucket_scores(map, 0.1);
  });
  return 0;
}
