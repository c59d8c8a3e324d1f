// Unit tests on tiny hand-made vocabularies (merge order, tie-breaks, byte fallback, added
// tokens, pre-tokenizer split behaviours, errors) and on tok512, the tokenizer of the small
// test models.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "io/error.h"
#include "io/gguf.h"
#include "oracle_support.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_core.h"

namespace {

using nlohmann::json;
using rhead::Tokenizer;
using namespace rhead::testing;

const std::string kSpace = "\xE2\x96\x81";  // "▁"

// A byte-level tokenizer.json: ids 0..255 are the mapped bytes, then `extra` tokens.
json byte_level_json(const std::vector<std::string>& extra, const std::vector<std::string>& merges) {
  json vocab = json::object();
  const auto& chars = rhead::detail::byte_to_unicode();
  for (int b = 0; b < 256; ++b) vocab[chars[b]] = b;
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + i;
  json root;
  root["model"] = {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}};
  root["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  root["decoder"] = {{"type", "ByteLevel"}};
  root["added_tokens"] = json::array();
  return root;
}

Tokenizer load_json(const TempDir& dir, const json& root) {
  dir.write("tokenizer.json", root.dump());
  return Tokenizer::load(dir.path.string());
}

std::vector<std::string> pieces_of(const Tokenizer& tok, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(tok.token_text(id));
  return out;
}

TEST(ByteLevelBpe, MergesApplyInRankOrder) {
  TempDir dir;
  // "l l" ranks before "e l": "ell" -> "e" + "ll".
  Tokenizer first = load_json(dir, byte_level_json({"ll", "el", "he", "hell"}, {"l l", "e l", "h e", "he ll"}));
  EXPECT_EQ(pieces_of(first, first.encode("hell", false)), (std::vector<std::string>{"hell"}));
  EXPECT_EQ(pieces_of(first, first.encode("ell", false)), (std::vector<std::string>{"e", "ll"}));
  TempDir dir2;
  // Swapped ranks: "e l" first, and "hell" can no longer form.
  Tokenizer second = load_json(dir2, byte_level_json({"ll", "el", "he", "hell"}, {"e l", "l l", "h e", "he ll"}));
  EXPECT_EQ(pieces_of(second, second.encode("ell", false)), (std::vector<std::string>{"el", "l"}));
  EXPECT_EQ(pieces_of(second, second.encode("hell", false)), (std::vector<std::string>{"h", "el", "l"}));
}

TEST(ByteLevelBpe, RegexWordsAndSpaceMapping) {
  TempDir dir;
  Tokenizer tok = load_json(dir, byte_level_json({"\xC4\xA0"
                                                  "a",
                                                  "ab"},
                                                 {"\xC4\xA0 a", "a b"}));
  // GPT-2 regex: " ab" is one word; "Ġ a" ranks first, so "Ġa" + "b".
  EXPECT_EQ(pieces_of(tok, tok.encode(" ab", false)), (std::vector<std::string>{"\xC4\xA0"
                                                                                "a",
                                                                                "b"}));
  EXPECT_EQ(pieces_of(tok, tok.encode("ab ab", false)), (std::vector<std::string>{"ab",
                                                                                  "\xC4\xA0"
                                                                                  "a",
                                                                                  "b"}));
  EXPECT_EQ(tok.piece(tok.token_id("\xC4\xA0"
                                   "a")),
            " a");
  EXPECT_EQ(tok.piece(10), "\n");                                // byte 0x0A maps to U+010A "Ċ"
  EXPECT_EQ(tok.decode(tok.encode("x\xFFy", false)), "x\xFFy");  // not UTF-8: bytes survive
}

TEST(ByteLevelBpe, AddedTokensAreAtoms) {
  TempDir dir;
  json root = byte_level_json({}, {});
  root["added_tokens"] = json::array({{{"id", 256}, {"content", "<|end|>"}, {"special", true}, {"rstrip", true}},
                                      {{"id", 257}, {"content", "<tool>"}, {"special", false}}});
  Tokenizer tok = load_json(dir, root);
  EXPECT_EQ(tok.encode("a<|end|>  b", false), (std::vector<int32_t>{'a', 256, 'b'}));  // rstrip eats the spaces
  // Without parse_special the special token is text; the non-special one is still an atom.
  std::vector<int32_t> plain = tok.encode("<|end|><tool>", false, /*parse_special=*/false);
  EXPECT_EQ(plain.back(), 257);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 256), 0);
  EXPECT_TRUE(tok.is_special(256));
  EXPECT_FALSE(tok.is_special(257));
  EXPECT_EQ(tok.decode({'a', 256, 257}), "a<tool>");
  EXPECT_EQ(tok.decode({'a', 256, 257}, /*skip_special=*/false), "a<|end|><tool>");
}

