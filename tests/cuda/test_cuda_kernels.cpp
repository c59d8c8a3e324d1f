// CUDA backend ops against the CPU references on random data: matmul for every weight type
// (decode mat-vec and prefill GEMM paths, odd row counts), the small ops, and attention
// against attention_ref — probes (argmax with ties, top-k, span and sink mass), head overrides
// and the visibility rules — for GQA groups 1, 4 and 8, head_dim 64 and 128 (and the tiny
// models' 16), contexts that cross the kernels' tile and split boundaries, decode and prefill;
// every prefill kernel (the default register-resident tensor-core one and, through
// RHEAD_CUDA_FLASH, the f32 and WMMA ones).
// Without a usable GPU every test skips, naming the reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "ops/attention.h"
#include "ops/backend.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace rhead {
namespace {

#define SKIP_WITHOUT_CUDA()                                                                     \
  do {                                                                                          \
    if (!cuda_available()) GTEST_SKIP() << "CUDA tests skipped: " << cuda_unavailable_reason(); \
  } while (0)

std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A device copy of a host vector, freed with the backend's free.
struct DeviceArray {
  Backend& be;
  void* ptr;
  size_t bytes;
  template <class T>
  DeviceArray(Backend& b, const std::vector<T>& host) : be(b), bytes(host.size() * sizeof(T)) {
    ptr = be.alloc(bytes);
    be.from_host(ptr, host.data(), bytes);
  }
  DeviceArray(Backend& b, size_t n_bytes) : be(b), ptr(b.alloc(n_bytes)), bytes(n_bytes) {}
  ~DeviceArray() { be.free(ptr); }
  float* f() const { return static_cast<float*>(ptr); }
  template <class T>
  std::vector<T> host() const {
    std::vector<T> out(bytes / sizeof(T));
    be.to_host(out.data(), ptr, bytes);
    return out;
  }
};

float round_to(DType t, float x) {
  if (t == DType::BF16) return bf16_to_f32(f32_to_bf16(x));
  return f16_to_f32(f32_to_f16(x));
}

// ---- matmul ----

struct MatmulCase {
  DType type;
  int64_t rows, cols;
};

void check_matmul(const MatmulCase& mc, int64_t T) {
  auto be = make_backend(Device::cuda);
  const std::vector<float> wf = random_vector(static_cast<size_t>(mc.rows * mc.cols), 7, 0.05f);
  std::vector<uint8_t> wq(static_cast<size_t>(mc.rows * row_bytes(mc.type, mc.cols)));
  for (int64_t r = 0; r < mc.rows; ++r)
    quantize_row(mc.type, wf.data() + r * mc.cols, wq.data() + r * row_bytes(mc.type, mc.cols), mc.cols);
  const Weight w{mc.type, wq.data(), mc.rows, mc.cols};
  const std::vector<float> x = random_vector(static_cast<size_t>(T * mc.cols), 11);
  // The GEMM path rounds x (and block-quantized weights) to the 16-bit type it multiplies in;
  // types without a GPU decoder (Q4_0, Q5_K) are expanded to f16 once, on upload. The
  // reference does the same so that the comparison stays tight.
  const bool gemm = T >= 8 && mc.type != DType::F32;
  const bool expanded = mc.type == DType::Q4_0 || mc.type == DType::Q5_K;
  std::vector<float> xr = x;
  Weight wr = w;
  std::vector<uint16_t> w16;
  if (gemm) {
    const DType t16 = mc.type == DType::BF16 ? DType::BF16 : DType::F16;
    for (float& v : xr) v = round_to(t16, v);
  }
  if ((gemm || expanded) && mc.type != DType::F16 && mc.type != DType::BF16) {
    std::vector<float> row(mc.cols);
    w16.resize(static_cast<size_t>(mc.rows * mc.cols));
    for (int64_t r = 0; r < mc.rows; ++r) {
      dequantize_row_ref(mc.type, w.row(r), row.data(), mc.cols);
      for (int64_t c = 0; c < mc.cols; ++c) w16[r * mc.cols + c] = f32_to_f16(row[c]);
    }
    wr = Weight{DType::F16, w16.data(), mc.rows, mc.cols};
  }
  std::vector<float> expect(static_cast<size_t>(T * mc.rows));
  matmul_ref(wr, xr.data(), T, expect.data());

  DeviceArray dx(*be, x), dy(*be, expect.size() * 4);
  be->matmul(w, dx.f(), T, dy.f());
  const std::vector<float> got = dy.host<float>();
  float max_abs = 0.0f;
  for (float v : expect) max_abs = std::max(max_abs, std::fabs(v));
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], expect[i], 2e-4f * max_abs + 1e-5f)
        << dtype_name(mc.type) << " " << mc.rows << "x" << mc.cols << " T=" << T << " at " << i;
}

