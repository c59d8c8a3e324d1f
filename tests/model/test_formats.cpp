// fmt-tiny: one trained model in every file format (../shared/models/fmt-tiny). The exact
// formats must agree to 1e-4 in every logit, f16 must decode the same greedy tokens, Q8_0 must
// keep the top-1 token at >= 95% of positions; the session's cache type, prefill chunking,
// truncation and model sharing must not change the results.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "io/error.h"
#include "model/generate.h"
#include "model/loader.h"
#include "model/session.h"
#include "test_support.h"

namespace rhead {
namespace {

const std::string kDir = "models/fmt-tiny/";
const std::string kEssay = "data/haystack/paul_graham_essays/addiction.txt";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// BOS + the first 511 tokens of an essay.
std::vector<int32_t> essay_tokens(const Tokenizer& tok, size_t n = 512) {
  std::vector<int32_t> ids = tok.encode(read_file(testing::shared_path(kEssay)), true);
  EXPECT_GE(ids.size(), n);
  ids.resize(std::min(ids.size(), n));
  return ids;
}

std::vector<float> all_logits(std::shared_ptr<const Model> model, std::span<const int32_t> tokens,
                              SessionOptions so = {}) {
  Session s(std::move(model), so);
  ForwardOptions fo;
  fo.all_logits = true;
  return s.forward(tokens, fo);
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

std::vector<int32_t> row_argmax(const std::vector<float>& logits, int64_t vocab) {
  std::vector<int32_t> out;
  for (size_t r = 0; r + vocab <= logits.size(); r += vocab)
    out.push_back(argmax_token(std::span<const float>(&logits[r], vocab)));
  return out;
}

std::vector<int32_t> greedy(std::shared_ptr<const Model> model, std::span<const int32_t> prompt, int n,
                            SessionOptions so = {}) {
  Session s(std::move(model), so);
  GreedyOptions go;
  go.max_new_tokens = n;
  return generate_greedy(s, prompt, go).tokens;
}

class FmtTiny : public ::testing::Test {
 protected:
  void SetUp() override {
    RHEAD_REQUIRE_FILE(testing::shared_path(kDir + "fmt-tiny-f32.gguf"));
    RHEAD_REQUIRE_FILE(testing::shared_path(kEssay));
    f32_ = load_model(testing::shared_path(kDir + "fmt-tiny-f32.gguf"));
    ASSERT_TRUE(f32_.tokenizer);
    tokens_ = essay_tokens(*f32_.tokenizer);
  }
  std::shared_ptr<const Model> load(const std::string& rel) {
    const std::string path = testing::shared_path(kDir + rel);
    if (!std::filesystem::exists(path)) {
      ADD_FAILURE() << "missing " << path;
      return nullptr;
    }
    return load_model(path).model;
  }
  LoadedModel f32_;
  std::vector<int32_t> tokens_;
  static SessionOptions f32_cache() {
    SessionOptions so;
    so.kv_f16 = false;
    return so;
  }
};

TEST_F(FmtTiny, ConfigIsRead) {
  const ModelConfig& c = f32_.model->config;
  EXPECT_EQ(c.n_embd, 128);
  EXPECT_EQ(c.n_ff, 384);
  EXPECT_EQ(c.n_layer, 4);
  EXPECT_EQ(c.n_head, 8);
  EXPECT_EQ(c.n_kv_head, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.n_vocab, 512);
  EXPECT_EQ(c.n_ctx_train, 1024);
  EXPECT_FALSE(c.tied_embeddings);
  EXPECT_EQ(c.rope_pairing, RopePairing::adjacent);
  auto hf = load("hf-f32");
  EXPECT_EQ(hf->config.rope_pairing, RopePairing::half);
  EXPECT_FLOAT_EQ(hf->config.rms_eps, 1e-5f);
}

TEST_F(FmtTiny, HfBf16HfF32AndGgufF32AgreeAtEveryPosition) {
  const auto ref = all_logits(f32_.model, tokens_, f32_cache());
  ASSERT_EQ(ref.size(), tokens_.size() * 512);
  for (const char* rel : {"hf-f32", "hf-bf16"}) {
    auto m = load(rel);
    const double d = max_abs_diff(all_logits(m, tokens_, f32_cache()), ref);
    EXPECT_LE(d, 1e-4) << rel << " vs fmt-tiny-f32.gguf";
    std::printf("%s vs gguf-f32 over %zu positions: max |dlogit| = %.3g\n", rel, tokens_.size(), d);
  }
}

TEST_F(FmtTiny, GgufF16GivesTheSameGreedyTokens) {
  auto f16 = load("fmt-tiny-f16.gguf");
  auto hf = load("hf-f32");
  const std::span<const int32_t> prompt(tokens_.data(), 100);
  const auto expected = greedy(f32_.model, prompt, 200);
  ASSERT_EQ(expected.size(), 200u);
  EXPECT_EQ(greedy(f16, prompt, 200), expected);
  EXPECT_EQ(greedy(hf, prompt, 200), expected);
  // F16 weights round each weight to 11 significant bits: logits stay close.
  const double d = max_abs_diff(all_logits(f16, tokens_, f32_cache()), all_logits(f32_.model, tokens_, f32_cache()));
  EXPECT_LE(d, 0.05);
  std::printf("gguf-f16 vs gguf-f32: max |dlogit| = %.3g\n", d);
}

TEST_F(FmtTiny, Q8_0KeepsTheTopTokenAtNearlyEveryPosition) {
  auto q8 = load("fmt-tiny-q8_0.gguf");
  ASSERT_EQ(tokens_.size(), 512u);
  EXPECT_EQ(q8->layers[0].wq.type, DType::Q8_0);
  const auto reference = row_argmax(all_logits(f32_.model, tokens_), 512);
  // Through the prefill (GEMM) path and, one token per call, through the decode path.
  for (int chunk : {256, 1}) {
    SessionOptions so;
    so.prefill_chunk = chunk;
    const auto a = row_argmax(all_logits(q8, tokens_, so), 512);
    ASSERT_EQ(a.size(), 512u);
    int same = 0;
    for (size_t i = 0; i < a.size(); ++i) same += a[i] == reference[i];
    const double agree = same / 512.0;
    std::printf("q8_0 vs f32 (chunk %d): top-1 agreement %.4f over 512 positions\n", chunk, agree);
    EXPECT_GE(agree, 0.95) << "chunk " << chunk;
  }
}

TEST_F(FmtTiny, KvCacheF16MatchesF32) {
  const auto f32 = all_logits(f32_.model, tokens_, f32_cache());
  const auto f16 = all_logits(f32_.model, tokens_);
  const double d = max_abs_diff(f16, f32);
  std::printf("kv f16 vs f32: max |dlogit| = %.3g\n", d);
  EXPECT_LE(d, 0.05);
  const auto a = row_argmax(f16, 512), b = row_argmax(f32, 512);
  int same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == b[i];
  EXPECT_GE(same, 505);
  const std::span<const int32_t> prompt(tokens_.data(), 100);
  EXPECT_EQ(greedy(f32_.model, prompt, 100), greedy(f32_.model, prompt, 100, f32_cache()));
}

// Chunk 1 runs every token through the decode path (SIMD dots), 7 and 64 through the GEMM
// path with chunks that straddle each other's boundaries.
TEST_F(FmtTiny, PrefillChunkSizeDoesNotChangeLogits) {
  for (bool kv_f16 : {false, true}) {
    SessionOptions so;
    so.kv_f16 = kv_f16;
    so.prefill_chunk = 512;
    const auto ref = all_logits(f32_.model, tokens_, so);
    for (int chunk : {1, 7, 64}) {
      so.prefill_chunk = chunk;
      const double d = max_abs_diff(all_logits(f32_.model, tokens_, so), ref);
      // With the f16 cache, K/V values that differ in the last f32 bits between the dot and
      // GEMM paths can round to neighbouring halves: allow what the f16 cache itself costs.
      EXPECT_LE(d, kv_f16 ? 0.05 : 1e-4) << "chunk " << chunk << " kv_f16 " << kv_f16;
    }
  }
  // Quantized weights: prefill dequantizes tiles for a GEMM, while decode-sized calls
  // quantize the activations to int8 for integer dot products (as llama.cpp does), an extra
  // rounding of about 0.3% per dot product. Both paths must keep the same top-1 tokens.
  auto q8 = load("fmt-tiny-q8_0.gguf");
  SessionOptions so = f32_cache();
  so.prefill_chunk = 1;
  const auto one = row_argmax(all_logits(q8, tokens_, so), 512);
  so.prefill_chunk = 64;
  const auto gemm = row_argmax(all_logits(q8, tokens_, so), 512);
  int same = 0;
  for (size_t i = 0; i < one.size(); ++i) same += one[i] == gemm[i];
  std::printf("q8_0 decode path vs GEMM path: top-1 agreement %d / %zu\n", same, one.size());
  EXPECT_GE(same, 500);
}

// Feeding tokens in several forward calls (as decode does) equals one call.
TEST_F(FmtTiny, IncrementalForwardEqualsOneCall) {
  const std::span<const int32_t> all(tokens_.data(), 96);
  const auto ref = all_logits(f32_.model, all, f32_cache());
  Session s(f32_.model, f32_cache());
  ForwardOptions fo;
  fo.all_logits = true;
  std::vector<float> pieces;
  for (size_t at = 0; at < all.size();) {
    const size_t n = std::min<size_t>(at % 3 + 1 + (at > 40 ? 20 : 0), all.size() - at);
    auto l = s.forward(all.subspan(at, n), fo);
    pieces.insert(pieces.end(), l.begin(), l.end());
    at += n;
  }
  EXPECT_EQ(s.n_past(), 96);
  EXPECT_LE(max_abs_diff(pieces, ref), 1e-4);
}

// Truncating the cache and running a different continuation gives the logits of a fresh run.
TEST_F(FmtTiny, TruncateThenContinueEqualsFreshRun) {
  Session s(f32_.model, f32_cache());
  s.forward(std::span<const int32_t>(tokens_.data(), 80));
  s.truncate(50);
  EXPECT_EQ(s.n_past(), 50);
  ForwardOptions fo;
  fo.all_logits = true;
  const std::span<const int32_t> tail(tokens_.data() + 200, 30);
  const auto got = s.forward(tail, fo);
  std::vector<int32_t> fresh(tokens_.begin(), tokens_.begin() + 50);
  fresh.insert(fresh.end(), tail.begin(), tail.end());
  auto ref = all_logits(f32_.model, fresh, f32_cache());
  ref.erase(ref.begin(), ref.begin() + 50 * 512);
  EXPECT_LE(max_abs_diff(got, ref), 1e-4);
  EXPECT_THROW(s.truncate(s.n_past() + 1), Error);
}

// Two sessions on one model, interleaved, do not disturb each other.
TEST_F(FmtTiny, SessionsShareOneModel) {
  const std::span<const int32_t> p1(tokens_.data(), 40), p2(tokens_.data() + 300, 60);
  const auto g1 = greedy(f32_.model, p1, 30), g2 = greedy(f32_.model, p2, 30);
  Session a(f32_.model), b(f32_.model);
  a.forward(p1.first(39));
  b.forward(p2.first(59));
  int32_t ta = p1.back(), tb = p2.back();
  std::vector<int32_t> oa, ob;
  for (int i = 0; i < 30; ++i) {
    ta = argmax_token(a.forward(std::span<const int32_t>(&ta, 1)));
    tb = argmax_token(b.forward(std::span<const int32_t>(&tb, 1)));
    oa.push_back(ta);
    ob.push_back(tb);
  }
  EXPECT_EQ(oa, g1);
  EXPECT_EQ(ob, g2);
}

TEST_F(FmtTiny, ContextOverflowAndBadTokensAreErrors) {
  SessionOptions so;
  so.n_ctx = 16;
  Session s(f32_.model, so);
  EXPECT_THROW(s.forward(std::span<const int32_t>(tokens_.data(), 17)), Error);
  const int32_t bad[] = {1, 512};
  EXPECT_THROW(s.forward(bad), Error);
  const int32_t negative[] = {-1};
  EXPECT_THROW(s.forward(negative), Error);
  EXPECT_EQ(s.n_past(), 0);
}

}  // namespace
}  // namespace rhead
