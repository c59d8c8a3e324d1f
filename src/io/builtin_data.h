// Data embedded in rhead so that every command runs with no files: a deterministic filler
// haystack, needle sets of our own writing, and the word list of the built-in model's
// vocabulary.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rhead {

struct Needle {
  std::string needle;  // sentence inserted into the haystack
  std::string question;
  std::string real_needle;  // the answer span scored
};

// Filler prose in the spirit of a noise haystack: simple, repetitive sentences built from
// fixed word lists by a seeded generator. Same seed, same text. About `n_words` words.
std::string builtin_haystack(int64_t n_words, uint64_t seed = 1);

// Three facts of our own invention that no model could know and no haystack mentions.
const std::vector<Needle>& builtin_needles();

// The single needle of the paper's masking experiments (San Francisco sandwich).
const Needle& sandwich_needle();

// Needles for builtin:induction: its "question" is the start of the needle, so a prompt
// that ends with it makes an induction head copy the rest. Each ends with a newline, so the
// copy stops there.
const std::vector<Needle>& induction_needles();
// The prompt template those needles are used with.
const char* induction_prompt_template();

// Every word the built-in texts use (haystack word lists, needles, prompt templates).
std::vector<std::string> builtin_lexicon();

// Deterministic 64-bit generator shared by built-in data and models.
struct SplitMix64 {
  uint64_t state;
  explicit SplitMix64(uint64_t seed) : state(seed) {}
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  uint64_t below(uint64_t n) { return next() % n; }
};

}  // namespace rhead