TEST(CudaMatmul, EveryWeightTypeDecodeAndPrefill) {
  SKIP_WITHOUT_CUDA();
  const MatmulCase cases[] = {{DType::F32, 37, 96},    {DType::F16, 37, 96},   {DType::BF16, 37, 96},
                              {DType::Q8_0, 101, 160}, {DType::Q4_K, 67, 512}, {DType::Q6_K, 67, 512},
                              {DType::Q4_0, 19, 64},   {DType::Q5_K, 19, 256}, {DType::F16, 300, 1024}};
  for (const MatmulCase& mc : cases)
    for (int64_t T : {1, 3, 7, 8, 37}) check_matmul(mc, T);
}

TEST(CudaOps, NormRopeActivationsEmbeddingAndKvAppend) {
  SKIP_WITHOUT_CUDA();
  auto be = make_backend(Device::cuda);
  const int64_t T = 5, D = 96, n_heads = 6, hd = 16;
  const std::vector<float> x = random_vector(T * D, 3), w = random_vector(D, 4);
  std::vector<float> expect(T * D);
  rmsnorm(x.data(), w.data(), expect.data(), T, D, 1e-5f);
  DeviceArray dx(*be, x), dy(*be, T * D * 4);
  be->rmsnorm(dx.f(), w, dy.f(), T, D, 1e-5f);
  std::vector<float> got = dy.host<float>();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], expect[i], 1e-5f);

  std::vector<float> inv(hd / 2);
  for (int i = 0; i < hd / 2; ++i) inv[i] = std::pow(10000.0f, -2.0f * i / hd);
  for (bool half : {true, false}) {
    std::vector<float> q = x;  // [T, n_heads, hd]
    DeviceArray dq(*be, q);
    rope(q.data(), T, n_heads, hd, 12345, inv.data(), half);
    be->rope(dq.f(), T, n_heads, hd, 12345, inv, half);
    got = dq.host<float>();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], q[i], 1e-5f) << "half " << half;
  }

  std::vector<float> g = x;
  const std::vector<float> u = random_vector(T * D, 5);
  DeviceArray dg(*be, g), du(*be, u);
  silu_mul(g.data(), u.data(), T * D);
  be->silu_mul(dg.f(), du.f(), T * D);
  got = dg.host<float>();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], g[i], 1e-5f);
  be->add(dg.f(), du.f(), T * D);
  be->add_bias(dg.f(), w, T);
  got = dg.host<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < D; ++i) ASSERT_NEAR(got[t * D + i], g[t * D + i] + u[t * D + i] + w[i], 1e-5f);

  // Embedding rows of a Q8_0 table.
  const int64_t vocab = 50;
  const std::vector<float> table = random_vector(vocab * D, 6);
  std::vector<uint8_t> tq(vocab * row_bytes(DType::Q8_0, D));
  for (int64_t r = 0; r < vocab; ++r) quantize_row(DType::Q8_0, &table[r * D], &tq[r * row_bytes(DType::Q8_0, D)], D);
  const Weight emb{DType::Q8_0, tq.data(), vocab, D};
  const int32_t tokens[T] = {3, 0, 49, 3, 17};
  be->embed(emb, tokens, T, dy.f());
  got = dy.host<float>();
  std::vector<float> row(D);
  for (int64_t t = 0; t < T; ++t) {
    dequantize_row_ref(DType::Q8_0, emb.row(tokens[t]), row.data(), D);
    for (int64_t i = 0; i < D; ++i) ASSERT_EQ(got[t * D + i], row[i]);
  }

  // KV append in both cache types.
  for (KvType type : {KvType::f16, KvType::f32}) {
    KvCache kv;
    kv.type = type;
    kv.n_layer = 2;
    kv.n_kv_head = 2;
    kv.head_dim = hd;
    kv.capacity = 40;
    kv.k = be->alloc(kv.bytes());
    kv.v = be->alloc(kv.bytes());
    const std::vector<float> k = random_vector(T * 2 * hd, 8), v = random_vector(T * 2 * hd, 9);
    DeviceArray dk(*be, k), dv(*be, v);
    be->kv_append(kv, 1, 30, T, dk.f(), dv.f());
    std::vector<uint8_t> hk(kv.layer_bytes()), hv(kv.layer_bytes());
    be->to_host(hk.data(), kv.k_layer(1), hk.size());
    be->to_host(hv.data(), kv.v_layer(1), hv.size());
    for (int64_t t = 0; t < T; ++t)
      for (int gq = 0; gq < 2; ++gq)
        for (int64_t i = 0; i < hd; ++i) {
          const size_t at = (gq * kv.capacity + 30 + t) * hd + i;
          const float want_k = k[(t * 2 + gq) * hd + i], want_v = v[(t * 2 + gq) * hd + i];
          if (type == KvType::f16) {
            ASSERT_EQ(reinterpret_cast<uint16_t*>(hk.data())[at], f32_to_f16(want_k));
            ASSERT_EQ(reinterpret_cast<uint16_t*>(hv.data())[at], f32_to_f16(want_v));
          } else {
            ASSERT_EQ(reinterpret_cast<float*>(hk.data())[at], want_k);
            ASSERT_EQ(reinterpret_cast<float*>(hv.data())[at], want_v);
          }
        }
    be->free(kv.k);
    be->free(kv.v);
  }
}

