// Shared model options for commands.
#include "cli/common.h"

#include <omp.h>

#include <cmath>
#include <cstdio>
#include <iomanip>
#include <limits>
#include <sstream>

#include "io/error.h"
#include "io/file_identity.h"

namespace rhead::cli {

void add_model_options(CLI::App* cmd, ModelOptions& o) {
  cmd->add_option("-m,--model", o.model, "model: .gguf file, Hugging Face directory, llama2.c .bin, or builtin:induction")
      ->required();
  cmd->add_option("--tokenizer", o.tokenizer, "tokenizer file for llama2.c .bin models (tok512.bin or .model)");
  cmd->add_option("--ctx", o.n_ctx, "KV cache capacity in tokens (default: the model's context length)")
      ->check(at_least(0));
  cmd->add_option("--kv-type", o.kv_type, "KV cache element type")->check(CLI::IsMember({"f16", "f32"}));
  cmd->add_option("--threads", o.threads, "threads (default: all cores)")->check(at_least(0));
  cmd->add_option("--chunk", o.prefill_chunk, "prefill chunk size in tokens (default: 256 on cpu, 4096 on cuda)")
      ->check(at_least(1));
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
  so.prefill_chunk = o.prefill_chunk;
  so.device = o.device.empty() ? default_device() : parse_device(o.device);
  return so;
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

nlohmann::json model_fingerprint(const ModelOptions& o, const LoadedModel& lm) {
  const std::string& source = lm.model->source;
  nlohmann::json f = {{"model", source}, {"kv_type", o.kv_type}, {"device", device_name(session_options(o).device)}};
  // A model replaced at the same path (another quantization, other weights) is another run.
  if (source.rfind("builtin:", 0) != 0) f["model_file"] = model_identity(source);
  if (!o.tokenizer.empty()) f["tokenizer_file"] = content_digest(o.tokenizer);
  return f;
}

nlohmann::json data_fingerprint(const std::string& path, const std::string& builtin_name) {
  if (path.empty()) return builtin_name;
  return {{"path", path}, {"content", content_digest(path)}};
}


}  // namespace rhead::cli
