// Shared helpers for tests: locating ../shared data and skipping (or, in CI, failing)
// when it is missing, scratch directories, reading files and running commands (the rhead
// binary included) with their output captured.
#pragma once
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "io/error.h"

namespace rhead::testing {

inline std::string shared_path(const std::string& rel) { return std::string(RHEAD_SHARED_DIR) + "/" + rel; }
inline std::string test_data_path(const std::string& rel) { return std::string(RHEAD_TEST_DATA) + "/" + rel; }
inline std::string rhead_binary() { return RHEAD_BINARY; }

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) == "true";
}

// The whole file as bytes; empty when it cannot be opened.
inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `s` as one single-quoted shell word.
inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out.push_back(c);
  }
  return out + "'";
}

struct CommandResult {
  int exit_code = -1;  // -1 when the command could not be started or died from a signal
  std::string output;  // stdout only; redirect stderr in the command to capture it
};

// Runs `command` through the shell and captures its stdout.
inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[65536];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// A fresh directory made with mkdtemp as /tmp/<prefix>XXXXXX, removed with everything in it
// when the object goes out of scope.
struct MkdtempDir {
  std::filesystem::path path;
  explicit MkdtempDir(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + "XXXXXX";
    path = ::mkdtemp(tmpl.data());
  }
  ~MkdtempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  MkdtempDir(const MkdtempDir&) = delete;
  MkdtempDir& operator=(const MkdtempDir&) = delete;
  std::string sub(const std::string& name) const { return (path / name).string(); }
};

// rhead run with its exit code, stdout and stderr.
struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs the rhead binary with `args`, capturing stdout and stderr (through a file in `scratch`).
inline CliResult run_rhead(const std::vector<std::string>& args, const std::filesystem::path& scratch) {
  std::string cmd = shell_quote(rhead_binary());
  for (const auto& a : args) cmd += " " + shell_quote(a);
  const std::string err_path = (scratch / "stderr.txt").string();
  cmd += " 2>" + shell_quote(err_path);
  CommandResult run = run_command(cmd);
  return {run.exit_code, std::move(run.output), read_text_file(err_path)};
}

// Every byte of every file under `dir`, by relative path: what "left as it was" compares.
inline std::map<std::string, std::string> file_snapshot(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out[std::filesystem::relative(e.path(), dir).string()] = read_text_file(e.path().string());
  return out;
}

// DIR/results.jsonl by key, each line without the fields that say how long it took or how
// much of the prompt the cache held ("seconds", "timing", "reused_tokens"); a key twice
// fails the test.
inline std::map<std::string, nlohmann::json> results_without_timing(const std::string& dir) {
  std::map<std::string, nlohmann::json> out;
  std::istringstream in(read_text_file(dir + "/results.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    for (const char* k : {"seconds", "timing", "reused_tokens"}) j.erase(k);
    const std::string key = j.at("test_id").get<std::string>();
    EXPECT_TRUE(out.emplace(key, std::move(j)).second) << key << " twice in " << dir;
  }
  return out;
}

// Newlines in a file (0 when missing).
inline size_t count_lines(const std::string& path) {
  const std::string text = read_text_file(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Starts rhead with `args` and kills it with SIGKILL once the file `watched` holds `lines`
// lines. Returns whether it was killed (false: it ended first, or did not get there in 120 s).
inline bool run_rhead_and_kill(std::vector<std::string> args, const std::string& watched, size_t lines) {
  args.insert(args.begin(), rhead_binary());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::filesystem::exists(watched) && count_lines(watched) >= lines) {
      ::kill(pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
      return WIFSIGNALED(status);
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return false;
}

// The rhead::Error message of `f()`, or "" when it does not throw. Any other exception fails
// the test.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an rhead::Error: " << e.what();
    return e.what();
  }
  return "";
}

}  // namespace rhead::testing

// Use at the top of a TEST body: skips the test when `path` (absolute) is missing,
// or fails it when running in CI (CI=true), naming what is missing.
#define RHEAD_REQUIRE_FILE(path)                                       \
  do {                                                                 \
    const std::string rhead_required_path_ = (path);                   \
    if (!std::filesystem::exists(rhead_required_path_)) {              \
      if (::rhead::testing::in_ci()) {                                 \
        FAIL() << "missing test data: " << rhead_required_path_;       \
      } else {                                                         \
        GTEST_SKIP() << "missing test data: " << rhead_required_path_; \
      }                                                                \
    }                                                                  \
  } while (0)