// The ops the other families add (GeGLU, embedding scale, logit soft-cap, per-head QK-norm in
// place, and the MoE gather / weighted scatter in double) against the CPU backend.
TEST(CudaOps, FamilyOpsMatchCpuBackend) {
  SKIP_WITHOUT_CUDA();
  auto gpu = make_backend(Device::cuda);
  auto cpu = make_backend(Device::cpu);
  const int64_t T = 7, D = 96, hd = 16;
  const std::vector<float> x = random_vector(T * D, 21, 2.0f), u = random_vector(T * D, 22);
  auto expect_near = [](const std::vector<float>& got, const std::vector<float>& want, float tol, const char* what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], tol * (1.0f + std::fabs(want[i]))) << what << " at " << i;
  };

  {  // GeGLU
    std::vector<float> g = x;
    DeviceArray dg(*gpu, x), du(*gpu, u);
    cpu->gelu_tanh_mul(g.data(), u.data(), T * D);
    gpu->gelu_tanh_mul(dg.f(), du.f(), T * D);
    expect_near(dg.host<float>(), g, 1e-5f, "gelu_tanh_mul");
  }
  {  // scale, then soft-cap (Gemma's embedding scale and final logit cap)
    std::vector<float> y = x;
    DeviceArray dy(*gpu, x);
    cpu->scale(y.data(), 45.25f, T * D);
    gpu->scale(dy.f(), 45.25f, T * D);
    expect_near(dy.host<float>(), y, 1e-6f, "scale");
    cpu->softcap(y.data(), 30.0f, T * D);
    gpu->softcap(dy.f(), 30.0f, T * D);
    expect_near(dy.host<float>(), y, 1e-5f, "softcap");
  }
  {  // QK-norm: rows of head_dim, in place
    const std::vector<float> w = random_vector(hd, 23);
    std::vector<float> y = x;
    DeviceArray dy(*gpu, x);
    cpu->rmsnorm(y.data(), w, y.data(), T * D / hd, hd, 1e-6f);
    gpu->rmsnorm(dy.f(), w, dy.f(), T * D / hd, hd, 1e-6f);
    expect_near(dy.host<float>(), y, 1e-5f, "rmsnorm in place");
  }
  {  // MoE: gather rows, weighted scatter-add in double, narrow to f32
    const std::vector<int32_t> rows_a = {6, 0, 3}, rows_b = {1, 3, 4, 6, 5};
    const std::vector<double> w_a = {0.25, 0.6, 0.125}, w_b = {1.0, 0.375, 0.5, 0.4, 0.0625};
    std::vector<float> xe(T * D), ye(T * D);
    std::vector<double> acc(T * D);
    DeviceArray dx(*gpu, x), dxe(*gpu, T * D * 4), dacc(*gpu, T * D * 8), dy(*gpu, T * D * 4);
    auto* gacc = static_cast<double*>(dacc.ptr);
    cpu->zero(acc.data(), acc.size() * 8);
    gpu->zero(gacc, T * D * 8);
    for (const auto& [rows, w] : {std::pair{rows_a, w_a}, std::pair{rows_b, w_b}}) {
      cpu->gather_rows(x.data(), rows, D, xe.data());
      gpu->gather_rows(dx.f(), rows, D, dxe.f());
      const std::vector<float> got = dxe.host<float>();
      for (size_t i = 0; i < rows.size() * D; ++i) ASSERT_EQ(got[i], xe[i]) << "gather_rows at " << i;
      cpu->add_rows_weighted(acc.data(), xe.data(), rows, w, D);
      gpu->add_rows_weighted(gacc, dxe.f(), rows, w, D);
    }
    const std::vector<double> gacc_host = dacc.host<double>();
    for (size_t i = 0; i < acc.size(); ++i) ASSERT_EQ(gacc_host[i], acc[i]) << "add_rows_weighted at " << i;
    cpu->narrow(acc.data(), ye.data(), T * D);
    gpu->narrow(gacc, dy.f(), T * D);
    const std::vector<float> got = dy.host<float>();
    for (size_t i = 0; i < ye.size(); ++i) ASSERT_EQ(got[i], ye[i]) << "narrow at " << i;
  }
}

