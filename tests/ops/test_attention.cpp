// The attention kernel contract: visibility (model window, per-head KV-policy window with a
// sink), score scale and soft-cap, overrides and probes, for the fast kernel and the scalar
// reference, against a naive double-precision oracle that applies the visibility rule key by
// key, plus a small case whose numbers are worked out by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <omp.h>

#include "ops/attention.h"
#include "ops/quant.h"

namespace rhead {
namespace {

constexpr int kTopK = 5;

// One attention call's inputs. KV layout: [n_kv][n_keys][hd], f16 or f32.
struct AttnCase {
  int n_head = 4, n_kv = 2, hd = 8;
  int64_t pos0 = 0, n_tokens = 1;
  bool f16 = true;
  bool q8_0 = false;  // Q8_0 blocks (hd a multiple of 32); overrides f16
  int64_t window = 0, head_sink = 0;
  std::vector<int32_t> head_window;  // empty: none
  float scale = 0.0f, softcap = 0.0f;
  std::vector<HeadOverride> overrides;  // empty: none
  std::vector<float> means;             // [n_head, hd]
  int64_t span_begin = 0, span_end = 0;
  int64_t observe_every = 1;   // tokens t with t % observe_every == observe_every - 1 have probes
  std::vector<float> q;        // [T, H, hd]
  std::vector<uint8_t> k, v;   // stored bytes
  std::vector<double> kd, vd;  // the stored values
  int64_t n_keys() const { return pos0 + n_tokens; }
};

void store_kv(AttnCase& c, const std::vector<float>& kf, const std::vector<float>& vf) {
  if (c.q8_0) {
    // Each row zero-padded to whole blocks of 32 and quantized by the weight quantizer; the
    // stored values are the scalar reference dequantization of its first hd values.
    const size_t rows = kf.size() / c.hd, padded = (c.hd + 31) / 32 * 32, row_bytes = padded / 32 * 34;
    c.k.assign(rows * row_bytes, 0);
    c.v.assign(rows * row_bytes, 0);
    c.kd.resize(kf.size());
    c.vd.resize(vf.size());
    std::vector<float> in(padded, 0.0f), back(padded);
    for (int kv = 0; kv < 2; ++kv)
      for (size_t r = 0; r < rows; ++r) {
        const std::vector<float>& src = kv ? vf : kf;
        std::copy(src.begin() + r * c.hd, src.begin() + (r + 1) * c.hd, in.begin());
        uint8_t* dst = (kv ? c.v : c.k).data() + r * row_bytes;
        quantize_row(DType::Q8_0, in.data(), dst, static_cast<int64_t>(padded));
        dequantize_row_ref(DType::Q8_0, dst, back.data(), static_cast<int64_t>(padded));
        std::copy(back.begin(), back.begin() + c.hd, (kv ? c.vd : c.kd).begin() + r * c.hd);
      }
    return;
  }
  const size_t elem = c.f16 ? 2 : 4;
  c.k.resize(kf.size() * elem);
  c.v.resize(vf.size() * elem);
  c.kd.resize(kf.size());
  c.vd.resize(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) {
    if (c.f16) {
      const uint16_t a = f32_to_f16(kf[i]), b = f32_to_f16(vf[i]);
      std::memcpy(&c.k[i * 2], &a, 2);
      std::memcpy(&c.v[i * 2], &b, 2);
      c.kd[i] = f16_to_f32(a);
      c.vd[i] = f16_to_f32(b);
    } else {
      std::memcpy(&c.k[i * 4], &kf[i], 4);
      std::memcpy(&c.v[i * 4], &vf[i], 4);
      c.kd[i] = kf[i];
      c.vd[i] = vf[i];
    }
  }
}

// Random q, K, V of the case's shape (the rest of the case set by the caller first).
void fill_random(AttnCase& c, uint32_t seed, float q_gain = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  c.q.resize(static_cast<size_t>(c.n_tokens) * c.n_head * c.hd);
  for (auto& x : c.q) x = q_gain * nd(rng);
  std::vector<float> kf(static_cast<size_t>(c.n_kv) * c.n_keys() * c.hd), vf(kf.size());
  for (auto& x : kf) x = nd(rng);
  for (auto& x : vf) x = nd(rng);
  store_kv(c, kf, vf);
}

struct AttnResult {
  std::vector<float> out;
  std::vector<int32_t> argmax, topk;
  std::vector<float> argmax_w, topk_w, span, sink;
  std::vector<float> key_w;  // [T * H, key_len]: the key-weight probe (ProbeRequest::key_weights_len)
  int64_t key_len = 0;
  std::vector<double> head_sum;
};

AttnResult run(const AttnCase& c, void (*kernel)(const AttentionArgs&), bool probes = true) {
  AttnResult o;
  const int64_t T = c.n_tokens;
  const size_t n = static_cast<size_t>(T) * c.n_head;
  o.out.assign(n * c.hd, -7.0f);
  o.argmax.assign(n, -9);
  o.argmax_w.assign(n, -1);
  o.topk.assign(n * kTopK, -9);
  o.topk_w.assign(n * kTopK, -1);
  o.span.assign(n, -1);
  o.sink.assign(n, -1);
  o.head_sum.assign(static_cast<size_t>(c.n_head) * c.hd, 0.0);
  o.key_len = std::max<int64_t>(1, c.n_keys() - 2);  // short of the last keys: the bound is checked too
  o.key_w.assign(n * o.key_len, -1.0f);
  std::vector<int32_t> slots(T);
  for (int64_t t = 0; t < T; ++t) slots[t] = t % c.observe_every == c.observe_every - 1 ? static_cast<int32_t>(t) : -1;
  AttentionArgs a;
  a.n_tokens = T;
  a.pos0 = c.pos0;
  a.n_head = c.n_head;
  a.n_kv_head = c.n_kv;
  a.head_dim = c.hd;
  a.q = c.q.data();
  a.k = c.k.data();
  a.v = c.v.data();
  a.kv_f16 = c.f16 && !c.q8_0;
  a.kv_q8_0 = c.q8_0;
  a.kv_head_stride = c.n_keys() * c.hd;
  a.out = o.out.data();
  a.window = c.window;
  a.head_window = c.head_window.empty() ? nullptr : c.head_window.data();
  a.head_sink = c.head_sink;
  a.scale = c.scale;
  a.softcap = c.softcap;
  a.overrides = c.overrides.empty() ? nullptr : c.overrides.data();
  a.head_means = c.means.empty() ? nullptr : c.means.data();
  if (probes) {
    a.obs_slot = slots.data();
    a.probes.obs_stride = c.n_head;
    a.probes.argmax = o.argmax.data();
    a.probes.argmax_weight = o.argmax_w.data();
    a.probes.top_k = kTopK;
    a.probes.topk = o.topk.data();
    a.probes.topk_weight = o.topk_w.data();
    a.probes.span_begin = c.span_begin;
    a.probes.span_end = c.span_end;
    a.probes.span_mass = o.span.data();
    a.probes.sink_mass = o.sink.data();
    a.probes.key_weights_len = o.key_len;
    a.probes.key_weights_stride = c.n_head;
    a.probes.key_weights = o.key_w.data();
  }
  a.head_out_sum = o.head_sum.data();
  kernel(a);
  return o;
}

// The visibility rule of attention.h, written literally.
bool visible(const AttnCase& c, int64_t i, int64_t j, int h) {
  return j <= i && (c.window == 0 || i - j < c.window) &&
         (c.head_window.empty() || c.head_window[h] == 0 || j < c.head_sink || i - j < c.head_window[h]);
}

// Naive oracle in double over the full [T, H, n_keys] score matrix; checks `o` against it.
void expect_matches_oracle(const AttnCase& c, const AttnResult& o, double tol, bool probes = true) {
  const int H = c.n_head, hd = c.hd;
  const double scale = c.scale != 0.0f ? c.scale : 1.0 / std::sqrt(static_cast<double>(hd));
  std::vector<double> sum(static_cast<size_t>(H) * hd, 0.0);
  for (int64_t t = 0; t < c.n_tokens; ++t)
    for (int h = 0; h < H; ++h) {
      const int g = h / (H / c.n_kv);
      const int64_t i = c.pos0 + t;
      const HeadOverride ov = c.overrides.empty() ? HeadOverride::none : c.overrides[h];
      std::vector<int64_t> keys;
      for (int64_t j = 0; j <= i; ++j)
        if (visible(c, i, j, h)) keys.push_back(j);
      std::vector<double> w(keys.size());
      double mx = -1e300;
      for (size_t x = 0; x < keys.size(); ++x) {
        double d = 0;
        if (ov != HeadOverride::uniform) {
          for (int e = 0; e < hd; ++e) d += c.q[(t * H + h) * hd + e] * c.kd[(g * c.n_keys() + keys[x]) * hd + e];
          d *= scale;
          if (c.softcap != 0.0f) d = c.softcap * std::tanh(d / c.softcap);
        }
        mx = std::max(mx, w[x] = d);
      }
      double s = 0;
      for (auto& x : w) s += (x = std::exp(x - mx));
      for (auto& x : w) x /= s;
      const size_t r = t * H + h;
      const std::string where = "t " + std::to_string(t) + " h " + std::to_string(h);
      for (int d = 0; d < hd; ++d) {
        double y = 0;
        if (ov == HeadOverride::none || ov == HeadOverride::uniform)
          for (size_t x = 0; x < keys.size(); ++x) y += w[x] * c.vd[(g * c.n_keys() + keys[x]) * hd + d];
        else if (ov == HeadOverride::mean)
          y = c.means[h * hd + d];
        EXPECT_NEAR(o.out[r * hd + d], y, tol) << where << " d " << d;
        sum[h * hd + d] += o.out[r * hd + d];
      }
      if (!probes || t % c.observe_every != c.observe_every - 1) {
        if (probes) EXPECT_EQ(o.argmax[r], -9) << where << ": a token without probes got some";
        continue;
      }
      const size_t best = std::max_element(w.begin(), w.end()) - w.begin();  // first maximum
      EXPECT_EQ(o.argmax[r], keys[best]) << where;
      EXPECT_NEAR(o.argmax_w[r], w[best], tol) << where;
      EXPECT_NEAR(o.sink[r], keys[0] == 0 ? w[0] : 0.0, tol) << where;
      double span = 0;
      for (size_t x = 0; x < keys.size(); ++x)
        if (keys[x] >= c.span_begin && keys[x] < c.span_end) span += w[x];
      EXPECT_NEAR(o.span[r], span, tol) << where;
      // Key weights: each key's weight below key_len, 0 where the row does not see it.
      std::vector<double> want_w(static_cast<size_t>(o.key_len), 0.0);
      for (size_t x = 0; x < keys.size(); ++x)
        if (keys[x] < o.key_len) want_w[keys[x]] = w[x];
      for (int64_t j = 0; j < o.key_len; ++j)
        EXPECT_NEAR(o.key_w[r * o.key_len + j], want_w[j], tol) << where << " key " << j;
      std::vector<size_t> order(keys.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return w[x] > w[y]; });
      for (int k = 0; k < kTopK; ++k) {
        const int64_t want = k < static_cast<int>(keys.size()) ? keys[order[k]] : -1;
        EXPECT_EQ(o.topk[r * kTopK + k], want) << where << " rank " << k;
        EXPECT_NEAR(o.topk_w[r * kTopK + k], want >= 0 ? w[order[k]] : 0.0, tol) << where << " rank " << k;
      }
    }
  for (size_t x = 0; x < sum.size(); ++x) EXPECT_NEAR(o.head_sum[x], sum[x], 1e-9);
}

void expect_kernels_agree(const AttnResult& a, const AttnResult& b, double tol) {
  EXPECT_EQ(a.argmax, b.argmax);
  EXPECT_EQ(a.topk, b.topk);
  for (size_t i = 0; i < a.out.size(); ++i) EXPECT_NEAR(a.out[i], b.out[i], tol) << "out " << i;
  for (size_t i = 0; i < a.sink.size(); ++i) {
    EXPECT_NEAR(a.sink[i], b.sink[i], tol);
    EXPECT_NEAR(a.span[i], b.span[i], tol);
    EXPECT_NEAR(a.argmax_w[i], b.argmax_w[i], tol);
  }
  for (size_t i = 0; i < a.key_w.size(); ++i) EXPECT_NEAR(a.key_w[i], b.key_w[i], tol) << "key weight " << i;
}

// Outputs and every probe equal bit for bit.
void expect_bit_identical(const AttnResult& a, const AttnResult& b) {
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(a.argmax, b.argmax);
  EXPECT_EQ(a.argmax_w, b.argmax_w);
  EXPECT_EQ(a.topk, b.topk);
  EXPECT_EQ(a.topk_w, b.topk_w);
  EXPECT_EQ(a.span, b.span);
  EXPECT_EQ(a.sink, b.sink);
  EXPECT_EQ(a.key_w, b.key_w);
}

// ---- hand-checked: one head, hd 2, k_j = (j, 0), v_j = (j, 1), q = (1, 0), scale 1 ----------
// Scores are the key positions themselves, so every weight is a power of e.
AttnCase ramp_case() {
  AttnCase c;
  c.n_head = 1;
  c.n_kv = 1;
  c.hd = 2;
  c.pos0 = 5;
  c.n_tokens = 1;
  c.scale = 1.0f;
  c.q = {1.0f, 0.0f};
  std::vector<float> kf, vf;
  for (int j = 0; j < 6; ++j) {
    kf.insert(kf.end(), {static_cast<float>(j), 0.0f});
    vf.insert(vf.end(), {static_cast<float>(j), 1.0f});
  }
  store_kv(c, kf, vf);
  c.span_begin = 3;
  c.span_end = 5;
  return c;
}

TEST(AttentionVisibility, HandCheckedWindowSinkAndSoftcap) {
  for (auto kernel : {attention, attention_ref}) {
    // Model window 3 at query 5: keys 3, 4, 5 with weights e^-2, e^-1, 1 (sum 1.503214).
    AttnCase c = ramp_case();
    c.window = 3;
    AttnResult o = run(c, kernel);
    EXPECT_NEAR(o.out[0], 4.575210, 1e-5);
    EXPECT_NEAR(o.out[1], 1.0, 1e-6);
    EXPECT_EQ(o.argmax[0], 5);
    EXPECT_EQ(o.sink[0], 0.0f);  // position 0 is not visible
    EXPECT_NEAR(o.span[0], (std::exp(-2.0) + std::exp(-1.0)) / 1.503214, 1e-5);
    EXPECT_EQ(o.topk[3], -1);  // only three keys visible
    EXPECT_EQ(o.topk_w[3], 0.0f);

    // Head window 2 with a sink of 1: keys 0, 4, 5 with weights e^-5, e^-1, 1.
    c = ramp_case();
    c.head_window = {2};
    c.head_sink = 1;
    o = run(c, kernel);
    EXPECT_NEAR(o.out[0], 4.707868, 1e-5);
    EXPECT_NEAR(o.sink[0], 0.004902, 1e-6);
    EXPECT_NEAR(o.argmax_w[0], 0.727475, 1e-6);
    EXPECT_NEAR(o.span[0], 0.267623, 1e-6);  // key 4 only: key 3 is hidden
    EXPECT_EQ(o.topk[0], 5);
    EXPECT_EQ(o.topk[1], 4);
    EXPECT_EQ(o.topk[2], 0);
    EXPECT_EQ(o.topk[3], -1);

    // Soft-cap 2 over window 3: scores 2 tanh(j / 2) for j = 3, 4, 5.
    c = ramp_case();
    c.window = 3;
    c.softcap = 2.0f;
    o = run(c, kernel);
    EXPECT_NEAR(o.out[0], 4.053592, 1e-5);

    // Uniform override under head window 2 + sink 1: the mean of v over keys 0, 4, 5; the
    // argmax is the first visible key.
    c = ramp_case();
    c.head_window = {2};
    c.head_sink = 1;
    c.overrides = {HeadOverride::uniform};
    o = run(c, kernel);
    EXPECT_NEAR(o.out[0], 3.0, 1e-6);
    EXPECT_EQ(o.argmax[0], 0);
    EXPECT_NEAR(o.argmax_w[0], 1.0 / 3.0, 1e-7);
    EXPECT_NEAR(o.sink[0], 1.0 / 3.0, 1e-7);
  }
}

// Defaults are plain causal attention, bit for bit: an explicit scale equal to the default
// and windows wider than the context change nothing.
TEST(AttentionVisibility, WideWindowsAndExplicitDefaultScaleAreBitIdentical) {
  AttnCase c;
  c.n_head = 6;
  c.n_kv = 2;
  c.hd = 24;
  c.pos0 = 9;
  c.n_tokens = 7;
  fill_random(c, 41);
  c.span_begin = 2;
  c.span_end = 11;
  const AttnResult base = run(c, attention);
  c.scale = 1.0f / std::sqrt(24.0f);
  c.window = 1000;
  c.head_window.assign(c.n_head, 500);
  c.head_sink = 4;
  expect_bit_identical(base, run(c, attention));
}

struct Shape {
  int n_head, n_kv, hd;
  int64_t pos0, n_tokens;

