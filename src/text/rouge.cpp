// ROUGE-1 with rouge_score's tokenizer; see rouge.h for the rules.
#include "text/rouge.h"

#include <algorithm>
#include <unordered_map>

#include "text/porter_stemmer.h"

namespace rhead {

std::vector<std::string> rouge_tokenize(std::string_view text, bool stem) {
  std::vector<std::string> tokens;
  std::string current;
  auto flush = [&] {
    if (current.empty()) return;
    if (stem && current.size() > 3) {
      std::string s = porter_stem(current);
      // A stem of [a-z0-9] letters is again [a-z0-9]; keep the ^[a-z0-9]+$ filter anyway.
      const bool valid = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
      });
      if (valid) tokens.push_back(std::move(s));
    } else {
      tokens.push_back(current);
    }
    current.clear();
  };
  for (char32_t c : text::utf8_decode(text)) {
    if (c == 0x130) {
      // Capital I with dot lower-cases to "i" followed by a combining dot, which
      // is not [a-z0-9] and so ends the token.
      current.push_back('i');
      flush();
      continue;
    }
    if (c == 0x212A) c = U'k';  // Kelvin sign lower-cases to "k"
    if (c >= 'A' && c <= 'Z') c += 32;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      current.push_back(static_cast<char>(c));
    } else {
      flush();
    }
  }
  flush();
  return tokens;
}

RougeScore rouge1(std::string_view reference, std::string_view prediction, bool stem) {
  const std::vector<std::string> ref = rouge_tokenize(reference, stem);
  const std::vector<std::string> pred = rouge_tokenize(prediction, stem);
  std::unordered_map<std::string, long> ref_counts;
  for (const auto& t : ref) ++ref_counts[t];
  long overlap = 0;
  for (const auto& t : pred) {
    auto it = ref_counts.find(t);
    if (it != ref_counts.end() && it->second > 0) {
      --it->second;
      ++overlap;
    }
  }
  RougeScore s;
  s.precision = static_cast<double>(overlap) / static_cast<double>(std::max<size_t>(pred.size(), 1));
  s.recall = static_cast<double>(overlap) / static_cast<double>(std::max<size_t>(ref.size(), 1));
  s.f = (s.precision + s.recall > 0.0) ? 2.0 * s.precision * s.recall / (s.precision + s.recall) : 0.0;
  return s;
}

}  // namespace rhead