// ---- attention ----

// Selects the prefill attention kernel (RHEAD_CUDA_FLASH) for one scope; nullptr: the default.
struct FlashKernelChoice {
  bool had = false;
  std::string saved;
  explicit FlashKernelChoice(const char* kind) {
    if (const char* v = std::getenv("RHEAD_CUDA_FLASH")) {
      had = true;
      saved = v;
    }
    if (kind)
      ::setenv("RHEAD_CUDA_FLASH", kind, 1);
    else
      ::unsetenv("RHEAD_CUDA_FLASH");
  }
  ~FlashKernelChoice() {
    if (had)
      ::setenv("RHEAD_CUDA_FLASH", saved.c_str(), 1);
    else
      ::unsetenv("RHEAD_CUDA_FLASH");
  }
};

struct AttnCase {
  int n_head, n_kv_head, head_dim;
  int64_t pos0, n_tokens;
  bool kv_f16 = true;
  int64_t window = 0;
  bool head_windows = false;  // KV-policy windows on some heads, with a sink of 4
  float scale = 0.0f, softcap = 0.0f;
  bool overrides = false;  // uniform / zero / mean on some heads
  bool tie_keys = false;   // duplicate keys so that the argmax ties
};

std::string describe(const AttnCase& c) {
  return "heads " + std::to_string(c.n_head) + "/" + std::to_string(c.n_kv_head) + " hd " + std::to_string(c.head_dim) +
         " pos0 " + std::to_string(c.pos0) + " T " + std::to_string(c.n_tokens) + (c.kv_f16 ? " f16" : " f32") +
         " window " + std::to_string(c.window) + (c.head_windows ? " head-windows" : "") +
         (c.softcap != 0 ? " softcap" : "") + (c.overrides ? " overrides" : "") + (c.tie_keys ? " ties" : "");
}

