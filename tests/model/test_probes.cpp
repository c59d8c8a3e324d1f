// Attention probes: planted heads whose argmax is known by construction, the kernel's probe
// contract (ties, top-k order, span and sink mass) against a naive full-matrix computation,
// and agreement of Session's probes with a naive full-matrix forward pass on real models,
// at every step of a 100-token generation, for prefill chunk sizes 1, 7 and 64.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <random>

#include "io/error.h"
#include "model/builtin.h"
#include "model/generate.h"
#include "model/loader.h"
#include "model/session.h"
#include "ops/attention.h"
#include "ops/quant.h"
#include "test_probes_naive.h"
#include "test_support.h"

namespace rhead {
namespace {

// ---------------------------------------------------------------------------------------
// A one-layer model built in memory whose heads look for a token by construction.
//   residual stream: [0] = 1, [1 + v] = one-hot of token v   (n_embd = 1 + kVocab)
//   keys of both KV groups = the one-hot of the key's token; values likewise
//   head 0 (group 0): query = kGain * e_{kPatternA}: scores kGain/sqrt(hd) on keys holding A
//   head 3 (group 1): query = kGain * e_{kPatternB}
//   heads 1, 2: zero query (uniform over the prefix)
// RoPE is switched off (frequency factors of 1e30), the MLP and W_o are zero.
constexpr int kVocab = 16, kPatternA = 5, kPatternB = 11;
constexpr float kGain = 8.0f;

std::shared_ptr<const Model> pattern_model() {
  auto m = std::make_shared<Model>();
  ModelConfig& c = m->config;
  c.n_layer = 1;
  c.n_embd = 1 + kVocab;
  c.n_ff = 4;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.head_dim = kVocab;
  c.n_vocab = kVocab;
  c.n_ctx_train = 256;
  c.rms_eps = 1e-6f;
  c.rope_pairing = RopePairing::half;
  m->format = "memory";
  m->rope_freq_factors.assign(kVocab / 2, 1e30f);
  auto buffers = std::make_shared<std::vector<std::vector<float>>>();
  buffers->reserve(16);
  auto matrix = [&](int64_t rows, int64_t cols) -> std::vector<float>& {
    return buffers->emplace_back(static_cast<size_t>(rows * cols), 0.0f);
  };
  auto weight = [](const std::vector<float>& b, int64_t rows, int64_t cols) {
    return Weight{DType::F32, b.data(), rows, cols};
  };
  const int D = c.n_embd, hd = c.head_dim;
  std::vector<float>& embd = matrix(kVocab, D);
  for (int t = 0; t < kVocab; ++t) {
    embd[t * D + 0] = 1.0f;
    embd[t * D + 1 + t] = 1.0f;
  }
  m->tok_embd = weight(embd, kVocab, D);
  m->output = m->tok_embd;
  m->output_norm.assign(D, 1.0f);
  LayerWeights& L = m->layers.emplace_back();
  L.attn_norm.assign(D, std::sqrt(2.0f / D));  // undoes RMSNorm for "constant + one-hot"
  L.ffn_norm.assign(D, 1.0f);
  std::vector<float>& wq = matrix(4 * hd, D);
  std::vector<float>& wk = matrix(2 * hd, D);
  std::vector<float>& wv = matrix(2 * hd, D);
  for (int g = 0; g < 2; ++g)
    for (int i = 0; i < hd; ++i) {
      wk[(g * hd + i) * D + 1 + i] = 1.0f;
      wv[(g * hd + i) * D + 1 + i] = 1.0f;
    }
  wq[(0 * hd + kPatternA) * D + 0] = kGain;
  wq[(3 * hd + kPatternB) * D + 0] = kGain;
  L.wq = weight(wq, 4 * hd, D);
  L.wk = weight(wk, 2 * hd, D);
  L.wv = weight(wv, 2 * hd, D);
  L.wo = weight(matrix(D, 4 * hd), D, 4 * hd);
  L.w_gate = weight(matrix(c.n_ff, D), c.n_ff, D);
  L.w_up = weight(matrix(c.n_ff, D), c.n_ff, D);
  L.w_down = weight(matrix(D, c.n_ff), D, c.n_ff);
  m->keep_alive.push_back(buffers);
  return m;
}

ProbeRecord probe_every_position(std::shared_ptr<const Model> model, const std::vector<int32_t>& tokens, int64_t chunk,
                                 const ProbeRequest& base) {
  SessionOptions so;
  so.prefill_chunk = chunk;
  so.n_ctx = static_cast<int64_t>(tokens.size()) + 8;
  Session s(model, so);
  ProbeRequest req = base;
  req.positions.resize(tokens.size());
  std::iota(req.positions.begin(), req.positions.end(), 0);
  ProbeRecord rec;
  ForwardOptions fo;
  fo.probes = &req;
  fo.probe_out = &rec;
  s.forward(tokens, fo);
  return rec;
}

TEST(PlantedHeads, PatternHeadsFindTheirTokenInMemoryModel) {
  auto model = pattern_model();
  // A at 3 and 9 (an exact tie from 9 on: the earliest, 3, must win), B at 6 only.
  const std::vector<int32_t> tokens = {1, 2, 0, kPatternA, 7, 8, kPatternB, 12, 13, kPatternA, 14, 15, 4, 3};
  ProbeRequest req;
  req.top_k = 3;
  req.sink = true;
  for (int64_t chunk : {1, 7, 64}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    ProbeRecord r = probe_every_position(model, tokens, chunk, req);
    ASSERT_EQ(r.n_obs, static_cast<int>(tokens.size()));
    ASSERT_EQ(r.n_layer, 1);
    ASSERT_EQ(r.n_head, 4);
    for (int p = 0; p < r.n_obs; ++p) {
      SCOPED_TRACE("position " + std::to_string(p));
      const double n = p + 1;
      // By hand: head 0 -> first A at or before p, head 3 -> first B; else uniform, argmax 0.
      auto first = [&](int32_t tok) {
        for (int j = 0; j <= p; ++j)
          if (tokens[j] == tok) return j;
        return -1;
      };
      auto count = [&](int32_t tok) { return std::count(tokens.begin(), tokens.begin() + p + 1, tok); };
      const std::pair<int, int32_t> planted[] = {{0, kPatternA}, {3, kPatternB}};
      const double e = std::exp(kGain / 4.0);  // score kGain / sqrt(16)
      for (const auto& [head, tok] : planted) {
        const int j = first(tok);
        const int64_t i = r.index(p, 0, head);
        if (j < 0) {
          EXPECT_EQ(r.argmax[i], 0) << "head " << head;
          EXPECT_NEAR(r.argmax_weight[i], 1.0 / n, 1e-6);
        } else {
          const double m = static_cast<double>(count(tok));
          EXPECT_EQ(r.argmax[i], j) << "head " << head;
          EXPECT_NEAR(r.argmax_weight[i], e / (m * e + (n - m)), 1e-5) << "head " << head;
          EXPECT_NEAR(r.sink_mass[i], 1.0 / (m * e + (n - m)), 1e-5);
          // Top-k lists every match first, earliest first among the tied matches.
          EXPECT_EQ(r.topk[i * 3 + 0], j);
          if (m == 2) EXPECT_EQ(r.topk[i * 3 + 1], 9);
        }
      }
      for (int head : {1, 2}) {
        const int64_t i = r.index(p, 0, head);
        EXPECT_EQ(r.argmax[i], 0) << "head " << head;
        EXPECT_NEAR(r.argmax_weight[i], 1.0 / n, 1e-6);
        EXPECT_NEAR(r.sink_mass[i], 1.0 / n, 1e-6);
        for (int k = 0; k < 3; ++k) EXPECT_EQ(r.topk[i * 3 + k], k <= p ? k : -1);  // ties: earlier first
      }
    }
  }
}

// builtin:induction: layer 0 head 1 attends to i-1; layer 1 heads 1 and 2 attend to the
// position after the earlier occurrence of the current token. Other heads are uniform.
TEST(PlantedHeads, BuiltinInductionHeadsAtHandComputedPositions) {
  LoadedModel lm = load_model("builtin:induction");
  const ModelConfig& c = lm.model->config;
  ASSERT_EQ(c.n_layer, 2);
  ASSERT_EQ(c.n_head, 4);
  // BOS, 16 distinct tokens, then the first 4 of them again: from there on the model can copy.
  std::vector<int32_t> prompt = {1};
  for (int i = 0; i < 16; ++i) prompt.push_back(300 + 7 * i);
  for (int i = 0; i < 4; ++i) prompt.push_back(prompt[1 + i]);

  // Prefill probes at every position: the previous-token head.
  ProbeRecord pre = probe_every_position(lm.model, prompt, 7, ProbeRequest{});
  for (int p = 1; p < pre.n_obs; ++p) {
    EXPECT_EQ(pre.argmax[pre.index(p, 0, 1)], p - 1) << "position " << p;
    EXPECT_GT(pre.argmax_weight[pre.index(p, 0, 1)], 0.9f);
    for (int h : {0, 2, 3}) EXPECT_EQ(pre.argmax[pre.index(p, 0, h)], 0) << "position " << p << " head 0-" << h;
    for (int h : {0, 3}) EXPECT_EQ(pre.argmax[pre.index(p, 1, h)], 0) << "position " << p << " head 1-" << h;
  }

  // Decode: each step's query token occurs exactly once before it, so the induction target
  // (its earlier position + 1) is defined, and the token there is the one emitted.
  Session session(lm.model, SessionOptions{.n_ctx = 64});
  ProbeRequest req;
  std::vector<int32_t> seq = prompt;
  int steps = 0;
  GreedyOptions go;
  go.max_new_tokens = 12;  // copies tokens 4..15 of the pattern
  go.probes = &req;
  go.on_token = [&](const DecodeStep& s) -> bool {
    const int64_t p = s.query_position;
    EXPECT_EQ(p, static_cast<int64_t>(seq.size()) - 1);
    std::vector<int64_t> earlier;
    for (int64_t j = 0; j < p; ++j)
      if (seq[j] == seq[p]) earlier.push_back(j);
    EXPECT_EQ(earlier.size(), 1u) << "step " << s.index;
    if (earlier.size() == 1) {
      const int64_t target = earlier[0] + 1;
      EXPECT_NE(target, p - 1);
      EXPECT_EQ(s.token, seq[target]) << "step " << s.index;
      const ProbeRecord& r = *s.probes;
      for (int l = 0; l < c.n_layer; ++l)
        for (int h = 0; h < c.n_head; ++h) {
          const int32_t a = r.argmax[r.index(0, l, h)];
          const bool induction = l == 1 && (h == 1 || h == 2);
          const bool previous = l == 0 && h == 1;
          EXPECT_EQ(a == target, induction) << "step " << s.index << " head " << l << "-" << h << " argmax " << a;
          EXPECT_EQ(a == p - 1, previous) << "step " << s.index << " head " << l << "-" << h << " argmax " << a;
          if (!induction && !previous) EXPECT_EQ(a, 0);
          if (induction) EXPECT_GT(r.argmax_weight[r.index(0, l, h)], 0.9f);
        }
    }
    seq.push_back(s.token);
    ++steps;
    return true;
  };
  generate_greedy(session, prompt, go);
  EXPECT_EQ(steps, 12);
}

// ---------------------------------------------------------------------------------------
// The kernel contract on inputs with planted exact ties, for both kernels and KV types.

struct KernelCase {
  int n_head = 4, n_kv = 2, hd = 12;
  int64_t pos0 = 6, n_tokens = 3;
  bool f16 = true;
  std::vector<float> q;        // [T, H, hd]
  std::vector<uint8_t> k, v;   // [G][n_keys][hd] in f16 or f32
  std::vector<double> kd, vd;  // the same values as stored, in double
  int64_t n_keys() const { return pos0 + n_tokens; }
};

KernelCase make_kernel_case(bool f16, uint32_t seed) {
  KernelCase kc;
  kc.f16 = f16;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t N = kc.n_keys();
  kc.q.resize(static_cast<size_t>(kc.n_tokens) * kc.n_head * kc.hd);
  for (auto& x : kc.q) x = nd(rng);
  std::vector<float> kf(static_cast<size_t>(kc.n_kv) * N * kc.hd), vf(kf.size());
  for (auto& x : kf) x = nd(rng);
  for (auto& x : vf) x = nd(rng);
  // Plant: keys 2 and 6 of group 0 identical, and head 0's last query a large multiple of
  // that key: an exact tie for the maximum at positions 2 and 6.
  for (int i = 0; i < kc.hd; ++i) kf[6 * kc.hd + i] = kf[2 * kc.hd + i];
  const int64_t tlast = kc.n_tokens - 1;
  for (int i = 0; i < kc.hd; ++i) kc.q[(tlast * kc.n_head + 0) * kc.hd + i] = 4.0f * kf[2 * kc.hd + i];
  const size_t elem = f16 ? 2 : 4;
  kc.k.resize(kf.size() * elem);
  kc.v.resize(vf.size() * elem);
  kc.kd.resize(kf.size());
  kc.vd.resize(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) {
    if (f16) {
      const uint16_t a = f32_to_f16(kf[i]), b = f32_to_f16(vf[i]);
      std::memcpy(&kc.k[i * 2], &a, 2);
      std::memcpy(&kc.v[i * 2], &b, 2);
      kc.kd[i] = f16_to_f32(a);
      kc.vd[i] = f16_to_f32(b);
    } else {
      std::memcpy(&kc.k[i * 4], &kf[i], 4);
      std::memcpy(&kc.v[i * 4], &vf[i], 4);
      kc.kd[i] = kf[i];
      kc.vd[i] = vf[i];
    }
  }
  return kc;
}

struct KernelOutput {
  std::vector<float> out;
  std::vector<int32_t> argmax, topk;
  std::vector<float> argmax_w, topk_w, span, sink;
  std::vector<double> head_sum;
};

constexpr int kTopK = 4;

KernelOutput run_kernel(const KernelCase& kc, bool ref, const HeadOverride* ov, const float* means) {
  KernelOutput o;
  const int64_t T = kc.n_tokens;
  o.out.assign(static_cast<size_t>(T) * kc.n_head * kc.hd, -7.0f);
  const size_t n = static_cast<size_t>(T) * kc.n_head;
  o.argmax.assign(n, -9);
  o.argmax_w.assign(n, -1);
  o.topk.assign(n * kTopK, -9);
  o.topk_w.assign(n * kTopK, -1);
  o.span.assign(n, -1);
  o.sink.assign(n, -1);
  o.head_sum.assign(static_cast<size_t>(kc.n_head) * kc.hd, 0.0);
  std::vector<int32_t> slots(T);
  std::iota(slots.begin(), slots.end(), 0);
  AttentionArgs a;
  a.n_tokens = T;
  a.pos0 = kc.pos0;
  a.n_head = kc.n_head;
  a.n_kv_head = kc.n_kv;
  a.head_dim = kc.hd;
  a.q = kc.q.data();
  a.k = kc.k.data();
  a.v = kc.v.data();
  a.kv_f16 = kc.f16;
  a.kv_head_stride = kc.n_keys() * kc.hd;
  a.out = o.out.data();
  a.overrides = ov;
  a.head_means = means;
  a.obs_slot = slots.data();
  a.probes.obs_stride = kc.n_head;
  a.probes.argmax = o.argmax.data();
  a.probes.argmax_weight = o.argmax_w.data();
  a.probes.top_k = kTopK;
  a.probes.topk = o.topk.data();
  a.probes.topk_weight = o.topk_w.data();
  a.probes.span_begin = 3;
  a.probes.span_end = 7;
  a.probes.span_mass = o.span.data();
  a.probes.sink_mass = o.sink.data();
  a.head_out_sum = o.head_sum.data();
  (ref ? attention_ref : attention)(a);
  return o;
}

TEST(ProbeKernel, MatchesNaiveFullMatrixWithPlantedTies) {
  for (bool f16 : {true, false})
    for (bool ref : {false, true}) {
      SCOPED_TRACE(std::string(f16 ? "f16" : "f32") + (ref ? " attention_ref" : " attention"));
      const KernelCase kc = make_kernel_case(f16, 11);
      const KernelOutput o = run_kernel(kc, ref, nullptr, nullptr);
      const int H = kc.n_head, hd = kc.hd;
      std::vector<double> sum(static_cast<size_t>(H) * hd, 0.0);
      for (int64_t t = 0; t < kc.n_tokens; ++t)
        for (int h = 0; h < H; ++h) {
          const int g = h / (H / kc.n_kv);
          const int64_t nk = kc.pos0 + t + 1;
          std::vector<double> w(nk);
          double mx = -1e300;
          for (int64_t j = 0; j < nk; ++j) {
            double d = 0;
            for (int i = 0; i < hd; ++i) d += kc.q[(t * H + h) * hd + i] * kc.kd[(g * kc.n_keys() + j) * hd + i];
            mx = std::max(mx, w[j] = d / std::sqrt(static_cast<double>(hd)));
          }
          double s = 0;
          for (auto& x : w) s += (x = std::exp(x - mx));
          for (auto& x : w) x /= s;
          const size_t i = t * H + h;
          const int64_t best = std::max_element(w.begin(), w.end()) - w.begin();  // first maximum
          EXPECT_EQ(o.argmax[i], best) << "t " << t << " h " << h;
          EXPECT_NEAR(o.argmax_w[i], w[best], 1e-5);
          EXPECT_NEAR(o.sink[i], w[0], 1e-5);
          double span = 0;
          for (int64_t j = 3; j < std::min<int64_t>(7, nk); ++j) span += w[j];
          EXPECT_NEAR(o.span[i], span, 1e-5);
          std::vector<int64_t> order(nk);
          std::iota(order.begin(), order.end(), 0);
          std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return w[x] > w[y]; });
          for (int k = 0; k < kTopK; ++k) {
            EXPECT_EQ(o.topk[i * kTopK + k], order[k]) << "t " << t << " h " << h << " rank " << k;
            EXPECT_NEAR(o.topk_w[i * kTopK + k], w[order[k]], 1e-5);
          }
          for (int d = 0; d < hd; ++d) {
            double y = 0;
            for (int64_t j = 0; j < nk; ++j) y += w[j] * kc.vd[(g * kc.n_keys() + j) * hd + d];
            EXPECT_NEAR(o.out[i * hd + d], y, 1e-5);
            sum[h * hd + d] += o.out[i * hd + d];
          }
        }
      // The planted tie: head 0's last query scores keys 2 and 6 exactly equally.
      const size_t tie = (kc.n_tokens - 1) * H + 0;
      EXPECT_EQ(o.argmax[tie], 2);
      EXPECT_EQ(o.topk[tie * kTopK + 0], 2);
      EXPECT_EQ(o.topk[tie * kTopK + 1], 6);
      EXPECT_EQ(o.topk_w[tie * kTopK + 0], o.topk_w[tie * kTopK + 1]);
      for (size_t i = 0; i < sum.size(); ++i) EXPECT_NEAR(o.head_sum[i], sum[i], 1e-9);
    }
}

