// Internal state of a Tokenizer, shared by the loaders (gguf, tokenizer.json,
// tokenizer.model, llama2.c .bin) and the encoding algorithms. Loaders fill the vocabulary
// and options, then call finalize_core() to build the lookup tables.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"

namespace rhead::detail {

// Same numbering as GGUF tokenizer.ggml.token_type and SentencePiece's piece type.
enum class TokenKind : uint8_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

// Hash/equality that let unordered_map<std::string, ...> be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct StringEqual {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};
using TokenIdMap = std::unordered_map<std::string, int32_t, StringHash, StringEqual>;

// One allowed merge of two adjacent tokens. Lower priority merges first; SentencePiece
// models use -score, merge-list models use the rank in the list.
struct MergeRule {
  double priority = 0;
  int32_t result = -1;
};

inline uint64_t merge_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// A token matched verbatim in the input before the BPE model runs.
struct AtomToken {
  std::string text;
  int32_t id = -1;
  bool special = false;  // only an atom when parse_special is on
  bool lstrip = false;   // eats whitespace on its left (HF AddedToken.lstrip)
  bool rstrip = false;   // eats whitespace on its right
};

struct TokenizerCore {
  std::string source;  // path shown in errors
  TokenizerFamily family = TokenizerFamily::sentencepiece_bpe;

  // Vocabulary, indexed by id.
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<TokenKind> kinds;

  // Merge rules. SentencePiece vocabularies get them from scores (merge_by_score);
  // tokenizer.json and GGUF gpt2 vocabularies from their ordered merge list.
  bool merge_by_score = false;
  std::vector<std::pair<std::string, std::string>> merge_list;  // rank order

  int32_t unk_id = -1;
  bool byte_fallback = false;

  // SentencePiece normalisation: spaces become "▁", and a "▁" goes in front of the text.
  bool add_space_prefix = true;
  bool prefix_every_segment = true;        // HF legacy: after each special token too
  bool remove_extra_whitespaces = false;   // SentencePiece: trim and collapse runs of ' '
  bool split_words_on_metaspace = false;   // tokenizer.json Metaspace(split = true)
  bool decode_strips_prefix_space = true;  // decode drops one leading space (HF Strip decoder)

  // Byte-level BPE.
  bool ignore_merges = false;  // Llama-3: a word that is already a token is not merged
  bool byte_level_add_prefix_space = false;
  PreTokenizer pre_tokenizer;
  bool nfc_normalizer = false;  // recorded, not applied (see known gaps in tokenizer.cpp)

  std::vector<AtomToken> atoms;  // added/special tokens, matched as whole strings

  int32_t bos_id = -1;
  int32_t eos_id = -1;
  bool add_bos = false;
  std::vector<int32_t> extra_eog_ids;  // eot/eom ids named by the model files
  std::string chat_template_text;

  // ---- built by finalize_core ----
  TokenIdMap token_ids;
  std::unordered_map<uint64_t, MergeRule> merges;
  std::array<int32_t, 256> byte_token_ids{};  // <0xXX> tokens, -1 where absent
  std::array<int32_t, 256> byte_char_ids{};   // byte-level: token of each byte's mapped character
  std::vector<std::string> decoded;           // bytes each token contributes to output
  std::vector<uint8_t> special;               // 1: skipped by decode(skip_special)
  std::vector<uint8_t> end_of_generation;
  // First byte -> indices into atoms (longest first), to scan the input quickly.
  std::array<std::vector<uint32_t>, 256> atoms_by_first_byte;
  // SentencePiece only: true when no piece joins a non-"▁" character to a following "▁",
  // so the text can be cut before every such "▁" and each word merged (and cached) alone.
  bool words_split_before_metaspace = false;

  int32_t find(std::string_view text) const {
    auto it = token_ids.find(text);
    return it == token_ids.end() ? -1 : it->second;
  }
};

// Builds token_ids, merges, byte ids, decoded pieces and the special/eog tables; checks
// that ids are in range. Errors name core.source.
void finalize_core(TokenizerCore& core);

// The GPT-2 byte <-> printable character map (bytes 33..126 etc. map to themselves,
// the rest to U+0100 upwards).
const std::array<std::string, 256>& byte_to_unicode();
// Inverse: UTF-8 of a mapped character -> byte; -1 if `ch` is not in the map.
int byte_from_unicode(std::string_view ch);

// Encoding of one piece of text that holds no atoms; appends ids to `out`.
// `at_text_start`: the segment begins the whole input (SentencePiece "first" prefix).
void encode_sentencepiece_segment(const TokenizerCore& core, std::string_view text, bool at_text_start,
                                  std::vector<int32_t>& out);
void encode_byte_level_segment(const TokenizerCore& core, std::string_view text, std::vector<int32_t>& out);

// Loaders shared with tokenizer.cpp.
std::shared_ptr<TokenizerCore> load_gguf_core(const GGUFFile& gguf);
std::shared_ptr<TokenizerCore> load_tokenizer_json_core(const std::string& path);
std::shared_ptr<TokenizerCore> load_sentencepiece_model_core(const std::string& path);
std::shared_ptr<TokenizerCore> load_llama2c_core(const std::string& path);
// Applies tokenizer_config.json (add_bos_token, legacy, chat_template) if the file exists.
void apply_tokenizer_config(TokenizerCore& core, const std::string& config_path);

// Length of the UTF-8 sequence starting at s[i], or 0 when it is not valid UTF-8.
size_t utf8_char_length(std::string_view s, size_t i);

}  // namespace rhead::detail
