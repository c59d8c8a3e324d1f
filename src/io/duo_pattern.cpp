// DuoAttention's head-pattern folder (see duo_pattern.h).
#include "io/duo_pattern.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json.h"
#include "io/mapped_file.h"
#include "io/text.h"

namespace rhead {

namespace fs = std::filesystem;

bool is_duo_pattern_dir(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec) && fs::is_regular_file(fs::path(path) / kDuoHeadsFile, ec);
}

namespace {

// One TSV cell as a finite number (the whole cell, no blanks around it).
double parse_cell(const std::string& cell, const std::string& where, int line, size_t column) {
  const std::string at = where + ":" + std::to_string(line);
  if (cell.empty()) fail(at, "empty cell in column " + std::to_string(column + 1));
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(cell.c_str(), &end);
  if (end != cell.c_str() + cell.size() || std::isspace(static_cast<unsigned char>(cell[0])))
    fail(at, "column " + std::to_string(column + 1) + ": '" + cell + "' is not a number");
  if (!std::isfinite(v) || errno == ERANGE)
    fail(at, "column " + std::to_string(column + 1) + ": '" + cell + "' is not a finite number");
  return v;
}

}  // namespace

void parse_duo_heads_tsv(const std::string& text, const std::string& where, DuoPattern& p) {
  p.gates.clear();
  p.n_layer = p.n_kv_head = 0;
  std::vector<std::string> lines = split_on(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the final newline
  if (lines.empty()) fail(where, "no rows (expected one row per layer)");
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string row = lines[i];
    if (!row.empty() && row.back() == '\r') row.pop_back();
    const int line = static_cast<int>(i + 1);
    if (row.empty()) fail(where + ":" + std::to_string(line), "empty row (expected one row per layer)");
    const std::vector<std::string> cells = split_on(row, '\t');
    if (i == 0) p.n_kv_head = static_cast<int>(cells.size());
    if (static_cast<int>(cells.size()) != p.n_kv_head)
      fail(where + ":" + std::to_string(line), std::to_string(cells.size()) + " columns, the first row has " +
                                                   std::to_string(p.n_kv_head) + " (one per KV head)");
    for (size_t c = 0; c < cells.size(); ++c)
      p.gates.push_back(std::clamp(parse_cell(cells[c], where, line, c), 0.0, 1.0));
  }
  p.n_layer = static_cast<int>(lines.size());
}

DuoPattern read_duo_pattern(const std::string& dir) {
  const std::string tsv = (fs::path(dir) / kDuoHeadsFile).string();
  const std::string cfg = (fs::path(dir) / kDuoConfigFile).string();
  DuoPattern p;
  parse_duo_heads_tsv(read_text_file(tsv), tsv, p);
  guard_input(cfg, [&] {
    const nlohmann::json doc = read_json_file(cfg);
    if (!doc.is_object()) fail(cfg, "expected an object with sink_size and recent_size");
    p.sink_size = json_integer(json_required(doc, "sink_size", cfg), cfg, "field 'sink_size'", 0, INT32_MAX);
    p.recent_size = json_integer(json_required(doc, "recent_size", cfg), cfg, "field 'recent_size'", 1, INT32_MAX);
    if (const nlohmann::json* t = json_field(doc, "threshold", cfg)) {
      const double v = json_number(*t, cfg, "field 'threshold'");
      if (!std::isfinite(v)) fail(cfg, "field 'threshold' must be a finite number");
      p.threshold = v;
    }
    return 0;
  });
  return p;
}

namespace {

std::string gate_text(double g) {
  if (g == 0.0) return "0";
  if (g == 1.0) return "1";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", g);
  return buf;
}

}  // namespace

void write_duo_pattern(const std::string& dir, const DuoPattern& p, const nlohmann::json& extra) {
  if (p.n_layer <= 0 || p.n_kv_head <= 0 || p.gates.size() != static_cast<size_t>(p.n_layer) * p.n_kv_head)
    fail(dir, "a DuoAttention pattern needs n_layer x n_kv_head gates");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(dir, "cannot create the folder: " + ec.message());
  std::string tsv;
  for (int l = 0; l < p.n_layer; ++l) {
    for (int g = 0; g < p.n_kv_head; ++g) tsv += (g ? "\t" : "") + gate_text(p.gate(l, g));
    tsv += "\n";
  }
  nlohmann::json cfg = extra.is_object() ? extra : nlohmann::json::object();
  cfg["sink_size"] = p.sink_size;
  cfg["recent_size"] = p.recent_size;
  if (p.threshold) cfg["threshold"] = *p.threshold;
  write_file_atomic((fs::path(dir) / kDuoHeadsFile).string(), tsv);
  write_file_atomic((fs::path(dir) / kDuoConfigFile).string(), cfg.dump(2) + "\n");
}

}  // namespace rhead
