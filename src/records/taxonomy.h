// Error taxonomy of failed NIAH tests (score <= 50), from the answer's score and the
// copy probes of its decode steps:
//   wrong_extraction  heads copied from the haystack outside the needle at more answer
//                     steps than they copied from the answer span: the model retrieved
//                     the wrong text;
//   incomplete        some needle words recalled (score > 0) and at least one answer
//                     token copied from the span: retrieval happened but stopped short;
//   hallucination     everything else: no answer token was copied from the answer span
//                     (or none of the needle's words made it into the answer).
// Only steps that emit a token with a letter or digit count, so a copied newline or
// punctuation mark decides nothing.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rhead {

enum class ErrorKind { none, incomplete, hallucination, wrong_extraction };

const char* error_kind_name(ErrorKind kind);  // "none", "incomplete", ...
std::optional<ErrorKind> error_kind_from_name(const std::string& name);
// The three failure kinds, in report order.
const std::vector<ErrorKind>& failure_kinds();

// One decode step: how many heads had their top-1 position on a token equal to the emitted
// one, by the region holding that position.
struct StepCopies {
  int32_t token = -1;   // the emitted token (-1: not recorded)
  bool content = true;  // the emitted token has a letter or digit
  int span = 0;         // answer span (real_needle)
  int needle = 0;       // the rest of the needle sentence
  int haystack = 0;     // the context outside the needle sentence
  int other = 0;        // template, question, generated text
  double sink = -1;     // mean attention mass on position 0 of the observed heads (-1: not recorded)
};

// Step counts the taxonomy decides on (content steps only).
struct CopyTally {
  int content_steps = 0;
  int span_steps = 0;      // some head copied from the answer span
  int haystack_steps = 0;  // some head copied from the haystack, none from the needle sentence
};

CopyTally tally_copies(const std::vector<StepCopies>& steps);

// `score` is ROUGE-1 recall x 100 of the answer against real_needle.
ErrorKind classify_error(double score, const std::vector<StepCopies>& steps);

// The "steps" records of a result line. Error on a malformed record.
std::vector<StepCopies> steps_from_json(const nlohmann::json& steps);
nlohmann::json steps_to_json(const std::vector<StepCopies>& steps);

// Mean sink mass over the steps that recorded it (-1 when none did).
double mean_sink_mass(const std::vector<StepCopies>& steps);

}  // namespace rhead
