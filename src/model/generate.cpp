// Greedy decoding loop and mean-ablation calibration.
#include "model/generate.h"

#include "io/error.h"

namespace rhead {

int32_t argmax_token(std::span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i)
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  return best;
}

GenerateResult generate_greedy(Session& session, std::span<const int32_t> prompt, const GreedyOptions& options) {
  if (prompt.empty()) throw Error("generation needs at least one prompt token");
  using clock = std::chrono::steady_clock;
  GenerateResult result;
  auto t0 = clock::now();
  if (prompt.size() > 1) {
    ForwardOptions fo;
    fo.mask = options.mask;
    fo.decode = false;
    fo.probes = options.prefill_probes;
    fo.probe_out = options.prefill_probe_out;
    session.forward(prompt.first(prompt.size() - 1), fo);
    result.n_prefill = static_cast<int64_t>(prompt.size() - 1);
  }
  auto t1 = clock::now();
  int32_t next = prompt.back();
  ProbeRecord record;
  for (int i = 0; i < options.max_new_tokens; ++i) {
    if (session.n_past() >= session.capacity()) break;
    ForwardOptions fo;
    fo.mask = options.mask;
    fo.decode = true;
    if (options.probes) {
      fo.probes = options.probes;
      fo.probe_out = &record;
    }
    const int64_t pos = session.n_past();
    std::vector<float> logits = session.forward(std::span<const int32_t>(&next, 1), fo);
    const int32_t tok = argmax_token(logits);
    result.tokens.push_back(tok);
    bool go_on = true;
    if (options.on_token)
      go_on = options.on_token(DecodeStep{i, pos, tok, &logits, options.probes ? &record : nullptr});
    next = tok;
    if (!go_on) break;
  }
  auto t2 = clock::now();
  result.prefill_seconds = std::chrono::duration<double>(t1 - t0).count();
  result.decode_seconds = std::chrono::duration<double>(t2 - t1).count();
  return result;
}

std::vector<float> record_head_means(std::shared_ptr<const Model> model, std::span<const int32_t> tokens,
                                     const SessionOptions& options) {
  if (tokens.empty()) throw Error("mean-ablation calibration needs at least one token");
  const ModelConfig& c = model->config;
  SessionOptions so = options;
  if (so.n_ctx > 0 && so.n_ctx < static_cast<int64_t>(tokens.size())) so.n_ctx = static_cast<int64_t>(tokens.size());
  Session session(model, so);
  HeadMeanRecorder recorder(c.n_layer, c.n_head, c.head_dim);
  ForwardOptions fo;
  fo.record_means = &recorder;
  session.forward(tokens, fo);
  return recorder.means();
}

}  // namespace rhead
