// tokenizer.ggml.pre names that GGUF files of BPE models carry: every one of them maps to a
// split, unknown names stay an error, and each group splits as its models' published regex
// says (cases worked out by hand from the regex in each model's tokenizer.json).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/error.h"
#include "tokenizer/pretokenizer.h"

namespace {

using V = std::vector<std::string>;

V split(const std::string& pre, const std::string& text) {
  auto p = rhead::detail::pre_tokenizer_for_gguf_name(pre, "test.gguf");
  std::vector<std::string_view> words;
  p.split(text, words);
  return V(words.begin(), words.end());
}

TEST(PreTokenizerNames, EveryNameInTheWildCompiles) {
  for (const char* name :
       {"starcoder",    "refact",         "smollm",      "command-r",        "olmo",       "dbrx",
        "stablelm2",    "tekken",         "deepseek-v3", "deepseek-r1-qwen", "falcon3",    "gpt-2",
        "gpt2",         "jina-es",        "jina-de",     "jina-v1-en",       "jina-v2-es", "jina-v2-de",
        "jina-v2-code", "jina-v2-en",     "roberta-bpe", "poro-chat",        "viking",     "jais",
        "bloom",        "exaone",         "chameleon",   "minerva-7b",       "megrez",     "codeshell",
        "gigachat",     "chatglm-bpe",    "smaug-bpe",   "gpt3-finnish",     "llama-bpe",  "qwen2",
        "deepseek-llm", "deepseek-coder", "falcon"})
    EXPECT_NO_THROW(rhead::detail::pre_tokenizer_for_gguf_name(name, "test.gguf")) << name;
  try {
    rhead::detail::pre_tokenizer_for_gguf_name("no-such-pre", "x.gguf");
    FAIL() << "unknown name accepted";
  } catch (const rhead::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("x.gguf: unsupported tokenizer.ggml.pre \"no-such-pre\"", 0), 0u);
  }
}

TEST(PreTokenizerNames, GroupsSplitAsTheirPublishedRegex) {
  // StarCoder family: \p{N} isolated first, then GPT-2's pattern.
  for (const char* n : {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"})
    EXPECT_EQ(split(n, "abc 123"), (V{"abc", " ", "1", "2", "3"})) << n;
  // BLOOM family: runs of anything but whitespace and . , ! ? and CJK/Indic/Arabic stops.
  for (const char* n : {"bloom", "poro-chat", "gpt3-finnish"})
    EXPECT_EQ(split(n, "Hello, world! ok."), (V{"Hello", ",", " world", "!", " ok", "."})) << n;
  // Viking: the BLOOM split, then every digit alone.
  EXPECT_EQ(split("viking", "Tere 2024!"), (V{"Tere", " ", "2", "0", "2", "4", "!"}));
  // Tekken: case-aware letter runs (an upper-case run then lower-case), single digits.
  EXPECT_EQ(split("tekken", "HelloWorld 42x"), (V{"Hello", "World", " ", "4", "2", "x"}));
  // DeepSeek-V3: digits in threes first, then letters with their marks.
  EXPECT_EQ(split("deepseek-v3", "abc 1234"), (V{"abc", " ", "123", "4"}));
  // Chameleon: two- and four-space runs isolated, then single digits, then GPT-2's split.
  EXPECT_EQ(split("chameleon", "ab  c12"), (V{"ab", "  ", "c", "1", "2"}));
  // Qwen2 pattern (DeepSeek-R1 distilled into Qwen): single digits.
  EXPECT_EQ(split("deepseek-r1-qwen", "x 12345"), (V{"x", " ", "1", "2", "3", "4", "5"}));
  // Llama-3 pattern (ChatGLM-4, Smaug, DBRX): digits in threes.
  for (const char* n : {"chatglm-bpe", "smaug-bpe", "dbrx"})
    EXPECT_EQ(split(n, "x 12345"), (V{"x", " ", "123", "45"})) << n;
}

}  // namespace
