// SQuAD exact match / F1 and GSM8K numeric answers; see qa_metrics.h.
#include "text/qa_metrics.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <unordered_map>

#include "text/porter_stemmer.h"

namespace rhead {
namespace {

bool is_ascii_punct(char32_t c) {
  // Python's string.punctuation: every printable ASCII character that is not a
  // letter, digit or space.
  return c < 0x80 && std::ispunct(static_cast<int>(c));
}

// Python's str.isspace().
bool is_py_space(char32_t c) {
  return (c >= 0x9 && c <= 0xD) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Python's Unicode \w (alphanumerics and "_"), approximated outside ASCII by
// treating controls, spaces, combining accents and the common punctuation and
// symbol blocks as non-word and everything else as word characters.
bool is_py_word(char32_t c) {
  if (c < 0x80) return std::isalnum(static_cast<int>(c)) || c == '_';
  if (c <= 0xBF)
    return c == 0xAA || c == 0xB2 || c == 0xB3 || c == 0xB5 || c == 0xB9 || c == 0xBA || (c >= 0xBC && c <= 0xBE);
  if (c == 0xD7 || c == 0xF7) return false;
  if (c >= 0x300 && c <= 0x36F) return false;
  if (c == 0x1680) return false;
  if (c >= 0x2000 && c <= 0x206F) return false;
  if (c >= 0x20A0 && c <= 0x20CF) return false;
  if (c >= 0x2190 && c <= 0x23FF) return false;
  if (c >= 0x2500 && c <= 0x2775) return false;
  if (c >= 0x2794 && c <= 0x27BF) return false;
  if ((c >= 0x3000 && c <= 0x3004) || (c >= 0x3008 && c <= 0x3020) || c == 0x3030 || c == 0x3036 || c == 0x3037 ||
      (c >= 0x303D && c <= 0x303F))
    return false;
  if (c >= 0xFE00 && c <= 0xFE0F) return false;
  if (c >= 0xFF01 && c <= 0xFF0F) return false;
  if ((c >= 0x1F000 && c <= 0x1F0FF) || (c >= 0x1F10D && c <= 0x1FAFF)) return false;
  return true;
}

bool is_article(std::u32string_view w) { return w == U"a" || w == U"an" || w == U"the"; }

// squad_normalize up to (not including) the final split and join.
std::u32string lower_strip_articles(std::string_view text) {
  std::u32string s;
  for (char32_t c : text::utf8_decode(text)) {
    if (c == 0x130) {
      s.push_back(U'i');
      s.push_back(0x307);
      continue;
    }
    c = text::simple_lower(c);
    if (!is_ascii_punct(c)) s.push_back(c);
  }
  // An article counts when it is a whole run of word characters.
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (!is_py_word(s[i])) {
      out.push_back(s[i++]);
      continue;
    }
    size_t j = i;
    while (j < s.size() && is_py_word(s[j])) ++j;
    std::u32string_view run(s.data() + i, j - i);
    if (is_article(run)) {
      out.push_back(U' ');
    } else {
      out.append(run);
    }
    i = j;
  }
  return out;
}

std::vector<std::string> split_py_whitespace(std::u32string_view s) {
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_py_space(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !is_py_space(s[j])) ++j;
    if (j > i) tokens.push_back(text::utf8_encode(s.substr(i, j - i)));
    i = j;
  }
  return tokens;
}

double token_f1(const std::vector<std::string>& pred, const std::vector<std::string>& gold) {
  if (pred.empty() || gold.empty()) return (pred.empty() && gold.empty()) ? 1.0 : 0.0;
  std::unordered_map<std::string, long> counts;
  for (const auto& t : gold) ++counts[t];
  long same = 0;
  for (const auto& t : pred) {
    auto it = counts.find(t);
    if (it != counts.end() && it->second > 0) {
      --it->second;
      ++same;
    }
  }
  if (same == 0) return 0.0;
  const double precision = static_cast<double>(same) / static_cast<double>(pred.size());
  const double recall = static_cast<double>(same) / static_cast<double>(gold.size());
  return 2.0 * precision * recall / (precision + recall);
}

// ---- numbers -------------------------------------------------------------------

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum_ascii(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

struct Found {
  double value;
  size_t begin, end;  // byte range in the scanned text
};

// Parses a number that starts at `i` (a digit, or "." before a digit, or a sign),
// skipping "$" after a sign and commas between digits. Returns the end via `end`.
std::optional<double> parse_number_at(std::string_view s, size_t i, size_t& end) {
  std::string digits;
  if (s[i] == '-') {
    digits.push_back('-');
    ++i;
    if (i < s.size() && s[i] == '$') ++i;
  }
  bool any = false;
  while (i < s.size()) {
    if (is_digit(s[i])) {
      digits.push_back(s[i++]);
      any = true;
    } else if (s[i] == ',' && any && i + 1 < s.size() && is_digit(s[i + 1])) {
      ++i;  // thousands separator
    } else {
      break;
    }
  }
  if (i + 1 < s.size() && s[i] == '.' && is_digit(s[i + 1])) {
    digits.push_back(s[i++]);
    while (i < s.size() && is_digit(s[i])) digits.push_back(s[i++]);
    any = true;
  }
  if (!any) return std::nullopt;
  double v = 0.0;
  const char* first = digits.data();
  if (*first == '-') ++first;  // parse the magnitude; the sign is applied below
  auto [ptr, ec] = std::from_chars(first, digits.data() + digits.size(), v);
  if (ec != std::errc()) return std::nullopt;
  end = i;
  return digits[0] == '-' ? -v : v;
}

// All numbers of `s`, in order.
std::vector<Found> find_numbers(std::string_view s) {
  std::vector<Found> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    const bool prev_word = i > 0 && is_alnum_ascii(s[i - 1]);
    bool starts = false;
    if (is_digit(c)) {
      starts = true;
    } else if (c == '.' && i + 1 < s.size() && is_digit(s[i + 1]) && !(i > 0 && is_digit(s[i - 1]))) {
      starts = true;
    } else if (c == '-' && !prev_word && i + 1 < s.size() &&
               (is_digit(s[i + 1]) || (s[i + 1] == '.' && i + 2 < s.size() && is_digit(s[i + 2])) ||
                (s[i + 1] == '$' && i + 2 < s.size() && is_digit(s[i + 2])))) {
      starts = true;
    }
    if (starts) {
      size_t end = i;
      if (auto v = parse_number_at(s, i, end)) {
        out.push_back({*v, i, end});
        i = end;
        continue;
      }
    }
    ++i;
  }
  return out;
}

size_t find_ci(std::string_view hay, std::string_view needle) {
  if (needle.size() > hay.size()) return std::string_view::npos;
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i) {
    bool match = true;
    for (size_t k = 0; k < needle.size() && match; ++k)
      match =
          std::tolower(static_cast<unsigned char>(hay[i + k])) == std::tolower(static_cast<unsigned char>(needle[k]));
    if (match) return i;
  }
  return std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string squad_normalize(std::string_view text) {
  std::string out;
  for (const auto& t : squad_tokens(text)) {
    if (!out.empty()) out.push_back(' ');
    out += t;
  }
  return out;
}

std::vector<std::string> squad_tokens(std::string_view text) { return split_py_whitespace(lower_strip_articles(text)); }

double squad_exact_match(std::string_view pred, const std::vector<std::string>& golds) {
  const std::string p = squad_normalize(pred);
  for (const auto& g : golds)
    if (squad_normalize(g) == p) return 1.0;
  return 0.0;
}

double squad_f1(std::string_view pred, const std::vector<std::string>& golds) {
  const std::vector<std::string> p = squad_tokens(pred);
  double best = 0.0;
  for (const auto& g : golds) best = std::max(best, token_f1(p, squad_tokens(g)));
  return best;
}

std::optional<double> extract_gold_number(std::string_view answer) {
  // After the last "####" (or, with no marker, the whole answer): exactly one number and
  // nothing else ("$" and a trailing "." allowed), so "1e5", "12abc" and "0x10" are no number.
  const size_t pos = answer.rfind("####");
  std::string_view t = trim(pos == std::string_view::npos ? answer : answer.substr(pos + 4));
  if (!t.empty() && t.back() == '.') t.remove_suffix(1);
  std::string cleaned;
  for (char c : t)
    if (c != '$') cleaned.push_back(c);
  const auto numbers = find_numbers(cleaned);
  if (numbers.size() == 1 && numbers[0].begin == 0 && numbers[0].end == cleaned.size()) return numbers[0].value;
  return std::nullopt;
}

std::optional<double> extract_predicted_number(std::string_view text) {
  for (std::string_view marker : {std::string_view("the answer is"), std::string_view("####")}) {
    const size_t pos = find_ci(text, marker);
    if (pos == std::string_view::npos) continue;
    const auto numbers = find_numbers(text.substr(pos + marker.size()));
    if (!numbers.empty()) return numbers.front().value;
  }
  const auto numbers = find_numbers(text);
  if (numbers.empty()) return std::nullopt;
  return numbers.back().value;
}

bool numbers_equal(double a, double b) {
  return std::fabs(a - b) <= 1e-6 * std::max({1.0, std::fabs(a), std::fabs(b)});
}

bool gsm8k_correct(std::string_view prediction, std::string_view gold_answer) {
  const auto gold = extract_gold_number(gold_answer);
  const auto pred = extract_predicted_number(prediction);
  return gold && pred && numbers_equal(*pred, *gold);
}

}  // namespace rhead
