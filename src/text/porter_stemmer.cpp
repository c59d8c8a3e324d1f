// Porter stemmer in NLTK's default (NLTK_EXTENSIONS) mode. See porter_stemmer.h
// for the list of departures from the 1980 paper that this mode makes.
//
// Every step follows the paper's rule tables. A table is scanned in order; the
// first rule whose suffix the word ends with decides: if its condition holds the
// suffix is replaced, otherwise the word is left as it is (later rules are not
// tried). Step 5a is the one exception, where both "e" rules are tried.
#include "text/porter_stemmer.h"

#include <array>
#include <utility>

namespace rhead {
namespace text {

std::u32string utf8_decode(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) {
      out.push_back(b0);
      ++i;
      continue;
    }
    int len = 0;
    char32_t cp = 0;
    char32_t min_cp = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2, cp = b0 & 0x1F, min_cp = 0x80;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3, cp = b0 & 0x0F, min_cp = 0x800;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4, cp = b0 & 0x07, min_cp = 0x10000;
    }
    bool ok = len > 0 && i + len <= n;
    for (int k = 1; ok && k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) {
        ok = false;
      } else {
        cp = (cp << 6) | (b & 0x3F);
      }
    }
    if (ok && (cp < min_cp || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (ok) {
      out.push_back(cp);
      i += len;
    } else {
      out.push_back(0xDC00 + b0);
      ++i;
    }
  }
  return out;
}

std::string utf8_encode(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c >= 0xDC80 && c <= 0xDCFF) {
      out.push_back(static_cast<char>(c - 0xDC00));  // an undecodable byte, restored
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

char32_t simple_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  // Latin-1 Supplement: A-grave .. Thorn, except the multiplication sign.
  if (c >= 0xC0 && c <= 0xDE) return c == 0xD7 ? c : c + 0x20;
  if (c < 0x100) return c;
  // Latin Extended-A: capital/small pairs, even or odd first by sub-range.
  if (c <= 0x12F) return (c % 2 == 0) ? c + 1 : c;
  if (c >= 0x132 && c <= 0x137) return (c % 2 == 0) ? c + 1 : c;
  if (c >= 0x139 && c <= 0x148) return (c % 2 == 1) ? c + 1 : c;
  if (c >= 0x14A && c <= 0x177) return (c % 2 == 0) ? c + 1 : c;
  if (c == 0x178) return 0xFF;
  if (c >= 0x179 && c <= 0x17E) return (c % 2 == 1) ? c + 1 : c;
  // Greek.
  if (c == 0x370 || c == 0x372 || c == 0x376) return c + 1;
  if (c == 0x37F) return 0x3F3;
  if (c == 0x3CF) return 0x3D7;
  if (c >= 0x3D8 && c <= 0x3EF) return (c % 2 == 0) ? c + 1 : c;
  if (c == 0x3F4) return 0x3B8;
  if (c == 0x3F7 || c == 0x3FA) return c + 1;
  if (c == 0x3F9) return 0x3F2;
  if (c >= 0x3FD && c <= 0x3FF) return c - 0x82;
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 0x25;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 0x3F;
  if (c >= 0x391 && c <= 0x3AB) return c == 0x3A2 ? c : c + 0x20;
  // Cyrillic.
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;
  if (c >= 0x460 && c <= 0x481) return (c % 2 == 0) ? c + 1 : c;
  if (c >= 0x48A && c <= 0x4BF) return (c % 2 == 0) ? c + 1 : c;
  if (c == 0x4C0) return 0x4CF;
  if (c >= 0x4C1 && c <= 0x4CE) return (c % 2 == 1) ? c + 1 : c;
  if (c >= 0x4D0 && c <= 0x52F) return (c % 2 == 0) ? c + 1 : c;
  // Letterlike symbols whose lower case is an ordinary letter.
  if (c == 0x2126) return 0x3C9;  // Ohm sign -> omega
  if (c == 0x212A) return 'k';    // Kelvin sign
  if (c == 0x212B) return 0xE5;   // Angstrom sign -> a-ring
  return c;
}

}  // namespace text

