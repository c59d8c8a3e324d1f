// Small fake output directories of `rhead detect` and `rhead niah`, written the way the
// file-format spec describes them, for report and plot tests. Shapes follow niah-tiny:
// 3 layers x 6 query heads, the layer-2 heads retrieve.
#pragma once
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

namespace rhead::testing {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix) {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / (prefix + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_text(const std::filesystem::path& p, const std::string& text) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// A detect run: 3 needles x 5 lengths x 5 depths. `seed` varies the scores a little so
// that two runs correlate highly but not perfectly.
inline void write_detect_run(const std::filesystem::path& dir, unsigned seed, const std::string& model_path) {
  const int n_layer = 3, n_head = 6;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> noise(-0.08, 0.08);
  const double strength[6] = {1.0, 0.9, 0.75, 0.6, 0.45, 0.35};
  std::string lines;
  nlohmann::json lists = nlohmann::json::object();
  for (int l = 0; l < n_layer; ++l)
    for (int h = 0; h < n_head; ++h) lists[std::to_string(l) + "-" + std::to_string(h)] = nlohmann::json::array();
  int tests = 0, counted = 0;
  for (int needle = 0; needle < 3; ++needle)
    for (int length = 300; length <= 500; length += 50)
      for (int depth = 0; depth <= 100; depth += 25) {
        // Accuracy falls with length, as in niah-tiny.
        const double recall = length <= 400 || (depth + needle * 10) % 50 == 0 ? 100.0 : 25.0;
        const bool ok = recall > 50;
        nlohmann::json scores = nlohmann::json::object();
        for (int h = 0; h < n_head; ++h) {
          const double s = std::clamp(strength[h] + noise(rng), 0.0, 1.0);
          if (ok && (h < 3 || (tests + h) % 3 != 0)) scores["2-" + std::to_string(h)] = std::round(s * 8) / 8;
        }
        if (ok && tests % 4 == 0) scores["1-2"] = 0.125;
        nlohmann::json line = {
            {"test_id", "n" + std::to_string(needle) + "-l" + std::to_string(length) + "-d" + std::to_string(depth)},
            {"needle_id", needle},
            {"length", length},
            {"depth", depth},
            {"needle_span", {depth, depth + 8}},
            {"answer", ok ? "The secret code of the wall is star oil nest." : "I do not <know> & \"so\""},
            {"rouge_recall", recall},
            {"counted", ok},
            {"head_scores", ok ? scores : nlohmann::json::object()},
            {"seconds", 0.25},
            {"prompt_tokens", length - 10}};
        lines += line.dump() + "\n";
        ++tests;
        if (!ok) continue;
        ++counted;
        for (int l = 0; l < n_layer; ++l)
          for (int h = 0; h < n_head; ++h) {
            const std::string key = std::to_string(l) + "-" + std::to_string(h);
            lists[key].push_back(scores.contains(key) ? scores[key].get<double>() : 0.0);
          }
      }
  write_text(dir / "results.jsonl", lines);
  write_text(dir / "head_score.json", lists.dump());
  nlohmann::json heads = nlohmann::json::array();
  int above = 0;
  for (auto it = lists.begin(); it != lists.end(); ++it) {
    double sum = 0, active = 0;
    for (double s : it.value()) sum += s, active += s > 0;
    const double mean = sum / static_cast<double>(it.value().size());
    above += mean > 0.1;
    const auto dash = it.key().find('-');
    heads.push_back({{"layer", std::stoi(it.key().substr(0, dash))},
                     {"head", std::stoi(it.key().substr(dash + 1))},
                     {"mean", mean},
                     {"frequency", active / static_cast<double>(it.value().size())}});
  }
  nlohmann::json summary = {
      {"model",
       {{"path", model_path},
        {"architecture", "llama"},
        {"n_layer", n_layer},
        {"n_head", n_head},
        {"n_kv_head", 2},
        {"head_dim", 16},
        {"n_vocab", 512},
        {"n_ctx", 512}}},
      {"settings",
       {{"lengths", "300:500:5"}, {"depths", 5}, {"prompt_template", "{context}\nQuestion: {question}\nAnswer:"}}},
      {"n_layer", n_layer},
      {"n_head", n_head},
      {"n_kv_head", 2},
      {"tests", tests},
      {"counted", counted},
      {"niah_accuracy", static_cast<double>(counted) / tests},
      {"heads", heads},
      {"count_above_0_1", above},
      {"share_above_0_1", above / 18.0}};
  write_text(dir / "summary.json", summary.dump(2));
}

// A niah run with an unmasked grid, one masked grid and a masking sweep.
inline void write_niah_run(const std::filesystem::path& dir) {
  std::string lines;
  double total = 0;
  int n = 0;
  for (const std::string mask : {"none", "top-2"})
    for (int length = 300; length <= 500; length += 50)
      for (int depth = 0; depth <= 100; depth += 25) {
        const double score =
            mask == "none" ? std::max(0.0, 100.0 - (length - 300) * 0.4 - depth * 0.1) : 10.0 + depth * 0.2;
        nlohmann::json line = {{"model", "niah-tiny"},
                               {"context_length", length},
                               {"depth_percent", depth},
                               {"needle", "The best thing to do in San Francisco is eat a sandwich."},
                               {"model_response", "eat a sandwich"},
                               {"score", score},
                               {"mask", mask},
                               {"test_id", mask + "-" + std::to_string(length) + "-" + std::to_string(depth)}};
        lines += line.dump() + "\n";
        if (mask == "none") total += score, ++n;
      }
  write_text(dir / "results.jsonl", lines);
  write_text(dir / "summary.json",
             nlohmann::json{{"model", {{"path", "niah-tiny-f32.gguf"}, {"architecture", "llama"}}},
                            {"settings", {{"mask_mode", "decode"}, {"seed", 1}}},
                            {"mean_score", total / n}}
                 .dump(2));
  write_text(dir / "sweep.json", R"({"top": [[0, 92.0], [1, 70.5], [2, 31.0], [4, 12.5], [6, 5.0]],
    "random": [[0, 92.0], [1, 91.0], [2, 88.5], [4, 80.0], [6, 71.0]]})");
}

}  // namespace rhead::testing
