// NIAH prompts built on token ids: the haystack is tokenized once, the needle is spliced in
// at a sentence boundary, and the template's text around the context is tokenized on its own.
// No text round-trip, so the needle's tokens are exactly the ones the span rule looks for.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace rhead {

// The reference code's prompts.
inline constexpr const char* kReferenceBasePrompt =
    "{context}Based on the content of the book, Question: {question}\nAnswer:";
inline constexpr const char* kReferenceChatUserPrompt =
    "<book>{context}</book>\nBased on the content of the book, Question: {question}\nAnswer:";

struct PromptFormat {
  std::optional<ChatTemplateKind> chat;              // set: wrap the user message in this template
  std::string base_template = kReferenceBasePrompt;  // {context}, {question}
  std::string chat_user_template = kReferenceChatUserPrompt;
};

// Token ids before and after the context for one question.
struct PromptFrame {
  std::vector<int32_t> before;  // BOS / chat header / template text before {context}
  std::vector<int32_t> after;   // template text after {context}, generation prompt
};

// Encodes a piece of text that continues a sequence: no BOS, and no lone leading "▁" token
// (SentencePiece's dummy prefix would otherwise put a space token at every seam).
std::vector<int32_t> encode_fragment(const Tokenizer& tok, const std::string& text, bool parse_special);

PromptFrame make_prompt_frame(const Tokenizer& tok, const PromptFormat& format, const std::string& question);

struct NiahPrompt {
  std::vector<int32_t> tokens;
  int64_t needle_begin = 0;  // index of the needle's first token in `tokens`
  int64_t needle_end = 0;    // one past its last token
  int64_t haystack_tokens = 0;
  int64_t insert_offset = 0;  // insertion point inside the haystack part
};

// Builds the prompt for context length `length` and depth `depth` (percent):
// haystack cut to length - buffer - |needle| tokens, needle inserted at
// int(n * depth / 100) moved back to just after a sentence end (depth 100 appends).
// Error if length leaves no room for the needle.
NiahPrompt build_niah_prompt(const std::vector<int32_t>& haystack, const std::vector<int32_t>& needle,
                             const PromptFrame& frame, int64_t length, int depth, int64_t buffer,
                             const std::function<bool(int32_t)>& is_sentence_end);

// A token ends a sentence when its text, trailing whitespace removed, ends with '.'.
bool token_ends_sentence(const Tokenizer& tok, int32_t id);

}  // namespace rhead
