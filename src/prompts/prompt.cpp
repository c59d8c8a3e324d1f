// Prompt assembly on token ids.
#include "prompts/prompt.h"

#include "io/error.h"

namespace rhead {

namespace {
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}
// Marks where the context goes in a rendered chat template; control characters never occur
// in templates or questions.
const std::string kContextMark = "\x1e\x1f\x1e";
}  // namespace

std::vector<int32_t> encode_fragment(const Tokenizer& tok, const std::string& text, bool parse_special) {
  if (text.empty()) return {};
  std::vector<int32_t> ids = tok.encode(text, false, parse_special);
  if (!ids.empty() && tok.family() == TokenizerFamily::sentencepiece_bpe && tok.token_text(ids[0]) == "\xE2\x96\x81")
    ids.erase(ids.begin());
  return ids;
}

PromptFrame make_prompt_frame(const Tokenizer& tok, const PromptFormat& format, const std::string& question) {
  PromptFrame frame;
  if (format.chat) {
    if (format.chat_user_template.find("{context}") == std::string::npos)
      throw Error("chat prompt template has no {context} placeholder");
    std::string user = replace_all(format.chat_user_template, "{question}", question);
    user = replace_all(user, "{context}", kContextMark);
    const std::string rendered = tok.apply_chat_template(*format.chat, {{"user", user}}, true);
    const size_t at = rendered.find(kContextMark);
    if (at == std::string::npos) throw Error("chat template dropped the context");
    // The template writes the BOS text itself; encoding with specials parsed turns it into the id.
    frame.before = tok.encode(rendered.substr(0, at), false, true);
    frame.after = encode_fragment(tok, rendered.substr(at + kContextMark.size()), true);
  } else {
    const std::string& t = format.base_template;
    const size_t at = t.find("{context}");
    if (at == std::string::npos) throw Error("prompt template '" + t + "' has no {context} placeholder");
    if (tok.add_bos_token() && tok.bos_id() >= 0) frame.before.push_back(tok.bos_id());
    auto head = encode_fragment(tok, replace_all(t.substr(0, at), "{question}", question), false);
    frame.before.insert(frame.before.end(), head.begin(), head.end());
    frame.after = encode_fragment(tok, replace_all(t.substr(at + 9), "{question}", question), false);
  }
  return frame;
}

NiahPrompt build_niah_prompt(const std::vector<int32_t>& haystack, const std::vector<int32_t>& needle,
                             const PromptFrame& frame, int64_t length, int depth, int64_t buffer,
                             const std::function<bool(int32_t)>& is_sentence_end) {
  const int64_t n_hay = length - buffer - static_cast<int64_t>(needle.size());
  if (n_hay <= 0)
    throw Error("context length " + std::to_string(length) + " leaves no room for the needle (" +
                std::to_string(needle.size()) + " tokens) after the " + std::to_string(buffer) + "-token buffer");
  if (static_cast<int64_t>(haystack.size()) < n_hay)
    throw Error("haystack has only " + std::to_string(haystack.size()) + " tokens; " + std::to_string(n_hay) +
                " needed");
  int64_t pos = depth >= 100 ? n_hay : static_cast<int64_t>(n_hay * static_cast<double>(depth) / 100.0);
  if (depth < 100)
    while (pos > 0 && !is_sentence_end(haystack[pos - 1])) --pos;
  NiahPrompt p;
  p.tokens.reserve(frame.before.size() + n_hay + needle.size() + frame.after.size());
  p.tokens.insert(p.tokens.end(), frame.before.begin(), frame.before.end());
  p.tokens.insert(p.tokens.end(), haystack.begin(), haystack.begin() + pos);
  p.needle_begin = static_cast<int64_t>(p.tokens.size());
  p.tokens.insert(p.tokens.end(), needle.begin(), needle.end());
  p.needle_end = static_cast<int64_t>(p.tokens.size());
  p.tokens.insert(p.tokens.end(), haystack.begin() + pos, haystack.begin() + n_hay);
  p.tokens.insert(p.tokens.end(), frame.after.begin(), frame.after.end());
  p.haystack_tokens = n_hay;
  p.insert_offset = pos;
  return p;
}

bool token_ends_sentence(const Tokenizer& tok, int32_t id) {
  std::string piece = tok.piece(id);
  while (!piece.empty() && std::isspace(static_cast<unsigned char>(piece.back()))) piece.pop_back();
  return !piece.empty() && piece.back() == '.';
}

}  // namespace rhead
