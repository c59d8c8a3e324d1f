// One NIAH test: prompt, greedy decode with probes, copy-paste score, ROUGE gate.
#include "experiments/runner.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "io/error.h"
#include "model/generate.h"
#include "experiments/head_methods.h"
#include "experiments/retrieval_score.h"
#include "text/rouge.h"
#include "support/explain.h"

namespace rhead {

std::string test_id_for(int needle_id, int64_t length, int depth) {
  return "n" + std::to_string(needle_id) + "-L" + std::to_string(length) + "-d" + std::to_string(depth);
}

NiahRunner::NiahRunner(LoadedModel model, SessionOptions session_options, NiahRunConfig config)
    : model_(std::move(model)), config_(std::move(config)) {
  model_.require_tokenizer();
  if (config_.needle_sets.empty()) throw Error("no needle sets");
  if (session_options.n_ctx <= 0) session_options.n_ctx = max_length() + config_.max_new_tokens + 8;
  session_options_ = session_options;
  // A template that qrhead cannot use is refused before a run writes anything.
  if (config_.qrhead)
    for (const auto& set : config_.needle_sets)
      qrhead_null_after(make_prompt_frame(*model_.tokenizer, config_.format, set.needle.question));
}

namespace {

// The part of a mask that acts on the prefill: all of a phase-all mask, nothing of a
// decode-phase one.
bool same_prefill(const HeadMask* mask, const HeadMask& cached_under) {
  const bool masked = mask && !mask->empty() && mask->phase == MaskPhase::all;
  if (!masked) return cached_under.empty();
  return mask->masked == cached_under.masked && mask->mode == cached_under.mode && mask->means == cached_under.means;
}

// What a test's decode steps copied and where (is_copy, counted by where the copied position
// lies), the sink mass of the chosen heads, and with record_steps one record a step.
struct StepTally {
  const ModelConfig& c;
  const Tokenizer& tok;
  const NiahPrompt& prompt;
  int64_t context_begin, context_end;
  std::optional<NeedleSpan> span;
  const HeadMask* mask;
  const std::vector<HeadId>& sink_heads;
  bool record_steps;
  int outside_copy_steps = 0, inside_copy_steps = 0;
  double sink_sum = 0;
  int sink_n = 0;
  std::vector<StepCopies> steps;
  std::vector<double> sink_by_head = std::vector<double>(sink_heads.size(), 0.0);

  void observe(const ProbeRecord& rec, int32_t token, const std::vector<int32_t>& sequence) {
    bool inside = false, outside = false;
    int n_span = 0, n_needle = 0, n_haystack = 0, n_other = 0;
    for (int l = 0; l < c.n_layer; ++l)
      for (int h = 0; h < c.n_head; ++h) {
        const int64_t j = rec.argmax[rec.index(0, l, h)];
        if (!is_copy(j, sequence, token, mask && mask->contains(l, h))) continue;
        if (span && j >= span->begin && j < span->end) {
          inside = true;
          ++n_span;
          continue;
        }
        outside = true;
        if (j >= prompt.needle_begin && j < prompt.needle_end)
          ++n_needle;
        else if (j >= context_begin && j < context_end)
          ++n_haystack;
        else
          ++n_other;
      }
    inside_copy_steps += inside;
    outside_copy_steps += outside;
    double step_sink = 0;
    for (size_t i = 0; i < sink_heads.size(); ++i) {
      const double mass = rec.sink_mass[rec.index(0, sink_heads[i].layer, sink_heads[i].head)];
      sink_sum += mass;
      step_sink += mass;
      sink_by_head[i] += mass;
      ++sink_n;
    }
    if (!record_steps) return;
    const std::string piece = tok.piece(token);
    StepCopies sr;
    sr.token = token;
    sr.content = std::any_of(piece.begin(), piece.end(),
                             [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) != 0; });
    sr.span = n_span;
    sr.needle = n_needle;
    sr.haystack = n_haystack;
    sr.other = n_other;
    if (!sink_heads.empty()) sr.sink = step_sink / static_cast<double>(sink_heads.size());
    steps.push_back(sr);
  }

  void write(TestResult& r) {
    r.copy_steps_inside_span = inside_copy_steps;
    r.copy_steps_outside_span = outside_copy_steps;
    if (sink_n > 0) r.sink_mass_top_heads = sink_sum / sink_n;
    if (!record_steps) return;
    const size_t n_steps = steps.size();
    for (size_t i = 0; i < sink_heads.size() && n_steps > 0; ++i)
      r.sink_mass_by_head[sink_heads[i].key()] = sink_by_head[i] / static_cast<double>(n_steps);
    r.steps = std::move(steps);
  }
};

}  // namespace

