// NiahRunner: runs needle-in-a-haystack tests on one model. It tokenizes each haystack
// once, builds prompts on token ids, decodes greedily with argmax probes on every query
// head, and scores the copy-paste rule and the ROUGE gate. Consecutive tests reuse the KV
// cache of their common token prefix (exact: a position's keys and values depend only on
// the tokens before it). The head mask is given per test: a decode-phase mask leaves the
// prefill untouched, so tests of one prompt under several decode-phase masks share one
// prefill; a phase-all mask keeps the cache only for tests under the same mask.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "model/loader.h"
#include "model/session.h"
#include "prompts/inputs.h"
#include "prompts/prompt.h"
#include "records/results.h"

namespace rhead {

struct NiahTask {
  std::string test_id;  // "n{needle}-L{length}-d{depth}"
  int needle_id = 0;
  int64_t length = 0;
  int depth = 0;
};

struct NiahRunConfig {
  std::vector<NeedleSet> needle_sets;
  std::string default_haystack_dir;  // empty: the built-in filler haystack
  GridSpec grid;
  PromptFormat format;
  int64_t buffer = 200;  // tokens kept free for question and answer
  int max_new_tokens = 50;
  bool prefix_reuse = true;
  std::vector<HeadId> sink_heads;  // heads whose attention-sink mass is recorded
  // Fills TestResult::steps: one record per decode step with the number of heads whose top-1
  // position holds the emitted token, by where that position lies (answer span, rest of the
  // needle sentence, haystack, anything else), and the sink mass of `sink_heads`; and
  // TestResult::sink_mass_by_head. Off for detect, whose result lines stay as they are.
  bool record_steps = false;
  // Heads whose copies make an answer token supported (TestResult::support_share); empty:
  // not recorded.
  std::vector<HeadId> support_heads;
  // The NIAH-pass detectors of detect --methods (experiments/head_methods.h), written to
  // TestResult::method_scores: qrhead splits the prefill at the context's end, runs the null
  // question there and probes the question rows; lookback probes each decode step's mass on
  // the tokens after the context.
  bool qrhead = false;
  bool lookback = false;
};

class NiahRunner {
 public:
  NiahRunner(LoadedModel model, SessionOptions session_options, NiahRunConfig config);

  // Every test of the grid in canonical order (needle, length, depth).
  std::vector<NiahTask> tasks() const;
  // Orders tasks so that consecutive prompts share long prefixes (per needle, latest
  // insertion point first).
  std::vector<NiahTask> execution_order(std::vector<NiahTask> tasks);
  // Runs one test under `mask` (nullptr or empty: no intervention). The KV cache is
  // allocated by the first call: listing and ordering tasks allocate none.
  TestResult run(const NiahTask& task, const HeadMask* mask = nullptr);

  const NiahRunConfig& config() const { return config_; }
  const Model& model() const { return *model_.model; }
  const Tokenizer& tokenizer() const { return *model_.tokenizer; }
  int64_t max_length() const;
  // Tokens run through the prefill forward by this runner so far (cache reuse excluded).
  int64_t prefilled_tokens() const { return prefilled_tokens_; }
  // Bytes of K and V the runner's session holds (0 before the first test).
  int64_t kv_bytes_held() const;

 private:
  struct NeedleState {
    const std::vector<int32_t>* haystack = nullptr;  // tokens, owned by haystack_tokens_
    std::vector<int32_t> needle;                     // tokens of the needle sentence
    std::vector<int32_t> answer;                     // tokens of real_needle
    PromptFrame frame;
    std::vector<int32_t> null_after;  // the frame's tokens after the context for the null question (qrhead)
  };
  const NeedleState& needle_state(int needle_id);
  // Keeps the longest reusable cached prefix of `prefill` (whole chunks, at most
  // `keep_at_most` tokens) and truncates the session to it; returns its length.
  size_t reuse_prefix(const std::vector<int32_t>& prefill, int64_t keep_at_most);
  // After a test: the session keeps the prompt's prefill part for the next test, if it can.
  void keep_prefill(const std::vector<int32_t>& prefill);
  NiahPrompt prompt_for(const NiahTask& task);
  // The null question's tokens after the context (qrhead); error when the template does not
  // put a question of two or more tokens after the context.
  std::vector<int32_t> qrhead_null_after(const PromptFrame& frame) const;

  LoadedModel model_;
  NiahRunConfig config_;
  SessionOptions session_options_;
  std::unique_ptr<Session> session_;
  std::vector<int32_t> cached_;  // tokens whose KV entries the session holds (prefill-computed)
  HeadMask cached_under_;        // the prefill mask those entries were computed under (empty: none)
  std::map<std::string, std::vector<int32_t>> haystack_tokens_;  // by haystack dir ("" = built-in)
  std::map<int, NeedleState> needles_;
  int64_t prefilled_tokens_ = 0;
  // qrhead's scores of the last test and the prompt they belong to (prefill tokens and needle
  // span): a test with the same prompt (depths that land on one sentence end) reuses them and
  // skips the null question.
  std::vector<int32_t> qrhead_prefill_;
  int64_t qrhead_needle_ = -1;
  std::vector<double> qrhead_scores_;
};

std::string test_id_for(int needle_id, int64_t length, int depth);

}  // namespace rhead
