// Head detectors on repeated random-token sequences (no haystack): previous-token,
// duplicate-token and induction heads, scored from the attention pattern as the common
// interpretability head detector does. A sequence is [BOS] r_1 .. r_n r_1 .. r_n with n
// distinct random non-special tokens. For a query at position i the pattern's target is
//   previous-token:  i - 1            (every query after the first token);
//   duplicate-token: i - n            (queries of the second copy: the same token earlier);
//   induction:       i - n + 1        (queries of the second copy: the token after it).
// A head's score on one sequence is its mean attention weight on the target over the rows
// that have one. The full attention rows come from the kernel's key-weight probe
// (ProbeRequest::key_rows over every position).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/heads.h"
#include "model/loader.h"
#include "model/probes.h"

namespace rhead {

enum class SyntheticPattern { previous_token, duplicate_token, induction };
// "previous-token", "duplicate-token", "induction".
const char* synthetic_pattern_name(SyntheticPattern p);
const std::vector<SyntheticPattern>& synthetic_patterns();

struct SyntheticSequence {
  std::vector<int32_t> tokens;  // [BOS] + first copy + second copy
  int64_t offset = 0;           // position of r_1 (1 with BOS, else 0)
  int64_t n = 0;                // length of one copy
};

// Sequence `index` of the stream from `seed`: n distinct tokens drawn with splitmix64 from the
// ids that are not special tokens. Error when the vocabulary has fewer than n such tokens.
SyntheticSequence synthetic_sequence(const Tokenizer& tok, int n_vocab, int64_t n, std::uint64_t seed, int index);

// One forward of `tokens` through a fresh session, probing every position with key_rows over
// all the tokens: every head's full attention row at every position.
ProbeRecord full_attention_rows(const LoadedModel& lm, const std::vector<int32_t>& tokens);

// Each head's score on one sequence from a probe record observing every position of it with
// key_rows over its length (layer-major HeadGrid).
HeadGrid<double> synthetic_scores(const ProbeRecord& record, const SyntheticSequence& seq, SyntheticPattern pattern);

struct SyntheticOptions {
  int sequences = 4;
  int64_t length = 32;  // tokens per copy
  std::uint64_t seed = 1;
};

// Runs the sequences through `lm` (one forward each, probing every position) and returns,
// per requested pattern, the reference score format {"L-H": [score per sequence, ...]}.
std::vector<nlohmann::json> detect_synthetic_heads(const LoadedModel& lm, const std::vector<SyntheticPattern>& patterns,
                                                   const SyntheticOptions& options);

// The detection methods of `rhead detect --methods`: "copy" (the retrieval score, always run),
// "qrhead", "lookback" and the synthetic patterns. Error naming --methods for an unknown one.
struct DetectMethods {
  std::vector<SyntheticPattern> synthetic;
  bool qrhead = false, lookback = false;  // NIAH-pass methods (experiments/head_methods.h)
  bool any() const { return !synthetic.empty() || qrhead || lookback; }
};
DetectMethods parse_detect_methods(const std::string& list);

// Writes DIR/head_score.<method>.json for each synthetic method (scores from
// detect_synthetic_heads) and returns the agreement between every pair of methods, copy's map
// being DIR/head_score.json and the NIAH-pass methods' DIR/head_score.<method>.json (written
// by write_detect_outputs): {"methods": [...], "pairs": [{"a", "b", "spearman", "pearson",
// "top_k_overlap": [{"k", "shared", "jaccard"}]}]} for K = 5, 10, 20.
nlohmann::json write_method_scores(const std::string& dir, const LoadedModel& lm, const DetectMethods& methods,
                                   const SyntheticOptions& options);

}  // namespace rhead
