// Shared model options for commands.
#include "cli/common.h"

#include <cstdio>

#include "io/error.h"

namespace rhead::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o) {
  cmd->add_option("-m,--model", o.model, "model: .gguf file, Hugging Face directory, llama2.c .bin, or builtin:induction")
      ->required();
  cmd->add_option("--tokenizer", o.tokenizer, "tokenizer file for llama2.c .bin models (tok512.bin or .model)");
  cmd->add_option("--ctx", o.n_ctx, "KV cache capacity in tokens (default: the model's context length)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--kv-type", o.kv_type, "KV cache element type")->check(CLI::IsMember({"f16", "f32"}));
  cmd->add_option("--threads", o.threads, "threads (default: all cores)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--chunk", o.prefill_chunk, "prefill chunk size in tokens (default: 256 on cpu, 4096 on cuda)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--device", o.device, "where the model runs (default: cuda when a GPU is present, else cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
}

}  // namespace rhead::cli
