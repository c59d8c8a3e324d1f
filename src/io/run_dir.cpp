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
#include "io/file_identity.h"
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

namespace {

struct ResultsText {
  std::vector<json> lines;
  size_t good_end = 0, size = 0;  // bytes of complete lines; of the file
};

ResultsText read_results_text(const std::string& path) {
  ResultsText out;
  std::ifstream in(path, std::ios::binary);
  if (!in) return out;
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  out.size = text.size();
  std::map<std::string, int> line_of;  // test_id -> line number
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // torn tail: no newline yet
    ++line_no;
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      out.good_end = pos;
      continue;
    }
    const std::string where = path + ":" + std::to_string(line_no);
    json j = parse_json(line, where);
    if (!j.is_object()) fail(where, "expected one JSON object per line");
    const std::string id = json_string_field(j, "test_id", where);
    if (id.empty()) fail(where, "field 'test_id' is empty");
    auto [it, fresh] = line_of.emplace(id, line_no);
    if (!fresh)
      fail(where, "key '" + id + "' is on line " + std::to_string(it->second) +
                      " already; a run writes each key once (remove one of the two lines)");
    out.good_end = pos;
    out.lines.push_back(std::move(j));
  }
  return out;
}

void cut_torn_tail(const std::string& path, const ResultsText& r) {
  if (r.good_end < r.size) fs::resize_file(path, r.good_end);
}

}  // namespace

std::vector<json> read_results_lines(const std::string& path, bool repair_tail) {
  ResultsText r = read_results_text(path);
  if (repair_tail) cut_torn_tail(path, r);
  return std::move(r.lines);
}

void check_shard(const Shard& s) {
  if (s.count < 1 || s.index < 0 || s.index >= s.count)
    throw Error("--shard " + std::to_string(s.index) + "/" + std::to_string(s.count) + " is not a valid shard");
}

namespace {

json field_of(const json& o, const char* key) { return o.is_object() && o.contains(key) ? o[key] : json(); }

// The grid of `keys` as run.json records it.
json grid_record(const std::vector<std::string>& keys) {
  std::string all;
  for (const auto& k : keys) all += k + '\n';
  return {{"keys", keys.size()}, {"digest", digest_hex(all)}};
}

// The kind recorded in run.json; directories written before kinds were recorded are detect
// runs.
std::string recorded_kind(const json& record, const std::string& where) {
  if (!record.is_object()) fail(where, "run.json is not a JSON object");
  const std::string kind = json_string_field(record, "kind", where, "");
  return kind.empty() ? "detect" : kind;
}

std::string grid_words(const json& grid) {
  const json n = field_of(grid, "keys");
  return n.is_number_unsigned() ? std::to_string(n.get<uint64_t>()) + " keys" : std::string("no recorded grid");
}

}  // namespace

json run_fingerprint(const json& record) {
  return {field_of(field_of(record, "settings"), "fingerprint"), field_of(record, "n_layer"),
          field_of(record, "n_head"), field_of(record, "grid")};
}

std::string run_difference(const json& old_record, const json& new_record, bool ignore_grid) {
  json a_print = run_fingerprint(old_record), b_print = run_fingerprint(new_record);
  if (ignore_grid) a_print[3] = b_print[3] = json();
  if (a_print == b_print) return "";
  const json a = field_of(field_of(old_record, "settings"), "fingerprint");
  const json b = field_of(field_of(new_record, "settings"), "fingerprint");
  std::string names;
  if (a.is_object() && b.is_object()) {
    std::set<std::string> keys;
    for (const auto& [k, v] : a.items()) keys.insert(k);
    for (const auto& [k, v] : b.items()) keys.insert(k);
    for (const auto& k : keys)
      if (field_of(a, k.c_str()) != field_of(b, k.c_str())) names += (names.empty() ? "'" : ", '") + k + "'";
  } else if (a != b) {
    names = "(all)";
  }
  std::string out;
  if (!names.empty()) out = "other settings " + names;
  if (field_of(old_record, "n_layer") != field_of(new_record, "n_layer") ||
      field_of(old_record, "n_head") != field_of(new_record, "n_head"))
    out += std::string(out.empty() ? "" : "; ") + "another head grid";
  const json ga = field_of(old_record, "grid"), gb = field_of(new_record, "grid");
  if (ga != gb && !ignore_grid)
    out += std::string(out.empty() ? "" : "; ") + "another grid of keys (" + grid_words(ga) + ", now " +
           grid_words(gb) + ": --lengths, --depths, needles, masks, seeds or items changed)";
  return out;
}

namespace {

// Error unless `dir` may take a run of `kind` recorded as `record`: a directory that does not
// exist, one with neither run.json nor results.jsonl, or one holding the same run. Returns the
// old record (null when none).
json check_run_home(const std::string& dir, const std::string& kind, const json& record, const std::string& action,
                    bool ignore_grid = false) {
  const std::string run_path = dir + "/run.json";
  if (!fs::exists(run_path)) {
    if (fs::exists(dir + "/results.jsonl"))
      fail(dir + "/results.jsonl", "this directory holds results but no run.json; " + action);
    return json();
  }
  const json old = read_json_file(run_path);
  const std::string old_kind = recorded_kind(old, run_path);
  if (old_kind != kind)
    fail(run_path, "this directory holds a " + old_kind + " run, not a " + kind + " run; " + action);
  const std::string diff = run_difference(old, record, ignore_grid);
  if (!diff.empty()) fail(run_path, "this directory holds a " + kind + " run with " + diff + "; " + action);
  return old;
}

}  // namespace

