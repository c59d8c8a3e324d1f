// The NIAH-pass head detectors of `rhead detect --methods` beside the copy rule (definitions
// and departures in docs/head_methods.md):
//   qrhead   (query-focused retrieval heads): per head, the calibrated attention of the
//            question tokens on the gold document, the haystack chunk that holds the needle;
//   lookback (Lookback Lens): per head, the lookback ratio averaged over the decode steps.
// Both read probes of the one NIAH forward pass per test (NiahRunner) and give one score per
// head and test, stored in the test's result line (TestResult::method_scores).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/json_range.h"
#include "model/probes.h"
#include "model/session.h"

namespace rhead {

inline constexpr const char* kQrheadMethod = kQrheadScoreFileMethod;  // io/json_range.h
inline constexpr const char* kLookbackMethod = "lookback";
inline constexpr int64_t kQrheadDocTokens = 64;  // tokens per haystack document
inline constexpr const char* kQrheadNullQuestion = "N/A";

// A token range [begin, end) of the prompt.
struct TokenSpan {
  int64_t begin = 0, end = 0;
};

// The haystack [context.begin, context.end) cut into documents of `doc_tokens` tokens counted
// from its start, except that no cut falls inside the needle [needle.begin, needle.end): such
// a cut moves to the needle's end. `gold` receives the index of the document holding the
// needle's first token. Error when the needle is not inside the context.
std::vector<TokenSpan> qrhead_documents(TokenSpan context, TokenSpan needle, int64_t doc_tokens, int* gold);

// The question rows of a NIAH prompt's prefill [0, prefill_end): positions [context_end,
// prefill_end), each key's mean weight over [0, context_end) (ProbeRequest::key_weights_len).
ProbeRequest qrhead_question_probes(int64_t context_end, int64_t prefill_end);

// QRHead's null question on the prefix `session` holds: truncates it to context_end, runs
// null_after but its last token (the rows that match the question's), observing those rows as
// qrhead_question_probes does, and truncates back to context_end. Error when null_after has
// fewer than two tokens.
ProbeRecord qrhead_null_record(Session& session, int64_t context_end, const std::vector<int32_t>& null_after,
                               const HeadMask* mask);

// One document's score from per-token calibrated scores cal[begin..end): the sum of the
// tokens above mean - 2 * std (sample standard deviation; a one-token document keeps its token).
double qrhead_document_score(const std::vector<double>& cal, TokenSpan doc);

// Per head (layer-major), the gold document's score: cal[j] = real.key_mean - null.key_mean.
// Both records must hold key_mean over the same keys (ProbeRequest::key_weights_len).
std::vector<double> qrhead_scores(const ProbeRecord& real, const ProbeRecord& null, TokenSpan gold);

// Lookback ratio of one decode step: A_c / (A_c + A_n) with A_c the mean weight on the n_ctx
// context keys (1 - new_mass over them) and A_n the mean on the n_new later keys (new_mass).
double lookback_ratio(double new_mass, int64_t n_ctx, int64_t n_new);

// Sums the lookback ratio of every head over decode steps whose probe record holds span_mass
// over [context_end, ...) at one observed position.
class LookbackAccumulator {
 public:
  LookbackAccumulator(int n_layer, int n_head, int64_t context_end);
  // Asks for the span mass the step needs (the span of ProbeRequest; error if already taken).
  void request(ProbeRequest& probes) const;
  void observe(const ProbeRecord& record);
  // Per head, the mean ratio over the observed steps (0 with none).
  std::vector<double> scores() const;

 private:
  int64_t context_end_;
  int steps_ = 0;
  std::vector<double> sum_;
};

}  // namespace rhead