namespace {

using Word = std::u32string;

bool ends_with(const Word& w, std::u32string_view suffix) {
  return w.size() >= suffix.size() && std::u32string_view(w).substr(w.size() - suffix.size()) == suffix;
}

Word chop(const Word& w, size_t n) { return w.substr(0, w.size() - n); }

bool is_vowel_letter(char32_t c) { return c == U'a' || c == U'e' || c == U'i' || c == U'o' || c == U'u'; }

// Porter's consonant: not a, e, i, o, u, and not a "y" that follows a consonant.
// A "y" at the start, or after a vowel, is a consonant.
bool is_consonant(const Word& w, size_t i) {
  // Walk back over a run of y's: they alternate, starting from the letter before them.
  if (is_vowel_letter(w[i])) return false;
  if (w[i] != U'y') return true;
  size_t j = i;
  while (j > 0 && w[j - 1] == U'y') --j;
  // w[j] is the first y of the run. It is a consonant iff j == 0 or w[j-1] is a vowel.
  const bool first_is_consonant = (j == 0) || is_vowel_letter(w[j - 1]);
  // Each further y flips the answer (a y after a consonant is a vowel, after a vowel a consonant).
  return ((i - j) % 2 == 0) ? first_is_consonant : !first_is_consonant;
}

// m: the number of vowel-to-consonant transitions in the [C](VC)^m[V] form.
int measure(const Word& w) {
  int m = 0;
  bool prev_vowel = false;
  for (size_t i = 0; i < w.size(); ++i) {
    const bool cons = is_consonant(w, i);
    if (cons && prev_vowel) ++m;
    prev_vowel = !cons;
  }
  return m;
}

bool contains_vowel(const Word& w) {
  for (size_t i = 0; i < w.size(); ++i)
    if (!is_consonant(w, i)) return true;
  return false;
}

// *d: ends with a double consonant.
bool ends_double_consonant(const Word& w) {
  const size_t n = w.size();
  return n >= 2 && w[n - 1] == w[n - 2] && is_consonant(w, n - 1);
}

// *o: ends consonant-vowel-consonant, the last not w, x or y; in NLTK's mode a
// two-letter vowel-consonant word also counts.
bool ends_cvc(const Word& w) {
  const size_t n = w.size();
  if (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) && w[n - 1] != U'w' &&
      w[n - 1] != U'x' && w[n - 1] != U'y')
    return true;
  return n == 2 && !is_consonant(w, 0) && is_consonant(w, 1);
}

enum class Cond { None, MGt0, MGt1, MGt0KeepL, MGt1AndSorT };

struct Rule {
  std::u32string_view suffix;
  std::u32string_view replacement;
  Cond cond;
};

bool holds(Cond c, const Word& stem) {
  switch (c) {
    case Cond::None: return true;
    case Cond::MGt0: return measure(stem) > 0;
    case Cond::MGt1: return measure(stem) > 1;
    case Cond::MGt0KeepL: return measure(stem + U"l") > 0;  // "logi": measured with its "l"
    case Cond::MGt1AndSorT: return measure(stem) > 1 && (stem.back() == U's' || stem.back() == U't');
  }
  return false;
}

template <size_t N>
Word apply_rules(const Word& w, const std::array<Rule, N>& rules) {
  for (const Rule& r : rules) {
    if (!ends_with(w, r.suffix)) continue;
    Word stem = chop(w, r.suffix.size());
    if (holds(r.cond, stem)) return stem + Word(r.replacement);
    return w;
  }
  return w;
}

Word step1a(const Word& w) {
  if (w.size() == 4 && ends_with(w, U"ies")) return chop(w, 3) + U"ie";
  static constexpr std::array<Rule, 4> rules{{
      {U"sses", U"ss", Cond::None},
      {U"ies", U"i", Cond::None},
      {U"ss", U"ss", Cond::None},
      {U"s", U"", Cond::None},
  }};
  return apply_rules(w, rules);
}

Word step1b(const Word& w) {
  if (ends_with(w, U"ied")) return chop(w, 3) + (w.size() == 4 ? U"ie" : U"i");
  if (ends_with(w, U"eed")) {
    Word stem = chop(w, 3);
    return measure(stem) > 0 ? stem + U"ee" : w;
  }
  Word stem;
  bool removed = false;
  for (std::u32string_view suffix : {std::u32string_view(U"ed"), std::u32string_view(U"ing")}) {
    if (ends_with(w, suffix)) {
      Word s = chop(w, suffix.size());
      if (contains_vowel(s)) {
        stem = std::move(s);
        removed = true;
        break;
      }
    }
  }
  if (!removed) return w;
  // Tidying after "ed"/"ing" removal; the first matching case decides.
  if (ends_with(stem, U"at")) return stem + U"e";
  if (ends_with(stem, U"bl")) return stem + U"e";
  if (ends_with(stem, U"iz")) return stem + U"e";
  if (ends_double_consonant(stem)) {
    const char32_t last = stem.back();
    if (last != U'l' && last != U's' && last != U'z') stem.pop_back();
    return stem;
  }
  if (measure(stem) == 1 && ends_cvc(stem)) return stem + U"e";
  return stem;
}

Word step1c(const Word& w) {
  if (!ends_with(w, U"y")) return w;
  Word stem = chop(w, 1);
  if (stem.size() > 1 && is_consonant(stem, stem.size() - 1)) return stem + U"i";
  return w;
}