// A llama2.c tokenizer .bin: <unk>, <s>, </s>, the 256 byte tokens, then `pieces`.
std::string llama2c_bin(const std::vector<std::pair<std::string, float>>& pieces) {
  std::string out;
  auto put = [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
  int32_t max_len = 16;
  put(&max_len, 4);
  auto add = [&](const std::string& text, float score) {
    int32_t len = static_cast<int32_t>(text.size());
    put(&score, 4);
    put(&len, 4);
    out += text;
  };
  add("<unk>", 0);
  add("\n<s>\n", 0);
  add("\n</s>\n", 0);
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    add(buf, 0);
  }
  for (const auto& [text, score] : pieces) add(text, score);  // ' ' stands for "▁", as the exporter wrote it
  return out;
}

TEST(SentencePieceBpe, HigherScoreMergesFirstAndTiesGoLeft) {
  TempDir dir;
  // ids from 259: " ", "a", "b", " a", "ab", "aa"
  std::string bin = llama2c_bin({{" ", -1}, {"a", -2}, {"b", -3}, {" a", -5}, {"ab", -4}, {"aa", -6}});
  Tokenizer tok = Tokenizer::from_llama2c(dir.write("tok.bin", bin));
  EXPECT_EQ(tok.token_text(259), kSpace);
  // "▁ab": "ab" (-4) beats "▁a" (-5).
  EXPECT_EQ(pieces_of(tok, tok.encode("ab", false)), (std::vector<std::string>{kSpace, "ab"}));
  // "▁aaa": both "aa" pairs score alike; the left one merges first.
  EXPECT_EQ(pieces_of(tok, tok.encode("aaa", false)), (std::vector<std::string>{kSpace + "a", "aa"}));
  // 'c' is not in the vocabulary: byte fallback to <0x63>.
  EXPECT_EQ(tok.encode("c", false), (std::vector<int32_t>{259, 3 + 'c'}));
  EXPECT_EQ(tok.decode(tok.encode("c ab", true)), "c ab");
  EXPECT_EQ(tok.encode("", true), (std::vector<int32_t>{1}));

  TempDir dir2;
  std::string swapped = llama2c_bin({{" ", -1}, {"a", -2}, {"b", -3}, {" a", -4}, {"ab", -5}});
  Tokenizer tok2 = Tokenizer::from_llama2c(dir2.write("tok.bin", swapped));
  EXPECT_EQ(pieces_of(tok2, tok2.encode("ab", false)), (std::vector<std::string>{kSpace + "a", "b"}));
}

