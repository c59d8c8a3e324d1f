// Runs of a Session that callers share. Greedy generation, the way the retrieval-head
// method decodes: prefill every prompt token but the last, then decode one token at a time
// starting with the last prompt token, so that every emitted token has a decode step (with
// probes and decode-phase masks). And the calibration run behind MaskMode::mean.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "model/session.h"

namespace rhead {

struct DecodeStep {
  int index;               // 0 for the first generated token
  int64_t query_position;  // position of the token fed at this step
  int32_t token;           // the greedy token emitted at this step
  const std::vector<float>* logits;
  const ProbeRecord* probes;  // this step's probes (nullptr if none requested)
};

struct GreedyOptions {
  int max_new_tokens = 50;
  const ProbeRequest* probes = nullptr;  // observed at each decode step's query
  const HeadMask* mask = nullptr;
  // Observed during the prefill (positions within it), into prefill_probe_out; nullptr: none.
  const ProbeRequest* prefill_probes = nullptr;
  ProbeRecord* prefill_probe_out = nullptr;
  // Called for each emitted token; return false to stop after it.
  std::function<bool(const DecodeStep&)> on_token;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated tokens
  int64_t n_prefill = 0;        // tokens prefilled (prompt minus its last token)
  double prefill_seconds = 0, decode_seconds = 0;
};

// Greedy decoding from the session's current state plus `prompt` (which must be non-empty).
GenerateResult generate_greedy(Session& session, std::span<const int32_t> prompt, const GreedyOptions& options);

// The calibration run of MaskMode::mean: `tokens` are run through a fresh Session of
// `model` (options as given), with no mask and no probes, and every head's attention
// output (the per-head vector that enters the output projection) is averaged over all of
// those token positions. The result is what HeadMask::means expects: [n_layer, n_head,
// head_dim]. The usual calibration text is the prompt itself.
std::vector<float> record_head_means(std::shared_ptr<const Model> model, std::span<const int32_t> tokens,
                                     const SessionOptions& options = {});

// Index of the largest logit (first one on ties).
int32_t argmax_token(std::span<const float> logits);

}  // namespace rhead