// out_tol: the f32 kernels match to float rounding; the tensor-core prefill kernels round Q
// and the weights to f16 (about 1e-3).
void check_attention(const AttnCase& c, float out_tol = 2e-5f) {
  SCOPED_TRACE(describe(c));
  auto be = make_backend(Device::cuda);
  const int hd = c.head_dim;
  const int64_t capacity = c.pos0 + c.n_tokens + 9;  // spare rows stay untouched
  const int64_t n_keys = c.pos0 + c.n_tokens;
  std::vector<float> q = random_vector(static_cast<size_t>(c.n_tokens * c.n_head * hd), 21, 0.6f);
  std::vector<float> kf = random_vector(static_cast<size_t>(c.n_kv_head * capacity * hd), 22, 0.6f);
  std::vector<float> vf = random_vector(static_cast<size_t>(c.n_kv_head * capacity * hd), 23);
  if (c.tie_keys) {
    // Keys 3 and 50 of every KV head equal key 9, and every query points at key 9: the
    // maximum ties exactly between 3, 9 and 50.
    for (int g = 0; g < c.n_kv_head; ++g)
      for (int64_t dup : {3, 50})
        if (dup < n_keys) std::copy_n(&kf[(g * capacity + 9) * hd], hd, &kf[(g * capacity + dup) * hd]);
    const int group = c.n_head / c.n_kv_head;
    for (int64_t t = 0; t < c.n_tokens; ++t)
      for (int h = 0; h < c.n_head; ++h)
        for (int i = 0; i < hd; ++i) q[(t * c.n_head + h) * hd + i] = 0.5f * kf[((h / group) * capacity + 9) * hd + i];
  }
  std::vector<uint16_t> kh(kf.size()), vh(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) {
    kh[i] = f32_to_f16(kf[i]);
    vh[i] = f32_to_f16(vf[i]);
  }
  std::vector<HeadOverride> ov(c.n_head, HeadOverride::none);
  std::vector<float> means = random_vector(static_cast<size_t>(c.n_head * hd), 24);
  if (c.overrides)
    for (int h = 0; h < c.n_head; ++h) ov[h] = static_cast<HeadOverride>(h % 4);
  std::vector<int32_t> head_window(c.n_head, 0);
  if (c.head_windows)
    for (int h = 0; h < c.n_head; h += 2) head_window[h] = 37 + h;

  AttentionArgs a;
  a.n_tokens = c.n_tokens;
  a.pos0 = c.pos0;
  a.n_head = c.n_head;
  a.n_kv_head = c.n_kv_head;
  a.head_dim = hd;
  a.kv_f16 = c.kv_f16;
  a.kv_head_stride = capacity * hd;
  a.window = c.window;
  if (c.head_windows) {
    a.head_window = head_window.data();
    a.head_sink = 4;
  }
  a.scale = c.scale;
  a.softcap = c.softcap;
  if (c.overrides) {
    a.overrides = ov.data();
    a.head_means = means.data();
  }
  // Probes on every third token and on the last one.
  std::vector<int32_t> slot(c.n_tokens, -1);
  int n_obs = 0;
  for (int64_t t = 0; t < c.n_tokens; ++t)
    if (t % 3 == 0 || t == c.n_tokens - 1) slot[t] = n_obs++;
  a.obs_slot = slot.data();
  const int top_k = 5;
  const size_t n_probe = static_cast<size_t>(n_obs) * c.n_head;
  // Per-key weights (qrhead's probe) of every key up to the last position but one.
  const int64_t key_len = c.pos0 + c.n_tokens - 1;
  struct Probes {
    std::vector<int32_t> argmax, topk;
    std::vector<float> argmax_w, topk_w, span, sink, key_w;
  };
  auto make_probes = [&](Probes& p, AttentionProbeOut& o) {
    p.argmax.assign(n_probe, -7);
    p.argmax_w.assign(n_probe, -7);
    p.topk.assign(n_probe * top_k, -7);
    p.topk_w.assign(n_probe * top_k, -7);
    p.span.assign(n_probe, -7);
    p.sink.assign(n_probe, -7);
    o.obs_stride = c.n_head;
    o.argmax = p.argmax.data();
    o.argmax_weight = p.argmax_w.data();
    o.top_k = top_k;
    o.topk = p.topk.data();
    o.topk_weight = p.topk_w.data();
    o.span_begin = 10;
    o.span_end = 200;
    o.span_mass = p.span.data();
    o.sink_mass = p.sink.data();
    p.key_w.assign(n_probe * static_cast<size_t>(key_len), -7);
    o.key_weights_len = key_len;
    o.key_weights_stride = c.n_head;
    o.key_weights = p.key_w.data();
  };
  std::vector<double> sum_ref(static_cast<size_t>(c.n_head) * hd, 0.0), sum_gpu = sum_ref;

  // Reference.
  Probes ref;
  AttentionArgs ra = a;
  make_probes(ref, ra.probes);
  std::vector<float> out_ref(q.size());
  ra.q = q.data();
  ra.k = c.kv_f16 ? static_cast<const void*>(kh.data()) : kf.data();
  ra.v = c.kv_f16 ? static_cast<const void*>(vh.data()) : vf.data();
  ra.out = out_ref.data();
  ra.head_out_sum = sum_ref.data();
  attention_ref(ra);

  // GPU.
  Probes gpu;
  AttentionArgs ga = a;
  make_probes(gpu, ga.probes);
  DeviceArray dq(*be, q), dout(*be, q.size() * 4);
  DeviceArray dk = c.kv_f16 ? DeviceArray(*be, kh) : DeviceArray(*be, kf);
  DeviceArray dv = c.kv_f16 ? DeviceArray(*be, vh) : DeviceArray(*be, vf);
  ga.q = dq.f();
  ga.k = dk.ptr;
  ga.v = dv.ptr;
  ga.out = dout.f();
  ga.head_out_sum = sum_gpu.data();
  be->attention(ga);
  const std::vector<float> out = dout.host<float>();

  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], out_ref[i], out_tol) << "output " << i;
  for (size_t i = 0; i < sum_ref.size(); ++i)
    ASSERT_NEAR(sum_gpu[i], sum_ref[i], 5.0 * out_tol * c.n_tokens) << "head_out_sum " << i;
  for (size_t i = 0; i < n_probe; ++i) {
    ASSERT_EQ(gpu.argmax[i], ref.argmax[i]) << "argmax of probe " << i;
    ASSERT_NEAR(gpu.argmax_w[i], ref.argmax_w[i], 1e-5f) << "argmax weight " << i;
    ASSERT_NEAR(gpu.span[i], ref.span[i], 1e-5f) << "span mass " << i;
    ASSERT_NEAR(gpu.sink[i], ref.sink[i], 1e-6f) << "sink mass " << i;
    for (int64_t j = 0; j < key_len; ++j)
      ASSERT_NEAR(gpu.key_w[i * key_len + j], ref.key_w[i * key_len + j], 1e-6f) << "key weight " << j << " of " << i;
    for (int r = 0; r < top_k; ++r) {
      const size_t j = i * top_k + r;
      ASSERT_NEAR(gpu.topk_w[j], ref.topk_w[j], 1e-5f) << "top-k weight " << j;
      // Positions must agree unless two weights are equal to float precision.
      if (r + 1 < top_k && std::fabs(ref.topk_w[j] - ref.topk_w[j + 1]) < 1e-6f) continue;
      if (r > 0 && std::fabs(ref.topk_w[j] - ref.topk_w[j - 1]) < 1e-6f) continue;
      ASSERT_EQ(gpu.topk[j], ref.topk[j]) << "top-k position " << j;
    }
  }
  if (c.tie_keys && c.window == 0) {
    for (size_t i = 0; i < n_probe; ++i) {
      EXPECT_EQ(ref.argmax[i], 3) << "the planted tie goes to the earliest position";
    }
  }
}

