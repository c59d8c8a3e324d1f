// KV-cache policies in Session (prefill and decode):
//   - a window covering the whole sequence, and every head full, are bit-identical to no policy;
//   - a restricted head never reports a probe position outside its sink or window;
//   - a naive full-matrix forward with the same visibility mask agrees with the kernel on
//     logits and probes (prefill chunks 1, 7, 64; f16, f32 and q8_0 KV, the naive forward
//     reading the q8_0 cache through the scalar reference dequantization);
//   - the compacted cache (a windowed KV head holds its sink and a ring, a full one grows with
//     the sequence) gives the same tokens, logits and probes bit for bit as the policy applied
//     to the whole cache, on every family fixture, with rings that wrap during prefill and
//     decode; it holds the bytes the accounting predicts, and truncation keeps its word.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>

#include "io/error.h"
#include "model/builtin.h"
#include "model/generate.h"
#include "model/kv_policy.h"
#include "model/loader.h"
#include "model/session.h"
#include "random_weights.h"
#include "test_probes_naive.h"
#include "test_support.h"

namespace rhead {
namespace {

const char kNiahPrompt[] =
    "What hard liquor, cigarettes, heroin, and crack have in common is that they're all more concentrated forms "
    "of less addictive predecessors. The secret code of the wall is star oil nest. Most if not all the things we "
    "describe as addictive are.\nQuestion: What is the secret code of the wall?\nAnswer:";

// Everything one run produces: prefill logits of every prompt token, prefill probes at every
// prompt position, then greedy tokens with their logits and probes.
struct Trace {
  std::vector<float> prefill_logits;
  ProbeRecord prefill_probes;
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> step_logits;
  std::vector<ProbeRecord> step_probes;
};

// keep: receives the session, for a naive pass over its KV cache.
Trace run_trace(const LoadedModel& lm, const std::vector<int32_t>& prompt, SessionOptions so, int steps,
                std::unique_ptr<Session>* keep = nullptr) {
  const int64_t n = static_cast<int64_t>(prompt.size());
  so.n_ctx = n + steps + 4;
  auto owned = std::make_unique<Session>(lm.model, so);
  Session& session = *owned;
  Trace tr;
  ProbeRequest pre;
  pre.positions.resize(n - 1);
  std::iota(pre.positions.begin(), pre.positions.end(), 0);
  pre.top_k = 4;
  pre.sink = true;
  pre.span_begin = 1;
  pre.span_end = n / 2;
  ForwardOptions fo;
  fo.probes = &pre;
  fo.probe_out = &tr.prefill_probes;
  fo.all_logits = true;
  tr.prefill_logits = session.forward(std::span<const int32_t>(prompt).first(n - 1), fo);
  ProbeRequest dec;
  dec.top_k = 4;
  dec.sink = true;
  dec.span_begin = 1;
  dec.span_end = n / 2;
  GreedyOptions go;
  go.max_new_tokens = steps;
  go.probes = &dec;
  go.on_token = [&](const DecodeStep& s) {
    tr.step_logits.push_back(*s.logits);
    tr.step_probes.push_back(*s.probes);
    return true;
  };
  tr.tokens = generate_greedy(session, std::span<const int32_t>(prompt).last(1), go).tokens;
  if (keep) *keep = std::move(owned);
  return tr;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

void expect_identical(const Trace& a, const Trace& b, const std::string& what) {
  EXPECT_TRUE(same_bits(a.prefill_logits, b.prefill_logits)) << what << ": prefill logits";
  auto same_probes = [](const ProbeRecord& x, const ProbeRecord& y) {
    return same_bits(x.argmax, y.argmax) && same_bits(x.argmax_weight, y.argmax_weight) && same_bits(x.topk, y.topk) &&
           same_bits(x.topk_weight, y.topk_weight) && same_bits(x.sink_mass, y.sink_mass) &&
           same_bits(x.span_mass, y.span_mass);
  };
  EXPECT_TRUE(same_probes(a.prefill_probes, b.prefill_probes)) << what << ": prefill probes";
  EXPECT_EQ(a.tokens, b.tokens) << what;
  ASSERT_EQ(a.step_logits.size(), b.step_logits.size()) << what;
  for (size_t i = 0; i < a.step_logits.size(); ++i) {
    EXPECT_TRUE(same_bits(a.step_logits[i], b.step_logits[i])) << what << ": step " << i << " logits";
    EXPECT_TRUE(same_probes(a.step_probes[i], b.step_probes[i])) << what << ": step " << i << " probes";
  }
}

// The models every test runs on: builtin:induction always, niah-tiny when present.
std::vector<std::pair<std::string, LoadedModel>> models() {
  std::vector<std::pair<std::string, LoadedModel>> out;
  out.emplace_back("builtin:induction", load_builtin_model("induction"));
  const std::string niah = testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf");
  if (std::filesystem::exists(niah))
    out.emplace_back(niah, load_model(niah));
  else if (testing::in_ci())
    ADD_FAILURE() << "missing test data: " << niah;
  return out;
}

TEST(KvPolicySession, WindowCoveringTheSequenceAndAllFullAreBitIdentical) {
  constexpr int kSteps = 20;
  for (const auto& [name, lm] : models()) {
    const std::vector<int32_t> prompt = lm.tokenizer->encode(kNiahPrompt, true);
    const int64_t total = static_cast<int64_t>(prompt.size()) + kSteps;
    for (bool f16 : {true, false}) {
      const std::string what = name + (f16 ? " f16" : " f32");
      SessionOptions so;
      so.kv_f16 = f16;
      so.prefill_chunk = 7;
      const Trace plain = run_trace(lm, prompt, so, kSteps);
      // No key of the whole run is ever further back than the window.
      SessionOptions wide = so;
      wide.kv_policy = KvPolicy(lm.model->config, total, 4);
      expect_identical(plain, run_trace(lm, prompt, wide, kSteps), what + " window = sequence length");
      // A tiny window with every head full hides nothing either.
      SessionOptions all = so;
      all.kv_policy = KvPolicy(lm.model->config, 2, 1);
      for (int l = 0; l < lm.model->config.n_layer; ++l)
        for (int h = 0; h < lm.model->config.n_head; ++h) all.kv_policy.set_full(l, h);
      expect_identical(plain, run_trace(lm, prompt, all, kSteps), what + " every head full");
      // And the test can fail: the same tiny window with no full head changes the run.
      SessionOptions narrow = so;
      narrow.kv_policy = KvPolicy(lm.model->config, 2, 1);
      EXPECT_FALSE(same_bits(plain.prefill_logits, run_trace(lm, prompt, narrow, kSteps).prefill_logits)) << what;
    }
  }
}

// Checks every observation of a record: restricted heads report only visible positions.
// Returns how many full-head argmax positions lay outside the window (evidence that the
// restriction matters for this prompt).
int64_t check_visible(const ProbeRecord& r, const KvPolicy& p, const std::string& what) {
  int64_t full_outside = 0;
  for (int o = 0; o < r.n_obs; ++o) {
    const int64_t i = r.positions[o];
    for (int l = 0; l < r.n_layer; ++l)
      for (int h = 0; h < r.n_head; ++h) {
        const int64_t idx = r.index(o, l, h);
        const int32_t a = r.argmax[idx];
        if (p.is_full(l, h)) {
          full_outside += !kv_visible(i, a, p.window, p.sink);
          continue;
        }
        EXPECT_TRUE(kv_visible(i, a, p.window, p.sink))
            << what << " position " << i << " head " << l << "-" << h << " argmax " << a;
        for (int k = 0; k < r.top_k; ++k) {
          const int32_t j = r.topk[idx * r.top_k + k];
          if (j >= 0) EXPECT_TRUE(kv_visible(i, j, p.window, p.sink)) << what << " top-" << k << " " << j;
        }
        if (!kv_visible(i, 0, p.window, p.sink)) EXPECT_EQ(r.sink_mass[idx], 0.0f) << what;
      }
  }
  return full_outside;
}

TEST(KvPolicySession, RestrictedHeadsReportOnlyTheirSinkAndWindow) {
  constexpr int kSteps = 30;
  for (const auto& [name, lm] : models()) {
    const ModelConfig& c = lm.model->config;
    const std::vector<int32_t> prompt = lm.tokenizer->encode(kNiahPrompt, true);
    for (int64_t sink : {0, 3}) {
      SessionOptions so;
      so.prefill_chunk = 7;
      so.kv_policy = KvPolicy(c, 8, sink);
      // The last layer's head 1 keeps the whole cache; every other head is windowed.
      so.kv_policy.set_full(c.n_layer - 1, 1);
      const Trace tr = run_trace(lm, prompt, so, kSteps);
      const std::string what = name + " sink " + std::to_string(sink);
      int64_t outside = check_visible(tr.prefill_probes, so.kv_policy, what + " prefill");
      for (const auto& r : tr.step_probes) outside += check_visible(r, so.kv_policy, what + " decode");
      // The full head does look beyond the window: the check above is not vacuous.
      EXPECT_GT(outside, 0) << what;
    }
  }
}

// ---- against the naive full-matrix forward with the same visibility ----

void check_naive_agreement(const std::string& path) {
  RHEAD_REQUIRE_FILE(path);
  LoadedModel lm = load_model(path);
  const ModelConfig& c = lm.model->config;
  const std::vector<int32_t> prompt = lm.tokenizer->encode(kNiahPrompt, true);
  const int64_t n = static_cast<int64_t>(prompt.size());
  ASSERT_GT(n, 66) << "the prompt must span more than one 64-token chunk";
  constexpr int kSteps = 40;
  KvPolicy policy(c, 16, 4);
  policy.set_full(c.n_layer - 1, 0);
  policy.set_full(c.n_layer - 1, c.n_head - 1);
  policy.set_full(0, 1);
  for (KvType type : {KvType::f16, KvType::f32, KvType::q8_0})
    for (int64_t chunk : {1, 7, 64}) {
      const bool f16 = type == KvType::f16, q8 = type == KvType::q8_0;
      const std::string what = path + " " + kv_type_name(type) + " KV chunk " + std::to_string(chunk);
      SCOPED_TRACE(what);
      SessionOptions so;
      so.kv_f16 = f16;
      so.kv_q8_0 = q8;
      so.prefill_chunk = chunk;
      so.kv_policy = policy;
      so.kv_compact = false;  // the naive pass reads the whole cache (test_kv_compact: the same results)
      so.n_ctx = n + kSteps + 4;
      std::unique_ptr<Session> session;
      const Trace tr = run_trace(lm, prompt, so, kSteps, &session);
      std::vector<int32_t> seq = prompt;
      seq.insert(seq.end(), tr.tokens.begin(), tr.tokens.end() - 1);  // every token fed
      double kv_diff = 0;
      const testing::NaiveRun naive = testing::naive_forward(*lm.model, seq, f16, session.get(), &kv_diff, &policy);
      // The recomputed K and V against the cache: f16 rounding, or q8_0's rounding, at most half
      // a step of 1/127 of the block's largest magnitude: relative to max(1, |value|) that is
      // up to amax / 254 for a small value beside a large one (these models' K reach ~25-60).
      EXPECT_LT(kv_diff, q8 ? 0.25 : f16 ? 2e-3 : 1e-4);
      if (q8) EXPECT_GT(kv_diff, 1e-4) << "a q8_0 cache that rounds nothing was not quantized";

      double max_logit_err = 0, max_weight_err = 0;
      int64_t compared = 0, near_ties = 0;
      auto compare_logits = [&](const float* got, int64_t t) {
        for (int v = 0; v < c.n_vocab; ++v)
          max_logit_err = std::max(max_logit_err, std::abs(got[v] - naive.logits[t][v]));
      };
      auto compare_probes = [&](const ProbeRecord& r, int o, int64_t t) {
        for (int l = 0; l < c.n_layer; ++l)
          for (int h = 0; h < c.n_head; ++h) {
            const std::vector<double>& w = naive.row(l, h, t);
            const int64_t i = r.index(o, l, h);
            const int32_t a = r.argmax[i];
            const int64_t best = std::max_element(w.begin(), w.end()) - w.begin();
            ++compared;
            ASSERT_GE(a, 0);
            ASSERT_LE(a, t);
            if (a != best) {
              ++near_ties;
              EXPECT_LE(w[best] - w[a], 2e-5) << "position " << t << " head " << l << "-" << h;
            }
            max_weight_err = std::max(max_weight_err, std::abs(r.argmax_weight[i] - w[a]));
            max_weight_err = std::max(max_weight_err, std::abs(r.sink_mass[i] - w[0]));
            for (int k = 0; k < r.top_k; ++k) {
              const int32_t p = r.topk[i * r.top_k + k];
              if (p < 0) continue;
              max_weight_err = std::max(max_weight_err, std::abs(r.topk_weight[i * r.top_k + k] - w[p]));
            }
          }
      };
      for (int64_t t = 0; t < n - 1; ++t) {
        compare_logits(tr.prefill_logits.data() + t * c.n_vocab, t);
        compare_probes(tr.prefill_probes, static_cast<int>(t), t);
        if (::testing::Test::HasFatalFailure()) return;
      }
      for (int s = 0; s < kSteps; ++s) {
        compare_logits(tr.step_logits[s].data(), n - 1 + s);
        compare_probes(tr.step_probes[s], 0, n - 1 + s);
        if (::testing::Test::HasFatalFailure()) return;
      }
      EXPECT_LE(max_weight_err, 2e-5);
      EXPECT_LE(max_logit_err, 2e-4);
      EXPECT_LE(near_ties * 500, compared) << near_ties << " of " << compared;
      std::printf(
          "[ kv agreement ] %s: %lld head-positions, %lld near-tie argmax flips, max weight error %.2e, "
          "max logit error %.2e\n",
          what.c_str(), static_cast<long long>(compared), static_cast<long long>(near_ties), max_weight_err,
          max_logit_err);
    }
}

TEST(KvPolicyAgreement, NiahTiny) {
  check_naive_agreement(testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf"));
}

TEST(KvPolicyAgreement, Stories260K) {
  check_naive_agreement(testing::shared_path("models/stories260K/stories260K.gguf"));
}

// ---- the compacted cache against the policy on the whole cache ----

// A policy with a few full query heads: under GQA their KV heads stay whole, the others are
// rings of window + chunk rows.
KvPolicy mixed_policy(const ModelConfig& c, int64_t window, int64_t sink) {
  KvPolicy p(c, window, sink);
  p.set_full(0, 0);
  p.set_full(c.n_layer - 1, c.n_head - 1);
  return p;
}

// Runs `prompt` under `policy` with the compacted and with the whole cache, for every KV type
// and a few prefill chunks, and expects the same run bit for bit; the compacted session holds
// what kv_accounting predicts, less than the whole cache.
void expect_compact_same(const LoadedModel& lm, const std::vector<int32_t>& prompt, const KvPolicy& policy,
                         const std::string& name) {
  constexpr int kSteps = 24;
  const ModelConfig& c = lm.model->config;
  const int64_t n = static_cast<int64_t>(prompt.size());
  for (KvType type : {KvType::f16, KvType::f32, KvType::q8_0})
    for (int64_t chunk : {1, 7, 32}) {
      const std::string what = name + " " + kv_type_name(type) + " chunk " + std::to_string(chunk);
      SessionOptions so;
      so.kv_f16 = type == KvType::f16;
      so.kv_q8_0 = type == KvType::q8_0;
      so.prefill_chunk = chunk;
      so.kv_policy = policy;
      // The ring wraps (during prefill with chunks of 7, during decode with 32).
      ASSERT_GT(n + kSteps, policy.sink + policy.window + chunk) << what;
      std::unique_ptr<Session> compact, whole;
      const Trace a = run_trace(lm, prompt, so, kSteps, &compact);
      so.kv_compact = false;
      const Trace b = run_trace(lm, prompt, so, kSteps, &whole);
      expect_identical(a, b, what);
      ASSERT_TRUE(compact->kv_cache().compacted()) << what;
      ASSERT_FALSE(whole->kv_cache().compacted()) << what;
      const KvAccounting acc = kv_accounting(policy, c.head_dim, type, compact->n_past(), chunk, compact->capacity());
      EXPECT_EQ(compact->kv_bytes_held(), acc.kv_bytes_held()) << what;
      if (policy.full_kv_heads() < c.n_layer * c.n_kv_head)  // (not when one KV head serves all)
        EXPECT_LT(compact->kv_bytes_held(), whole->kv_bytes_held()) << what;
      // Rings hold sink + window + chunk rows at most; whole heads every position.
      for (int l = 0; l < c.n_layer; ++l)
        for (int g = 0; g < c.n_kv_head; ++g) {
          const KvHeadRows& h = compact->kv_cache().head(l, g);
          if (policy.kv_is_full(l, g))
            EXPECT_GE(h.rows, compact->n_past()) << what;
          else
            EXPECT_EQ(h.rows, policy.sink + policy.window + chunk) << what;
        }
    }
}

TEST(KvCompact, SameRunsAsTheWholeCacheOnEveryFamilyFixture) {
  for (const char* name : {"random_qwen2", "random_llama3", "random_linear", "random_mistral", "random_mixtral",
                           "random_qwen3", "random_qwen3moe", "random_gemma2", "random_phi3", "random_phi3_short"}) {
    SCOPED_TRACE(name);
    std::ifstream in(testing::test_data_path(std::string("model/") + name + ".json"));
    ASSERT_TRUE(in.good()) << name;
    const nlohmann::json fx = nlohmann::json::parse(in);
    const nlohmann::json& cfg = fx.at("config");
    const uint64_t seed = fx.at("seed").get<uint64_t>();
    testing::TempDir dir(std::string("rhead-kvc-") + name);
    testing::write_random_hf_model(dir.path, cfg, seed);
    const LoadedModel lm = load_model(dir.path);
    // 72 tokens: longer than sink + window + chunk, and than the families' sliding windows.
    const std::vector<int32_t> prompt = testing::random_tokens(seed + 1, 72, cfg.at("vocab_size").get<int>());
    expect_compact_same(lm, prompt, mixed_policy(lm.model->config, 6, 2), name);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(KvCompact, SameRunsAsTheWholeCacheOnTrainedModels) {
  for (const auto& [name, lm] : models()) {
    const std::vector<int32_t> prompt = lm.tokenizer->encode(kNiahPrompt, true);
    for (int64_t sink : {0, 4}) {
      expect_compact_same(lm, prompt, mixed_policy(lm.model->config, 8, sink), name + " sink " + std::to_string(sink));
      if (::testing::Test::HasFatalFailure()) return;
    }
  }
}

TEST(KvCompact, TruncationOnlyWhileTheWindowIsHeld) {
  const LoadedModel lm = load_builtin_model("induction");
  const std::vector<int32_t> prompt = lm.tokenizer->encode(kNiahPrompt, true);
  const int64_t n = static_cast<int64_t>(prompt.size());
  SessionOptions so;
  so.prefill_chunk = 7;
  so.kv_policy = KvPolicy(lm.model->config, 6, 2);  // ring of 13 rows after 2 sink rows
  so.n_ctx = n;
  Session s(lm.model, so);
  const std::vector<float> logits = s.forward(prompt);
  // The last chunk starts at m; a query there sees m - 5 .. m - 1 besides itself: still in
  // the ring (written up to n - 1 <= m + 6), 20 positions back it is not.
  const int64_t m = (n - 1) / 7 * 7;
  EXPECT_TRUE(s.can_truncate(m));
  EXPECT_FALSE(s.can_truncate(n - 20));
  EXPECT_THROW(s.truncate(n - 20), Error);
  EXPECT_EQ(s.n_past(), n);
  EXPECT_TRUE(s.can_truncate(0));
  // Recomputing the dropped chunk gives the same logits bit for bit.
  s.truncate(m);
  EXPECT_TRUE(same_bits(logits, s.forward(std::span<const int32_t>(prompt).subspan(m))));
  // The whole cache can always go back.
  so.kv_compact = false;
  Session w(lm.model, so);
  w.forward(prompt);
  EXPECT_TRUE(w.can_truncate(n - 20));
  EXPECT_THROW(s.k_cache(0), Error);  // the compacted cache has no contiguous layer
}

TEST(KvPolicySession, PolicyOfAnotherShapeIsRefused) {
  const LoadedModel lm = load_builtin_model("induction");
  ModelConfig other = lm.model->config;
  other.n_head *= 2;
  SessionOptions so;
  so.kv_policy = KvPolicy(other, 8, 4);
  EXPECT_THROW(Session(lm.model, so), Error);
}

}  // namespace
}  // namespace rhead
