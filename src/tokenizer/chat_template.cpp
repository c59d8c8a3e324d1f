// Chat templates of the instruct models used in retrieval-head work, written out from each
// model's published Jinja template rather than run through a Jinja engine:
//   llama2  — Llama-2-chat:   <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {reply} </s>
//   mistral — Mistral-Instruct v0.1/v0.2: <s>[INST] {user} [/INST]{reply}</s>
//   chatml  — Qwen ChatML:    <|im_start|>{role}\n{content}<|im_end|>\n
//   llama3  — Llama-3 instruct: <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>
//   gemma   — Gemma / Gemma-2 instruct: <bos><start_of_turn>{user|model}\n{content}<end_of_turn>\n
#include "io/enum_names.h"
#include "io/error.h"
#include "tokenizer/tokenizer.h"

namespace rhead {

namespace {

// Python's str.strip() / Jinja's trim on ASCII whitespace.
std::string strip(const std::string& s) {
  const char* ws = " \t\n\r\v\f";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// Both [INST] templates require user, assistant, user, ... after an optional system message.
void check_alternation(const char* name, const std::vector<ChatMessage>& msgs, size_t first) {
  for (size_t i = first; i < msgs.size(); ++i) {
    const std::string& expected = (i - first) % 2 == 0 ? "user" : "assistant";
    if (msgs[i].role != expected)
      fail(std::string("chat template ") + name,
           "message " + std::to_string(i) + " has role \"" + msgs[i].role + "\" where \"" + expected +
               "\" is expected (roles must alternate user/assistant after an optional system message)");
  }
}

}  // namespace

constexpr EnumName<ChatTemplateKind> kChatTemplates[] = {
    {ChatTemplateKind::llama2, "llama2"}, {ChatTemplateKind::mistral, "mistral"}, {ChatTemplateKind::chatml, "chatml"},
    {ChatTemplateKind::llama3, "llama3"}, {ChatTemplateKind::gemma, "gemma"}};

std::optional<ChatTemplateKind> chat_template_from_name(const std::string& name) {
  return find_in(kChatTemplates, name);
}

std::string chat_template_name(ChatTemplateKind kind) { return name_in(kChatTemplates, kind); }

std::string chat_template_names() { return names_in(kChatTemplates); }

std::optional<ChatTemplateKind> choose_chat_template(const Tokenizer& tok, const std::string& name, bool no_chat) {
  if (!name.empty()) return parse_in(kChatTemplates, name, "--chat-template");
  if (no_chat) return std::nullopt;
  return tok.chat_template();
}

std::optional<ChatTemplateKind> chat_template_from_text(const std::string& jinja) {
  auto has = [&](const char* s) { return jinja.find(s) != std::string::npos; };
  if (has("<|im_start|>")) return ChatTemplateKind::chatml;
  if (has("<|start_header_id|>") && has("<|eot_id|>")) return ChatTemplateKind::llama3;
  if (has("<start_of_turn>") && has("<end_of_turn>")) return ChatTemplateKind::gemma;
  if (has("[INST]")) return has("<<SYS>>") ? ChatTemplateKind::llama2 : ChatTemplateKind::mistral;
  return std::nullopt;
}

std::string Tokenizer::apply_chat_template(ChatTemplateKind kind, const std::vector<ChatMessage>& msgs,
                                           bool add_generation_prompt) const {
  // The templates write bos_token / eos_token; use this vocabulary's, or the family's usual
  // text when the vocabulary has none.
  auto text_or = [&](int32_t id, const char* fallback) { return id >= 0 ? token_text(id) : std::string(fallback); };
  std::string out;
  switch (kind) {
    case ChatTemplateKind::llama2: {
      const std::string bos = text_or(bos_id(), "<s>"), eos = text_or(eos_id(), "</s>");
      size_t first = !msgs.empty() && msgs[0].role == "system" ? 1 : 0;
      check_alternation("llama2", msgs, first);
      for (size_t i = first; i < msgs.size(); ++i) {
        std::string content = msgs[i].content;
        if (i == first && first == 1) content = "<<SYS>>\n" + msgs[0].content + "\n<</SYS>>\n\n" + content;
        if (msgs[i].role == "user")
          out += bos + "[INST] " + strip(content) + " [/INST]";
        else
          out += " " + strip(content) + " " + eos;
      }
      // The template has no generation prompt: the reply follows "[/INST]" directly.
      break;
    }
    case ChatTemplateKind::mistral: {
      const std::string bos = text_or(bos_id(), "<s>"), eos = text_or(eos_id(), "</s>");
      size_t first = !msgs.empty() && msgs[0].role == "system" ? 1 : 0;
      check_alternation("mistral", msgs, first);
      out += bos;
      for (size_t i = first; i < msgs.size(); ++i) {
        std::string content = msgs[i].content;
        // v0.1/v0.2 have no system role; later Mistral templates put it before the user
        // text with a blank line, which is what we do.
        if (i == first && first == 1) content = msgs[0].content + "\n\n" + content;
        if (msgs[i].role == "user")
          out += "[INST] " + content + " [/INST]";
        else
          out += content + eos;
      }
      break;
    }
    case ChatTemplateKind::chatml: {
      for (const auto& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    }
    case ChatTemplateKind::llama3: {
      out += text_or(bos_id(), "<|begin_of_text|>");
      for (const auto& m : msgs)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + strip(m.content) + "<|eot_id|>";
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    }
    case ChatTemplateKind::gemma: {
      // Gemma-2-it raises on a system message; the assistant's role is written "model".
      if (!msgs.empty() && msgs[0].role == "system")
        fail("chat template gemma",
             "the Gemma template has no system role; put the instructions in the first user message");
      check_alternation("gemma", msgs, 0);
      out += text_or(bos_id(), "<bos>");
      for (const auto& m : msgs)
        out += "<start_of_turn>" + std::string(m.role == "assistant" ? "model" : "user") + "\n" + strip(m.content) +
               "<end_of_turn>\n";
      if (add_generation_prompt) out += "<start_of_turn>model\n";
      break;
    }
  }
  return out;
}

}  // namespace rhead
