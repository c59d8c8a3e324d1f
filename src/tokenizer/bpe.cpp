// The BPE merge loop shared by both families, and the per-segment encoders around it:
// SentencePiece normalisation (spaces -> "▁", prefix, optional whitespace collapsing,
// byte fallback) and byte-level encoding (regex words, bytes -> printable characters).
#include <algorithm>

#include "io/error.h"
#include "tokenizer/tokenizer_core.h"

namespace rhead::detail {

namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81";  // U+2581 "▁"

// One symbol of a word being merged; symbols form a doubly linked list in text order.
struct Symbol {
  int32_t id;      // vocabulary id, -1 for a character the vocabulary lacks
  int32_t prev;    // index of the previous live symbol, -1 at the start
  int32_t next;    // index of the next live symbol, -1 at the end
  uint32_t begin;  // byte range in the word
  uint32_t end;
};

// A possible merge of symbols[left] and symbols[right] as they were when it was queued.
struct Candidate {
  double priority;
  int32_t left, right;
  int32_t left_id, right_id;
  int32_t result;
};

// Heap order: lowest priority first, then the leftmost pair. Both SentencePiece
// (best score, leftmost) and HF BPE (lowest rank, leftmost) break ties this way.
struct CandidateAfter {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.priority != b.priority) return a.priority > b.priority;
    return a.left > b.left;
  }
};

struct Workspace {
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
};

void push_candidate(const TokenizerCore& core, Workspace& ws, int32_t left) {
  if (left < 0) return;
  const Symbol& a = ws.symbols[left];
  if (a.next < 0 || a.id < 0) return;
  const Symbol& b = ws.symbols[a.next];
  if (b.id < 0) return;
  auto it = core.merges.find(merge_key(a.id, b.id));
  if (it == core.merges.end()) return;
  ws.heap.push_back({it->second.priority, left, a.next, a.id, b.id, it->second.result});
  std::push_heap(ws.heap.begin(), ws.heap.end(), CandidateAfter{});
}

// Merges ws.symbols in place until no adjacent pair has a rule. Stale candidates (one
// side already merged into something else) are recognised by their ids and dropped.
void merge_symbols(const TokenizerCore& core, Workspace& ws) {
  ws.heap.clear();
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(ws.symbols.size()); ++i) push_candidate(core, ws, i);
  while (!ws.heap.empty()) {
    std::pop_heap(ws.heap.begin(), ws.heap.end(), CandidateAfter{});
    Candidate c = ws.heap.back();
    ws.heap.pop_back();
    Symbol& a = ws.symbols[c.left];
    if (a.id != c.left_id || a.next != c.right) continue;
    Symbol& b = ws.symbols[c.right];
    if (b.id != c.right_id) continue;
    a.id = c.result;
    a.end = b.end;
    a.next = b.next;
    if (b.next >= 0) ws.symbols[b.next].prev = c.left;
    b.id = -2;  // dead; never matches a queued id again
    push_candidate(core, ws, a.prev);
    push_candidate(core, ws, c.left);
  }
}

bool mergeable_kind(TokenKind kind) {
  return kind == TokenKind::normal || kind == TokenKind::user_defined || kind == TokenKind::unused;
}

void emit_unknown_bytes(const TokenizerCore& core, std::string_view bytes, std::vector<int32_t>& out) {
  if (core.byte_fallback) {
    bool all_bytes = true;
    for (unsigned char b : bytes) all_bytes = all_bytes && core.byte_token_ids[b] >= 0;
    if (all_bytes) {
      for (unsigned char b : bytes) out.push_back(core.byte_token_ids[b]);
      return;
    }
  }
  if (core.unk_id < 0)
    fail(core.source, "text holds a character the vocabulary cannot encode and there is no unknown token");
  out.push_back(core.unk_id);
}

// Merges the symbols of `word` in ws and appends their ids (an unknown symbol as its bytes).
void merge_and_emit(const TokenizerCore& core, std::string_view word, Workspace& ws, std::vector<int32_t>& out) {
  merge_symbols(core, ws);
  for (int32_t i = ws.symbols.empty() ? -1 : 0; i >= 0; i = ws.symbols[i].next) {
    const Symbol& s = ws.symbols[i];
    if (s.id >= 0)
      out.push_back(s.id);
    else
      emit_unknown_bytes(core, word.substr(s.begin, s.end - s.begin), out);
  }
}

// One SentencePiece word (already normalised, "▁" for spaces).
void encode_sentencepiece_word(const TokenizerCore& core, std::string_view word, Workspace& ws,
                               std::vector<int32_t>& out) {
  ws.symbols.clear();
  for (size_t i = 0; i < word.size();) {
    size_t len = utf8_char_length(word, i);
    if (len == 0) len = 1;  // a stray byte stands alone and falls back to its byte token
    int32_t id = core.find(word.substr(i, len));
    if (id >= 0 && core.merge_by_score && !mergeable_kind(core.kinds[id])) id = -1;
    int32_t index = static_cast<int32_t>(ws.symbols.size());
    ws.symbols.push_back({id, index - 1, -1, static_cast<uint32_t>(i), static_cast<uint32_t>(i + len)});
    if (index > 0) ws.symbols[index - 1].next = index;
    i += len;
  }
  merge_and_emit(core, word, ws, out);
}

