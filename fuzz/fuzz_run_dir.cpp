// Fuzz target: a run directory as resume and merge read it. The input is run.json, a NUL
// byte, then results.jsonl; the directory is read, opened for resuming a run of three keys,
// and merged into a fresh directory.
#include <filesystem>

#include "fuzz_support.h"
#include "io/run_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rhead;
  namespace fs = std::filesystem;
  const std::string_view text = fuzz::as_text(data, size);
  const size_t nul = text.find('\0');
  const std::string dir = fuzz::scratch_dir() + "/run", out = fuzz::scratch_dir() + "/merged";
  fs::remove_all(dir);
  fs::remove_all(out);
  fs::create_directories(dir);
  fuzz::write_scratch("run/run.json", text.substr(0, nul));
  fuzz::write_scratch("run/results.jsonl", nul == std::string_view::npos ? std::string_view() : text.substr(nul + 1));
  fuzz::expect_clean([&] { RunDir::read(dir); });
  fuzz::expect_clean([&] { merge_run_dirs({dir}, out); });
  fuzz::expect_clean([&] {
    RunChecks checks;
    checks.keys = {"a", "b", "c"};
    const nlohmann::json record = {{"settings", {{"fingerprint", {{"model", "m"}}}}}, {"n_layer", 2}, {"n_head", 2}};
    RunDir::open(dir, "niah", record, checks);
  });
  return 0;
}