TEST(CudaAttention, DecodeSplitKWithProbesMatchesReference) {
  SKIP_WITHOUT_CUDA();
  for (int hd : {64, 128})
    for (auto [nh, nkv] : {std::pair{8, 8}, std::pair{16, 4}, std::pair{32, 4}})
      for (int64_t pos0 : {0, 255, 256, 700, 1333}) check_attention({nh, nkv, hd, pos0, 1});
  check_attention({6, 2, 16, 511, 1});          // niah-tiny's shape, a split boundary
  check_attention({12, 4, 64, 900, 3});         // a few tokens at once
  check_attention({8, 1, 128, 600, 2, false});  // f32 cache, GQA 8
}

// The f32 prefill kernel (RHEAD_CUDA_FLASH=f32; the only one for f32 caches and other head sizes).
TEST(CudaAttention, FlashPrefillMatchesReference) {
  SKIP_WITHOUT_CUDA();
  FlashKernelChoice f32_kernel("f32");
  for (int hd : {64, 128})
    for (auto [nh, nkv] : {std::pair{8, 8}, std::pair{16, 4}, std::pair{16, 2}}) {
      check_attention({nh, nkv, hd, 0, 97});    // crosses 32-key tiles and 64-row tiles
      check_attention({nh, nkv, hd, 300, 41});  // a chunk after a cached prefix
    }
  check_attention({6, 2, 16, 0, 257});          // niah-tiny's shape
  check_attention({24, 8, 8, 5, 70});           // head_dim 8, group 3 (rows straddle tokens)
  check_attention({8, 2, 64, 100, 33, false});  // f32 cache
}

