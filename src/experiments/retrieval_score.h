// The retrieval score of METHOD.md section 3: the needle span rule and the per-step
// copy-paste rule, applied to every query head.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "model/probes.h"

namespace rhead {

struct NeedleSpan {
  int64_t begin = -1;  // [begin, end) in prompt positions
  int64_t end = -1;
  int64_t size() const { return end - begin; }
};

// First i where the set of prompt tokens in [i, i+n) covers more than 90% of the set of
// answer tokens (n = number of answer tokens); nullopt if no window does.
std::optional<NeedleSpan> find_needle_span(const std::vector<int32_t>& prompt, const std::vector<int32_t>& answer);

// Accumulates score[l][h] += 1/|span| for every decode step at which head (l, h) copies
// (is_copy in model/heads.h) from a position inside the span. Heads in `mask` (when given)
// are overridden at every decode step and so never copy.
class RetrievalScorer {
 public:
  RetrievalScorer(int n_layer, int n_head, NeedleSpan span, const std::vector<int32_t>& prompt,
                  const HeadMask* mask = nullptr);
  // `probes` must hold argmax for one observation: the query of the step that emitted `token`.
  void observe(const ProbeRecord& probes, int32_t token);
  const std::vector<double>& scores() const { return scores_; }  // [n_layer * n_head]
  const std::vector<int>& copies() const { return copies_; }     // copy events per head
  int n_layer() const { return n_layer_; }
  int n_head() const { return n_head_; }

 private:
  int n_layer_, n_head_;
  NeedleSpan span_;
  const std::vector<int32_t>& prompt_;
  const HeadMask* mask_;
  std::vector<double> scores_;
  std::vector<int> copies_;
};

}  // namespace rhead
