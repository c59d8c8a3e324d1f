// Run directories: run.json with kind and fingerprint, append-only results.jsonl, shards,
// resume and merge.
#include "io/run_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "io/atomic_file.h"
#include "io/error.h"
#include "io/json.h"

namespace rhead {

namespace fs = std::filesystem;
using nlohmann::json;

ResultsWriter::ResultsWriter(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd_ < 0) fail(path, std::string("cannot open for appending: ") + std::strerror(errno));
}

ResultsWriter::~ResultsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void ResultsWriter::append(const json& line) {
  const std::string text = line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail(path_, std::string("write failed: ") + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  ::fdatasync(fd_);
}

std::vector<json> read_results_lines(const std::string& path, bool repair_tail) {
  std::vector<json> out;
  std::ifstream in(path, std::ios::binary);
  if (!in) return out;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  std::set<std::string> seen;
  size_t pos = 0, good_end = 0;
  int line_no = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // torn tail: no newline yet
    ++line_no;
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      good_end = pos;
      continue;
    }
    const std::string where = path + ":" + std::to_string(line_no);
    json j = parse_json(line, where);
    if (!j.is_object()) fail(where, "expected one JSON object per line");
    good_end = pos;
    const std::string id = json_string_field(j, "test_id", where, "");
    if (!id.empty() && !seen.insert(id).second) continue;
    out.push_back(std::move(j));
  }
  if (repair_tail && good_end < text.size()) fs::resize_file(path, good_end);
  return out;
}

void check_shard(const Shard& s) {
  if (s.count < 1 || s.index < 0 || s.index >= s.count)
    throw Error("--shard " + std::to_string(s.index) + "/" + std::to_string(s.count) + " is not a valid shard");
}

json run_fingerprint(const json& record) {
  auto field = [&](const json& o, const char* key) { return o.is_object() && o.contains(key) ? o[key] : json(); };
  return {field(field(record, "settings"), "fingerprint"), field(record, "n_layer"), field(record, "n_head")};
}

namespace {

// The kind recorded in run.json ("" for directories written before kinds were recorded).
std::string recorded_kind(const json& record, const std::string& where) {
  if (!record.is_object()) fail(where, "run.json is not a JSON object");
  return json_string_field(record, "kind", where, "");
}

}  // namespace

RunDir RunDir::open(const std::string& dir, const std::string& kind, json record) {
  record["kind"] = kind;
  fs::create_directories(dir);
  const std::string run_path = dir + "/run.json";
  if (fs::exists(run_path)) {
    const json old = read_json_file(run_path);
    const std::string old_kind = recorded_kind(old, run_path);
    if (!old_kind.empty() && old_kind != kind)
      fail(run_path, "this directory holds a " + old_kind + " run, not a " + kind + " run; use another -o");
    // Results of a different model, needle set, data or prompt must not mix in one directory.
    if (run_fingerprint(old) != run_fingerprint(record))
      fail(run_path, "this directory holds a " + kind +
                         " run with other settings (model, needles, data or prompt); use another -o");
  }
  write_file_atomic(run_path, record.dump(2) + "\n");
  RunDir d;
  d.dir_ = dir;
  d.kind_ = kind;
  d.record_ = std::move(record);
  d.lines_ = read_results_lines(d.file("results.jsonl"), true);
  for (const auto& l : d.lines_) d.keys_.insert(l.value("test_id", std::string()));
  return d;
}

RunDir RunDir::read(const std::string& dir) {
  const std::string run_path = dir + "/run.json";
  if (!fs::exists(run_path)) fail(dir, "not a run directory (no run.json)");
  RunDir d;
  d.dir_ = dir;
  d.record_ = read_json_file(run_path);
  d.kind_ = recorded_kind(d.record_, run_path);
  d.lines_ = read_results_lines(d.file("results.jsonl"), false);
  for (const auto& l : d.lines_) d.keys_.insert(l.value("test_id", std::string()));
  return d;
}

std::vector<size_t> RunDir::pending(const std::vector<std::string>& keys, const Shard& shard) const {
  check_shard(shard);
  std::vector<size_t> out;
  for (size_t i = 0; i < keys.size(); ++i)
    if (static_cast<int>(i % shard.count) == shard.index && !has(keys[i])) out.push_back(i);
  return out;
}

void RunDir::append(json line) {
  const std::string where = file("results.jsonl");
  const std::string key = json_string_field(line, "test_id", where + ": new line");
  if (!keys_.insert(key).second) fail(where, "key '" + key + "' is written already");
  if (!writer_) writer_ = std::make_shared<ResultsWriter>(where);
  writer_->append(line);
  lines_.push_back(std::move(line));
}

void RunDir::write_file(const std::string& name, const std::string& text) const {
  write_file_atomic(file(name), text);
}

namespace {

// A line without its timing fields: what two runs of one key must agree on.
json without_timing(json line) {
  line.erase("seconds");
  line.erase("timing");
  return line;
}

}  // namespace

RunDir merge_run_dirs(const std::vector<std::string>& dirs, const std::string& out_dir) {
  if (dirs.empty()) throw Error("merge needs at least one run directory");
  RunDir first = RunDir::read(dirs.front());
  std::vector<json> lines;
  std::map<std::string, std::pair<size_t, std::string>> where_of;  // key -> (line index, directory)
  for (const auto& dir : dirs) {
    const RunDir shard = dir == dirs.front() ? first : RunDir::read(dir);
    const std::string run_path = dir + "/run.json";
    if (shard.kind() != first.kind())
      fail(run_path, "holds a " + (shard.kind().empty() ? std::string("older") : shard.kind()) + " run, " +
                         dirs.front() + " a " + (first.kind().empty() ? std::string("older") : first.kind()) +
                         " run; runs of different kinds cannot be merged");
    if (run_fingerprint(shard.record()) != run_fingerprint(first.record()))
      fail(run_path, "run settings differ from " + dirs.front() + "; shards of different runs cannot be merged");
    for (const auto& l : shard.lines()) {
      const std::string key = l.value("test_id", std::string());
      auto [it, fresh] = where_of.emplace(key, std::make_pair(lines.size(), dir));
      if (fresh) {
        lines.push_back(l);
      } else if (without_timing(lines[it->second.first]) != without_timing(l)) {
        fail(dir + "/results.jsonl", "key '" + key + "' differs from its line in " + it->second.second +
                                         "; shards of one run hold the same result for a key");
      }
    }
  }
  json record = first.record();
  if (record.contains("settings") && record["settings"].is_object()) record["settings"].erase("shard");
  fs::create_directories(out_dir);
  std::string text;
  for (const auto& l : lines) text += l.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  write_file_atomic(out_dir + "/results.jsonl", text);
  write_file_atomic(out_dir + "/run.json", record.dump(2) + "\n");
  return RunDir::read(out_dir);
}

}  // namespace rhead
