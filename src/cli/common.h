// Options and helpers shared by commands that load a model.
#pragma once
#include "io/text.h"
#include <CLI/CLI.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/error.h"
#include "model/loader.h"
#include "model/session.h"

namespace rhead::cli {

struct ModelOptions {
  std::string model;           // -m: .gguf, HF dir, llama2.c .bin, or builtin:NAME
  std::string tokenizer;       // --tokenizer
  int64_t n_ctx = 0;           // --ctx
  std::string kv_type = "f16"; // --kv-type
  int threads = 0;             // --threads (0: all cores)
  int64_t prefill_chunk = 0;   // --chunk (0: the device's default)
  std::string device;          // --device cpu|cuda (empty: cuda when a GPU is present, else cpu)
};

void add_model_options(CLI::App* cmd, ModelOptions& o);
LoadedModel load_model_from_options(const ModelOptions& o);
SessionOptions session_options(const ModelOptions& o);

// The fingerprint entries of the model a run uses: its path, the identity of its file (size and
// a digest of its header and tensor table, io/file_identity.h), the tokenizer file's content,
// and the options that change results (--kv-type, the device).
nlohmann::json model_fingerprint(const ModelOptions& o, const LoadedModel& lm);
// A data file or folder in a fingerprint: its path and a digest of its content, or
// `builtin_name` when `path` is empty.
nlohmann::json data_fingerprint(const std::string& path, const std::string& builtin_name);

// Range checks of numeric options with plain messages ("--depths: must be at least 1, got 0"
// rather than a range to the largest double); NaN and infinities are refused too.
CLI::Validator at_least(double lo);
CLI::Validator in_range(double lo, double hi);

// Error "--option: 'x' is given twice" when a list option repeats a value (a repeated seed or
// style would run one condition twice under one key).
template <typename T>
void refuse_duplicates(const std::vector<T>& values, const std::string& option) {
  for (size_t i = 0; i < values.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (values[j] == values[i]) {
        std::ostringstream text;
        text << option << ": '" << values[i] << "' is given twice";
        throw Error(text.str());
      }
}


}  // namespace rhead::cli
