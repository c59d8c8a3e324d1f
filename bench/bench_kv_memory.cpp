// KV memory actually held, process peak RSS, prefill and decode speed: the whole f16 cache
// against a KV policy with the compacted cache (ops/kv_cache.h), at several depths.
//
//   bench_kv_memory MODEL.gguf [--depths 0,8192,16384] [--window 256] [--sink 4]
//                   [--full 0.25] [--decode 32] [--cache both|full|policy] [--kv-type f16|q8_0|both]
//
// Meant for the 1.1B GGUF of make_bench_model (make_bench_model /tmp/bench-1b-f16.gguf --type
// f16). The policy keeps `--full` of the KV heads whole (spread evenly over the layers: every
// query head of the group full) and windows the others (window W, sink S). Each (depth, cache)
// case runs in a child process of its own, so that its peak RSS (VmHWM) is its own:
//   prefill    depth random tokens in one forward call (the session's default chunks)
//   decode     --decode greedy steps after it, one token each (after one untimed step)
//   kv_held    Session::kv_bytes_held() after the decode (bytes of K and V allocated)
//   peak_rss   VmHWM of the child (the mapped weights it touched count too)
// --kv-type both runs every case with an f16 and with a q8_0 cache, one after the other (so the
// four configurations of a depth, whole f16, whole q8_0, policy f16, policy q8_0, run back to
// back and the machine's load drifts little between them).
// The closing lines give, per depth and KV type, the policy's held bytes over the whole cache's,
// the policy's decode speed over its own at the first depth, and the q8_0 cache's decode speed
// over the f16 cache's.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "bench_context.h"
#include "io/error.h"
#include "model/generate.h"
#include "model/loader.h"
#include "model/session.h"
#include "ops/cpu_info.h"

namespace {

using namespace rhead;
using clock_type = std::chrono::steady_clock;

struct Args {
  std::string model;
  std::vector<int64_t> depths = {0, 8192, 16384};
  int64_t window = 256, sink = 4;
  double full = 0.25;
  int decode = 32;
  bool run_full = true, run_policy = true;  // --cache
  std::vector<KvType> kv_types = {KvType::f16};
};

struct CaseResult {
  int64_t depth = 0;
  bool policy = false;
  KvType kv = KvType::f16;
  int64_t kv_held = 0;
  double peak_rss_mb = 0, prefill_tps = 0, decode_tps = 0;
};

int64_t status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + std::string(key).size());
  return -1;
}

// --full of the KV heads, spread evenly over (layer, KV head), kept whole.
KvPolicy bench_policy(const ModelConfig& c, const Args& a) {
  KvPolicy p(c, a.window, a.sink);
  const int total = c.n_layer * c.n_kv_head, group = c.n_head / c.n_kv_head;
  const int count = static_cast<int>(std::lround(a.full * total));
  for (int i = 0; i < count; ++i) {
    const int kv = static_cast<int>(static_cast<int64_t>(i) * total / count);
    const int l = kv / c.n_kv_head, g = kv % c.n_kv_head;
    for (int h = g * group; h < (g + 1) * group; ++h) p.set_full(l, h);
  }
  return p;
}

CaseResult run_case(const Args& a, int64_t depth, bool policy, KvType kv) {
  LoadedModel lm = load_model(a.model);
  const ModelConfig& c = lm.model->config;
  SessionOptions so;
  so.n_ctx = depth + a.decode + 2;
  so.kv_f16 = kv == KvType::f16;
  so.kv_q8_0 = kv == KvType::q8_0;
  if (policy) so.kv_policy = bench_policy(c, a);
  Session s(lm.model, so);
  CaseResult r{depth, policy, kv};
  std::vector<float> logits;
  if (depth > 0) {
    const auto tokens = bench_random_tokens(depth, c.n_vocab);
    const auto t0 = clock_type::now();
    logits = s.forward(tokens);
    r.prefill_tps = depth / std::chrono::duration<double>(clock_type::now() - t0).count();
  }
  int32_t next = logits.empty() ? 1 : argmax_token(logits);
  ForwardOptions fo;
  fo.decode = true;
  // One untimed step first: at depth 0 it is the first touch of the mapped weights.
  next = argmax_token(s.forward(std::span<const int32_t>(&next, 1), fo));
  const auto t0 = clock_type::now();
  for (int i = 0; i < a.decode; ++i) next = argmax_token(s.forward(std::span<const int32_t>(&next, 1), fo));
  r.decode_tps = a.decode / std::chrono::duration<double>(clock_type::now() - t0).count();
  r.kv_held = s.kv_bytes_held();
  r.peak_rss_mb = status_kb("VmHWM:") / 1024.0;
  return r;
}