Word step2(const Word& w) {
  if (ends_with(w, U"alli") && measure(chop(w, 4)) > 0) return step2(chop(w, 4) + U"al");
  static constexpr std::array<Rule, 22> rules{{
      {U"ational", U"ate", Cond::MGt0},   {U"tional", U"tion", Cond::MGt0}, {U"enci", U"ence", Cond::MGt0},
      {U"anci", U"ance", Cond::MGt0},     {U"izer", U"ize", Cond::MGt0},    {U"bli", U"ble", Cond::MGt0},
      {U"alli", U"al", Cond::MGt0},       {U"entli", U"ent", Cond::MGt0},   {U"eli", U"e", Cond::MGt0},
      {U"ousli", U"ous", Cond::MGt0},     {U"ization", U"ize", Cond::MGt0}, {U"ation", U"ate", Cond::MGt0},
      {U"ator", U"ate", Cond::MGt0},      {U"alism", U"al", Cond::MGt0},    {U"iveness", U"ive", Cond::MGt0},
      {U"fulness", U"ful", Cond::MGt0},   {U"ousness", U"ous", Cond::MGt0}, {U"aliti", U"al", Cond::MGt0},
      {U"iviti", U"ive", Cond::MGt0},     {U"biliti", U"ble", Cond::MGt0},  {U"fulli", U"ful", Cond::MGt0},
      {U"logi", U"log", Cond::MGt0KeepL},
  }};
  return apply_rules(w, rules);
}

Word step3(const Word& w) {
  static constexpr std::array<Rule, 7> rules{{
      {U"icate", U"ic", Cond::MGt0},
      {U"ative", U"", Cond::MGt0},
      {U"alize", U"al", Cond::MGt0},
      {U"iciti", U"ic", Cond::MGt0},
      {U"ical", U"ic", Cond::MGt0},
      {U"ful", U"", Cond::MGt0},
      {U"ness", U"", Cond::MGt0},
  }};
  return apply_rules(w, rules);
}

Word step4(const Word& w) {
  static constexpr std::array<Rule, 19> rules{{
      {U"al", U"", Cond::MGt1},   {U"ance", U"", Cond::MGt1}, {U"ence", U"", Cond::MGt1},
      {U"er", U"", Cond::MGt1},   {U"ic", U"", Cond::MGt1},   {U"able", U"", Cond::MGt1},
      {U"ible", U"", Cond::MGt1}, {U"ant", U"", Cond::MGt1},  {U"ement", U"", Cond::MGt1},
      {U"ment", U"", Cond::MGt1}, {U"ent", U"", Cond::MGt1},  {U"ion", U"", Cond::MGt1AndSorT},
      {U"ou", U"", Cond::MGt1},   {U"ism", U"", Cond::MGt1},  {U"ate", U"", Cond::MGt1},
      {U"iti", U"", Cond::MGt1},  {U"ous", U"", Cond::MGt1},  {U"ive", U"", Cond::MGt1},
      {U"ize", U"", Cond::MGt1},
  }};
  return apply_rules(w, rules);
}

// Both "e" rules are tried: (m>1) E -> ; (m=1 and not *o) E -> .
Word step5a(const Word& w) {
  if (!ends_with(w, U"e")) return w;
  Word stem = chop(w, 1);
  const int m = measure(stem);
  if (m > 1) return stem;
  if (m == 1 && !ends_cvc(stem)) return stem;
  return w;
}

// (m>1 and *d and *L) -> single letter, with m measured on the word less one "l".
Word step5b(const Word& w) {
  if (ends_with(w, U"ll") && measure(chop(w, 1)) > 1) return chop(w, 1);
  return w;
}

// Irregular forms with fixed stems, matched against the word as given.
const Word* irregular_stem(const Word& w) {
  static const std::array<std::pair<Word, Word>, 16> pool{{
      {U"sky", U"sky"},
      {U"skies", U"sky"},
      {U"dying", U"die"},
      {U"lying", U"lie"},
      {U"tying", U"tie"},
      {U"news", U"news"},
      {U"innings", U"inning"},
      {U"inning", U"inning"},
      {U"outings", U"outing"},
      {U"outing", U"outing"},
      {U"cannings", U"canning"},
      {U"canning", U"canning"},
      {U"howe", U"howe"},
      {U"proceed", U"proceed"},
      {U"exceed", U"exceed"},
      {U"succeed", U"succeed"},
  }};
  for (const auto& [form, stem] : pool)
    if (form == w) return &stem;
  return nullptr;
}

}  // namespace

std::string porter_stem(std::string_view word_utf8) {
  const Word original = text::utf8_decode(word_utf8);
  Word w;
  w.reserve(original.size());
  for (char32_t c : original) {
    if (c == 0x130) {  // capital I with dot lower-cases to "i" + combining dot above
      w.push_back(U'i');
      w.push_back(0x307);
    } else {
      w.push_back(text::simple_lower(c));
    }
  }
  if (const Word* fixed = irregular_stem(original)) return text::utf8_encode(*fixed);
  if (original.size() <= 2) return text::utf8_encode(w);
  w = step1a(w);
  w = step1b(w);
  w = step1c(w);
  w = step2(w);
  w = step3(w);
  w = step4(w);
  w = step5a(w);
  w = step5b(w);
  return text::utf8_encode(w);
}

}  // namespace rhead
