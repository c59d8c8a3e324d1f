// Byte ranges of tokens in the text they were encoded from.
#include "tokenizer/token_offsets.h"

namespace rhead {

std::vector<ByteRange> token_byte_ranges(const Tokenizer& tok, const std::string& text,
                                         const std::vector<int32_t>& ids) {
  std::vector<ByteRange> ranges;
  ranges.reserve(ids.size());
  int64_t at = 0;
  const int64_t n = static_cast<int64_t>(text.size());
  auto matches = [&](const std::string& piece, int64_t where) {
    return where + static_cast<int64_t>(piece.size()) <= n && text.compare(where, piece.size(), piece) == 0;
  };
  for (int32_t id : ids) {
    const std::string piece = tok.is_special(id) ? tok.token_text(id) : tok.piece(id);
    if (!piece.empty() && matches(piece, at)) {
      ranges.push_back({at, at + static_cast<int64_t>(piece.size())});
      at += static_cast<int64_t>(piece.size());
      continue;
    }
    // SentencePiece's dummy prefix: a space that the text does not hold.
    if (piece.size() > 1 && piece[0] == ' ' && matches(piece.substr(1), at) && (at == 0 || text[at - 1] != ' ')) {
      ranges.push_back({at, at + static_cast<int64_t>(piece.size()) - 1});
      at += static_cast<int64_t>(piece.size()) - 1;
      continue;
    }
    ranges.push_back({at, at});
  }
  return ranges;
}

}  // namespace rhead
