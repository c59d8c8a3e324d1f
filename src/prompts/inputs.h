// Inputs of a needle-in-a-haystack grid: needle sets, haystacks and the length x depth grid.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/builtin_data.h"

namespace rhead {

// One needle set in the reference JSONL format, with the haystack folder it uses
// (empty: the run's default haystack).
struct NeedleSet {
  Needle needle;
  std::string haystack_dir;
};

// Reads JSONL lines {"needle", "question", "real_needle", optional "haystack"}. A relative
// "haystack" is resolved against the JSONL file's folder. Errors name the file and line.
std::vector<NeedleSet> read_needle_sets(const std::string& path);

// Concatenates every .txt file of `dir` (sorted by name). Error if there is none.
std::string read_haystack_dir(const std::string& dir);

// Repeats `text` until it holds at least `min_words` whitespace-separated words.
std::string repeat_to_words(const std::string& text, int64_t min_words);

struct GridSpec {
  std::vector<int64_t> lengths;  // context lengths in tokens
  std::vector<int> depths;       // depth percent, 0..100
};

// round(linspace(lo, hi, n)) with round-half-even, as numpy computes it.
std::vector<int64_t> linspace_rounded(double lo, double hi, int n);
// Grid limits, checked before anything is allocated for the grid.
inline constexpr int kMaxGridLengths = 10000;                   // N of --lengths MIN:MAX:N
inline constexpr int64_t kMaxContextLength = int64_t{1} << 31;  // tokens
inline constexpr int kMaxDepths = 101;                          // distinct integer percents 0..100
// "MIN:MAX:N" -> distinct lengths. Error on a malformed spec, NaN/infinite values, N above
// kMaxGridLengths or lengths above kMaxContextLength.
std::vector<int64_t> parse_lengths(const std::string& spec);
// N -> round(linspace(0, 100, N)), distinct by construction; Error when N is outside
// [1, 101] (more depths would only repeat integer percents and so repeat test ids).
std::vector<int> depths_from_count(int n);

// Drops lengths beyond `max_len`; if any were dropped, `max_len` itself joins the grid.
// Returns the number dropped (the caller warns).
int clip_lengths(std::vector<int64_t>& lengths, int64_t max_len);

}  // namespace rhead
