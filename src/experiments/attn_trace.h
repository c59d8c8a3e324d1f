// One prompt, decoded greedily, with every chosen query head's attention at every step: the
// trace behind `rhead attn` (and its figure), callable from tests and the Python binding.
//
// Decoding is the retrieval-head method's: the prompt minus its last token is prefilled,
// then each step feeds one token and emits the greedy next one. At each step, for every
// chosen (layer, query head), the attention kernel reports its argmax key position (ties:
// the earliest) and that position's weight, its mass on position 0 and, on request, its
// top-k positions. A head whose argmax position holds the token just emitted copies it
// (is_copy, model/heads.h), the event the retrieval score counts; a masked head never
// copies (its output does not reach the model), though its probes still show where it looks.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/heads.h"
#include "model/kv_policy.h"
#include "model/probes.h"
#include "model/session.h"
#include "report/drawing.h"
#include "tokenizer/tokenizer.h"

namespace rhead {

struct AttnTraceRequest {
  std::vector<int32_t> prompt;  // every token of the prompt, BOS included when wanted
  int max_new_tokens = 16;
  std::function<bool(int32_t)> stop_after;  // stop after emitting such a token (e.g. end of generation)
  int top_k = 0;                            // also each head's top-k positions (0: off)
  std::vector<HeadId> heads;                // heads reported, in this order (empty: every head, layer-major)
  const HeadMask* mask = nullptr;           // interventions (nullptr or empty: none)
  const KvPolicy* kv_policy = nullptr;      // to mark windowed heads (the session applies it)
};

// One head at one step.
struct HeadLook {
  HeadId head;
  int32_t argmax = 0;        // key position
  int32_t argmax_token = 0;  // the token at that position
  float argmax_weight = 0;
  float sink_mass = 0;  // attention mass on position 0
  bool copy = false;    // argmax holds the emitted token and the head is not masked
  bool masked = false;
  bool windowed = false;      // restricted by the KV policy (sees only sink + window)
  std::vector<int32_t> topk;  // positions (-1: fewer keys than k), with their tokens and weights
  std::vector<int32_t> topk_token;
  std::vector<float> topk_weight;
};

struct AttnStep {
  int index = 0;                // 0 = the first generated token
  int64_t position = 0;         // the query's position
  int32_t token = 0;            // the token emitted at this step
  std::vector<HeadLook> heads;  // the request's heads, in its order
  std::vector<HeadId> copying;  // heads that copied (subset of `heads`)
};

struct AttnTrace {
  int64_t prompt_tokens = 0;      // the one prompt-length figure (the prefill is prompt_tokens - 1)
  std::vector<int32_t> sequence;  // prompt + generated tokens
  std::vector<int32_t> generated;
  std::vector<AttnStep> steps;
  HeadGrid<int> copies;  // copy events per head over all steps (chosen heads only)
  double prefill_seconds = 0, decode_seconds = 0;
};

// Decodes `request.prompt` on the empty `session` and records every step; `on_step` (when
// set) sees each step as it happens, for printing while decoding.
AttnTrace trace_attention(Session& session, const AttnTraceRequest& request,
                          const std::function<void(const AttnStep&)>& on_step = {});

// Keeps the heads of `heads` that lie in `layers` (empty: every layer).
std::vector<HeadId> heads_in_layers(const std::vector<HeadId>& heads, const std::vector<int>& layers);

// Parses "0,2,5-7" into layer numbers; error naming `option` when a layer is outside the model.
std::vector<int> parse_layer_list(const std::string& spec, int n_layer, const std::string& option);

// One JSON object per step (the --json lines): step, position, token, piece, and per layer
// arrays over its chosen heads: blocks.{l}.attn.heads, .argmax, .argmax_token, .argmax_piece,
// .argmax_weight, .copy, .sink_mass (.masked, .kv_full, .topk, .topk_token, .topk_weight when
// they apply), and "copies".
nlohmann::ordered_json attn_step_to_json(const AttnStep& step, const Tokenizer& tok, bool masking, bool kv_policy,
                                         bool topk = true);

// One head's attention over the tokens it looked at: a row per decode step (labelled with the
// emitted token), a column per position that was in the head's top-k at some step (labelled
// with its position and token), cells shaded by the weight (blank outside that step's top-k),
// and the argmax path outlined. The trace must hold `head` and top-k weights (top_k > 0).
report::Drawing attention_figure(const AttnTrace& trace, const Tokenizer& tok, HeadId head);

// The continuation as it reads after the prompt (decoding it alone would drop the
// SentencePiece leading space).
std::string generated_text(const AttnTrace& trace, const Tokenizer& tok);

}  // namespace rhead