// Runs one case in a child process; its result comes back as one line through a pipe.
CaseResult run_in_child(const Args& a, int64_t depth, bool policy, KvType kv) {
  int fd[2];
  if (pipe(fd) != 0) fail("bench_kv_memory", "pipe failed");
  const pid_t pid = fork();
  if (pid < 0) fail("bench_kv_memory", "fork failed");
  if (pid == 0) {
    close(fd[0]);
    int rc = 0;
    std::string line;
    try {
      const CaseResult r = run_case(a, depth, policy, kv);
      std::ostringstream o;
      o << r.kv_held << " " << r.peak_rss_mb << " " << r.prefill_tps << " " << r.decode_tps << "\n";
      line = o.str();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_kv_memory: %s\n", e.what());
      rc = 1;
    }
    if (!line.empty() && write(fd[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) rc = 1;
    close(fd[1]);
    _exit(rc);
  }
  close(fd[1]);
  std::string text;
  char buf[256];
  for (ssize_t n; (n = read(fd[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || text.empty())
    fail("bench_kv_memory", "the case at depth " + std::to_string(depth) + " failed");
  CaseResult r{depth, policy, kv};
  std::istringstream in(text);
  in >> r.kv_held >> r.peak_rss_mb >> r.prefill_tps >> r.decode_tps;
  return r;
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoll(item));
  return out;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail("bench_kv_memory", k + " needs a value");
      return argv[++i];
    };
    if (k == "--depths")
      a.depths = parse_list(value());
    else if (k == "--window")
      a.window = std::stoll(value());
    else if (k == "--sink")
      a.sink = std::stoll(value());
    else if (k == "--full")
      a.full = std::stod(value());
    else if (k == "--decode")
      a.decode = std::stoi(value());
    else if (k == "--cache") {
      const std::string c = value();
      if (c != "both" && c != "full" && c != "policy")
        fail("bench_kv_memory", "--cache must be both, full or policy, not '" + c + "'");
      a.run_full = c != "policy";
      a.run_policy = c != "full";
    } else if (k == "--kv-type") {
      const std::string t = value();
      if (t == "f16")
        a.kv_types = {KvType::f16};
      else if (t == "q8_0")
        a.kv_types = {KvType::q8_0};
      else if (t == "both")
        a.kv_types = {KvType::f16, KvType::q8_0};
      else
        fail("bench_kv_memory", "--kv-type must be f16, q8_0 or both, not '" + t + "'");
    } else if (!k.empty() && k[0] != '-' && a.model.empty())
      a.model = k;
    else
      fail("bench_kv_memory", "unknown argument '" + k + "'");
  }
  if (a.model.empty())
    fail("bench_kv_memory", "no model (write one with: make_bench_model /tmp/bench-1b-f16.gguf --type f16)");
  if (a.decode <= 0) fail("bench_kv_memory", "--decode must be positive");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse_args(argc, argv);
    std::string kv_names;
    for (KvType t : a.kv_types) kv_names += std::string(kv_names.empty() ? "" : ", ") + kv_type_name(t);
    std::printf("cpu: %s\nmodel: %s\npolicy: window %lld, sink %lld, %.0f%% of the KV heads whole; KV %s\n",
                cpu_model().c_str(), a.model.c_str(), static_cast<long long>(a.window), static_cast<long long>(a.sink),
                100 * a.full, kv_names.c_str());
    std::printf("%-7s %-7s %-5s %12s %10s %12s %12s\n", "depth", "cache", "kv", "kv_held_MB", "peak_RSS_MB",
                "prefill_tok/s", "decode_tok/s");
    std::map<std::tuple<int64_t, bool, KvType>, CaseResult> results;
    for (int64_t d : a.depths)
      for (bool policy : {false, true}) {
        if (!(policy ? a.run_policy : a.run_full)) continue;
        for (KvType kv : a.kv_types) {
          const CaseResult r = run_in_child(a, d, policy, kv);
          results[{d, policy, kv}] = r;
          std::printf("%-7lld %-7s %-5s %12.1f %10.0f %12.1f %12.2f\n", static_cast<long long>(d),
                      policy ? "policy" : "full", kv_type_name(kv), r.kv_held / 1e6, r.peak_rss_mb, r.prefill_tps,
                      r.decode_tps);
          std::fflush(stdout);
        }
      }
    for (KvType kv : a.kv_types) {
      const char* kn = kv_type_name(kv);
      for (int64_t d : a.depths) {
        if (a.run_policy) {
          const CaseResult& p = results[{d, true, kv}];
          std::printf("depth %lld, %s KV: policy decode %.2f of its speed at depth %lld\n", static_cast<long long>(d),
                      kn, p.decode_tps / results[{a.depths.front(), true, kv}].decode_tps,
                      static_cast<long long>(a.depths.front()));
          if (a.run_full) {
            const CaseResult& f = results[{d, false, kv}];
            std::printf("depth %lld, %s KV: policy holds %.1f%% of the whole cache's KV bytes; peak RSS %+.0f MB\n",
                        static_cast<long long>(d), kn, 100.0 * p.kv_held / f.kv_held, p.peak_rss_mb - f.peak_rss_mb);
          }
        }
      }
    }
    if (a.kv_types.size() == 2)
      for (int64_t d : a.depths)
        for (bool policy : {false, true}) {
          if (!(policy ? a.run_policy : a.run_full)) continue;
          const CaseResult& f = results[{d, policy, KvType::f16}];
          const CaseResult& q = results[{d, policy, KvType::q8_0}];
          std::printf("depth %lld, %s cache: q8_0 KV decodes %.2f times as fast as f16 KV, holds %.1f%% of its bytes\n",
                      static_cast<long long>(d), policy ? "policy" : "whole", q.decode_tps / f.decode_tps,
                      100.0 * q.kv_held / f.kv_held);
        }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