int64_t NiahRunner::max_length() const {
  int64_t m = 0;
  for (int64_t l : config_.grid.lengths) m = std::max(m, l);
  return m;
}

std::vector<NiahTask> NiahRunner::tasks() const {
  std::vector<NiahTask> out;
  for (int n = 0; n < static_cast<int>(config_.needle_sets.size()); ++n)
    for (int64_t len : config_.grid.lengths)
      for (int d : config_.grid.depths) out.push_back({test_id_for(n, len, d), n, len, d});
  return out;
}

const NiahRunner::NeedleState& NiahRunner::needle_state(int needle_id) {
  auto it = needles_.find(needle_id);
  if (it != needles_.end()) return it->second;
  const Tokenizer& tok = *model_.tokenizer;
  const NeedleSet& set = config_.needle_sets.at(needle_id);
  const std::string dir = set.haystack_dir.empty() ? config_.default_haystack_dir : set.haystack_dir;
  auto hit = haystack_tokens_.find(dir);
  if (hit == haystack_tokens_.end()) {
    const int64_t need = max_length();
    std::string text = dir.empty() ? builtin_haystack(need) : repeat_to_words(read_haystack_dir(dir), need);
    std::vector<int32_t> ids = tok.encode(text, false, false);
    if (ids.empty()) throw Error((dir.empty() ? std::string("built-in haystack") : dir) + ": haystack has no tokens");
    // Words and tokens differ per tokenizer: repeat the token stream if it is still short.
    const size_t base = ids.size();
    while (static_cast<int64_t>(ids.size()) < need) ids.insert(ids.end(), ids.begin(), ids.begin() + base);
    hit = haystack_tokens_.emplace(dir, std::move(ids)).first;
  }
  NeedleState st;
  st.haystack = &hit->second;
  st.needle = tok.encode(set.needle.needle, false, false);
  st.answer = tok.encode(set.needle.real_needle, false, false);
  st.frame = make_prompt_frame(tok, config_.format, set.needle.question);
  if (config_.qrhead) st.null_after = qrhead_null_after(st.frame);
  return needles_.emplace(needle_id, std::move(st)).first->second;
}

std::vector<int32_t> NiahRunner::qrhead_null_after(const PromptFrame& frame) const {
  // QRHead's null question replaces the question on the same prefix: the template must put
  // the question after the context.
  const PromptFrame null_frame = make_prompt_frame(*model_.tokenizer, config_.format, kQrheadNullQuestion);
  if (null_frame.before != frame.before)
    throw Error("--methods qrhead: the prompt template puts the question before the context");
  if (frame.after.size() < 2 || null_frame.after.size() < 2)
    throw Error("--methods qrhead: the prompt has no question tokens between the context and its last token");
  return null_frame.after;
}

NiahPrompt NiahRunner::prompt_for(const NiahTask& task) {
  const NeedleState& st = needle_state(task.needle_id);
  const Tokenizer& tok = *model_.tokenizer;
  return build_niah_prompt(*st.haystack, st.needle, st.frame, task.length, task.depth, config_.buffer,
                           [&](int32_t id) { return token_ends_sentence(tok, id); });
}

std::vector<NiahTask> NiahRunner::execution_order(std::vector<NiahTask> tasks) {
  std::vector<std::pair<int64_t, size_t>> keyed;
  for (size_t i = 0; i < tasks.size(); ++i) keyed.emplace_back(prompt_for(tasks[i]).insert_offset, i);
  std::vector<size_t> order(tasks.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (tasks[a].needle_id != tasks[b].needle_id) return tasks[a].needle_id < tasks[b].needle_id;
    return keyed[a].first > keyed[b].first;
  });
  std::vector<NiahTask> out;
  for (size_t i : order) out.push_back(tasks[i]);
  return out;
}

int64_t NiahRunner::kv_bytes_held() const { return session_ ? session_->kv_bytes_held() : 0; }

