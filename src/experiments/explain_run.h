// The run of `rhead explain` and the Python module's Model.explain(): the question answered
// over a document under the options' mask and KV policy, each answer token traced to the
// document tokens the top heads of a score map copied it from (experiments/explain.h).
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "conditions/options.h"
#include "support/explain.h"
#include "experiments/run_setup.h"

namespace rhead {

// The heads explain traces when no count is given.
inline constexpr int kDefaultExplainHeads = 10;

struct ExplainRunOptions {
  std::string scores;        // head_score JSON or a detect directory (required)
  std::string context;       // the document's text
  std::string context_file;  // where it came from (recorded in the JSON; may be empty)
  std::string question;
  std::string chat_template;
  bool no_chat = false;
  std::string prompt_template;
  int max_new_tokens = 50;
  std::string mask = "none";
  std::string mask_mode = "uniform";
  std::string mask_phase = "decode";
  uint64_t seed = 0;  // random:K of the mask and of the KV full heads
  int top_heads = 0;  // 0: kDefaultExplainHeads, or every head of a smaller model
  double tau = kDefaultAttendedTau;
  KvOptions kv;  // kv.scores / kv.seed unused: `scores` and `seed` serve the policy
};

struct ExplainRun {
  Explanation explanation;
  nlohmann::ordered_json document;  // explanation_to_json plus model, context_file, question, mask
  HeadMask mask;                    // empty: none
  KvPolicy kv_policy;               // inactive: none
};

// Error on an empty question or context, or an option out of range (before any model work).
void check_explain_options(const ExplainRunOptions& o);

// Runs check_explain_options, then the explanation. Errors name the option at fault (question, context, scores, mask,
// kv).
ExplainRun explain_from_options(const LoadedModel& lm, const ModelOptions& model, const ExplainRunOptions& o);

}  // namespace rhead
