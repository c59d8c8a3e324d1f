// Text <-> token ids with Hugging Face parity, for the two tokenizer families that the
// retrieval-head models use:
//   - SentencePiece-style BPE (Llama-2, Mistral, Yi, tok512): pieces merged by score (or by
//     merge rank when read from tokenizer.json), "▁" marks a space, unknown characters fall
//     back to <0xXX> byte tokens;
//   - byte-level BPE (GPT-2, Llama-3, Qwen2, DeepSeek): a regex pre-tokenizer splits the
//     text into words, each word's bytes are mapped to printable characters and merged by
//     merge rank.
// Special and added tokens are matched as atoms before either model sees the text.
// A Tokenizer is immutable after loading, cheap to copy (shared state) and safe to use
// from several threads at once.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rhead {

class GGUFFile;

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

enum class ChatTemplateKind { llama2, mistral, chatml, llama3, gemma };

// "llama2", "mistral", "chatml", "llama3", "gemma" -> kind; anything else -> nullopt.
std::optional<ChatTemplateKind> chat_template_from_name(const std::string& name);
std::string chat_template_name(ChatTemplateKind kind);
// The known names, for help texts and errors: "llama2, mistral, chatml, llama3 or gemma".
std::string chat_template_names();
// Recognises one of the supported templates from a Jinja template text; nullopt if unknown.
std::optional<ChatTemplateKind> chat_template_from_text(const std::string& jinja);

// Which algorithm a tokenizer runs; exposed for display and tests.
enum class TokenizerFamily { sentencepiece_bpe, byte_level_bpe };

namespace detail {
struct TokenizerCore;
}

class Tokenizer {
 public:
  // tokenizer.ggml.* metadata (model "llama" or "gpt2"). Errors name the GGUF path.
  static Tokenizer from_gguf(const GGUFFile& gguf);
  // An HF folder: tokenizer.json if present, else tokenizer.model; tokenizer_config.json
  // (when present) supplies add_bos_token, legacy and chat_template.
  static Tokenizer from_hf_dir(const std::string& dir);
  // An HF tokenizer.json file on its own (config read from a sibling tokenizer_config.json).
  static Tokenizer from_tokenizer_json(const std::string& path);
  // A SentencePiece tokenizer.model (protobuf), BPE type only.
  static Tokenizer from_sentencepiece_model(const std::string& path);
  // A llama2.c tokenizer .bin (e.g. tok512.bin): SentencePiece-style, BOS 1, EOS 2.
  static Tokenizer from_llama2c(const std::string& tok_bin_path);
  // Picks one of the above from what `path` is: a .gguf file, a directory, a
  // tokenizer.json, a .model file, or a llama2.c .bin.
  static Tokenizer load(const std::string& path);

  // Encodes `text`. BOS is prepended only when add_bos is true *and* the model adds one
  // (add_bos_token). With parse_special, control tokens written in the text ("<s>",
  // "<|im_start|>") become their ids; without it they are encoded as plain text.
  // User-defined added tokens are always atoms, as in HF.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special = true) const;
  // Concatenates the pieces; skip_special drops control tokens (BOS, EOS, <|eot_id|>...).
  // SentencePiece models drop the one space that encoding put in front of the text.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const;

  // The text of one token as it appears in decoded output: byte tokens give their byte,
  // "▁" gives a space, byte-level tokens their bytes, special tokens their text.
  std::string piece(int32_t id) const;
  // The raw vocabulary string (e.g. "▁the", "Ġthe", "<0x0A>").
  const std::string& token_text(int32_t id) const;
  // Id of a vocabulary string, or -1.
  int32_t token_id(std::string_view text) const;

  int32_t n_vocab() const;
  int32_t bos_id() const;  // -1 if none
  int32_t eos_id() const;  // -1 if none
  bool add_bos_token() const;
  bool is_special(int32_t id) const;            // control / added special tokens
  bool is_end_of_generation(int32_t id) const;  // eos, <|eot_id|>, <|im_end|>, <|end|> ...
  TokenizerFamily family() const;

  // The template recognised from GGUF tokenizer.chat_template or tokenizer_config.json;
  // nullopt when there is none or it is not one of the supported kinds.
  std::optional<ChatTemplateKind> chat_template() const;
  // The raw Jinja text as found in the model files ("" if none).
  const std::string& chat_template_text() const;
  // Renders messages as the model's published template does. The result starts with the
  // BOS text where the template writes one, so encode it with add_bos = false.
  std::string apply_chat_template(ChatTemplateKind kind, const std::vector<ChatMessage>& msgs,
                                  bool add_generation_prompt) const;
  // Uses the recognised template; Error naming the model if it has none or an unknown one.
  std::string apply_chat_template(const std::vector<ChatMessage>& msgs, bool add_generation_prompt) const;

  // Where the tokenizer was loaded from (for messages).
  const std::string& source() const;

 private:
  explicit Tokenizer(std::shared_ptr<const detail::TokenizerCore> core) : core_(std::move(core)) {}
  std::shared_ptr<const detail::TokenizerCore> core_;
};

// The chat template of a prompt: the one named (refused unless known), else the model's own
// unless `no_chat`; nullopt for a plain prompt.
std::optional<ChatTemplateKind> choose_chat_template(const Tokenizer& tok, const std::string& name, bool no_chat);

}  // namespace rhead
