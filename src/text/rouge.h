// ROUGE-1 as computed by Google's rouge_score package (the scorer the retrieval
// head paper uses to decide whether a needle was retrieved), reimplemented.
//
// Tokenizer (rouge_score's default):
//  1. lower-case the text (Python str.lower());
//  2. replace every run of characters outside [a-z0-9] with a space;
//  3. split on whitespace;
//  4. with stemming on, replace each token longer than 3 characters by its
//     Porter stem (NLTK's PorterStemmer() in its default mode, see
//     porter_stemmer.h);
//  5. keep the tokens that match ^[a-z0-9]+$.
// Only two non-ASCII characters lower-case into [a-z0-9]: U+0130 (capital I with
// dot, -> "i" plus a combining dot, which then separates) and U+212A (Kelvin sign,
// -> "k"); both are handled. Every other non-ASCII character separates tokens.
//
// ROUGE-1: n = sum over distinct tokens of min(count in reference, count in
// prediction); recall = n / max(1, reference tokens), precision = n / max(1,
// prediction tokens), f = 2 p r / (p + r), or 0 when p + r = 0.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rhead {

std::vector<std::string> rouge_tokenize(std::string_view text, bool stem);

struct RougeScore {
  double precision = 0.0;
  double recall = 0.0;
  double f = 0.0;
};

// `reference` is the target text (the needle's answer span), `prediction` the
// model's answer. Argument order follows rouge_score's scorer.score(target, prediction).
RougeScore rouge1(std::string_view reference, std::string_view prediction, bool stem = true);

// ROUGE-1 recall alone, in 0..1. The retrieval-head test counts when this x 100 > 50.
inline double rouge1_recall(std::string_view reference, std::string_view prediction, bool stem = true) {
  return rouge1(reference, prediction, stem).recall;
}

}  // namespace rhead
