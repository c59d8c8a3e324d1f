// Long-context speed of one model on one device (cuda by default): prefill tokens/s at given
// lengths, decode tokens/s at a given context with no probes and with argmax probes on every
// head (what detection observes at each decode step), and the peak device memory rhead
// allocated. Prints one "name: value" line per figure, for scripts/gpu_check.sh.
//
//   bench_gpu MODEL.gguf [--device cuda|cpu] [--prefill 4096,16384,32768,51200]
//             [--decode-context 32768] [--decode-tokens 32] [--also-tc]
// The prefill's attention kernel follows RHEAD_CUDA_FLASH (f32 by default, tc: tensor cores);
// --also-tc repeats the prefill lengths with the tensor-core kernel at the end.
// Tokens are random ids (speed does not depend on them).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "io/error.h"
#include "model/loader.h"
#include "model/session.h"
#include "ops/backend.h"

namespace {

using namespace rhead;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

std::vector<int32_t> random_tokens(int64_t n, int32_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(3, vocab - 1);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = dist(rng);
  return t;
}

int run(int argc, char** argv) {
  std::string model_path, device = cuda_available() ? "cuda" : "cpu";
  std::vector<int64_t> prefill = {4096, 16384, 32768, 51200};
  int64_t decode_context = 32768, decode_tokens = 32;
  bool also_tc = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--device")
      device = value();
    else if (a == "--prefill")
      prefill = parse_list(value());
    else if (a == "--decode-context")
      decode_context = std::stoll(value());
    else if (a == "--decode-tokens")
      decode_tokens = std::stoll(value());
    else if (a == "--also-tc")
      also_tc = true;
    else if (model_path.empty())
      model_path = a;
    else
      throw Error("unexpected argument " + a);
  }
  if (model_path.empty())
    throw Error("usage: bench_gpu MODEL.gguf [--device cuda|cpu] [--prefill L,...] [--decode-context N]");

  auto t0 = Clock::now();
  LoadedModel lm = load_model(model_path);
  const ModelConfig& c = lm.model->config;
  int64_t max_len = decode_context + decode_tokens + 8;
  for (int64_t L : prefill) max_len = std::max(max_len, L + 8);
  SessionOptions so;
  so.device = parse_device(device);
  so.n_ctx = max_len;
  Session s(lm.model, so);
  // Warm-up: uploads the weights, creates the BLAS handle, compiles nothing.
  s.forward(random_tokens(512, c.n_vocab, 1));
  std::printf("device: %s\nmodel: %s (%d layers, %d heads, %d KV heads, head_dim %d)\nload_and_upload_s: %.2f\n",
              device.c_str(), model_path.c_str(), c.n_layer, c.n_head, c.n_kv_head, c.head_dim, seconds_since(t0));
  std::fflush(stdout);

  auto run_prefill = [&](const char* flash) {
    for (int64_t L : prefill) {
      s.truncate(0);
      const std::vector<int32_t> toks = random_tokens(L, c.n_vocab, static_cast<uint32_t>(L));
      const auto t = Clock::now();
      s.forward(toks);
      const double sec = seconds_since(t);
      std::printf("prefill_tok_s L=%lld flash=%s: %.1f (%.3f s)\n", static_cast<long long>(L), flash, L / sec, sec);
      std::fflush(stdout);
    }
  };
  // The prefill attention kernel: f32 by default; RHEAD_CUDA_FLASH=tc (WMMA) or mma (register
  // resident, block shape from RHEAD_CUDA_FLASH_SHAPE).
  const char* requested = std::getenv("RHEAD_CUDA_FLASH");
  const char* shape = std::getenv("RHEAD_CUDA_FLASH_SHAPE");
  const std::string kind = requested && *requested ? requested : "f32";
  const std::string flash = kind == "mma" ? "mma-" + std::string(shape && *shape ? shape : "8x16") : kind;
  run_prefill(flash.c_str());

  if (decode_context > 0 && decode_tokens > 0) {
    s.truncate(0);
    s.forward(random_tokens(decode_context, c.n_vocab, 7));
    std::vector<int32_t> next = random_tokens(2 * decode_tokens, c.n_vocab, 8);
    for (int probes = 0; probes < 2; ++probes) {
      s.truncate(decode_context);
      ProbeRequest req;
      req.argmax = true;
      ProbeRecord rec;
      ForwardOptions fo;
      fo.decode = true;
      if (probes) {
        fo.probes = &req;
        fo.probe_out = &rec;
      }
      const auto t = Clock::now();
      for (int64_t i = 0; i < decode_tokens; ++i) s.forward({&next[i], 1}, fo);
      const double sec = seconds_since(t);
      std::printf("decode_tok_s ctx=%lld probes=%s: %.2f (%.2f ms/token)\n", static_cast<long long>(decode_context),
                  probes ? "argmax-all-heads" : "none", decode_tokens / sec, 1e3 * sec / decode_tokens);
      std::fflush(stdout);
    }
  }
  // With --also-tc, the prefill again with the tensor-core attention kernel (last: a kernel
  // fault would end the process).
  if (also_tc && so.device == Device::cuda) {
    ::setenv("RHEAD_CUDA_FLASH", "tc", 1);
    run_prefill("tc");
  }
  if (so.device == Device::cuda)
    std::printf("peak_gpu_bytes_rhead: %zu (%.2f GiB)\n", cuda_peak_bytes(), cuda_peak_bytes() / double(1 << 30));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu: %s\n", e.what());
    return 1;
  }
}