// SentencePiece normalisation of one segment: optional trimming/collapsing of spaces,
// spaces to "▁", and the dummy prefix.
std::string normalize_sentencepiece(const TokenizerCore& core, std::string_view text, bool at_text_start) {
  std::string collapsed;
  if (core.remove_extra_whitespaces) {
    collapsed.reserve(text.size());
    bool pending_space = false;
    for (char c : text) {
      if (c == ' ') {
        pending_space = !collapsed.empty();
        continue;
      }
      if (pending_space) collapsed.push_back(' ');
      pending_space = false;
      collapsed.push_back(c);
    }
    text = collapsed;
  }
  std::string out;
  if (text.empty()) return out;
  out.reserve(text.size() + text.size() / 4 + 3);
  if (core.add_space_prefix && (core.prefix_every_segment || at_text_start)) out.append(kMetaspace);
  for (char c : text) {
    if (c == ' ')
      out.append(kMetaspace);
    else
      out.push_back(c);
  }
  return out;
}

bool starts_with_metaspace(std::string_view s, size_t i) { return s.substr(i, kMetaspace.size()) == kMetaspace; }

}  // namespace

size_t utf8_char_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t len;
  uint32_t cp;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8.
  static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

const std::array<std::string, 256>& byte_to_unicode() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    auto printable = [](int b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); };
    int next_free = 256;
    for (int b = 0; b < 256; ++b) {
      uint32_t cp = printable(b) ? b : next_free++;
      std::string s;
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
      t[b] = s;
    }
    return t;
  }();
  return table;
}

int byte_from_unicode(std::string_view ch) {
  static const std::unordered_map<std::string, int> inverse = [] {
    std::unordered_map<std::string, int> m;
    const auto& forward = byte_to_unicode();
    for (int b = 0; b < 256; ++b) m[forward[b]] = b;
    return m;
  }();
  auto it = inverse.find(std::string(ch));
  return it == inverse.end() ? -1 : it->second;
}

void encode_sentencepiece_segment(const TokenizerCore& core, std::string_view text, bool at_text_start,
                                  std::vector<int32_t>& out) {
  std::string normalized = normalize_sentencepiece(core, text, at_text_start);
  if (normalized.empty()) return;
  Workspace ws;
  std::string_view all = normalized;
  if (!core.words_split_before_metaspace) {
    encode_sentencepiece_word(core, all, ws, out);
    return;
  }
  // Words start at a "▁" that follows something other than "▁"; no merge crosses that
  // boundary (checked when the vocabulary was loaded), so each word can be merged alone
  // and repeated words reuse their ids.
  std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> cache;  // word -> [begin, end) in `out`
  size_t start = 0;
  auto flush = [&](size_t end) {
    if (end <= start) return;
    std::string_view word = all.substr(start, end - start);
    auto it = cache.find(word);
    if (it != cache.end()) {
      for (uint32_t k = it->second.first; k < it->second.second; ++k) {
        int32_t id = out[k];  // a copy: push_back may move the vector
        out.push_back(id);
      }
    } else {
      uint32_t begin = static_cast<uint32_t>(out.size());
      encode_sentencepiece_word(core, word, ws, out);
      cache.emplace(word, std::make_pair(begin, static_cast<uint32_t>(out.size())));
    }
    start = end;
  };
  for (size_t i = kMetaspace.size(); i < all.size(); ++i) {
    if (starts_with_metaspace(all, i) && !(i >= kMetaspace.size() && starts_with_metaspace(all, i - kMetaspace.size())))
      flush(i);
  }
  flush(all.size());
}

namespace {

void encode_byte_level_word(const TokenizerCore& core, std::string_view word, Workspace& ws,
                            std::vector<int32_t>& out) {
  const auto& chars = byte_to_unicode();
  if (core.ignore_merges) {
    std::string mapped;
    for (unsigned char b : word) mapped += chars[b];
    int32_t id = core.find(mapped);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  ws.symbols.clear();
  for (size_t i = 0; i < word.size(); ++i) {
    int32_t index = static_cast<int32_t>(i);
    ws.symbols.push_back({core.byte_char_ids[static_cast<unsigned char>(word[i])], index - 1,
                          i + 1 < word.size() ? index + 1 : -1, static_cast<uint32_t>(i),
                          static_cast<uint32_t>(i + 1)});
  }
  merge_and_emit(core, word, ws, out);
}

}  // namespace

void encode_byte_level_segment(const TokenizerCore& core, std::string_view text, std::vector<int32_t>& out) {
  if (text.empty()) return;
  std::string prefixed;
  if (core.byte_level_add_prefix_space && text.front() != ' ') {
    prefixed = " " + std::string(text);
    text = prefixed;
  }
  // The regexes need valid UTF-8; a stray byte becomes a word of its own.
  std::vector<std::string_view> words;
  size_t run_start = 0;
  auto flush_run = [&](size_t end) {
    if (end <= run_start) return;
    std::string_view run = text.substr(run_start, end - run_start);
    if (core.pre_tokenizer.empty())
      words.push_back(run);
    else
      core.pre_tokenizer.split(run, words);
  };
  for (size_t i = 0; i < text.size();) {
    size_t len = utf8_char_length(text, i);
    if (len == 0) {
      flush_run(i);
      words.push_back(text.substr(i, 1));
      run_start = ++i;
    } else {
      i += len;
    }
  }
  flush_run(text.size());

  Workspace ws;
  std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> cache;  // word -> [begin, end) in `out`
  for (std::string_view word : words) {
    auto it = cache.find(word);
    if (it != cache.end()) {
      for (uint32_t k = it->second.first; k < it->second.second; ++k) {
        int32_t id = out[k];  // a copy: push_back may move the vector
        out.push_back(id);
      }
      continue;
    }
    uint32_t begin = static_cast<uint32_t>(out.size());
    encode_byte_level_word(core, word, ws, out);
    cache.emplace(word, std::make_pair(begin, static_cast<uint32_t>(out.size())));
  }
}

}  // namespace rhead::detail
