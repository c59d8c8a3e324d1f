// Needle span and copy-paste scoring.
#include "experiments/retrieval_score.h"

#include <set>

#include "io/error.h"

namespace rhead {

std::optional<NeedleSpan> find_needle_span(const std::vector<int32_t>& prompt, const std::vector<int32_t>& answer) {
  const int64_t n = static_cast<int64_t>(answer.size());
  if (n == 0 || static_cast<int64_t>(prompt.size()) < n) return std::nullopt;
  const std::set<int32_t> target(answer.begin(), answer.end());
  for (int64_t i = 0; i + n <= static_cast<int64_t>(prompt.size()); ++i) {
    std::set<int32_t> window(prompt.begin() + i, prompt.begin() + i + n);
    size_t covered = 0;
    for (int32_t t : target) covered += window.count(t);
    if (static_cast<double>(covered) / static_cast<double>(target.size()) > 0.9) return NeedleSpan{i, i + n};
  }
  return std::nullopt;
}

RetrievalScorer::RetrievalScorer(int n_layer, int n_head, NeedleSpan span, const std::vector<int32_t>& prompt,
                                 const HeadMask* mask)
    : n_layer_(n_layer),
      n_head_(n_head),
      span_(span),
      prompt_(prompt),
      mask_(mask && !mask->empty() ? mask : nullptr),
      scores_(static_cast<size_t>(n_layer) * n_head, 0.0),
      copies_(static_cast<size_t>(n_layer) * n_head, 0) {}

void RetrievalScorer::observe(const ProbeRecord& probes, int32_t token) {
  if (probes.n_obs < 1 || probes.argmax.empty()) throw Error("retrieval scoring needs argmax probes");
  const double credit = 1.0 / static_cast<double>(span_.size());
  for (int l = 0; l < n_layer_; ++l)
    for (int h = 0; h < n_head_; ++h) {
      const int64_t j = probes.argmax[probes.index(0, l, h)];
      if (j >= span_.begin && j < span_.end && is_copy(j, prompt_, token, mask_ && mask_->contains(l, h))) {
        scores_[l * n_head_ + h] += credit;
        copies_[l * n_head_ + h] += 1;
      }
    }
}

}  // namespace rhead
