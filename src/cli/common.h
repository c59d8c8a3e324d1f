// Options and helpers shared by commands that load a model.
#pragma once
#include "io/text.h"
#include <CLI/CLI.hpp>
#include <string>

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


}  // namespace rhead::cli
