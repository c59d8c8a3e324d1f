// decode(encode(x)) == x on every essay, for every tokenizer we can load. The one documented
// exception: tok512's tokenizer.model trims and collapses runs of spaces
// (SentencePiece remove_extra_whitespaces), so its round trip gives the collapsed text.
#include <gtest/gtest.h>

#include "oracle_support.h"
#include "tokenizer/tokenizer.h"

namespace {

using rhead::Tokenizer;
using namespace rhead::testing;

struct RoundTripCase {
  const char* name;
  const char* path;  // under ../shared
  bool collapses_spaces;
};

void PrintTo(const RoundTripCase& c, std::ostream* os) { *os << c.path; }

class RoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(RoundTrip, DecodeOfEncodeGivesTheEssayBack) {
  const auto& c = GetParam();
  const std::string path = shared_path(c.path);
  RHEAD_REQUIRE_FILE(path);
  RHEAD_REQUIRE_FILE(shared_path("data/haystack/paul_graham_essays"));
  Tokenizer tok = Tokenizer::load(path);
  auto essays = essay_paths();
  ASSERT_FALSE(essays.empty());
  size_t failures = 0;
  for (const auto& essay : essays) {
    std::string text = rhead::read_text_file(essay);
    std::string expected = c.collapses_spaces ? collapse_spaces(text) : text;
    std::vector<int32_t> ids = tok.encode(text, /*add_bos=*/true);
    if (tok.add_bos_token()) {
      ASSERT_FALSE(ids.empty());
      EXPECT_EQ(ids.front(), tok.bos_id());
    }
    std::string back = tok.decode(ids);
    if (back != expected) {
      ++failures;
      size_t at = 0;
      while (at < back.size() && at < expected.size() && back[at] == expected[at]) ++at;
      ADD_FAILURE() << essay << ": round trip differs at byte " << at << ": \"" << back.substr(at, 40) << "\" vs \""
                    << expected.substr(at, 40) << "\"";
    }
  }
  EXPECT_EQ(failures, 0u);
}

INSTANTIATE_TEST_SUITE_P(
    AllTokenizers, RoundTrip,
    ::testing::Values(
        RoundTripCase{"tok512_model", "models/stories260K/tok512.model", true},
        RoundTripCase{"tok512_bin", "models/stories260K/tok512.bin", false},
        RoundTripCase{"tok512_gguf", "models/stories260K/stories260K.gguf", false},
        RoundTripCase{"niah_tiny_hf", "models/niah-tiny/hf-f32", true},
        RoundTripCase{"llama2_model", "data/tokenizers/llama2_spm/tokenizer.model", false},
        RoundTripCase{"llama_spm_gguf", "data/tokenizers/llama_cpp_vocab/ggml-vocab-llama-spm.gguf", false},
        RoundTripCase{"phi3_gguf", "data/tokenizers/llama_cpp_vocab/ggml-vocab-phi-3.gguf", false},
        RoundTripCase{"gpt2_gguf", "data/tokenizers/llama_cpp_vocab/ggml-vocab-gpt-2.gguf", false},
        RoundTripCase{"deepseek_gguf", "data/tokenizers/llama_cpp_vocab/ggml-vocab-deepseek-llm.gguf", false},
        RoundTripCase{"hf_llama2_mistral", "data/tokenizers/hf_llama2", false},
        RoundTripCase{"hf_llama3", "data/tokenizers/hf_llama3", false},
        RoundTripCase{"hf_qwen3", "data/tokenizers/hf_qwen3", false}),
    [](const auto& info) { return std::string(info.param.name); });

// Round trips that the essays do not exercise: leading spaces, newlines only, bytes that are
// not UTF-8, and characters outside small vocabularies (byte fallback).
TEST(RoundTripEdges, AwkwardStrings) {
  const std::vector<std::string> texts = {" leading space",
                                          "  two leading",
                                          "trailing  ",
                                          "\n\n\n",
                                          "\t tab",
                                          "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\xA6\x99",
                                          "bad \xFF\xFE bytes \xC3",
                                          "x"};
  for (const char* rel : {"models/stories260K/tok512.bin", "data/tokenizers/llama_cpp_vocab/ggml-vocab-llama-spm.gguf",
                          "data/tokenizers/llama_cpp_vocab/ggml-vocab-gpt-2.gguf", "data/tokenizers/hf_llama3"}) {
    SCOPED_TRACE(rel);
    RHEAD_REQUIRE_FILE(shared_path(rel));
    Tokenizer tok = Tokenizer::load(shared_path(rel));
    for (const auto& text : texts) EXPECT_EQ(tok.decode(tok.encode(text, true)), text);
  }
}

}  // namespace
