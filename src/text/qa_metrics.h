// Answer metrics for the causal experiments: SQuAD-style exact match and token F1
// (rhead qa) and GSM8K-style numeric answers (rhead cot).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rhead {

// SQuAD's official normalisation, in its order: lower-case; delete ASCII
// punctuation (Python's string.punctuation); replace the whole words "a", "an",
// "the" by a space; split on whitespace and join with single spaces. "Whole word"
// follows Python's Unicode \b: letters, digits and marks of other scripts are word
// characters, spaces and Unicode punctuation and symbols are not.
std::string squad_normalize(std::string_view text);

// The whitespace tokens of squad_normalize(text).
std::vector<std::string> squad_tokens(std::string_view text);

// 1 when the normalised prediction equals a normalised gold answer, else 0. No
// golds gives 0.
double squad_exact_match(std::string_view pred, const std::vector<std::string>& golds);

// Token F1 (bag of words, counts clipped) against each gold, maximised over golds.
// When the prediction or a gold has no tokens, that pair scores 1 if both are
// empty and 0 otherwise (as SQuAD 2.0's script does). No golds gives 0.
double squad_f1(std::string_view pred, const std::vector<std::string>& golds);

// GSM8K gold: the number after the last "####" (commas and "$" removed). An answer
// without "####" is accepted when it is nothing but a number.
std::optional<double> extract_gold_number(std::string_view answer);

// The model's number: the first number after the first "The answer is"
// (case-insensitive) if there is one; otherwise the first number after the first
// "####"; otherwise the last number in the text. Thousands commas and "$" are
// ignored ("$1,234.50" is 1234.5); a "-" directly before the digits, not after a
// letter or digit, is a sign. Nothing found gives nullopt.
std::optional<double> extract_predicted_number(std::string_view text);

// Numbers compare equal within 1e-6 relative (so "18", "18.0" and "18.00" agree).
bool numbers_equal(double a, double b);

// Whether the prediction's number equals the gold answer's. False when either is missing.
bool gsm8k_correct(std::string_view prediction, std::string_view gold_answer);

}  // namespace rhead
