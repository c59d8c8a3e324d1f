// Shared model options for commands.
#include "cli/common.h"

#include <omp.h>

#include <cstdio>

#include "io/error.h"

namespace rhead::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o) {
  cmd->add_option("-m,--model", o.model, "model: .gguf file, Hugging Face directory, llama2.c .bin, or builtin:induction")
      ->required();
  cmd->add_option("--tokenizer", o.tokenizer, "tokenizer file for llama2.c .bin models (tok512.bin or .model)");
  cmd->add_option("--ctx", o.n_ctx, "KV cache capacity in tokens (default: the model's context length)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--kv-type", o.kv_type,
                  "KV cache element type: f16, f32, or q8_0 (blocks of 32 int8 with an f16 scale, 8.5 bits a value; "
                  "CPU backend; a head_dim that is not a multiple of 32 pads its last block)")
      ->check(CLI::IsMember({"f16", "f32", "q8_0"}))
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--chunk", o.prefill_chunk, "prefill chunk size in tokens (default: 256 on cpu, 4096 on cuda)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--device", o.device, "where the model runs (default: cuda when a GPU is present, else cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
}

namespace {
// --threads sets OpenMP's pool; BLAS always runs single-threaded inside rhead's threads.
void apply_threads(const ModelOptions& o) {
  if (o.threads > 0) {
    omp_set_num_threads(o.threads);
  }
}
}  // namespace

LoadedModel load_model_from_options(const ModelOptions& o) {
  apply_threads(o);
  LoadOptions lo;
  lo.tokenizer_path = o.tokenizer;
  return load_model(o.model, lo);
}

SessionOptions session_options(const ModelOptions& o) {
  SessionOptions so;
  so.n_ctx = o.n_ctx;
  so.kv_f16 = o.kv_type == "f16";
  so.kv_q8_0 = o.kv_type == "q8_0";
  so.prefill_chunk = o.prefill_chunk;
  so.device = o.device.empty() ? default_device() : parse_device(o.device);
  return so;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f %s", b, units[u]);
  return buf;
}

}  // namespace rhead::cli
