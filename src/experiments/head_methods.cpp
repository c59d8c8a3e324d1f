// qrhead and lookback scores from the probes of a NIAH test.
#include "experiments/head_methods.h"

#include <cmath>
#include <limits>

#include "io/error.h"

namespace rhead {

std::vector<TokenSpan> qrhead_documents(TokenSpan context, TokenSpan needle, int64_t doc_tokens, int* gold) {
  if (doc_tokens < 1) throw Error("qrhead: documents need at least one token");
  if (needle.begin < context.begin || needle.end > context.end || needle.begin >= needle.end)
    throw Error("qrhead: the needle [" + std::to_string(needle.begin) + ", " + std::to_string(needle.end) +
                ") is not inside the haystack [" + std::to_string(context.begin) + ", " + std::to_string(context.end) +
                ")");
  std::vector<TokenSpan> docs;
  int64_t begin = context.begin;
  while (begin < context.end) {
    int64_t end = std::min(context.end, begin + doc_tokens);
    if (end > needle.begin && end < needle.end) end = needle.end;
    if (begin <= needle.begin && needle.begin < end) *gold = static_cast<int>(docs.size());
    docs.push_back({begin, end});
    begin = end;
  }
  return docs;
}

ProbeRequest qrhead_question_probes(int64_t context_end, int64_t prefill_end) {
  ProbeRequest p;
  p.argmax = false;
  p.key_weights_len = context_end;
  for (int64_t i = context_end; i < prefill_end; ++i) p.positions.push_back(i);
  return p;
}

ProbeRecord qrhead_null_record(Session& session, int64_t context_end, const std::vector<int32_t>& null_after,
                               const HeadMask* mask) {
  if (null_after.size() < 2) throw Error("qrhead: the null question has no tokens before the prompt's last");
  const auto n = static_cast<int64_t>(null_after.size()) - 1;
  session.truncate(context_end);
  const ProbeRequest probes = qrhead_question_probes(context_end, context_end + n);
  ProbeRecord record;
  ForwardOptions fo;
  fo.mask = mask;
  fo.probes = &probes;
  fo.probe_out = &record;
  session.forward(std::span<const int32_t>(null_after).first(static_cast<size_t>(n)), fo);
  session.truncate(context_end);
  return record;
}

double qrhead_document_score(const std::vector<double>& cal, TokenSpan doc) {
  const int64_t n = doc.end - doc.begin;
  if (n <= 0) return 0.0;
  double mean = 0;
  for (int64_t j = doc.begin; j < doc.end; ++j) mean += cal[j];
  mean /= static_cast<double>(n);
  double threshold = -std::numeric_limits<double>::infinity();
  if (n > 1) {
    double ss = 0;
    for (int64_t j = doc.begin; j < doc.end; ++j) ss += (cal[j] - mean) * (cal[j] - mean);
    threshold = mean - 2.0 * std::sqrt(ss / static_cast<double>(n - 1));
  }
  double sum = 0;
  for (int64_t j = doc.begin; j < doc.end; ++j)
    if (cal[j] > threshold) sum += cal[j];
  return sum;
}

std::vector<double> qrhead_scores(const ProbeRecord& real, const ProbeRecord& null, TokenSpan gold) {
  const int64_t len = real.key_weights_len;
  if (len != null.key_weights_len || real.n_layer != null.n_layer || real.n_head != null.n_head || gold.end > len ||
      real.key_mean.size() != static_cast<size_t>(real.n_layer) * real.n_head * len ||
      null.key_mean.size() != real.key_mean.size())
    throw Error("qrhead: the probe records do not hold the keys of the gold document");
  std::vector<double> out(static_cast<size_t>(real.n_layer) * real.n_head);
  std::vector<double> cal(static_cast<size_t>(len));
  for (size_t head = 0; head < out.size(); ++head) {
    const float* r = real.key_mean.data() + head * len;
    const float* z = null.key_mean.data() + head * len;
    for (int64_t j = gold.begin; j < gold.end; ++j) cal[j] = static_cast<double>(r[j]) - static_cast<double>(z[j]);
    out[head] = qrhead_document_score(cal, gold);
  }
  return out;
}

double lookback_ratio(double new_mass, int64_t n_ctx, int64_t n_new) {
  if (n_ctx <= 0) return 0.0;
  const double a_ctx = (1.0 - new_mass) / static_cast<double>(n_ctx);
  const double a_new = n_new > 0 ? new_mass / static_cast<double>(n_new) : 0.0;
  return a_ctx + a_new > 0 ? a_ctx / (a_ctx + a_new) : 0.0;
}

LookbackAccumulator::LookbackAccumulator(int n_layer, int n_head, int64_t context_end)
    : context_end_(context_end), sum_(static_cast<size_t>(n_layer) * n_head, 0.0) {}

void LookbackAccumulator::request(ProbeRequest& probes) const {
  if (probes.span_begin >= 0) throw Error("lookback: the span probe is already in use");
  probes.span_begin = context_end_;
  probes.span_end = std::numeric_limits<int64_t>::max();
}

void LookbackAccumulator::observe(const ProbeRecord& rec) {
  if (rec.n_obs != 1 || rec.span_mass.size() != sum_.size())
    throw Error("lookback: the step's probe record holds no span mass");
  const int64_t n_new = rec.positions[0] + 1 - context_end_;
  for (size_t i = 0; i < sum_.size(); ++i) sum_[i] += lookback_ratio(rec.span_mass[i], context_end_, n_new);
  ++steps_;
}

std::vector<double> LookbackAccumulator::scores() const {
  std::vector<double> out = sum_;
  if (steps_ > 0)
    for (double& v : out) v /= steps_;
  return out;
}

}  // namespace rhead
