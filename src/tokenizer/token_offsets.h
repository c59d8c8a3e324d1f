// Where each token of an encoded text came from: byte offsets into the text, recovered by
// walking the tokens' pieces along it (no offset tracking inside the tokenizer needed).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace rhead {

// Bytes [begin, end) of the text that one token was encoded from.
struct ByteRange {
  int64_t begin = 0;
  int64_t end = 0;
};

// One range per id of `ids`, which must be `text` encoded without BOS (as
// tok.encode(text, false, ...) gives). text[begin, end) equals the token's piece, except:
//  - SentencePiece's implied leading space (its dummy prefix) is not in the text, so a
//    piece " word" at the very start maps to the bytes "word";
//  - a token whose piece cannot be found where the walk stands (a normalizer changed the
//    text) gets the empty range at that point.
std::vector<ByteRange> token_byte_ranges(const Tokenizer& tok, const std::string& text,
                                         const std::vector<int32_t>& ids);

}  // namespace rhead