size_t NiahRunner::reuse_prefix(const std::vector<int32_t>& prefill, int64_t keep_at_most) {
  // Reuse the cached prefix: keep the longest common prefix of what the cache holds and
  // the prompt's prefill part (all tokens but the last).
  size_t keep = 0;
  if (config_.prefix_reuse) {
    // The cache was computed under this test's prefill mask (see same_prefill): still valid.
    while (keep < cached_.size() && keep < prefill.size() && cached_[keep] == prefill[keep]) ++keep;
    // Only whole prefill chunks are reused: a reused position was then computed in the same
    // chunk as a fresh prefill computes it (Session::forward aligns chunks to multiples of
    // the chunk size), so a test's line does not depend on the test run before it.
    const auto chunk = static_cast<size_t>(session_->options().prefill_chunk);
    // qrhead observes the question rows of the prefill (keep_at_most: the context's end):
    // they are recomputed unless the scores of this very prompt are at hand.
    keep = std::min(keep, static_cast<size_t>(keep_at_most));
    if (chunk > 0) keep -= keep % chunk;
    // A compacted KV cache (KV policy) may have dropped the window before `keep`: start over.
    if (!session_->can_truncate(static_cast<int64_t>(keep))) keep = 0;
  }
  session_->truncate(static_cast<int64_t>(keep));
  cached_.resize(keep);
  return keep;
}

void NiahRunner::keep_prefill(const std::vector<int32_t>& prefill) {
  // The cache holds the prompt (its last token computed by a decode step) and all but the last
  // generated token; only the prefill-computed part is reusable as is.
  if (session_->can_truncate(static_cast<int64_t>(prefill.size()))) {
    session_->truncate(static_cast<int64_t>(prefill.size()));
    cached_ = prefill;
  } else {  // a compacted KV cache no longer holds the prompt's window
    session_->truncate(0);
    cached_.clear();
  }
}

