// Porter stemmer, behaving exactly like NLTK's PorterStemmer() in its default
// mode (NLTK_EXTENSIONS), which is what the rouge_score package uses.
//
// On top of Porter's 1980 algorithm, that mode
//  - lower-cases the word first;
//  - returns a fixed stem for a small pool of irregular forms ("skies" -> "sky",
//    "dying" -> "die", "news" -> "news", "innings" -> "inning", ...); the pool is
//    looked up with the word as given, before lower-casing, as NLTK does;
//  - leaves words of one or two characters unchanged (apart from lower-casing);
//  - step 1a: "ies" -> "ie" for four-letter words ("ties" -> "tie");
//  - step 1b: "ied" -> "ie" for four-letter words, else "ied" -> "i";
//  - lets a two-letter vowel+consonant stem count as *o (cvc) too;
//  - step 1c: y -> i only after a consonant that is not the first letter;
//  - step 2: "alli" -> "al" first (then step 2 again), "bli" -> "ble",
//    "fulli" -> "ful", and "logi" -> "log" measured with the "l" kept.
//
// Words are UTF-8. Lengths and letter comparisons are made on code points, as
// Python does on str. Lower-casing covers ASCII and the common Latin-1, Latin
// Extended-A, Greek and Cyrillic capitals; other non-ASCII characters are kept as
// they are (they are consonants to the algorithm). Bytes that are not valid
// UTF-8 are passed through unchanged.
#pragma once

#include <string>
#include <string_view>

namespace rhead {

// The stem of one word (no spaces expected; none are treated specially).
std::string porter_stem(std::string_view word);

namespace text {

// Decodes UTF-8 into code points. A byte that does not start a valid sequence is
// mapped to 0xDC00 + byte (as Python's "surrogateescape"), so encode() restores it.
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);

// Simple (one to one) lower-casing of one code point: ASCII, Latin-1, Latin
// Extended-A, Greek and Cyrillic capitals; everything else is returned unchanged.
char32_t simple_lower(char32_t c);

}  // namespace text
}  // namespace rhead