TEST(PreTokenizerSplit, DelimiterBehaviours) {
  using rhead::detail::SplitBehavior;
  auto split = [](SplitBehavior behavior, bool invert = false) {
    rhead::detail::PreTokenizer pre;
    pre.steps.push_back({rhead::detail::CompiledRegex::compile("-", "test"), behavior, invert});
    std::vector<std::string_view> words;
    pre.split("the-final--countdown", words);
    return std::vector<std::string>(words.begin(), words.end());
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(split(SplitBehavior::isolated), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::removed), (V{"the", "final", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::merged_with_previous), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::merged_with_next), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(split(SplitBehavior::contiguous), (V{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(split(SplitBehavior::removed, true), (V{"-", "-", "-"}));
}

TEST(PreTokenizerSplit, UnicodeClassesAndNamedSets) {
  auto pre = rhead::detail::pre_tokenizer_for_gguf_name("llama-bpe", "test");
  std::vector<std::string_view> words;
  pre.split("Hello Wörld 12345 日本\n\n", words);
  EXPECT_EQ(std::vector<std::string>(words.begin(), words.end()),
            (std::vector<std::string>{"Hello", " Wörld", " ", "123", "45", " 日本", "\n\n"}));
  EXPECT_THROW(rhead::detail::pre_tokenizer_for_gguf_name("no-such-pre", "x.gguf"), rhead::Error);
  EXPECT_THROW(rhead::detail::CompiledRegex::compile("(unclosed", "x.json"), rhead::Error);
  // Every named set compiles (the DeepSeek one has long code-point ranges).
  for (const char* name : {"gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "falcon"})
    EXPECT_NO_THROW(rhead::detail::pre_tokenizer_for_gguf_name(name, "test")) << name;
}

TEST(TokenizerErrors, NamesTheInput) {
  try {
    Tokenizer::load("/no/such/tokenizer.json");
    FAIL() << "expected an error";
  } catch (const rhead::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/no/such/tokenizer.json"), std::string::npos);
  }
  TempDir dir;
  json unigram = {{"model", {{"type", "Unigram"}, {"vocab", json::array()}}}};
  std::string path = dir.write("tokenizer.json", unigram.dump());
  try {
    Tokenizer::load(path);
    FAIL() << "expected an error";
  } catch (const rhead::Error& e) {
    EXPECT_NE(std::string(e.what()).find("Unigram"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind(path, 0), 0u) << e.what();
  }
  EXPECT_THROW(Tokenizer::load(dir.write("broken.model", "\x0a\xff\xff")), rhead::Error);
  EXPECT_THROW(Tokenizer::load(dir.write("short.bin", "ab")), rhead::Error);
  EXPECT_THROW(Tokenizer::load(dir.path.string()), rhead::Error) << "a folder with no tokenizer";  // only broken files
}

class Tok512 : public ::testing::Test {
 protected:
  void SetUp() override { RHEAD_REQUIRE_FILE(shared_path("models/stories260K/tok512.bin")); }
};

TEST_F(Tok512, BasicsMatchTheModelFiles) {
  for (const char* rel : {"models/stories260K/tok512.bin", "models/stories260K/tok512.model",
                          "models/stories260K/stories260K.gguf", "models/niah-tiny/hf-f32"}) {
    SCOPED_TRACE(rel);
    RHEAD_REQUIRE_FILE(shared_path(rel));
    Tokenizer tok = Tokenizer::load(shared_path(rel));
    EXPECT_EQ(tok.n_vocab(), 512);
    EXPECT_EQ(tok.bos_id(), 1);
    EXPECT_EQ(tok.eos_id(), 2);
    EXPECT_TRUE(tok.add_bos_token());
    EXPECT_EQ(tok.family(), rhead::TokenizerFamily::sentencepiece_bpe);
    EXPECT_EQ(tok.token_text(1), "<s>");
    EXPECT_EQ(tok.token_text(13), "<0x0A>");
    EXPECT_EQ(tok.piece(13), "\n");
    EXPECT_EQ(tok.token_text(346), kSpace + "He");
    EXPECT_EQ(tok.piece(346), " He");
    EXPECT_TRUE(tok.is_special(1));
    EXPECT_TRUE(tok.is_end_of_generation(2));
    EXPECT_FALSE(tok.is_end_of_generation(13));
    EXPECT_FALSE(tok.is_special(346));
    EXPECT_EQ(tok.encode("Hello world", true), (std::vector<int32_t>{1, 346, 306, 414, 263, 304, 341}));
    EXPECT_EQ(tok.encode("Hello world", false), (std::vector<int32_t>{346, 306, 414, 263, 304, 341}));
    EXPECT_TRUE(tok.encode("", false).empty());
    EXPECT_EQ(tok.decode({1, 346, 306, 414, 2}), "Hello");
    EXPECT_EQ(tok.decode({1, 346, 306, 414}, /*skip_special=*/false), "<s> Hello");
    EXPECT_THROW(tok.piece(512), rhead::Error);
    EXPECT_THROW(tok.decode({-1}), rhead::Error);
  }
}

TEST_F(Tok512, SpecialTokensInTextAndNeedlePieces) {
  Tokenizer tok = Tokenizer::load(shared_path("models/stories260K/tok512.bin"));
  EXPECT_EQ(tok.encode("<s>", false), (std::vector<int32_t>{1}));
  std::vector<int32_t> as_text = tok.encode("<s>", false, /*parse_special=*/false);
  EXPECT_EQ(std::count(as_text.begin(), as_text.end(), 1), 0);
  EXPECT_EQ(tok.decode(as_text), "<s>");
  // What the NIAH code relies on: the piece ending a sentence holds '.', a newline piece '\n'.
  std::vector<int32_t> ids = tok.encode("The secret code of the wall is star oil nest.\nQuestion:", false);
  bool period = false, newline = false;
  for (int32_t id : ids) {
    period = period || tok.piece(id).find('.') != std::string::npos;
    newline = newline || tok.piece(id).find('\n') != std::string::npos;
  }
  EXPECT_TRUE(period);
  EXPECT_TRUE(newline);
  std::string joined;
  for (int32_t id : ids) joined += tok.piece(id);
  EXPECT_EQ(joined, " The secret code of the wall is star oil nest.\nQuestion:");
  // A needle tokenized alone (no BOS) appears verbatim inside the tokenized sentence.
  std::vector<int32_t> needle = tok.encode("star oil nest", false);
  EXPECT_NE(std::search(ids.begin(), ids.end(), needle.begin(), needle.end()), ids.end());
}

TEST(HfFolder, TokenizerJsonAlone) {
  const std::string source = shared_path("data/tokenizers/hf_llama3/tokenizer.json");
  RHEAD_REQUIRE_FILE(source);
  TempDir dir;
  std::filesystem::create_symlink(source, dir.path / "tokenizer.json");
  Tokenizer tok = Tokenizer::load(dir.path.string());
  EXPECT_EQ(tok.family(), rhead::TokenizerFamily::byte_level_bpe);
  EXPECT_EQ(tok.n_vocab(), 128256);
  EXPECT_FALSE(tok.chat_template().has_value());
  EXPECT_EQ(tok.encode("Hello world", false), (std::vector<int32_t>{9906, 1917}));
  EXPECT_EQ(tok.decode(tok.encode("Hello world", true)), "Hello world");
}

}  // namespace
