// Regex pre-tokenizers for byte-level BPE: the text is cut into words before merging,
// so that merges never cross a word boundary. Patterns are the models' own (HF
// tokenizer.json Split / ByteLevel, or the set llama.cpp names in tokenizer.ggml.pre),
// run by PCRE2 with UTF and UCP so that \p{L}, \p{N} and \s follow Unicode.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace rhead::detail {

// A compiled (and, where the platform allows, JIT-compiled) PCRE2 pattern.
class CompiledRegex {
 public:
  // Error "where: bad pre-tokenizer regex ..." when the pattern does not compile.
  static std::shared_ptr<const CompiledRegex> compile(const std::string& pattern, const std::string& where);
  ~CompiledRegex();
  CompiledRegex(const CompiledRegex&) = delete;
  CompiledRegex& operator=(const CompiledRegex&) = delete;

  const std::string& pattern() const { return pattern_; }
  // Non-empty matches in `subject` (valid UTF-8), as [begin, end) byte offsets.
  void find_all(std::string_view subject, std::vector<std::pair<size_t, size_t>>& matches) const;

 private:
  CompiledRegex() = default;
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code*, kept opaque so this header needs no pcre2.h
};

// What happens to the matched parts of a piece (HF SplitDelimiterBehavior).
enum class SplitBehavior { isolated, removed, merged_with_previous, merged_with_next, contiguous };

struct SplitStep {
  std::shared_ptr<const CompiledRegex> regex;
  SplitBehavior behavior = SplitBehavior::isolated;
  bool invert = false;  // the non-matching parts play the role of the matches
};

// A sequence of split steps, each applied to every piece the previous ones produced.
struct PreTokenizer {
  std::vector<SplitStep> steps;

  bool empty() const { return steps.empty(); }
  // Cuts valid UTF-8 `text` into words (views into `text`), appended to `words`.
  void split(std::string_view text, std::vector<std::string_view>& words) const;
};

// GPT-2's pattern, also the ByteLevel pre-tokenizer's when use_regex is true.
extern const char* const kGpt2Pattern;

// The pre-tokenizer llama.cpp associates with a tokenizer.ggml.pre name ("gpt-2",
// "llama-bpe", "qwen2", "deepseek-llm", ...). Unknown names are an Error naming `where`.
PreTokenizer pre_tokenizer_for_gguf_name(const std::string& name, const std::string& where);
// True for tokenizer.ggml.pre names whose models skip merging when a word is a token.
bool gguf_pre_ignores_merges(const std::string& name);
// True for tokenizer.ggml.pre names whose models add BOS by default (Llama-3 family).
bool gguf_pre_adds_bos(const std::string& name);

}  // namespace rhead::detail
