// DuoAttention's head-pattern folder: which KV heads keep the whole cache ("full" or
// "retrieval" heads) and which stream (a sink plus a recent window). A folder holds
//   full_attention_heads.tsv  n_layer rows x n_kv_head columns, tab-separated numbers: each KV
//                             head's gate, 1 = full attention, 0 = streaming, or a score in
//                             [0, 1] that the threshold splits (gate >= threshold: full);
//   config.json               an object with "sink_size" and "recent_size" (integers) and,
//                             optionally, "threshold" (a number; missing or null: 0.5). Other
//                             fields (the training arguments of published patterns) are ignored.
// Published patterns carry gates slightly outside [0, 1] (training noise, e.g. -9.6e-05); the
// reader clips them to [0, 1] as DuoAttention's own loader does. Everything else is strict:
// a non-number, a ragged row or a missing field is an error naming the file and line.
// This is the one reader and writer of the format; it knows nothing of models or policies.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace rhead {

inline constexpr double kDuoDefaultThreshold = 0.5;
inline constexpr const char* kDuoHeadsFile = "full_attention_heads.tsv";
inline constexpr const char* kDuoConfigFile = "config.json";

struct DuoPattern {
  int n_layer = 0, n_kv_head = 0;
  std::vector<double> gates;        // [n_layer * n_kv_head], layer-major, in [0, 1]
  int64_t sink_size = 0;            // first positions every streaming head keeps
  int64_t recent_size = 0;          // last positions a streaming head keeps
  std::optional<double> threshold;  // config.json "threshold"; none: kDuoDefaultThreshold

  double gate(int layer, int kv_head) const { return gates[static_cast<size_t>(layer) * n_kv_head + kv_head]; }
  double effective_threshold() const { return threshold.value_or(kDuoDefaultThreshold); }
  bool is_full(int layer, int kv_head) const { return gate(layer, kv_head) >= effective_threshold(); }
};

// Whether `path` is a folder holding full_attention_heads.tsv.
bool is_duo_pattern_dir(const std::string& path);

// Reads a pattern folder. Errors: "DIR/full_attention_heads.tsv:LINE: problem" or
// "DIR/config.json: problem".
DuoPattern read_duo_pattern(const std::string& dir);

// Parses the TSV text alone (`where` names it in errors); fills n_layer, n_kv_head, gates.
void parse_duo_heads_tsv(const std::string& text, const std::string& where, DuoPattern& pattern);

// Writes the folder (created if missing): the TSV with every gate printed exactly (a gate of
// 0 or 1 as "0" / "1", others with 17 significant digits) and config.json with sink_size,
// recent_size, threshold (when set) and the fields of `extra` (an object) before them.
void write_duo_pattern(const std::string& dir, const DuoPattern& pattern,
                       const nlohmann::json& extra = nlohmann::json::object());

}  // namespace rhead
