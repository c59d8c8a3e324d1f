// llama.cpp's tokenizer fixtures: each vocab (GGUF, or the matching HF tokenizer.json)
// must encode every string of the .inp file to exactly the ids of the .out file, which
// were produced by the Hugging Face tokenizers.
#include <gtest/gtest.h>

#include <sstream>

#include "io/gguf.h"
#include "io/mapped_file.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"

namespace {

const char* const kVocabDir = "data/tokenizers/llama_cpp_vocab/";

struct FixtureCase {
  std::string text;
  std::vector<int32_t> ids;
};

// The .inp holds the strings, each followed by "\n__ggml_vocab_test__\n"; the .out holds
// one line of space-separated ids per string.
std::vector<FixtureCase> read_fixture(const std::string& stem) {
  std::string inp = rhead::read_text_file(stem + ".inp");
  std::string outp = rhead::read_text_file(stem + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<FixtureCase> cases;
  size_t pos = 0;
  while (pos < inp.size()) {
    size_t end = inp.find(sep, pos);
    if (end == std::string::npos) break;
    cases.push_back({inp.substr(pos, end - pos), {}});
    pos = end + sep.size();
  }
  std::istringstream lines(outp);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    if (i >= cases.size()) break;
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) cases[i].ids.push_back(id);
    ++i;
  }
  EXPECT_EQ(i, cases.size()) << stem << ": .out has a different number of lines than .inp has strings";
  return cases;
}

std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\t')
      out += "\\t";
    else
      out.push_back(static_cast<char>(c));
  }
  return out;
}

void expect_fixture(const rhead::Tokenizer& tok, const std::string& stem) {
  auto cases = read_fixture(stem);
  ASSERT_GT(cases.size(), 40u) << stem;
  size_t failures = 0;
  for (const auto& c : cases) {
    std::vector<int32_t> got = tok.encode(c.text, /*add_bos=*/false);
    if (got != c.ids) ++failures;
    EXPECT_EQ(got, c.ids) << stem << " on \"" << printable(c.text) << "\"";
  }
  EXPECT_EQ(failures, 0u) << stem;
}

class GgufVocabFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufVocabFixture, EncodesLikeHuggingFace) {
  const std::string gguf_path = rhead::testing::shared_path(std::string(kVocabDir) + GetParam());
  RHEAD_REQUIRE_FILE(gguf_path);
  auto tok = rhead::Tokenizer::from_gguf(rhead::GGUFFile::open(gguf_path));
  expect_fixture(tok, gguf_path);
}

INSTANTIATE_TEST_SUITE_P(LlamaCpp, GgufVocabFixture,
                         ::testing::Values("ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf",
                                           "ggml-vocab-gpt-2.gguf", "ggml-vocab-deepseek-llm.gguf"),
                         [](const auto& info) {
                           std::string name = info.param.substr(11, info.param.size() - 16);
                           for (char& c : name)
                             if (c == '-') c = '_';
                           return name;
                         });

struct HfFixture {
  const char* name;
  const char* dir;      // under data/tokenizers
  const char* fixture;  // llama.cpp fixture stem
};

// hf_llama2 holds Mistral-7B's vocabulary, whose ids differ from Llama-2's; it is checked
// against the HF reference on the same strings in test_essay_oracles.cpp.
void PrintTo(const HfFixture& f, std::ostream* os) { *os << f.dir; }

class HfJsonFixture : public ::testing::TestWithParam<HfFixture> {};

TEST_P(HfJsonFixture, ReproducesLlamaCppExpectations) {
  const auto& p = GetParam();
  const std::string dir = rhead::testing::shared_path(std::string("data/tokenizers/") + p.dir);
  const std::string stem = rhead::testing::shared_path(std::string(kVocabDir) + p.fixture);
  RHEAD_REQUIRE_FILE(dir + "/tokenizer.json");
  RHEAD_REQUIRE_FILE(stem + ".inp");
  auto tok = rhead::Tokenizer::from_hf_dir(dir);
  expect_fixture(tok, stem);
}

INSTANTIATE_TEST_SUITE_P(HuggingFace, HfJsonFixture,
                         ::testing::Values(HfFixture{"llama3", "hf_llama3", "ggml-vocab-llama-bpe.gguf"},
                                           HfFixture{"qwen3", "hf_qwen3", "ggml-vocab-qwen2.gguf"}),
                         [](const auto& info) { return std::string(info.param.name); });

// The Llama-2 SentencePiece model file agrees with its tokenizer.json on the same strings.
TEST(SentencePieceModelFixture, Llama2ModelReproducesSpmFixture) {
  const std::string model = rhead::testing::shared_path("data/tokenizers/llama2_spm/tokenizer.model");
  const std::string stem = rhead::testing::shared_path(std::string(kVocabDir) + "ggml-vocab-llama-spm.gguf");
  RHEAD_REQUIRE_FILE(model);
  RHEAD_REQUIRE_FILE(stem + ".inp");
  expect_fixture(rhead::Tokenizer::from_sentencepiece_model(model), stem);
}

}  // namespace
