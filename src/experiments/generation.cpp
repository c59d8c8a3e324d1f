// One generation with probes (see generation.h).
#include "experiments/generation.h"

#include <optional>

#include "analysis/score_map.h"
#include "io/error.h"

namespace rhead {

Generation generate(const LoadedModel& lm, const SessionOptions& so, const GenerationRequest& q,
                    const std::function<void(const std::string&)>& on_text) {
  const Tokenizer& tok = lm.require_tokenizer();
  const ModelConfig& c = lm.model->config;
  if (q.max_new_tokens < 0) throw Error("max_new_tokens " + std::to_string(q.max_new_tokens) + " is negative");
  if (q.top_k < 0 || q.top_k > 1000) throw Error("top_k " + std::to_string(q.top_k) + ": expected 0 to 1000");

  Generation g;
  g.prompt_tokens = tok.encode(q.prompt, q.add_bos);
  if (g.prompt_tokens.empty()) throw Error("prompt is empty and the tokenizer adds no BOS token");

  std::optional<analysis::ScoreMap> scores;
  if (!q.mask.empty() && q.mask != "none") {
    if (parse_head_selection(q.mask).needs_scores()) {
      if (q.scores.empty()) throw Error("mask '" + q.mask + "' needs scores (a head_score JSON or a detect directory)");
      scores = analysis::load_score_map(q.scores);
    }
    g.mask =
        make_head_mask(select_heads(q.mask, c, scores ? &scores->mean : nullptr, q.seed), c, q.mask_mode, q.mask_phase);
    if (g.mask.mode == MaskMode::mean && !g.mask.empty())
      g.mask.means = record_head_means(lm.model, g.prompt_tokens, so);
  }
  KvRequest kv = q.kv;
  kv.seeds = {q.seed};
  g.kv_policy = kv_policy_for(kv, c, q.scores, kv.seeds.empty() ? 0 : kv.seeds.front());
  Session session(lm.model, with_kv_policy(so, g.kv_policy));
  g.capacity = session.capacity();
  if (q.max_new_tokens > 0 && static_cast<int64_t>(g.prompt_tokens.size()) >= g.capacity)
    throw Error("--ctx: the context of " + std::to_string(g.capacity) +
                " tokens leaves no room to generate after the prompt of " + std::to_string(g.prompt_tokens.size()) +
                " tokens");

  ProbeRequest req;
  req.argmax = true;
  req.top_k = q.top_k;
  req.sink = true;
  ProbeTrace& t = g.probes;
  t.n_layer = c.n_layer;
  t.n_head = c.n_head;
  t.top_k = q.probes ? q.top_k : 0;

  std::vector<int32_t> seq = g.prompt_tokens;  // the token at every position seen so far
  const std::string before = tok.decode(g.prompt_tokens);
  std::string printed = before;
  if (on_text) on_text(before);
  GreedyOptions go;
  go.max_new_tokens = q.max_new_tokens;
  go.probes = q.probes ? &req : nullptr;
  go.mask = g.mask.empty() ? nullptr : &g.mask;
  go.on_token = [&](const DecodeStep& s) {
    if (q.probes) {
      const ProbeRecord& r = *s.probes;
      ++t.n_steps;
      t.positions.push_back(s.query_position);
      for (int l = 0; l < c.n_layer; ++l)
        for (int h = 0; h < c.n_head; ++h) {
          const int64_t i = r.index(0, l, h);
          const int32_t pos = r.argmax[i];
          t.argmax.push_back(pos);
          t.argmax_weight.push_back(r.argmax_weight[i]);
          t.argmax_token.push_back(seq[pos]);
          t.copy.push_back(is_copy(pos, seq, s.token, !g.mask.empty() && g.mask.contains(l, h)) ? 1 : 0);
          t.sink_mass.push_back(r.sink_mass[i]);
          for (int k = 0; k < t.top_k; ++k) {
            t.topk.push_back(r.topk[i * r.top_k + k]);
            t.topk_weight.push_back(r.topk_weight[i * r.top_k + k]);
          }
        }
    }
    const bool end = tok.is_end_of_generation(s.token);
    if (q.stop_at_eos && end) return false;
    seq.push_back(s.token);
    // The newly completed text: decode the whole sequence so that multi-token characters and
    // the SentencePiece space rules come out right.
    const std::string text = tok.decode(seq);
    if (text.size() >= printed.size() && text.compare(0, printed.size(), printed) == 0) {
      if (on_text && text.size() > printed.size()) on_text(text.substr(printed.size()));
      printed = text;
    }
    return true;
  };
  g.timing = generate_greedy(session, g.prompt_tokens, go);
  g.tokens = g.timing.tokens;
  g.kv_bytes_held = session.kv_bytes_held();
  // Fewer tokens than asked and the cache full: the context, not the model, ended it.
  g.stopped_by_context = static_cast<int>(g.tokens.size()) < q.max_new_tokens && session.n_past() >= g.capacity;
  const std::string after = tok.decode(seq);
  g.text = after.compare(0, before.size(), before) == 0 ? after.substr(before.size()) : tok.decode(g.tokens);
  return g;
}

}  // namespace rhead
