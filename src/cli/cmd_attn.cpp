// `rhead attn -m MODEL -p PROMPT -n N [--mask SPEC] [--mask-mode M] [--mask-phase P] [--json]`:
// greedy generation that shows, for every generated token, where each query head looks.
//
// Decoding is the retrieval-head method's: the prompt minus its last token is prefilled,
// then each step feeds one token and emits the greedy next one. At each step, for every
// (layer, query head), the attention kernel reports its argmax key position (ties: the
// earliest position) and that position's weight. A head whose argmax position holds the
// token just emitted is marked as copying (is_copy, model/heads.h): the copy-paste event
// that the retrieval score counts. A masked head is never marked: its output does not reach
// the model. (Its probes
// still show where it looks: position 0 with weight 1/n in uniform mode, the pattern its
// query would produce in zero and mean modes.)
//
// Text output: one block per step, one line per head. --json: one JSON object per line and
// step, with arrays over query heads named blocks.{l}.attn.argmax, .argmax_weight,
// .argmax_token, .copy, .sink_mass (.topk, .topk_weight with --top-k; .masked with --mask).
//
// Masks (--mask heads:L-H,... | kv:L-G,...) act on query heads. --mask-mode mean replaces a
// head's output by its mean over a calibration run: the whole prompt, run once through a
// separate session without any mask (see record_head_means); the masked generation follows.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "cli/common.h"
#include "cli/kv_options.h"
#include "io/error.h"
#include "io/text.h"
#include "model/generate.h"
#include "model/generate.h"

