// One greedy generation with its per-step probes, as `rhead generate` and the Python module's
// Model.generate() run it: the prompt is tokenized, the head mask and the KV policy are built
// from the same grammar strings as the commands' options, and the generation decodes the way
// the retrieval-head method does (model/generate.h). With probes, every decode step records,
// for every (layer, query head), the argmax key position, its weight, its token, whether it is
// a copy (is_copy, model/heads.h), the attention mass on position 0 and optionally the top-k.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/generate.h"
#include "model/kv_policy.h"
#include "model/loader.h"
#include "model/probes.h"
#include "conditions/conditions.h"

namespace rhead {

struct GenerationRequest {
  std::string prompt;
  bool add_bos = true;
  int max_new_tokens = 64;
  bool stop_at_eos = true;    // stop after the end-of-generation token (it is the last step)
  bool probes = false;        // record argmax, weight, token, copy and sink mass per step
  int top_k = 0;              // with probes: also the top-k positions and weights (0: off)
  std::string mask = "none";  // heads to mask: the head grammar of model/heads.h
  MaskMode mask_mode = MaskMode::uniform;
  MaskPhase mask_phase = MaskPhase::decode;
  std::string scores;  // head_score JSON or detect directory, for top:K / random:K
  uint64_t seed = 0;   // random:K (mask and KV full heads)
  KvRequest kv;        // window, sink, full heads, policy file (no sweep)
};

// Probes of every decode step, arrays [n_steps, n_layer, n_head] (top-k: [.., top_k]).
struct ProbeTrace {
  int n_steps = 0, n_layer = 0, n_head = 0, top_k = 0;
  std::vector<int64_t> positions;  // [n_steps] query position of each step
  std::vector<int32_t> argmax;     // key position with the largest weight (ties: earliest)
  std::vector<float> argmax_weight;
  std::vector<int32_t> argmax_token;  // the token at that position
  std::vector<uint8_t> copy;          // is_copy: the argmax holds the emitted token, head unmasked
  std::vector<float> sink_mass;       // attention on position 0
  std::vector<int32_t> topk;          // -1 past the keys a head saw
  std::vector<float> topk_weight;
};

struct Generation {
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> tokens;  // generated, the end-of-generation token included when it came
  std::string text;             // the continuation as it reads after the prompt
  ProbeTrace probes;            // empty without GenerationRequest::probes
  HeadMask mask;                // the mask applied (empty: none)
  KvPolicy kv_policy;           // inactive: none
  GenerateResult timing;
  int64_t capacity = 0;             // the session's context (KV cache positions)
  int64_t kv_bytes_held = 0;        // bytes of K and V the session held at the end (Session::kv_bytes_held)
  bool stopped_by_context = false;  // fewer tokens than asked because the context was full
};

// Runs the request. `on_text` (optional) receives the prompt as it decodes, before the first
// forward pass, then each newly completed piece of the continuation as it is generated (the
// end-of-generation token adds none). Errors name the
// option at fault (mask, scores, kv).
Generation generate(const LoadedModel& model, const SessionOptions& session, const GenerationRequest& request,
                    const std::function<void(const std::string& new_text)>& on_text = {});

}  // namespace rhead