// The tensor-core prefill (RHEAD_CUDA_FLASH=tc): head_dim 64 and 128, f16 cache, GQA 1/4/8,
// tiles crossed, a cached prefix, windows, soft-cap and overrides.
TEST(CudaAttention, TensorCoreFlashPrefillMatchesReference) {
  SKIP_WITHOUT_CUDA();
  ::setenv("RHEAD_CUDA_FLASH", "tc", 1);
  for (int hd : {64, 128})
    for (auto [nh, nkv] : {std::pair{8, 8}, std::pair{16, 4}, std::pair{32, 4}}) {
      check_attention({nh, nkv, hd, 0, 97}, 3e-3f);
      check_attention({nh, nkv, hd, 300, 141}, 3e-3f);
    }
  AttnCase c{8, 2, 64, 290, 60};
  c.window = 100;
  check_attention(c, 3e-3f);
  c.window = 0;
  c.head_windows = true;
  check_attention(c, 3e-3f);
  c.head_windows = false;
  c.softcap = 5.0f;
  c.scale = 0.3f;
  check_attention(c, 3e-3f);
  c.softcap = 0.0f;
  c.scale = 0.0f;
  c.overrides = true;
  check_attention(c, 3e-3f);
  ::unsetenv("RHEAD_CUDA_FLASH");
}

