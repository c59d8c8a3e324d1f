// Cross-checks on the haystack essays: every supported tokenizer must give, id for id, what
// the reference implementation gives — libsentencepiece for SentencePiece models,
// @lenml/tokenizers (a JavaScript port of HF tokenizers) for tokenizer.json files.
// The reference ids are computed at test time, not committed.
#include <gtest/gtest.h>

#include "io/gguf.h"
#include "oracle_support.h"
#include "tokenizer/tokenizer.h"

namespace {

using rhead::Tokenizer;
using namespace rhead::testing;

const char* const kTok512Model = "models/stories260K/tok512.model";
const char* const kLlama2Model = "data/tokenizers/llama2_spm/tokenizer.model";

std::string collapse(const std::string& s) { return collapse_spaces(s); }

class SentencePieceOracle : public ::testing::Test {
 protected:
  void SetUp() override {
    essays = essay_paths();
    if (essays.empty()) {
      RHEAD_REQUIRE_FILE(shared_path("data/haystack/paul_graham_essays"));
      GTEST_SKIP() << "no essays";
    }
    RHEAD_REQUIRE_TOOL(have_sentencepiece_oracle(), "python3-sentencepiece (/usr/bin/python3)");
  }
  std::vector<std::string> essays;
};

TEST_F(SentencePieceOracle, Tok512ModelFile) {
  const std::string model = shared_path(kTok512Model);
  RHEAD_REQUIRE_FILE(model);
  expect_matches_oracle(Tokenizer::load(model), essays, sentencepiece_oracle(model, essays));
}

// GGUF and llama2.c files do not record that tok512 collapses runs of spaces, so they are
// checked on text that is already collapsed; the merges themselves must agree exactly.
TEST_F(SentencePieceOracle, Tok512FromLlama2cBinAndGguf) {
  const std::string model = shared_path(kTok512Model);
  RHEAD_REQUIRE_FILE(model);
  auto expected = sentencepiece_oracle(model, essays);
  for (const char* rel : {"models/stories260K/tok512.bin", "models/stories260K/stories260K.gguf",
                          "models/niah-tiny/niah-tiny-f32.gguf", "models/fmt-tiny/fmt-tiny-f32.gguf"}) {
    SCOPED_TRACE(rel);
    RHEAD_REQUIRE_FILE(shared_path(rel));
    expect_matches_oracle(Tokenizer::load(shared_path(rel)), essays, expected, collapse);
  }
}

TEST_F(SentencePieceOracle, Tok512HfFolders) {
  const std::string model = shared_path(kTok512Model);
  RHEAD_REQUIRE_FILE(model);
  auto expected = sentencepiece_oracle(model, essays);
  for (const char* rel : {"models/niah-tiny/hf-f32", "models/fmt-tiny/hf-bf16"}) {
    SCOPED_TRACE(rel);
    RHEAD_REQUIRE_FILE(shared_path(rel) + "/tokenizer.model");
    expect_matches_oracle(Tokenizer::load(shared_path(rel)), essays, expected);
  }
}

TEST_F(SentencePieceOracle, Llama2ModelFileAndGgufs) {
  const std::string model = shared_path(kLlama2Model);
  RHEAD_REQUIRE_FILE(model);
  auto expected = sentencepiece_oracle(model, essays);
  // Phi-3 shares Llama-2's vocabulary and only adds special tokens, which essays lack.
  for (const char* rel : {kLlama2Model, "data/tokenizers/llama_cpp_vocab/ggml-vocab-llama-spm.gguf",
                          "data/tokenizers/llama_cpp_vocab/ggml-vocab-phi-3.gguf"}) {
    SCOPED_TRACE(rel);
    RHEAD_REQUIRE_FILE(shared_path(rel));
    expect_matches_oracle(Tokenizer::load(shared_path(rel)), essays, expected);
  }
}

class HfOracle : public ::testing::TestWithParam<const char*> {};

TEST_P(HfOracle, EssaysMatchLenmlTokenizers) {
  auto essays = essay_paths();
  RHEAD_REQUIRE_FILE(shared_path("data/haystack/paul_graham_essays"));
  const std::string dir = shared_path(std::string("data/tokenizers/") + GetParam());
  RHEAD_REQUIRE_FILE(dir + "/tokenizer.json");
  RHEAD_REQUIRE_TOOL(have_hf_oracle(), "node and tests/oracle/node_modules (npm install in tests/oracle)");
  expect_matches_oracle(Tokenizer::load(dir), essays, hf_oracle(dir, essays));
}

INSTANTIATE_TEST_SUITE_P(TokenizerJson, HfOracle, ::testing::Values("hf_llama2", "hf_llama3", "hf_qwen3"));

// hf_llama2/tokenizer.json carries Mistral-7B's vocabulary (the same pieces as Llama-2 at
// other ids: "▁" is 28705, not 29871), so llama.cpp's llama-spm ids cannot apply to it;
// on the same fixture strings it must match the HF reference instead.
TEST(HfOracleFixtureStrings, Llama2JsonOnLlamaCppStrings) {
  const std::string dir = shared_path("data/tokenizers/hf_llama2");
  const std::string inp = shared_path("data/tokenizers/llama_cpp_vocab/ggml-vocab-llama-spm.gguf.inp");
  RHEAD_REQUIRE_FILE(dir + "/tokenizer.json");
  RHEAD_REQUIRE_FILE(inp);
  RHEAD_REQUIRE_TOOL(have_hf_oracle(), "node and tests/oracle/node_modules (npm install in tests/oracle)");
  std::string all = rhead::read_text_file(inp);
  const std::string sep = "\n__ggml_vocab_test__\n";
  TempDir tmp;
  std::vector<std::string> files;
  for (size_t pos = 0, end; (end = all.find(sep, pos)) != std::string::npos; pos = end + sep.size())
    files.push_back(tmp.write("case" + std::to_string(files.size()) + ".txt", all.substr(pos, end - pos)));
  ASSERT_GT(files.size(), 40u);
  auto expected = hf_oracle(dir, files);
  ASSERT_EQ(expected.size(), files.size());
  Tokenizer tok = Tokenizer::load(dir);
  EXPECT_EQ(tok.token_id("\xE2\x96\x81"), 28705) << "expected Mistral-7B's vocabulary";
  for (size_t i = 0; i < files.size(); ++i)
    EXPECT_EQ(tok.encode(rhead::read_text_file(files[i]), false), expected[i]) << "fixture string " << i;
}

}  // namespace