TEST(ProbeKernel, FastAndReferenceKernelsAgree) {
  const KernelCase kc = make_kernel_case(true, 5);
  const KernelOutput a = run_kernel(kc, false, nullptr, nullptr), b = run_kernel(kc, true, nullptr, nullptr);
  EXPECT_EQ(a.argmax, b.argmax);
  EXPECT_EQ(a.topk, b.topk);
  for (size_t i = 0; i < a.out.size(); ++i) EXPECT_NEAR(a.out[i], b.out[i], 1e-5);
}

// Overrides at kernel level: uniform = mean of V over the causal prefix (and argmax 0 with
// weight 1/n, the zeroed query's view); zero = zeros; mean = the given vector, exactly.
TEST(ProbeKernel, OverridesUniformZeroMean) {
  for (bool f16 : {true, false}) {
    SCOPED_TRACE(f16 ? "f16" : "f32");
    const KernelCase kc = make_kernel_case(f16, 3);
    const HeadOverride ov[4] = {HeadOverride::uniform, HeadOverride::zero, HeadOverride::mean, HeadOverride::none};
    std::vector<float> means(static_cast<size_t>(kc.n_head) * kc.hd);
    for (size_t i = 0; i < means.size(); ++i) means[i] = 0.1f * static_cast<float>(i) - 1.7f;
    const KernelOutput o = run_kernel(kc, false, ov, means.data());
    const KernelOutput none = run_kernel(kc, false, nullptr, nullptr);
    const int H = kc.n_head, hd = kc.hd;
    for (int64_t t = 0; t < kc.n_tokens; ++t) {
      const int64_t nk = kc.pos0 + t + 1;
      // head 0 (group 0), uniform
      for (int d = 0; d < hd; ++d) {
        double mean_v = 0;
        for (int64_t j = 0; j < nk; ++j) mean_v += kc.vd[(0 * kc.n_keys() + j) * hd + d];
        mean_v /= static_cast<double>(nk);
        EXPECT_NEAR(o.out[(t * H + 0) * hd + d], mean_v, 1e-5) << "t " << t << " d " << d;
      }
      EXPECT_EQ(o.argmax[t * H + 0], 0);
      EXPECT_NEAR(o.argmax_w[t * H + 0], 1.0 / nk, 1e-7);
      // head 1, zero; head 2, mean; head 3 untouched
      for (int d = 0; d < hd; ++d) {
        EXPECT_EQ(o.out[(t * H + 1) * hd + d], 0.0f);
        EXPECT_EQ(o.out[(t * H + 2) * hd + d], means[2 * hd + d]);
        EXPECT_EQ(o.out[(t * H + 3) * hd + d], none.out[(t * H + 3) * hd + d]);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Session probes against the naive full-matrix forward pass on real models.

struct AgreementStats {
  int64_t compared = 0, near_ties = 0;
  double max_weight_err = 0, max_mass_err = 0;
};

// Tolerances: the naive pass runs in double on the session's own K and V (its queries and
// everything else recomputed), Session in float. An argmax may differ only where the naive
// weights of the two positions are within kTieTol (a numerical near-tie), and such cases
// must be rare.
constexpr double kWeightTol = 2e-5, kTieTol = 2e-5;

void compare_probe(const ProbeRecord& r, int o, const ProbeRequest& req, const testing::NaiveRun& naive, int64_t t,
                   AgreementStats& st, const std::string& where) {
  ASSERT_LT(t, naive.n_tokens);
  for (int l = 0; l < naive.n_layer; ++l)
    for (int h = 0; h < naive.n_head; ++h) {
      const std::vector<double>& w = naive.row(l, h, t);
      const int64_t i = r.index(o, l, h);
      const int64_t best = std::max_element(w.begin(), w.end()) - w.begin();
      const int32_t a = r.argmax[i];
      ++st.compared;
      ASSERT_GE(a, 0) << where;
      ASSERT_LE(a, t) << where;
      if (a != best) {
        ++st.near_ties;
        EXPECT_LE(w[best] - w[a], kTieTol)
            << where << " head " << l << "-" << h << ": argmax " << a << " vs naive " << best;
      }
      const double we = std::abs(r.argmax_weight[i] - w[a]);
      st.max_weight_err = std::max(st.max_weight_err, we);
      EXPECT_LE(we, kWeightTol) << where << " head " << l << "-" << h;
      if (req.sink) {
        const double e = std::abs(r.sink_mass[i] - w[0]);
        st.max_mass_err = std::max(st.max_mass_err, e);
        EXPECT_LE(e, kWeightTol) << where;
      }
      if (req.span_begin >= 0) {
        double m = 0;
        for (int64_t j = req.span_begin; j < std::min<int64_t>(req.span_end, t + 1); ++j) m += w[j];
        const double e = std::abs(r.span_mass[i] - m);
        st.max_mass_err = std::max(st.max_mass_err, e);
        EXPECT_LE(e, kWeightTol) << where;
      }
      if (req.top_k > 0) {
        std::vector<double> sorted = w;
        std::sort(sorted.rbegin(), sorted.rend());
        std::vector<int32_t> seen;
        for (int k = 0; k < req.top_k; ++k) {
          const int32_t p = r.topk[i * req.top_k + k];
          if (k > t) {
            EXPECT_EQ(p, -1) << where;
            continue;
          }
          ASSERT_GE(p, 0) << where;
          ASSERT_LE(p, t) << where;
          EXPECT_EQ(std::count(seen.begin(), seen.end(), p), 0) << where << " repeated top-k position";
          seen.push_back(p);
          // The k-th reported position holds (up to near-ties) the k-th largest weight.
          EXPECT_LE(std::abs(w[p] - sorted[k]), kTieTol) << where << " rank " << k;
          EXPECT_LE(std::abs(r.topk_weight[i * req.top_k + k] - w[p]), kWeightTol) << where << " rank " << k;
        }
        if (req.top_k >= 1 && t >= 0) EXPECT_EQ(r.topk[i * req.top_k], a) << where;
      }
    }
}

struct AgreementModel {
  std::string path;
  std::string prompt;
};

const char kStoriesPrompt[] =
    "Once upon a time, there was a little girl named Lily. She loved to play with her red ball in the park. "
    "One day, Lily saw a big dog near the tree. The dog was sad because it lost its ball.";
const char kNiahPrompt[] =
    "What hard liquor, cigarettes, heroin, and crack have in common is that they're all more concentrated forms "
    "of less addictive predecessors. The secret code of the wall is star oil nest. Most if not all the things we "
    "describe as addictive are.\nQuestion: What is the secret code of the wall?\nAnswer:";

void check_agreement(const AgreementModel& am) {
  RHEAD_REQUIRE_FILE(am.path);
  LoadedModel lm = load_model(am.path);
  ASSERT_TRUE(lm.tokenizer);
  const std::vector<int32_t> prompt = lm.tokenizer->encode(am.prompt, true);
  const int64_t n = static_cast<int64_t>(prompt.size());
  ASSERT_GT(n, 66) << "the prompt must span more than one 64-token chunk";
  constexpr int kSteps = 100;
  for (bool f16 : {true, false})
    for (int64_t chunk : {1, 7, 64}) {
      const std::string what = am.path + (f16 ? " f16 KV" : " f32 KV") + " chunk " + std::to_string(chunk);
      SCOPED_TRACE(what);
      SessionOptions so;
      so.n_ctx = n + kSteps + 4;
      so.prefill_chunk = chunk;
      so.kv_f16 = f16;
      Session session(lm.model, so);

      // Prefill probes at every prefill position, across chunk boundaries.
      ProbeRequest pre;
      pre.positions.resize(n - 1);
      std::iota(pre.positions.begin(), pre.positions.end(), 0);
      pre.top_k = 3;
      pre.span_begin = 5;
      pre.span_end = 30;
      pre.sink = true;
      ProbeRecord pre_rec;
      ForwardOptions fo;
      fo.probes = &pre;
      fo.probe_out = &pre_rec;
      session.forward(std::span<const int32_t>(prompt).first(n - 1), fo);

      // 100 decode steps through generate_greedy, probes at each step's query.
      ProbeRequest dec;
      dec.top_k = 4;
      dec.span_begin = 2;
      dec.span_end = n / 2;
      dec.sink = true;
      std::vector<ProbeRecord> steps;
      std::vector<int64_t> positions;
      GreedyOptions go;
      go.max_new_tokens = kSteps;
      go.probes = &dec;
      go.on_token = [&](const DecodeStep& s) {
        steps.push_back(*s.probes);
        positions.push_back(s.query_position);
        return true;
      };
      GenerateResult res = generate_greedy(session, std::span<const int32_t>(prompt).last(1), go);
      ASSERT_EQ(steps.size(), static_cast<size_t>(kSteps));

      std::vector<int32_t> seq = prompt;
      seq.insert(seq.end(), res.tokens.begin(), res.tokens.end() - 1);  // every token that was fed
      double kv_diff = 0;
      const testing::NaiveRun naive = testing::naive_forward(*lm.model, seq, f16, &session, &kv_diff);
      // The cache holds what the weights give: up to one f16 ulp (2^-10 relative) when a tiny
      // upstream difference flips a rounding, float noise otherwise.
      EXPECT_LT(kv_diff, f16 ? 2e-3 : 1e-4);

      AgreementStats st;
      for (int64_t p = 0; p < n - 1; ++p) {
        compare_probe(pre_rec, static_cast<int>(p), pre, naive, p, st, "prefill position " + std::to_string(p));
        if (::testing::Test::HasFatalFailure()) return;
      }
      for (int i = 0; i < kSteps; ++i) {
        ASSERT_EQ(positions[i], n - 1 + i);
        ASSERT_EQ(steps[i].n_obs, 1);
        ASSERT_EQ(steps[i].positions[0], positions[i]);
        compare_probe(steps[i], 0, dec, naive, positions[i], st, "decode step " + std::to_string(i));
        if (::testing::Test::HasFatalFailure()) return;
      }
      // Near-ties that flip the argmax are numerical accidents: allow at most 0.2%.
      EXPECT_LE(st.near_ties * 500, st.compared) << st.near_ties << " of " << st.compared;
      std::printf(
          "[ agreement ] %s: %lld head-steps, %lld near-tie argmax flips, max weight error %.2e, "
          "max mass error %.2e, max relative K/V difference %.2e\n",
          what.c_str(), static_cast<long long>(st.compared), static_cast<long long>(st.near_ties), st.max_weight_err,
          st.max_mass_err, kv_diff);
    }
}

TEST(ProbeAgreement, Stories260K) {
  check_agreement({testing::shared_path("models/stories260K/stories260K.gguf"), kStoriesPrompt});
}

TEST(ProbeAgreement, NiahTiny) {
  check_agreement({testing::shared_path("models/niah-tiny/niah-tiny-f32.gguf"), kNiahPrompt});
}

// The probes change nothing: logits with and without a probe request are bit-identical.
TEST(ProbeAgreement, ProbesDoNotChangeLogits) {
  const std::string path = testing::shared_path("models/stories260K/stories260K.gguf");
  RHEAD_REQUIRE_FILE(path);
  LoadedModel lm = load_model(path);
  const std::vector<int32_t> prompt = lm.tokenizer->encode(kStoriesPrompt, true);
  ProbeRequest req;
  req.top_k = 5;
  req.sink = true;
  req.span_begin = 0;
  req.span_end = 10;
  Session a(lm.model, SessionOptions{.n_ctx = 256}), b(lm.model, SessionOptions{.n_ctx = 256});
  ProbeRecord rec;
  ForwardOptions with;
  with.probes = &req;
  with.probe_out = &rec;
  with.all_logits = true;
  ForwardOptions without;
  without.all_logits = true;
  const std::vector<float> la = a.forward(prompt, with), lb = b.forward(prompt, without);
  ASSERT_EQ(la.size(), lb.size());
  EXPECT_EQ(std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)), 0);
}

// Probe positions: each must lie in the forward call, and each may be asked once (a repeated
// position would leave one of its two observation slots unwritten).
TEST(ProbeAgreement, BadProbePositionsAreErrors) {
  auto model = pattern_model();
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  auto run = [&](std::vector<int64_t> positions) {
    Session s(model, SessionOptions{.n_ctx = 16});
    ProbeRequest req;
    req.positions = std::move(positions);
    ProbeRecord rec;
    s.forward(tokens, ForwardOptions{.probes = &req, .probe_out = &rec});
    return rec;
  };
  EXPECT_THROW(run({5}), Error);
  EXPECT_THROW(run({-1}), Error);
  EXPECT_THROW(run({2, 2}), Error);
  const ProbeRecord r = run({4, 1});  // any order; records follow the request
  EXPECT_EQ(r.positions, (std::vector<int64_t>{4, 1}));
  EXPECT_EQ(r.argmax[r.index(0, 0, 0)], 4);  // kPatternA = 5 sits at position 4
  EXPECT_EQ(r.argmax[r.index(1, 0, 0)], 0);  // not seen yet at position 1: uniform
}

}  // namespace
}  // namespace rhead
