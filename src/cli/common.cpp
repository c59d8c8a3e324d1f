// Shared model options for commands.
#include "cli/common.h"

#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>
#include <cstdio>
#include <iomanip>
#include <limits>
#include <sstream>

#include "io/error.h"

namespace rhead::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o) {
  cmd->add_option("-m,--model", o.model,
                  "model: .gguf file, Hugging Face directory, llama2.c .bin, or builtin:induction")
      ->required();
  cmd->add_option("--tokenizer", o.tokenizer, "tokenizer file for llama2.c .bin models (tok512.bin or .model)");
  cmd->add_option("--ctx", o.n_ctx, "KV cache capacity in tokens (default: the model's context length)")
      ->check(at_least(0));
  cmd->add_option("--kv-type", o.kv_type,
                  "KV cache element type: f16, f32, or q8_0 (blocks of 32 int8 with an f16 scale, 8.5 bits a value; "
                  "CPU backend; a head_dim that is not a multiple of 32 pads its last block)")
      ->check(CLI::IsMember({"f16", "f32", "q8_0"}))
      ->capture_default_str();
  cmd->add_option("--threads", o.threads, "threads (default: all cores)")->check(at_least(0));
  cmd->add_option("--chunk", o.prefill_chunk, "prefill chunk size in tokens (default: 256 on cpu, 4096 on cuda)")
      ->check(at_least(1));
  cmd->add_option("--device", o.device, "where the model runs (default: cuda when a GPU is present, else cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
}

namespace {
std::string number_text(double v) {
  std::ostringstream s;
  s << std::setprecision(15) << v;
  return s.str();
}
CLI::Validator numeric_check(double lo, double hi, const std::string& words) {
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        double v = 0;
        try {
          size_t used = 0;
          v = std::stod(text, &used);
          if (used != text.size()) return "must be a number, got '" + text + "'";
        } catch (const std::exception&) {
          return "must be a number, got '" + text + "'";
        }
        if (!std::isfinite(v) || v < lo || v > hi) return words + ", got " + text;
        return std::string();
      },
      "");
}
}  // namespace

CLI::Validator at_least(double lo) {
  return numeric_check(lo, std::numeric_limits<double>::max(), "must be at least " + number_text(lo));
}

CLI::Validator in_range(double lo, double hi) {
  return numeric_check(lo, hi, "must be in [" + number_text(lo) + ", " + number_text(hi) + "]");
}

}  // namespace rhead::cli