// Decode, a few rows, and the f32 prefill kernel (to float rounding).
TEST(CudaAttention, VisibilityOverridesAndTies) {
  SKIP_WITHOUT_CUDA();
  FlashKernelChoice f32_kernel("f32");
  for (int64_t T : {1, 3, 60}) {
    AttnCase c{8, 2, 64, 290, T};
    c.window = 100;
    check_attention(c);
    c.window = 0;
    c.head_windows = true;
    check_attention(c);
    c.head_windows = false;
    c.softcap = 5.0f;
    c.scale = 0.3f;
    check_attention(c);
    c.softcap = 0.0f;
    c.scale = 0.0f;
    c.overrides = true;
    check_attention(c);
    c.overrides = false;
    c.tie_keys = true;
    check_attention(c);
    c.window = 290;  // position 0 leaves the window: sink mass 0
    check_attention(c);
  }
}

// The default prefill kernel for f16 caches with head_dim 64 or 128 (flash_prefill.cu: mma.sync
// with the softmax in registers): GQA groups 1, 3, 4 and 8, token counts from the smallest
// prefill call (5) to 1029, cached prefixes on and off the key-tile grid, and every visibility
// rule, the scale, the soft-cap, the overrides and tied maxima. Output within 3e-3 (Q and the
// weights are rounded to f16); probes come from the row kernel and stay exact.
void check_register_flash_prefill(bool all_cases) {
  const float tol = 3e-3f;
  for (int hd : {64, 128}) {
    for (auto [nh, nkv] : {std::pair{8, 8}, std::pair{16, 4}, std::pair{32, 4}}) {
      check_attention({nh, nkv, hd, 0, 97}, tol);                 // crosses key tiles and row blocks
      check_attention({nh, nkv, hd, 300, 37}, tol);               // a chunk after a prefix off the tile grid
      if (all_cases) check_attention({nh, nkv, hd, 64, 5}, tol);  // the smallest prefill call, prefix on the grid
    }
    check_attention({8, 8, hd, 0, 300}, tol);                  // group 1: several row blocks, a partial last one
    if (all_cases) check_attention({8, 1, hd, 0, 1029}, tol);  // group 8, long causal context
    AttnCase c{8, 2, hd, 290, 97};
    for (int64_t w : {int64_t{100}, int64_t{1}, int64_t{290}}) {
      c.window = w;
      check_attention(c, tol);
    }
    c.window = 0;
    c.head_windows = true;  // KV-policy windows 37 + h with a sink of 4
    check_attention(c, tol);
    c.window = 50;  // both windows: the sink lies outside the model window
    check_attention(c, tol);
    c.window = 0;
    c.head_windows = false;
    c.softcap = 5.0f;
    c.scale = 0.3f;
    check_attention(c, tol);
    c.softcap = 0.0f;
    c.scale = 0.0f;
    c.overrides = true;  // uniform, zero and mean heads
    check_attention(c, tol);
    c.overrides = false;
    c.tie_keys = true;
    check_attention(c, tol);
  }
  check_attention({24, 8, 64, 5, 70}, tol);  // group 3: a warp's rows straddle tokens
}

TEST(CudaAttention, RegisterFlashPrefillMatchesReference) {
  SKIP_WITHOUT_CUDA();
  FlashKernelChoice register_kernel("mma");
  check_register_flash_prefill(true);
}

// The kernel's other block shapes (RHEAD_CUDA_FLASH_SHAPE): 4 warps of 16 rows, and 4 warps of
// 32 rows (Q from shared memory, 32-key tiles at head_dim 128).
TEST(CudaAttention, RegisterFlashPrefillBlockShapesMatchReference) {
  SKIP_WITHOUT_CUDA();
  FlashKernelChoice register_kernel("mma");
  for (const char* shape : {"4x16", "4x32"}) {
    SCOPED_TRACE(std::string("block shape ") + shape);
    ::setenv("RHEAD_CUDA_FLASH_SHAPE", shape, 1);
    check_register_flash_prefill(false);
  }
  ::unsetenv("RHEAD_CUDA_FLASH_SHAPE");
}

}  // namespace
}  // namespace rhead