namespace rhead::cli {
namespace {

struct AttnOptions {
  ModelOptions model;
  std::string prompt;
  int n = 16;
  std::string mask;
  std::string mask_mode = "uniform";
  std::string mask_phase = "decode";
  bool json = false;
  int top_k = 0;
  bool no_bos = false;
  bool stop_at_eos = true;
  KvCliOptions kv;
};

void run_attn(const AttnOptions& o) {
  LoadedModel lm = load_model_from_options(o.model);
  const Tokenizer& tok = lm.require_tokenizer();
  const ModelConfig& c = lm.model->config;

  HeadMask mask;
  const bool masking = !o.mask.empty();
  if (masking) {
    mask = parse_head_mask(o.mask, c);
    mask.mode = parse_mask_mode(o.mask_mode);
    mask.phase = parse_mask_phase(o.mask_phase);
  }

  std::vector<int32_t> prompt = tok.encode(o.prompt, !o.no_bos);
  if (prompt.empty()) throw Error("prompt is empty and the tokenizer adds no BOS token");
  const SessionOptions so = session_options(o.model);
  if (masking && mask.mode == MaskMode::mean && !mask.empty()) {
    mask.means = record_head_means(lm.model, prompt, so);
    std::fprintf(stderr, "mean ablation: head means recorded over the %zu prompt tokens (unmasked run)\n",
                 prompt.size());
  }

  // KV policy: restricted heads see only the sink and their window; their probes report over
  // those keys ("window" in the text view, blocks.{l}.attn.kv_full false in JSON).
  const KvPolicy policy = kv_policy_from_options(o.kv, c, o.kv.scores, o.kv.seed);
  if (policy.active())
    std::fprintf(stderr, "%s\n",
                 describe_kv_policy(policy, c, o.model.kv_type == "f16", static_cast<int64_t>(prompt.size()) + o.n)
                     .c_str());
  Session session(lm.model, with_kv_policy(so, policy));
  ProbeRequest req;
  req.argmax = true;
  req.top_k = o.top_k;
  req.sink = true;

  std::vector<int32_t> seq = prompt;  // token at every position seen so far
  std::vector<int> copies(static_cast<size_t>(c.n_layer) * c.n_head, 0);
  if (!o.json) {
    std::printf("prompt: %zu tokens, %d layers x %d query heads (%d KV heads), mask: %s\n", prompt.size(), c.n_layer,
                c.n_head, c.n_kv_head,
                masking ? (o.mask + " " + mask_mode_name(mask.mode) + "/" + mask_phase_name(mask.phase) + " (" +
                           std::to_string(mask.count()) + " heads)")
                              .c_str()
                        : "none");
  }

  GreedyOptions go;
  go.max_new_tokens = o.n;
  go.probes = &req;
  go.mask = masking ? &mask : nullptr;
  go.on_token = [&](const DecodeStep& s) {
    const ProbeRecord& r = *s.probes;
    // seq holds positions 0..query_position: the argmax can only point inside it.
    const std::string piece = tok.piece(s.token);
    std::vector<std::string> copying;
    if (o.json) {
      nlohmann::ordered_json j;
      j["step"] = s.index;
      j["position"] = s.query_position;
      j["token"] = s.token;
      j["piece"] = piece;
      for (int l = 0; l < c.n_layer; ++l) {
        const std::string p = "blocks." + std::to_string(l) + ".attn.";
        std::vector<int32_t> am, am_tok;
        std::vector<float> am_w, sink;
        std::vector<bool> copy, masked;
        std::vector<std::vector<int32_t>> topk;
        std::vector<std::vector<float>> topk_w;
        for (int h = 0; h < c.n_head; ++h) {
          const int64_t i = r.index(0, l, h);
          const int32_t pos = r.argmax[i];
          am.push_back(pos);
          am_w.push_back(r.argmax_weight[i]);
          am_tok.push_back(seq[pos]);
          const bool copies_token = is_copy(pos, seq, s.token, masking && mask.contains(l, h));
          copy.push_back(copies_token);
          if (masking) masked.push_back(mask.contains(l, h));
          sink.push_back(r.sink_mass[i]);
          if (copies_token) {
            copying.push_back(HeadId{l, h}.key());
            ++copies[static_cast<size_t>(l) * c.n_head + h];
          }
          if (r.top_k > 0) {
            topk.emplace_back(r.topk.begin() + i * r.top_k, r.topk.begin() + (i + 1) * r.top_k);
            topk_w.emplace_back(r.topk_weight.begin() + i * r.top_k, r.topk_weight.begin() + (i + 1) * r.top_k);
          }
        }
        j[p + "argmax"] = am;
        j[p + "argmax_weight"] = am_w;
        j[p + "argmax_token"] = am_tok;
        j[p + "copy"] = copy;
        j[p + "sink_mass"] = sink;
        if (masking) j[p + "masked"] = masked;
        if (policy.active()) {
          std::vector<bool> full;
          for (int h = 0; h < c.n_head; ++h) full.push_back(policy.is_full(l, h));
          j[p + "kv_full"] = full;
        }
        if (r.top_k > 0) {
          j[p + "topk"] = topk;
          j[p + "topk_weight"] = topk_w;
        }
      }
      j["copies"] = copying;
      std::cout << j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    } else {
      std::ostringstream out;
      char buf[256];
      std::snprintf(buf, sizeof(buf), "\nstep %d  pos %lld  emits %d \"%s\"\n", s.index,
                    static_cast<long long>(s.query_position), s.token, printable(piece, true).c_str());
      out << buf << "  head    argmax  token                 weight   sink\n";
      for (int l = 0; l < c.n_layer; ++l)
        for (int h = 0; h < c.n_head; ++h) {
          const int64_t i = r.index(0, l, h);
          const int32_t pos = r.argmax[i];
          const bool copy = is_copy(pos, seq, s.token, masking && mask.contains(l, h));
          const std::string name = HeadId{l, h}.key();
          if (copy) {
            copying.push_back(name);
            ++copies[static_cast<size_t>(l) * c.n_head + h];
          }
          const std::string quoted = "\"" + printable(tok.piece(seq[pos]), true) + "\"";
          std::snprintf(buf, sizeof(buf), "  %-7s %6d  %-20s  %.4f  %.4f%s%s%s\n", name.c_str(), pos, quoted.c_str(),
                        r.argmax_weight[i], r.sink_mass[i], copy ? "  copy" : "",
                        masking && mask.contains(l, h) ? "  (masked)" : "",
                        policy.active() && !policy.is_full(l, h) ? "  (window)" : "");
          out << buf;
          if (r.top_k > 0) {
            out << "          top-" << r.top_k << ":";
            for (int k = 0; k < r.top_k; ++k) {
              const int32_t tp = r.topk[i * r.top_k + k];
              if (tp < 0) break;
              std::snprintf(buf, sizeof(buf), " %d:%.4f", tp, r.topk_weight[i * r.top_k + k]);
              out << buf;
            }
            out << "\n";
          }
        }
      out << "  copying heads:";
      if (copying.empty()) out << " none";
      for (const auto& name : copying) out << " " << name;
      out << "\n";
      std::cout << out.str() << std::flush;
    }
    seq.push_back(s.token);
    return !(o.stop_at_eos && tok.is_end_of_generation(s.token));
  };
  GenerateResult res = generate_greedy(session, prompt, go);

  if (!o.json) {
    // The continuation as it reads after the prompt (decoding it alone would drop the
    // SentencePiece leading space).
    const std::string before = tok.decode(prompt), after = tok.decode(seq);
    const std::string text = after.compare(0, before.size(), before) == 0 ? after.substr(before.size()) : tok.decode(res.tokens);
    std::cout << "\ngenerated: \"" << printable(text, true) << "\"\n";
    std::cout << "copy events per head (of " << res.tokens.size() << " steps):";
    bool any = false;
    for (int l = 0; l < c.n_layer; ++l)
      for (int h = 0; h < c.n_head; ++h)
        if (int n = copies[static_cast<size_t>(l) * c.n_head + h]; n > 0) {
          std::cout << " " << l << "-" << h << ":" << n;
          any = true;
        }
    std::cout << (any ? "\n" : " none\n");
  }
  std::fprintf(stderr, "prefill: %lld tokens, %.1f tokens/s | decode: %zu tokens, %.1f tokens/s\n",
               static_cast<long long>(res.n_prefill), res.prefill_seconds > 0 ? res.n_prefill / res.prefill_seconds : 0.0,
               res.tokens.size(), res.decode_seconds > 0 ? res.tokens.size() / res.decode_seconds : 0.0);
}

CommandRegistrar reg("attn", [](CLI::App& app) {
  auto o = std::make_shared<AttnOptions>();
  auto* cmd = app.add_subcommand(
      "attn", "greedy generation showing each query head's argmax position, token and weight per step");
  add_model_options(cmd, o->model);
  cmd->add_option("-p,--prompt", o->prompt, "prompt text (default: empty, BOS only)");
  cmd->add_option("-n,--n-tokens", o->n, "tokens to generate")->check(at_least(0));
  cmd->add_option("--mask", o->mask,
                  "heads to mask: heads:L-H[,L-H...] (query heads), kv:L-G[,L-G...] (all query heads of KV "
                  "group G of layer L), or none");
  cmd->add_option("--mask-mode", o->mask_mode,
                  "uniform: attend uniformly to the causal prefix (the reference's zeroed query); zero: remove the "
                  "head's output; mean: replace it by its mean over an unmasked calibration run on the prompt")
      ->check(CLI::IsMember({"uniform", "zero", "mean"}));
  cmd->add_option("--mask-phase", o->mask_phase, "decode: mask decode steps only (the reference); all: prefill too")
      ->check(CLI::IsMember({"decode", "all"}));
  cmd->add_option("--top-k", o->top_k, "also report each head's top-k positions and weights")
      ->check(CLI::Range(0, 1000));
  cmd->add_flag("--json", o->json, "one JSON object per step (blocks.{l}.attn.argmax, ...) on stdout");
  cmd->add_flag("--no-bos", o->no_bos, "do not add the BOS token");
  cmd->add_flag("!--ignore-eos", o->stop_at_eos, "keep generating past the end-of-sequence token");
  add_kv_options(cmd, o->kv);
  add_kv_selection_options(cmd, o->kv);
  cmd->callback([o] { run_attn(*o); });
});

}  // namespace
}  // namespace rhead::cli
