// Needle sets, haystack folders and grid specs.
#include "prompts/inputs.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/checked.h"
#include "io/error.h"
#include "io/json.h"
#include "io/jsonl.h"
#include "io/mapped_file.h"

namespace rhead {

namespace fs = std::filesystem;

std::vector<NeedleSet> read_needle_sets(const std::string& path) {
  std::vector<NeedleSet> sets;
  for_each_jsonl_object(read_text_file(path), path, [&](const nlohmann::json& j, const std::string& where, int) {
    NeedleSet s;
    // Each text must say something: an empty needle scores every answer, an empty question
    // asks nothing.
    for (const char* key : {"needle", "question", "real_needle"}) {
      const std::string text = json_string_field(j, key, where);
      if (text.find_first_not_of(" \t\r\n") == std::string::npos)
        fail(where, std::string("field '") + key + "' is empty");
    }
    s.needle.needle = j["needle"];
    s.needle.question = j["question"];
    s.needle.real_needle = j["real_needle"];
    if (j.contains("haystack")) {
      fs::path h = json_string(j["haystack"], where, "field 'haystack'");
      if (h.is_relative()) h = fs::path(path).parent_path() / h;
      s.haystack_dir = h.string();
    }
    sets.push_back(std::move(s));
  });
  if (sets.empty()) fail(path, "no needle sets");
  return sets;
}

std::string read_haystack_dir(const std::string& dir) {
  if (!fs::is_directory(dir)) fail(dir, "haystack is not a directory");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path());
  if (files.empty()) fail(dir, "haystack folder holds no .txt files");
  std::sort(files.begin(), files.end());
  std::string text;
  for (const auto& f : files) text += read_text_file(f.string());
  return text;
}

std::string repeat_to_words(const std::string& text, int64_t min_words) {
  std::istringstream ss(text);
  int64_t words = 0;
  std::string w;
  while (ss >> w) ++words;
  if (words == 0) throw Error("haystack text has no words");
  std::string out = text;
  for (int64_t have = words; have < min_words; have += words) out += text;
  return out;
}

std::vector<int64_t> linspace_rounded(double lo, double hi, int n) {
  std::vector<int64_t> out;
  if (n <= 0) return out;
  if (n == 1) return {static_cast<int64_t>(std::nearbyint(lo))};
  const double step = (hi - lo) / (n - 1);
  for (int i = 0; i < n; ++i) {
    const double v = i == n - 1 ? hi : lo + step * i;
    out.push_back(static_cast<int64_t>(std::nearbyint(v)));  // default rounding: half to even
  }
  return out;
}

std::vector<int64_t> parse_lengths(const std::string& spec) {
  std::vector<std::string> parts;
  std::stringstream ss(spec);
  std::string p;
  while (std::getline(ss, p, ':')) parts.push_back(p);
  // The whole field must be the number: std::stod("300x") and std::stoi("2.5") would
  // otherwise accept a prefix.
  auto whole_double = [](const std::string& s) {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used != s.size()) throw std::invalid_argument(s);
    return v;
  };
  auto whole_int = [](const std::string& s) {
    size_t used = 0;
    const int v = std::stoi(s, &used);
    if (used != s.size()) throw std::invalid_argument(s);
    return v;
  };
  const std::string where = "--lengths '" + spec + "'";
  double lo = 0, hi = 0;
  int n = 0;
  try {
    if (parts.size() != 3) throw std::invalid_argument("parts");
    lo = whole_double(parts[0]);
    hi = whole_double(parts[1]);
    n = whole_int(parts[2]);
  } catch (const std::exception&) {
    fail(where, "expected MIN:MAX:N with 0 < MIN <= MAX and N > 0");
  }
  // Written so that NaN fails every comparison: !(lo > 0), not lo <= 0.
  if (!(lo >= 1 && hi >= lo && hi <= static_cast<double>(kMaxContextLength)))
    fail(where, "expected 1 <= MIN <= MAX <= " + std::to_string(kMaxContextLength) + " tokens");
  if (n <= 0 || n > kMaxGridLengths) fail(where, "N must be in [1, " + std::to_string(kMaxGridLengths) + "]");
  checked_double_to_int(lo, where, "MIN", 1, kMaxContextLength);
  checked_double_to_int(hi, where, "MAX", 1, kMaxContextLength);
  auto v = linspace_rounded(lo, hi, n);
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

std::vector<int> depths_from_count(int n) {
  if (n < 1 || n > kMaxDepths)
    throw Error("--depths " + std::to_string(n) + ": must be in [1, " + std::to_string(kMaxDepths) +
                "] (depths are integer percents; more would repeat test ids)");
  std::vector<int> out;
  for (int64_t v : linspace_rounded(0, 100, n)) out.push_back(static_cast<int>(v));
  out.erase(std::unique(out.begin(), out.end()), out.end());  // test ids stay distinct
  return out;
}

int clip_lengths(std::vector<int64_t>& lengths, int64_t max_len) {
  const size_t before = lengths.size();
  lengths.erase(std::remove_if(lengths.begin(), lengths.end(), [&](int64_t l) { return l > max_len; }), lengths.end());
  const int dropped = static_cast<int>(before - lengths.size());
  if (dropped > 0 && (lengths.empty() || lengths.back() != max_len)) lengths.push_back(max_len);
  return dropped;
}

}  // namespace rhead