  AttnCase make_case() const {
    AttnCase c;
    c.n_head = n_head;
    c.n_kv = n_kv;
    c.hd = hd;
    c.pos0 = pos0;
    c.n_tokens = n_tokens;
    return c;
  }
  std::string name() const {
    return "shape " + std::to_string(n_head) + "/" + std::to_string(n_kv) + "/" + std::to_string(hd) + " pos0 " +
           std::to_string(pos0) + " T " + std::to_string(n_tokens);
  }
};

// Every combination of the visibility features on odd sizes and several GQA groupings, both
// KV types, with probes and masks: both kernels against the oracle and against each other.
TEST(AttentionVisibility, KernelsMatchOracleAcrossWindowsSinksScalesSoftcaps) {
  const Shape shapes[] = {{4, 4, 8, 0, 13}, {6, 2, 12, 7, 9}, {8, 1, 20, 3, 17}, {3, 1, 5, 30, 4}, {2, 2, 64, 0, 1}};
  uint32_t seed = 100;
  for (const Shape& s : shapes)
    for (int variant = 0; variant < 6; ++variant)
      for (bool f16 : {true, false}) {
        AttnCase c = s.make_case();
        c.f16 = f16;
        c.span_begin = 1;
        c.span_end = 6;
        switch (variant) {
          case 0: break;  // plain causal
          case 1: c.window = 5; break;
          case 2:  // per-head windows (0 = full) with a sink, under a model window
            c.window = 11;
            c.head_sink = 2;
            for (int h = 0; h < c.n_head; ++h) c.head_window.push_back(h % 3 == 0 ? 0 : 1 + 2 * h);
            break;
          case 3:
            c.scale = 0.3f;
            c.softcap = 1.5f;
            break;
          case 4:  // sink larger than the window, window 1
            c.head_sink = 3;
            for (int h = 0; h < c.n_head; ++h) c.head_window.push_back(1 + h % 2);
            c.softcap = 3.0f;
            break;
          case 5:  // all overrides under per-head windows
            c.head_sink = 1;
            for (int h = 0; h < c.n_head; ++h) c.head_window.push_back(3);
            for (int h = 0; h < c.n_head; ++h) c.overrides.push_back(static_cast<HeadOverride>(h % 4));
            for (int i = 0; i < c.n_head * c.hd; ++i) c.means.push_back(0.01f * i - 0.5f);
            break;
        }
        fill_random(c, ++seed, 2.0f);
        SCOPED_TRACE(s.name() + " variant " + std::to_string(variant) + (f16 ? " f16" : " f32"));
        const AttnResult fast = run(c, attention), ref = run(c, attention_ref);
        expect_matches_oracle(c, fast, 2e-5);
        expect_matches_oracle(c, ref, 2e-5);
        expect_kernels_agree(fast, ref, 2e-5);
      }
}

// The tiled kernel's block structure: query blocks and key tiles crossed several times (group
// sizes 1, 4 and 8 put 256, 64 and 32 tokens in a block; key tiles hold 256 keys), probes on
// a few tokens only, a masked head, and every visibility feature.
TEST(AttentionTiles, TileCrossingLengthsMatchOracle) {
  const Shape shapes[] = {{4, 4, 64, 0, 301}, {8, 2, 64, 250, 130}, {8, 1, 32, 517, 67}, {6, 3, 20, 0, 257}};
  uint32_t seed = 500;
  for (const Shape& s : shapes)
    for (int variant = 0; variant < 3; ++variant) {
      AttnCase c = s.make_case();
      c.span_begin = 200;
      c.span_end = 300;
      c.observe_every = 29;
      if (variant == 1) {
        c.window = 300;
        c.head_sink = 4;
        for (int h = 0; h < c.n_head; ++h) c.head_window.push_back(h % 2 ? 100 + 37 * h : 0);
        c.softcap = 4.0f;
      }
      if (variant == 2) {
        c.overrides.assign(c.n_head, HeadOverride::none);
        c.overrides[1] = HeadOverride::uniform;
        c.scale = 0.05f;
      }
      fill_random(c, ++seed, 3.0f);
      SCOPED_TRACE(s.name() + " variant " + std::to_string(variant));
      expect_matches_oracle(c, run(c, attention), 2e-5);
    }
}

// Decode at long context with more threads than KV heads: the keys are split across threads
// (flash-decoding) and the slices merged; probes still see the whole row.
TEST(AttentionTiles, KeySlicesMatchOracle) {
  const int saved = omp_get_max_threads();
  for (int threads : {3, 8}) {
    omp_set_num_threads(threads);
    for (int variant = 0; variant < 2; ++variant) {
      AttnCase c;
      c.n_head = 8;
      c.n_kv = 2;
      c.hd = 64;
      c.pos0 = 3000;
      c.n_tokens = variant == 0 ? 1 : 2;
      c.span_begin = 1000;
      c.span_end = 1500;
      if (variant == 1) {
        c.window = 2600;
        c.head_sink = 16;
        c.head_window = {0, 700, 0, 1, 2000, 0, 0, 5};
      }
      fill_random(c, 900 + threads + variant, 4.0f);
      SCOPED_TRACE("threads " + std::to_string(threads) + " variant " + std::to_string(variant));
      const AttnResult fast = run(c, attention);
      expect_matches_oracle(c, fast, 2e-5);
      expect_kernels_agree(fast, run(c, attention_ref), 2e-5);
    }
  }
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace rhead

namespace rhead {
namespace {

void attention_avx2(const AttentionArgs& a) { attention_isa(KernelISA::AVX2, a); }
void attention_avx512(const AttentionArgs& a) { attention_isa(KernelISA::AVX512, a); }

// The decode kernels (at most 32 query rows of a group: the AVX2 8-lane kernel and the AVX-512
// key-pair kernel), each against the oracle: 1 to 8 rows per pass and row counts that need
// several passes, head dims that are multiples of 32 or only of 16 (and one the AVX-512 kernel
// leaves to the 8-lane one), tile tails, both KV types, every visibility feature, overrides.
TEST(AttentionDecode, LaneAndPairKernelsMatchOracle) {
  const Shape shapes[] = {{8, 1, 64, 1000, 1}, {8, 2, 64, 95, 1}, {4, 1, 128, 300, 2}, {3, 1, 48, 77, 3},
                          {16, 2, 80, 40, 1},  {2, 2, 16, 33, 4}, {5, 1, 32, 31, 1},   {6, 1, 64, 0, 5},
                          {7, 1, 96, 63, 1},   {8, 4, 24, 50, 1}};
  std::vector<std::pair<std::string, void (*)(const AttentionArgs&)>> kernels;
  if (cpu_has_isa(KernelISA::AVX2)) kernels.emplace_back("avx2", attention_avx2);
  if (cpu_has_isa(KernelISA::AVX512)) kernels.emplace_back("avx512", attention_avx512);
  if (kernels.empty()) GTEST_SKIP() << "this CPU has neither AVX2 nor AVX-512";
  uint32_t seed = 1300;
  for (const Shape& s : shapes)
    for (int variant = 0; variant < 4; ++variant) {
      AttnCase c = s.make_case();
      c.f16 = variant != 3;
      c.span_begin = 20;
      c.span_end = 70;
      if (variant == 1) {  // model window, per-head windows with a sink, soft-cap
        c.window = 90;
        c.head_sink = 3;
        for (int h = 0; h < c.n_head; ++h) c.head_window.push_back(h % 3 == 0 ? 0 : 5 + 7 * h);
        c.softcap = 3.0f;
      }
      if (variant == 2) {  // overrides leave fewer rows to the kernel; an explicit scale
        c.overrides.assign(c.n_head, HeadOverride::none);
        c.overrides[c.n_head - 1] = HeadOverride::uniform;
        if (c.n_head > 2) c.overrides[1] = HeadOverride::zero;
        c.scale = 0.07f;
      }
      fill_random(c, ++seed, 3.0f);
      for (const auto& [name, kernel] : kernels) {
        SCOPED_TRACE(name + " " + s.name() + " variant " + std::to_string(variant));
        expect_matches_oracle(c, run(c, kernel), 2e-5);
      }
    }
}

// The case with its q8_0 cache replaced by an f32 cache holding the dequantized values.
AttnCase dequantized_f32(const AttnCase& c) {
  AttnCase f32 = c;
  f32.q8_0 = false;
  f32.f16 = false;
  f32.k.resize(c.kd.size() * 4);
  f32.v.resize(c.vd.size() * 4);
  for (size_t i = 0; i < c.kd.size(); ++i) {
    const float kx = static_cast<float>(c.kd[i]), vx = static_cast<float>(c.vd[i]);
    std::memcpy(&f32.k[i * 4], &kx, 4);
    std::memcpy(&f32.v[i * 4], &vx, 4);
  }
  return f32;
}

// A random case of `shape` with a q8_0 cache: variant 0 plain causal, 1 a KV policy (windowed
// heads with a sink, full heads), 2 a uniform override and a soft-cap.
AttnCase q8_case(const Shape& shape, int variant, uint32_t seed) {
  AttnCase c = shape.make_case();
  c.q8_0 = true;
  c.f16 = false;
  c.span_begin = 20;
  c.span_end = 70;
  c.observe_every = c.n_tokens > 8 ? 29 : 1;
  if (variant == 1) {
    c.head_sink = 4;
    for (int h = 0; h < c.n_head; ++h) c.head_window.push_back(h % 3 == 0 ? 0 : 16 + 9 * h);
  }
  if (variant == 2) {
    c.overrides.assign(c.n_head, HeadOverride::none);
    c.overrides[c.n_head - 1] = HeadOverride::uniform;
    c.softcap = 3.0f;
  }
  fill_random(c, seed, 3.0f);
  return c;
}

// A q8_0 cache: every kernel (reference rows, sgemm tiles at prefill, key slices, the AVX2
// 8-lane decode kernel, which dequantizes a tile into f32 scratch, and the AVX-512 key-pair
// kernel, which dequantizes in its loads) matches the oracle on the dequantized values,
// probes included; and equals attention_ref on an f32 cache that holds those dequantized values.
TEST(AttentionQ8, KernelsMatchOracleOnDequantizedValues) {
  // Head dims: multiples of 32 (rows of whole blocks) and 16, 48 (a zero-padded last block).
  const Shape shapes[] = {{8, 2, 64, 1000, 1}, {4, 1, 128, 300, 2},  {8, 4, 32, 50, 1},  {6, 2, 16, 200, 1},
                          {4, 4, 64, 0, 301},  {8, 2, 64, 250, 130}, {6, 2, 48, 90, 40}, {8, 2, 64, 3000, 1}};
  std::vector<std::pair<std::string, void (*)(const AttentionArgs&)>> kernels = {{"fast", attention},
                                                                                 {"ref", attention_ref}};
  if (cpu_has_isa(KernelISA::AVX2)) kernels.emplace_back("avx2", attention_avx2);
  if (cpu_has_isa(KernelISA::AVX512)) kernels.emplace_back("avx512", attention_avx512);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(4);  // more threads than KV heads at decode: key slices
  uint32_t seed = 2100;
  for (const Shape& s : shapes)
    for (int variant = 0; variant < 3; ++variant) {
      const AttnCase c = q8_case(s, variant, ++seed);
      const AttnResult ref_f32 = run(dequantized_f32(c), attention_ref);
      for (const auto& [name, kernel] : kernels) {
        SCOPED_TRACE(name + " " + s.name() + " variant " + std::to_string(variant));
        const AttnResult o = run(c, kernel);
        expect_matches_oracle(c, o, 2e-5);
        expect_kernels_agree(o, ref_f32, 2e-5);
      }
    }
  omp_set_num_threads(saved);
}

// The AVX-512 key-pair kernel on a q8_0 cache (int8 to f32 and the block scale in its loads)
// against two references: its f32 twin, the same kernel on an f32 cache of the dequantized
// values, which it equals bit for bit (outputs and every probe: the loads yield the same f32
// values and the arithmetic is the same); and the AVX2 path that dequantizes each tile into f32
// scratch first (the q8_0 decode path before this kernel read blocks), which it matches to float
// rounding with the same argmax and top-k. Query rows 1 to 8 per pass and more (two passes),
// head dims of whole blocks (32, 64, 128) and of a zero-padded last block (16, 48), tile tails,
// key slices at long context, a KV policy's windows and sink, soft-cap and overrides.
TEST(AttentionQ8, PairKernelReadsBlocksLikeItsF32Twin) {
  if (!cpu_has_isa(KernelISA::AVX512)) GTEST_SKIP() << "this CPU lacks AVX-512";
  const Shape shapes[] = {{8, 2, 64, 1000, 1}, {4, 1, 128, 300, 2}, {8, 4, 32, 50, 1}, {6, 2, 16, 200, 1},
                          {6, 2, 48, 90, 1},   {8, 2, 64, 3000, 1}, {3, 1, 64, 61, 3}, {8, 1, 64, 700, 2}};
  const bool avx2 = cpu_has_isa(KernelISA::AVX2);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(4);
  uint32_t seed = 2600;
  for (const Shape& s : shapes)
    for (int variant = 0; variant < 3; ++variant) {
      const AttnCase c = q8_case(s, variant, ++seed);
      SCOPED_TRACE(s.name() + " variant " + std::to_string(variant));
      const AttnResult q8 = run(c, attention_avx512), twin = run(dequantized_f32(c), attention_avx512);
      expect_bit_identical(q8, twin);
      if (avx2) expect_kernels_agree(q8, run(c, attention_avx2), 2e-5);
    }
  omp_set_num_threads(saved);
}

}  // namespace
}  // namespace rhead