RunDir RunDir::open(const std::string& dir, const std::string& kind, json record, const RunChecks& checks) {
  record["kind"] = kind;
  if (!checks.keys.empty()) record["grid"] = grid_record(checks.keys);
  check_run_home(dir, kind, record,
                 "use another -o (a new directory starts a new run; detect --grow adds tests to a grid)",
                 checks.grow_grid);
  RunDir d;
  d.dir_ = dir;
  d.kind_ = kind;
  d.record_ = std::move(record);
  const std::string results = d.file("results.jsonl");
  const ResultsText text = read_results_text(results);
  d.lines_ = text.lines;
  for (const auto& l : d.lines_) d.keys_.insert(l.at("test_id").get<std::string>());
  if (!checks.keys.empty()) {
    const std::set<std::string> grid(checks.keys.begin(), checks.keys.end());
    for (size_t i = 0; i < d.lines_.size(); ++i) {
      const std::string key = d.lines_[i].at("test_id").get<std::string>();
      if (!grid.count(key))
        fail(results, "key '" + key + "' is not a key of this run" +
                          std::string(checks.grow_grid ? " (--grow adds keys, it does not drop any)" : "") +
                          "; use another -o");
    }
  }
  if (checks.check_lines) checks.check_lines(d);
  // Every check passed: only now is anything written.
  fs::create_directories(dir);
  cut_torn_tail(results, text);
  write_file_atomic(d.file("run.json"), d.record_.dump(2) + "\n");
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
  for (const auto& l : d.lines_) d.keys_.insert(l.at("test_id").get<std::string>());
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

void RunDir::write_file(const std::string& name, const std::string& text) const { write_file_atomic(file(name), text); }

namespace {

// A line without its timing fields (and reused_tokens, which says how much of the prompt the
// cache already held, and kv_cache.kv_bytes_held, what the session had allocated by then:
// neither is what was computed): what two runs of one key must agree on.
json without_timing(json line) {
  line.erase("seconds");
  line.erase("timing");
  line.erase("reused_tokens");
  if (const auto kv = line.find("kv_cache"); kv != line.end() && kv->is_object()) kv->erase("kv_bytes_held");
  return line;
}

}  // namespace

RunDir merge_run_dirs(const std::vector<std::string>& dirs, const std::string& out_dir) {
  if (dirs.empty()) throw Error("merge needs at least one run directory");
  RunDir first = RunDir::read(dirs.front());
  json record = first.record();
  if (record.contains("settings") && record["settings"].is_object()) record["settings"].erase("shard");
  record.erase("partial");
  // The output directory takes only this run; when it holds it already, its lines join in.
  std::vector<std::string> inputs = dirs;
  if (!check_run_home(out_dir, first.kind(), record, "merge writes only into a new directory or one of the same run")
           .is_null()) {
    std::error_code ec;
    bool listed = false;
    for (const auto& d : dirs) listed = listed || fs::equivalent(d, out_dir, ec);
    if (!listed) inputs.push_back(out_dir);
  }
  std::vector<json> lines;
  std::map<std::string, std::pair<size_t, std::string>> where_of;  // key -> (line index, directory)
  for (const auto& dir : inputs) {
    const RunDir shard = dir == dirs.front() ? first : RunDir::read(dir);
    const std::string run_path = dir + "/run.json";
    if (shard.kind() != first.kind())
      fail(run_path, "holds a " + shard.kind() + " run, " + dirs.front() + " a " + first.kind() +
                         " run; runs of different kinds cannot be merged");
    const std::string diff = run_difference(first.record(), shard.record());
    if (!diff.empty())
      fail(run_path,
           "run settings differ from " + dirs.front() + " (" + diff + "); shards of different runs cannot be merged");
    for (const auto& l : shard.lines()) {
      const std::string key = l.at("test_id").get<std::string>();
      auto [it, fresh] = where_of.emplace(key, std::make_pair(lines.size(), dir));
      if (fresh) {
        lines.push_back(l);
      } else if (without_timing(lines[it->second.first]) != without_timing(l)) {
        fail(dir + "/results.jsonl", "key '" + key + "' differs from its line in " + it->second.second +
                                         "; shards of one run hold the same result for a key");
      }
    }
  }
  const json n_keys = field_of(field_of(record, "grid"), "keys");
  if (n_keys.is_number_unsigned()) {
    const uint64_t want = n_keys.get<uint64_t>();
    if (lines.size() > want)
      fail(dirs.front() + "/run.json",
           "the shards hold " + std::to_string(lines.size()) + " keys, more than the run's " + std::to_string(want));
    if (lines.size() < want) record["partial"] = {{"missing_keys", want - lines.size()}, {"keys", want}};
  }
  fs::create_directories(out_dir);
  std::string text;
  for (const auto& l : lines) text += l.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  write_file_atomic(out_dir + "/results.jsonl", text);
  write_file_atomic(out_dir + "/run.json", record.dump(2) + "\n");
  return RunDir::read(out_dir);
}

}  // namespace rhead
