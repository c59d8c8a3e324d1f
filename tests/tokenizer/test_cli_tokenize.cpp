// `rhead tokenize` end to end: ids, pieces, files, vocab-only GGUFs, tokenizer.json-only
// folders, and one-line errors.
#include <gtest/gtest.h>

#include "oracle_support.h"

namespace {

using namespace rhead::testing;

CommandResult rhead_tokenize(const std::string& args) {
  return run_command(shell_quote(rhead_binary()) + " tokenize " + args + " 2>&1");
}

TEST(CliTokenize, IdsAndNoBos) {
  const std::string tok = shared_path("models/stories260K/tok512.bin");
  RHEAD_REQUIRE_FILE(tok);
  auto r = rhead_tokenize("-m " + shell_quote(tok) + " --ids 'Hello world'");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "1 346 306 414 263 304 341\n");
  r = rhead_tokenize("-m " + shell_quote(tok) + " --ids --no-bos 'Hello world'");
  EXPECT_EQ(r.output, "346 306 414 263 304 341\n");
}

TEST(CliTokenize, PiecesOneTokenPerLine) {
  const std::string tok = shared_path("models/stories260K/stories260K.gguf");
  RHEAD_REQUIRE_FILE(tok);
  TempDir dir;
  auto r = rhead_tokenize("-m " + shell_quote(tok) + " -f " + shell_quote(dir.write("in.txt", "Hi.\nYes")));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("1\t<s>\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("13\t\\n\n"), std::string::npos) << r.output;  // the newline piece, escaped
}

TEST(CliTokenize, FileByteForByte) {
  const std::string tok = shared_path("data/tokenizers/llama_cpp_vocab/ggml-vocab-gpt-2.gguf");
  RHEAD_REQUIRE_FILE(tok);
  TempDir dir;
  std::string file = dir.write("in.txt", "Hello world\n\n  x");
  auto r = rhead_tokenize("-m " + shell_quote(tok) + " --ids -f " + shell_quote(file));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  // GPT-2 adds no BOS; "\n\n" is one token (628), the trailing newline is kept.
  EXPECT_EQ(r.output, "15496 995 628 220 2124\n");
}

TEST(CliTokenize, FolderWithOnlyTokenizerJson) {
  const std::string source = shared_path("data/tokenizers/hf_qwen3/tokenizer.json");
  RHEAD_REQUIRE_FILE(source);
  TempDir dir;
  std::filesystem::create_symlink(source, dir.path / "tokenizer.json");
  auto r = rhead_tokenize("-m " + shell_quote(dir.path.string()) + " --ids 'Hello world'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "9707 1879\n");
}

TEST(CliTokenize, ChatTemplateOverride) {
  const std::string tok = shared_path("data/tokenizers/llama_cpp_vocab/ggml-vocab-llama-spm.gguf");
  RHEAD_REQUIRE_FILE(tok);
  auto r = rhead_tokenize("-m " + shell_quote(tok) + " --ids --chat-template llama2 Hi");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "1 518 25580 29962 6324 518 29914 25580 29962\n");
}

TEST(CliTokenize, ErrorsAreOneLine) {
  const std::string tok = shared_path("models/stories260K/tok512.bin");
  RHEAD_REQUIRE_FILE(tok);
  auto r = rhead_tokenize("-m " + shell_quote(tok) + " --chat-template vicuna Hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output.rfind("error: --chat-template 'vicuna': expected llama2, mistral, chatml, llama3 or gemma", 0), 0u) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  r = rhead_tokenize("-m " + shell_quote(tok) + " --chat Hi");  // tok512 has no template
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no chat template"), std::string::npos) << r.output;
  r = rhead_tokenize("-m /no/such/model --ids Hi");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.output, "error: /no/such/model: no such file or directory\n");
}

}  // namespace
