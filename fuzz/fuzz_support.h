// Shared scaffolding for the libFuzzer targets: a scratch directory per process and a way
// to hand the input bytes to a parser that reads files. Every target catches rhead::Error
// (the expected way to reject bad input) and nothing else: any other exception, crash,
// sanitizer report, hang or huge allocation is a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "io/error.h"

namespace rhead::fuzz {

// A directory private to this process, created on first use. libFuzzer workers are
// processes, so they never share it.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/rhead-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl.data())) std::abort();
    return tmpl;
  }();
  return dir;
}

// Writes `bytes` to scratch_dir()/name and returns the path.
inline std::string write_scratch(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
  return path;
}

inline void remove_scratch(const std::string& name) { ::unlink((scratch_dir() + "/" + name).c_str()); }

// Runs `parse`; an rhead::Error is the parser rejecting the input and is fine.
template <typename Parse>
void expect_clean(Parse&& parse) {
  try {
    parse();
  } catch (const rhead::Error&) {
  }
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace rhead::fuzz
