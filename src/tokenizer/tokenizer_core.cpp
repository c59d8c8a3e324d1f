// finalize_core: turns a loader's vocabulary and options into the lookup tables the
// encoder and decoder use (token -> id, merge rules, byte tokens, decoded bytes, specials).
#include <algorithm>
#include <cstdio>

#include "io/error.h"
#include "tokenizer/tokenizer_core.h"

namespace rhead::detail {

namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";

// "<0x0A>" -> 10; -1 for anything else.
int parse_byte_token(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  int hi = hex(text[3]), lo = hex(text[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

bool mergeable(TokenKind kind) {
  return kind == TokenKind::normal || kind == TokenKind::user_defined || kind == TokenKind::unused;
}

std::string replace_metaspace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    if (text.substr(i, kMetaspace.size()) == kMetaspace) {
      out.push_back(' ');
      i += kMetaspace.size();
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

// The bytes of a byte-level token; the raw text when some character is outside the map
// (as HF's ByteLevel decoder does).
std::string byte_level_bytes(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    size_t len = utf8_char_length(text, i);
    if (len == 0) return std::string(text);
    int b = byte_from_unicode(text.substr(i, len));
    if (b < 0) return std::string(text);
    out.push_back(static_cast<char>(b));
    i += len;
  }
  return out;
}

}  // namespace

void finalize_core(TokenizerCore& core) {
  const std::string& where = core.source;
  const size_t n = core.tokens.size();
  if (n == 0) fail(where, "tokenizer has an empty vocabulary");
  if (n > 0x7FFFFFFF) fail(where, "tokenizer vocabulary is too large");
  if (core.scores.empty()) core.scores.assign(n, 0.0f);
  if (core.kinds.empty()) core.kinds.assign(n, TokenKind::normal);
  if (core.scores.size() != n)
    fail(where, "tokenizer has " + std::to_string(core.scores.size()) + " scores for " + std::to_string(n) + " tokens");
  if (core.kinds.size() != n)
    fail(where,
         "tokenizer has " + std::to_string(core.kinds.size()) + " token types for " + std::to_string(n) + " tokens");
  auto check_id = [&](int32_t id, const char* what) {
    if (id < -1 || id >= static_cast<int32_t>(n))
      fail(where,
           std::string(what) + " id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(n));
  };
  check_id(core.bos_id, "BOS");
  check_id(core.eos_id, "EOS");
  check_id(core.unk_id, "unknown-token");
  for (int32_t id : core.extra_eog_ids) check_id(id, "end-of-generation");

  core.token_ids.clear();
  core.token_ids.reserve(n * 2);
  for (size_t id = 0; id < n; ++id)  // first id wins; empty texts fill holes in sparse vocabularies
    if (!core.tokens[id].empty()) core.token_ids.emplace(core.tokens[id], static_cast<int32_t>(id));

  core.byte_token_ids.fill(-1);
  core.byte_char_ids.fill(-1);
  if (core.family == TokenizerFamily::sentencepiece_bpe) {
    for (size_t id = 0; id < n; ++id) {
      int b = parse_byte_token(core.tokens[id]);
      if (b < 0 || (core.kinds[id] != TokenKind::byte && core.kinds[id] != TokenKind::normal)) continue;
      core.kinds[id] = TokenKind::byte;
      if (core.byte_token_ids[b] < 0) core.byte_token_ids[b] = static_cast<int32_t>(id);
    }
  } else {
    const auto& chars = byte_to_unicode();
    for (int b = 0; b < 256; ++b) core.byte_char_ids[b] = core.find(chars[b]);
  }

  // Merge rules.
  core.merges.clear();
  if (core.merge_by_score) {
    // SentencePiece: any piece that is the concatenation of two pieces can be formed by
    // merging them, and higher scores merge first.
    for (size_t id = 0; id < n; ++id) {
      if (!mergeable(core.kinds[id])) continue;
      std::string_view text = core.tokens[id];
      for (size_t cut = 1; cut < text.size(); ++cut) {
        if ((static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) continue;  // inside a character
        int32_t left = core.find(text.substr(0, cut));
        int32_t right = core.find(text.substr(cut));
        if (left < 0 || right < 0 || !mergeable(core.kinds[left]) || !mergeable(core.kinds[right])) continue;
        MergeRule rule{-static_cast<double>(core.scores[id]), static_cast<int32_t>(id)};
        auto [it, inserted] = core.merges.emplace(merge_key(left, right), rule);
        if (!inserted && rule.priority < it->second.priority) it->second = rule;
      }
    }
  } else {
    core.merges.reserve(core.merge_list.size() * 2);
    for (size_t rank = 0; rank < core.merge_list.size(); ++rank) {
      const auto& [a, b] = core.merge_list[rank];
      int32_t left = core.find(a), right = core.find(b), result = core.find(a + b);
      // A rule naming tokens the vocabulary lacks can never fire; HF refuses such files,
      // llama.cpp ignores the rule. Ignoring it keeps odd vocab-only files usable.
      if (left < 0 || right < 0 || result < 0) continue;
      core.merges.emplace(merge_key(left, right), MergeRule{static_cast<double>(rank), result});  // first rank wins
    }
  }

  // Could a merge ever join a non-"▁" character to a following "▁"? If not, SentencePiece
  // text can be cut into words before each such "▁".
  if (core.family == TokenizerFamily::sentencepiece_bpe) {
    bool joins = false;
    for (size_t id = 0; id < n && !joins; ++id) {
      if (!mergeable(core.kinds[id])) continue;
      std::string_view text = core.tokens[id];
      for (size_t pos = text.find(kMetaspace, 1); pos != std::string_view::npos; pos = text.find(kMetaspace, pos + 1)) {
        if (pos < kMetaspace.size() || text.substr(pos - kMetaspace.size(), kMetaspace.size()) != kMetaspace) {
          joins = true;
          break;
        }
      }
    }
    core.words_split_before_metaspace = !joins || core.split_words_on_metaspace;
  }

  // Atoms: when a loader gave none, the vocabulary's own types say which tokens are matched
  // whole (as llama.cpp does for GGUF): control and unknown tokens with parse_special,
  // user-defined tokens always.
  if (core.atoms.empty()) {
    for (size_t id = 0; id < n; ++id) {
      TokenKind kind = core.kinds[id];
      if (kind != TokenKind::control && kind != TokenKind::unknown && kind != TokenKind::user_defined) continue;
      if (core.tokens[id].empty()) continue;
      core.atoms.push_back({core.tokens[id], static_cast<int32_t>(id), kind != TokenKind::user_defined, false, false});
    }
  }
  for (const auto& atom : core.atoms) {
    check_id(atom.id, "added-token");
    if (atom.text.empty()) fail(where, "added token " + std::to_string(atom.id) + " has empty text");
  }
  std::stable_sort(core.atoms.begin(), core.atoms.end(),
                   [](const AtomToken& a, const AtomToken& b) { return a.text.size() > b.text.size(); });
  for (auto& bucket : core.atoms_by_first_byte) bucket.clear();
  for (uint32_t i = 0; i < core.atoms.size(); ++i)
    core.atoms_by_first_byte[static_cast<unsigned char>(core.atoms[i].text[0])].push_back(i);

  // Decoded bytes of every token.
  core.decoded.assign(n, std::string());
  for (size_t id = 0; id < n; ++id) {
    const std::string& text = core.tokens[id];
    TokenKind kind = core.kinds[id];
    if (kind == TokenKind::byte) {
      core.decoded[id] = std::string(1, static_cast<char>(parse_byte_token(text)));
    } else if (kind == TokenKind::control || kind == TokenKind::unknown) {
      core.decoded[id] = text;  // special tokens are written in plain text in every family
    } else if (kind == TokenKind::user_defined && core.family == TokenizerFamily::byte_level_bpe) {
      core.decoded[id] = text;
    } else if (core.family == TokenizerFamily::sentencepiece_bpe) {
      // User-defined pieces too: Gemma's space-run tokens "▁▁".. decode to spaces, as both
      // SentencePiece and HF's decoder (which runs on added tokens as well) write them.
      core.decoded[id] = replace_metaspace(text);
    } else {
      core.decoded[id] = byte_level_bytes(text);
    }
  }

  // Special tokens (dropped by decode with skip_special) and end-of-generation tokens.
  core.special.assign(n, 0);
  for (size_t id = 0; id < n; ++id)
    core.special[id] = core.kinds[id] == TokenKind::control || core.kinds[id] == TokenKind::unknown;
  for (const auto& atom : core.atoms)
    if (atom.special) core.special[atom.id] = 1;
  core.end_of_generation.assign(n, 0);
  if (core.eos_id >= 0) core.end_of_generation[core.eos_id] = 1;
  for (int32_t id : core.extra_eog_ids) core.end_of_generation[id] = 1;
  // Turn-ending tokens of the common chat formats, when the model has them as specials.
  for (const char* text : {"<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<|endoftext|>", "<|end_of_text|>",
                           "<end_of_turn>", "<|EOT|>", "</s>",
                           "<\xEF\xBD\x9C"
                           "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"}) {
    int32_t id = core.find(text);
    if (id >= 0 && core.special[id]) core.end_of_generation[id] = 1;
  }
}

}  // namespace rhead::detail
