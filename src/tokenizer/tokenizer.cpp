// Tokenizer: picks a loader for a path, splits input around added/special tokens, runs the
// family's BPE on the text between them, and decodes ids back to bytes.
//
// Known differences from the reference tokenizers, on purpose or not yet done:
//   - NFC normalisation (Qwen2/Qwen3 tokenizer.json) is recorded but not applied: input
//     that is not already NFC may encode differently from HF. English text is unaffected.
//   - decode() returns the exact bytes of the pieces. HF's clean_up_tokenization_spaces
//     (" ." -> ".") and its U+FFFD replacement of broken UTF-8 are not applied.
//   - SentencePiece "unused" pieces are not re-segmented (no supported model has any).
//   - GGUF and llama2.c files do not record SentencePiece's remove_extra_whitespaces, so
//     tok512 loaded from them keeps runs of spaces that tokenizer.model would collapse.
//   - SentencePiece text that follows a special token gets the "▁" prefix again, as HF's
//     legacy Llama tokenizers do ("<s>[INST]" -> <s> "▁[" ...); llama.cpp adds it only at
//     the start of the text. tokenizer_config.json "legacy": false switches to that.
#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <fstream>

#include "io/error.h"
#include "io/gguf.h"
#include "io/json.h"
#include "tokenizer/tokenizer_core.h"

namespace rhead {

using detail::TokenizerCore;

namespace {

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && std::string_view(s).substr(s.size() - suffix.size()) == suffix;
}

std::string file_magic(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  return std::string(magic, static_cast<size_t>(in.gcount()));
}

bool is_space_byte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

}  // namespace

Tokenizer Tokenizer::from_gguf(const GGUFFile& gguf) {
  return Tokenizer(guard_input(gguf.path(), [&] { return detail::load_gguf_core(gguf); }));
}

Tokenizer Tokenizer::from_tokenizer_json(const std::string& path) {
  return Tokenizer(guard_input(path, [&] { return detail::load_tokenizer_json_core(path); }));
}

Tokenizer Tokenizer::from_sentencepiece_model(const std::string& path) {
  return Tokenizer(guard_input(path, [&] { return detail::load_sentencepiece_model_core(path); }));
}

Tokenizer Tokenizer::from_llama2c(const std::string& tok_bin_path) {
  return Tokenizer(guard_input(tok_bin_path, [&] { return detail::load_llama2c_core(tok_bin_path); }));
}

Tokenizer Tokenizer::from_hf_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) fail(dir, "not a directory");
  fs::path json = fs::path(dir) / "tokenizer.json";
  if (fs::exists(json)) return from_tokenizer_json(json.string());
  fs::path model = fs::path(dir) / "tokenizer.model";
  if (fs::exists(model)) return from_sentencepiece_model(model.string());
  fail(dir, "holds neither tokenizer.json nor tokenizer.model");
}

Tokenizer Tokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) fail(path, "no such file or directory");
  if (fs::is_directory(path)) return from_hf_dir(path);
  std::string magic = file_magic(path);
  if (magic == "GGUF") return from_gguf(GGUFFile::open(path));
  if (ends_with(path, ".json")) return from_tokenizer_json(path);
  if (ends_with(path, ".model")) return from_sentencepiece_model(path);
  if (ends_with(path, ".bin")) return from_llama2c(path);
  fail(path,
       "cannot tell the tokenizer format (expected a .gguf, an HF folder, tokenizer.json, "
       "tokenizer.model or a llama2.c .bin)");
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
  const TokenizerCore& core = *core_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_bos && core.add_bos && core.bos_id >= 0) out.push_back(core.bos_id);

  auto encode_segment = [&](size_t begin, size_t end) {
    if (end <= begin) return;
    std::string_view segment = text.substr(begin, end - begin);
    if (core.family == TokenizerFamily::sentencepiece_bpe)
      detail::encode_sentencepiece_segment(core, segment, begin == 0, out);
    else
      detail::encode_byte_level_segment(core, segment, out);
  };

  // Added tokens are found leftmost-longest in the raw text, as HF does before normalising.
  size_t segment_start = 0;
  size_t i = 0;
  while (i < text.size()) {
    const detail::AtomToken* hit = nullptr;
    for (uint32_t index : core.atoms_by_first_byte[static_cast<unsigned char>(text[i])]) {
      const detail::AtomToken& atom = core.atoms[index];
      if (atom.special && !parse_special) continue;
      if (text.substr(i, atom.text.size()) == atom.text) {
        hit = &atom;
        break;  // atoms are sorted longest first
      }
    }
    if (!hit) {
      ++i;
      continue;
    }
    size_t segment_end = i;
    if (hit->lstrip)
      while (segment_end > segment_start && is_space_byte(text[segment_end - 1])) --segment_end;
    encode_segment(segment_start, segment_end);
    out.push_back(hit->id);
    i += hit->text.size();
    if (hit->rstrip)
      while (i < text.size() && is_space_byte(text[i])) ++i;
    segment_start = i;
  }
  encode_segment(segment_start, text.size());
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const TokenizerCore& core = *core_;
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab())
      fail(core.source,
           "cannot decode token id " + std::to_string(id) + " (vocabulary has " + std::to_string(n_vocab()) + ")");
    if (skip_special && core.special[id]) continue;
    out += core.decoded[id];
  }
  // SentencePiece put one "▁" in front of the text; HF's Strip decoder takes it off again.
  if (core.decode_strips_prefix_space && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

std::string Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= n_vocab()) fail(core_->source, "token id " + std::to_string(id) + " is outside the vocabulary");
  return core_->decoded[id];
}

const std::string& Tokenizer::token_text(int32_t id) const {
  if (id < 0 || id >= n_vocab()) fail(core_->source, "token id " + std::to_string(id) + " is outside the vocabulary");
  return core_->tokens[id];
}

int32_t Tokenizer::token_id(std::string_view text) const { return core_->find(text); }
int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(core_->tokens.size()); }
int32_t Tokenizer::bos_id() const { return core_->bos_id; }
int32_t Tokenizer::eos_id() const { return core_->eos_id; }
bool Tokenizer::add_bos_token() const { return core_->add_bos && core_->bos_id >= 0; }
TokenizerFamily Tokenizer::family() const { return core_->family; }
const std::string& Tokenizer::source() const { return core_->source; }

bool Tokenizer::is_special(int32_t id) const { return id >= 0 && id < n_vocab() && core_->special[id]; }

bool Tokenizer::is_end_of_generation(int32_t id) const {
  return id >= 0 && id < n_vocab() && core_->end_of_generation[id];
}

std::optional<ChatTemplateKind> Tokenizer::chat_template() const {
  if (core_->chat_template_text.empty()) return std::nullopt;
  return chat_template_from_text(core_->chat_template_text);
}

const std::string& Tokenizer::chat_template_text() const { return core_->chat_template_text; }

std::string Tokenizer::apply_chat_template(const std::vector<ChatMessage>& msgs, bool add_generation_prompt) const {
  if (core_->chat_template_text.empty())
    fail(core_->source, "the model has no chat template; pass one by name (" + chat_template_names() + ")");
  auto kind = chat_template();
  if (!kind) fail(core_->source, "unknown chat template (supported: " + chat_template_names() + "); pass one by name");
  return apply_chat_template(*kind, msgs, add_generation_prompt);
}

}  // namespace rhead