TestResult NiahRunner::run(const NiahTask& task, const HeadMask* mask_in) {
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  const Tokenizer& tok = *model_.tokenizer;
  const ModelConfig& c = model_.model->config;
  NiahPrompt prompt = prompt_for(task);
  const NeedleState& st = needle_state(task.needle_id);

  TestResult r;
  r.test_id = task.test_id;
  r.needle_id = task.needle_id;
  r.length = task.length;
  r.depth = task.depth;
  r.prompt_tokens = static_cast<int64_t>(prompt.tokens.size());
  if (!session_) session_ = std::make_unique<Session>(model_.model, session_options_);
  const HeadMask* mask = mask_in && !mask_in->empty() ? mask_in : nullptr;
  if (!same_prefill(mask, cached_under_)) {
    cached_.clear();
    qrhead_prefill_.clear();
    cached_under_ = mask && mask->phase == MaskPhase::all ? *mask : HeadMask();
  }
  if (prompt.tokens.size() + config_.max_new_tokens > static_cast<size_t>(session_->capacity()))
    throw Error("prompt of " + std::to_string(prompt.tokens.size()) + " tokens does not fit the KV cache");

  std::optional<NeedleSpan> span = find_needle_span(prompt.tokens, st.answer);
  // Prompt regions by position: template text, the context (haystack with the needle), the
  // text after it (question, answer cue).
  const int64_t context_begin = static_cast<int64_t>(st.frame.before.size());
  const int64_t context_end = static_cast<int64_t>(prompt.tokens.size() - st.frame.after.size());

  const std::vector<int32_t> prefill(prompt.tokens.begin(), prompt.tokens.end() - 1);
  const bool run_qrhead = config_.qrhead && !(prefill == qrhead_prefill_ && qrhead_needle_ == prompt.needle_begin);
  const size_t keep = reuse_prefix(prefill, run_qrhead ? context_end : static_cast<int64_t>(prefill.size()));

  ProbeRequest probes;
  probes.argmax = true;
  probes.sink = !config_.sink_heads.empty();
  RetrievalScorer scorer(c.n_layer, c.n_head, span.value_or(NeedleSpan{0, 1}), prompt.tokens, mask);
  std::vector<int32_t> sequence = prompt.tokens;  // prompt + generated, for outside-span copies
  std::vector<int32_t> answer_ids;
  double scoring_seconds = 0;
  StepTally tally{c, tok, prompt, context_begin, context_end, span, mask, config_.sink_heads, config_.record_steps};

  // Support of the answer over the whole context (haystack and needle), by the support heads.
  const bool track_support = !config_.support_heads.empty();
  AnswerSupport support(tok, config_.support_heads, context_begin, context_end, mask);
  if (track_support) support.request(probes);
  // qrhead: the question rows of the prefill (the tokens after the context but the last, which
  // the first decode step reads), their mean weight on every context key.
  const ProbeRequest question_probes = qrhead_question_probes(context_end, static_cast<int64_t>(prefill.size()));
  ProbeRecord question_record;
  LookbackAccumulator lookback(c.n_layer, c.n_head, context_end);
  if (config_.lookback) lookback.request(probes);
  GreedyOptions go;
  go.max_new_tokens = config_.max_new_tokens;
  go.probes = &probes;
  go.mask = mask;
  if (run_qrhead) {
    go.prefill_probes = &question_probes;
    go.prefill_probe_out = &question_record;
  }
  go.on_token = [&](const DecodeStep& step) {
    const auto s0 = clock::now();
    const ProbeRecord& rec = *step.probes;
    if (span) scorer.observe(rec, step.token);
    if (config_.lookback) lookback.observe(rec);
    tally.observe(rec, step.token, sequence);
    if (track_support) support.observe(rec, step.token, sequence);
    sequence.push_back(step.token);
    scoring_seconds += std::chrono::duration<double>(clock::now() - s0).count();
    if (tok.is_end_of_generation(step.token)) return false;
    answer_ids.push_back(step.token);
    return tok.piece(step.token).find('\n') == std::string::npos;
  };
  // qrhead: the prefill stops at the context's end, where the null question runs on the same
  // prefix before the question does. Every test of a qrhead run splits its prefill there, so a
  // position is computed in the same chunk whatever ran before (see the chunk rule above).
  size_t start = keep;
  ProbeRecord null_record;
  if (config_.qrhead && keep < static_cast<size_t>(context_end)) {
    const auto q0 = clock::now();
    ForwardOptions fo;
    fo.mask = mask;
    session_->forward(std::span<const int32_t>(prompt.tokens).subspan(keep, context_end - keep), fo);
    if (run_qrhead) null_record = qrhead_null_record(*session_, context_end, st.null_after, mask);
    r.prefill_seconds += std::chrono::duration<double>(clock::now() - q0).count();
    prefilled_tokens_ += context_end - static_cast<int64_t>(keep);
    if (run_qrhead) prefilled_tokens_ += static_cast<int64_t>(st.null_after.size() - 1);
    start = static_cast<size_t>(context_end);
  }
  GenerateResult g = generate_greedy(*session_, std::span<const int32_t>(prompt.tokens).subspan(start), go);
  prefilled_tokens_ += g.n_prefill;
  keep_prefill(prefill);
  if (run_qrhead) {
    int gold = 0;
    const std::vector<TokenSpan> docs = qrhead_documents(
        {context_begin, context_end}, {prompt.needle_begin, prompt.needle_end}, kQrheadDocTokens, &gold);
    qrhead_scores_ = qrhead_scores(question_record, null_record, docs[static_cast<size_t>(gold)]);
    qrhead_prefill_ = prefill;
    qrhead_needle_ = prompt.needle_begin;
  }
  if (config_.qrhead) r.method_scores[kQrheadMethod] = qrhead_scores_;
  if (config_.lookback) r.method_scores[kLookbackMethod] = lookback.scores();
  // Decode time excludes only the scoring done inside the decode loop; the scoring below
  // runs after g.decode_seconds was measured.
  const double scoring_in_decode = scoring_seconds;

  const auto s0 = clock::now();
  r.answer = tok.decode(answer_ids);
  r.rouge_recall = rouge1_recall(config_.needle_sets[task.needle_id].needle.real_needle, r.answer) * 100.0;
  r.counted = span.has_value() && r.rouge_recall > kPassScore;
  if (span) {
    r.span_begin = span->begin;
    r.span_end = span->end;
    for (int l = 0; l < c.n_layer; ++l)
      for (int h = 0; h < c.n_head; ++h) {
        const double s = scorer.scores()[l * c.n_head + h];
        if (s > 0) r.head_scores[HeadId{l, h}.key()] = s;
      }
  } else {
    r.error = "needle span not found in the prompt";
  }
  scoring_seconds += std::chrono::duration<double>(clock::now() - s0).count();
  r.generated_tokens = static_cast<int64_t>(g.tokens.size());
  r.prefill_seconds += g.prefill_seconds;
  r.decode_seconds = g.decode_seconds - scoring_in_decode;
  r.scoring_seconds = scoring_seconds;
  r.reused_tokens = static_cast<int64_t>(keep);
  if (track_support) r.support_share = support.share();
  tally.write(r);
  r.seconds = std::chrono::duration<double>(clock::now() - t_start).count();
  return r;
}

}  // namespace rhead
