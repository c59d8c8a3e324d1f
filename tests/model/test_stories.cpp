// stories260K (Karpathy's tinyllamas): greedy decoding from BOS alone reproduces the
// documented sample byte for byte, from the llama2.c checkpoint, from the GGUF, and
// through `rhead generate`.
#include <gtest/gtest.h>

#include "model/generate.h"
#include "model/loader.h"
#include "model/session.h"
#include "test_support.h"

namespace rhead {
namespace {

using testing::read_text_file;

const std::string kDir = "models/stories260K/";

// The documented sample's 565 bytes end with the 256th generated token ("." after the 255th,
// " you"): 256 decode steps from BOS, as llama2.c runs a 256-position sequence. 256 tokens
// are generated here; 255 stop one byte short.
constexpr int kSampleTokens = 256;

// Greedy text of kSampleTokens tokens from BOS alone.
std::string greedy_text(const LoadedModel& lm, SessionOptions so = {}) {
  EXPECT_TRUE(lm.tokenizer);
  Session session(lm.model, so);
  const int32_t bos = lm.tokenizer->bos_id();
  EXPECT_EQ(bos, 1);
  std::vector<int32_t> prompt{bos};
  GreedyOptions go;
  go.max_new_tokens = kSampleTokens;
  GenerateResult r = generate_greedy(session, prompt, go);
  EXPECT_EQ(r.tokens.size(), static_cast<size_t>(kSampleTokens));
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), r.tokens.begin(), r.tokens.end());
  return lm.tokenizer->decode(all);
}

void expect_starts_with_sample(const std::string& text) {
  const std::string expected = read_text_file(testing::shared_path(kDir + "expected_greedy.txt"));
  ASSERT_EQ(expected.size(), 565u);
  ASSERT_GE(text.size(), expected.size()) << text;
  EXPECT_EQ(text.substr(0, expected.size()), expected);
}

TEST(Stories260K, Llama2cCheckpointReproducesSample) {
  RHEAD_REQUIRE_FILE(testing::shared_path(kDir + "stories260K.bin"));
  LoadOptions lo;
  lo.tokenizer_path = testing::shared_path(kDir + "tok512.bin");
  LoadedModel lm = load_model(testing::shared_path(kDir + "stories260K.bin"), lo);
  const ModelConfig& c = lm.model->config;
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.n_ff, 172);
  EXPECT_EQ(c.n_layer, 5);
  EXPECT_EQ(c.n_head, 8);
  EXPECT_EQ(c.n_kv_head, 4);
  EXPECT_EQ(c.n_vocab, 512);
  EXPECT_EQ(c.n_ctx_train, 512);
  EXPECT_TRUE(c.tied_embeddings);
  expect_starts_with_sample(greedy_text(lm));
}

TEST(Stories260K, GgufReproducesSample) {
  RHEAD_REQUIRE_FILE(testing::shared_path(kDir + "stories260K.gguf"));
  LoadedModel lm = load_model(testing::shared_path(kDir + "stories260K.gguf"));
  EXPECT_EQ(lm.model->config.n_head, 8);
  EXPECT_EQ(lm.model->config.n_kv_head, 4);
  expect_starts_with_sample(greedy_text(lm));
}

// The sample does not depend on the cache type or on how the KV cache was filled.
TEST(Stories260K, SampleHoldsWithF32CacheAndTheSentencePieceTokenizer) {
  RHEAD_REQUIRE_FILE(testing::shared_path(kDir + "stories260K.bin"));
  LoadOptions lo;
  lo.tokenizer_path = testing::shared_path(kDir + "tok512.model");
  LoadedModel lm = load_model(testing::shared_path(kDir + "stories260K.bin"), lo);
  SessionOptions so;
  so.kv_f16 = false;
  expect_starts_with_sample(greedy_text(lm, so));
}

// Both files hold the same weights (the GGUF with Q/K rows permuted): their logits agree.
TEST(Stories260K, BinAndGgufGiveTheSameLogits) {
  RHEAD_REQUIRE_FILE(testing::shared_path(kDir + "stories260K.gguf"));
  RHEAD_REQUIRE_FILE(testing::shared_path(kDir + "stories260K.bin"));
  LoadOptions lo;
  lo.tokenizer_path = testing::shared_path(kDir + "tok512.bin");
  LoadedModel bin = load_model(testing::shared_path(kDir + "stories260K.bin"), lo);
  LoadedModel gguf = load_model(testing::shared_path(kDir + "stories260K.gguf"));
  const std::vector<int32_t> tokens = bin.tokenizer->encode("One day, a little dog named Spot went to the park.", true);
  EXPECT_EQ(tokens, gguf.tokenizer->encode("One day, a little dog named Spot went to the park.", true));
  SessionOptions so;
  so.kv_f16 = false;
  Session a(bin.model, so), b(gguf.model, so);
  ForwardOptions fo;
  fo.all_logits = true;
  auto la = a.forward(tokens, fo), lb = b.forward(tokens, fo);
  ASSERT_EQ(la.size(), lb.size());
  double max_diff = 0;
  for (size_t i = 0; i < la.size(); ++i) max_diff = std::max(max_diff, std::fabs(double(la[i]) - lb[i]));
  EXPECT_LE(max_diff, 1e-4);
}

TEST(Stories260K, CliGenerateReproducesSample) {
  const std::string gguf = testing::shared_path(kDir + "stories260K.gguf");
  const std::string bin = testing::shared_path(kDir + "stories260K.bin");
  RHEAD_REQUIRE_FILE(gguf);
  RHEAD_REQUIRE_FILE(bin);
  testing::CommandResult r =
      testing::run_command(testing::rhead_binary() + " generate -m '" + gguf + "' -n 256 2>/dev/null");
  EXPECT_EQ(r.exit_code, 0);
  expect_starts_with_sample(r.output);
  r = testing::run_command(testing::rhead_binary() + " generate -m '" + bin + "' --tokenizer '" +
                           testing::shared_path(kDir + "tok512.bin") + "' -n 256 2>/dev/null");
  EXPECT_EQ(r.exit_code, 0);
  expect_starts_with_sample(r.output);
}

}  // namespace
}  // namespace rhead
