// Per-step, per-head attention of one greedy generation (see attn_trace.h).
#include "experiments/attn_trace.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>

#include "io/error.h"
#include "model/generate.h"
#include "report/plots.h"

namespace rhead {

std::vector<HeadId> heads_in_layers(const std::vector<HeadId>& heads, const std::vector<int>& layers) {
  if (layers.empty()) return heads;
  const std::set<int> keep(layers.begin(), layers.end());
  std::vector<HeadId> out;
  for (const HeadId& h : heads)
    if (keep.count(h.layer)) out.push_back(h);
  return out;
}

std::vector<int> parse_layer_list(const std::string& spec, int n_layer, const std::string& option) {
  std::vector<int> out;
  std::stringstream in(spec);
  std::string item;
  auto number = [&](const std::string& s) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 6)
      throw Error(option + " '" + spec + "': '" + s + "' is not a layer number");
    const int v = std::stoi(s);
    if (v >= n_layer)
      throw Error(option + " '" + spec + "': layer " + s + " does not exist (the model has " + std::to_string(n_layer) +
                  " layers)");
    return v;
  };
  while (std::getline(in, item, ',')) {
    const auto dash = item.find('-');
    if (dash == std::string::npos) {
      out.push_back(number(item));
      continue;
    }
    const int a = number(item.substr(0, dash)), b = number(item.substr(dash + 1));
    if (b < a) throw Error(option + " '" + spec + "': range " + item + " runs backwards");
    for (int l = a; l <= b; ++l) out.push_back(l);
  }
  if (out.empty()) throw Error(option + " is empty");
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

AttnTrace trace_attention(Session& session, const AttnTraceRequest& request,
                          const std::function<void(const AttnStep&)>& on_step) {
  const ModelConfig& c = session.model().config;
  if (request.prompt.empty()) throw Error("the prompt is empty");
  if (session.n_past() != 0) throw Error("an attention trace needs an empty session");
  std::vector<HeadId> heads = request.heads;
  if (heads.empty())
    for (int l = 0; l < c.n_layer; ++l)
      for (int h = 0; h < c.n_head; ++h) heads.push_back({l, h});
  for (const HeadId& h : heads)
    if (h.layer >= c.n_layer || h.head >= c.n_head)
      throw Error("head " + h.key() + " is outside the model (" + std::to_string(c.n_layer) + " layers x " +
                  std::to_string(c.n_head) + " heads)");
  const HeadMask* mask = request.mask && !request.mask->empty() ? request.mask : nullptr;
  const KvPolicy* policy = request.kv_policy && request.kv_policy->active() ? request.kv_policy : nullptr;

  AttnTrace trace;
  trace.prompt_tokens = static_cast<int64_t>(request.prompt.size());
  trace.sequence = request.prompt;
  trace.copies = HeadGrid<int>(c.n_layer, c.n_head);
  ProbeRequest probes;
  probes.argmax = true;
  probes.top_k = request.top_k;
  probes.sink = true;

  GreedyOptions go;
  go.max_new_tokens = request.max_new_tokens;
  go.probes = &probes;
  go.mask = mask;
  go.on_token = [&](const DecodeStep& s) {
    const ProbeRecord& r = *s.probes;
    AttnStep step;
    step.index = s.index;
    step.position = s.query_position;
    step.token = s.token;
    // trace.sequence holds positions 0..query_position: every probe position lies inside it.
    const std::vector<int32_t>& seq = trace.sequence;
    for (const HeadId& id : heads) {
      const int64_t i = r.index(0, id.layer, id.head);
      HeadLook look;
      look.head = id;
      look.argmax = r.argmax[i];
      look.argmax_token = seq[look.argmax];
      look.argmax_weight = r.argmax_weight[i];
      look.sink_mass = r.sink_mass[i];
      look.masked = mask && mask->contains(id);
      look.windowed = policy && !policy->is_full(id.layer, id.head);
      look.copy = is_copy(look.argmax, seq, s.token, look.masked);
      for (int k = 0; k < r.top_k; ++k) {
        const int32_t p = r.topk[i * r.top_k + k];
        look.topk.push_back(p);
        look.topk_token.push_back(p >= 0 ? seq[p] : -1);
        look.topk_weight.push_back(r.topk_weight[i * r.top_k + k]);
      }
      if (look.copy) {
        step.copying.push_back(id);
        ++trace.copies[id];
      }
      step.heads.push_back(std::move(look));
    }
    if (on_step) on_step(step);
    trace.steps.push_back(std::move(step));
    trace.sequence.push_back(s.token);
    trace.generated.push_back(s.token);
    return !(request.stop_after && request.stop_after(s.token));
  };
  const GenerateResult res = generate_greedy(session, request.prompt, go);
  trace.prefill_seconds = res.prefill_seconds;
  trace.decode_seconds = res.decode_seconds;
  return trace;
}

nlohmann::ordered_json attn_step_to_json(const AttnStep& step, const Tokenizer& tok, bool masking, bool kv_policy,
                                         bool with_topk) {
  nlohmann::ordered_json j;
  j["step"] = step.index;
  j["position"] = step.position;
  j["token"] = step.token;
  j["piece"] = tok.piece(step.token);
  std::vector<int> layers;
  for (const HeadLook& h : step.heads)
    if (std::find(layers.begin(), layers.end(), h.head.layer) == layers.end()) layers.push_back(h.head.layer);
  for (int l : layers) {
    const std::string p = "blocks." + std::to_string(l) + ".attn.";
    std::vector<int> head_index;
    std::vector<int32_t> am, am_tok;
    std::vector<std::string> am_piece;
    std::vector<float> am_w, sink;
    std::vector<bool> copy, masked, full;
    std::vector<std::vector<int32_t>> topk, topk_tok;
    std::vector<std::vector<float>> topk_w;
    for (const HeadLook& h : step.heads) {
      if (h.head.layer != l) continue;
      head_index.push_back(h.head.head);
      am.push_back(h.argmax);
      am_tok.push_back(h.argmax_token);
      am_piece.push_back(tok.piece(h.argmax_token));
      am_w.push_back(h.argmax_weight);
      sink.push_back(h.sink_mass);
      copy.push_back(h.copy);
      masked.push_back(h.masked);
      full.push_back(!h.windowed);
      topk.push_back(h.topk);
      topk_tok.push_back(h.topk_token);
      topk_w.push_back(h.topk_weight);
    }
    j[p + "heads"] = head_index;
    j[p + "argmax"] = am;
    j[p + "argmax_weight"] = am_w;
    j[p + "argmax_token"] = am_tok;
    j[p + "argmax_piece"] = am_piece;
    j[p + "copy"] = copy;
    j[p + "sink_mass"] = sink;
    if (masking) j[p + "masked"] = masked;
    if (kv_policy) j[p + "kv_full"] = full;
    if (with_topk && !step.heads.empty() && !step.heads.front().topk.empty()) {
      j[p + "topk"] = topk;
      j[p + "topk_token"] = topk_tok;
      j[p + "topk_weight"] = topk_w;
    }
  }
  std::vector<std::string> copies;
  for (const HeadId& h : step.copying) copies.push_back(h.key());
  j["copies"] = copies;
  return j;
}

namespace {

// A piece as a short one-line label.
std::string label_piece(const std::string& piece) {
  std::string out;
  for (unsigned char ch : piece) {
    if (ch == '\n')
      out += "\\n";
    else if (ch < 0x20 || ch == 0x7f)
      out += '?';
    else
      out += static_cast<char>(ch);
  }
  // SentencePiece's word mark reads as a space.
  for (size_t at; (at = out.find("\xE2\x96\x81")) != std::string::npos;) out.replace(at, 3, " ");
  if (out.size() > 14) out = out.substr(0, 13) + "~";
  return out;
}

}  // namespace

report::Drawing attention_figure(const AttnTrace& trace, const Tokenizer& tok, HeadId head) {
  std::vector<const HeadLook*> looks;
  for (const AttnStep& s : trace.steps) {
    auto it = std::find_if(s.heads.begin(), s.heads.end(), [&](const HeadLook& h) { return h.head == head; });
    if (it == s.heads.end()) throw Error("head " + head.key() + " is not in the trace (see --heads / --layers)");
    if (it->topk.empty()) throw Error("the attention figure needs the top-k weights of each step (top_k > 0)");
    looks.push_back(&*it);
  }
  if (looks.empty()) throw Error("the trace has no decode step to draw");
  std::set<int32_t> positions;
  for (const HeadLook* h : looks) {
    positions.insert(h->argmax);
    for (int32_t p : h->topk)
      if (p >= 0) positions.insert(p);
  }
  const std::vector<int32_t> columns(positions.begin(), positions.end());
  report::HeatmapSpec spec;
  spec.title = "head " + head.key() + ": attention at each decode step (argmax path outlined)";
  spec.x_label = "position and token (the positions in the head's top-" + std::to_string(looks.front()->topk.size()) +
                 " at some step)";
  spec.y_label = "step: emitted token";
  spec.colorbar_label = "attention weight";
  spec.square_cells = false;
  spec.min = 0;
  spec.max = 1;
  for (int32_t p : columns)
    spec.column_labels.push_back(std::to_string(p) + " " + label_piece(tok.piece(trace.sequence[p])));
  for (size_t r = 0; r < looks.size(); ++r) {
    const HeadLook& h = *looks[r];
    spec.row_labels.push_back(std::to_string(r) + ": " + label_piece(tok.piece(trace.steps[r].token)));
    std::vector<double> row(columns.size(), std::nan(""));
    std::vector<std::string> tips(columns.size());
    for (size_t k = 0; k < h.topk.size(); ++k) {
      if (h.topk[k] < 0) continue;
      const size_t c =
          static_cast<size_t>(std::lower_bound(columns.begin(), columns.end(), h.topk[k]) - columns.begin());
      row[c] = h.topk_weight[k];
    }
    const size_t argmax_col =
        static_cast<size_t>(std::lower_bound(columns.begin(), columns.end(), h.argmax) - columns.begin());
    if (std::isnan(row[argmax_col])) row[argmax_col] = h.argmax_weight;
    for (size_t c = 0; c < columns.size(); ++c) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "step %zu, position %d: weight %.4f", r, columns[c],
                    std::isnan(row[c]) ? 0.0 : row[c]);
      tips[c] = buf;
    }
    spec.values.push_back(std::move(row));
    spec.cell_tooltips.push_back(std::move(tips));
    spec.path.emplace_back(static_cast<int>(r), static_cast<int>(argmax_col));
  }
  return report::heatmap(spec);
}

std::string generated_text(const AttnTrace& trace, const Tokenizer& tok) {
  const std::vector<int32_t> prompt(trace.sequence.begin(), trace.sequence.begin() + trace.prompt_tokens);
  const std::string before = tok.decode(prompt), after = tok.decode(trace.sequence);
  return after.compare(0, before.size(), before) == 0 ? after.substr(before.size()) : tok.decode(trace.generated);
}

}  // namespace rhead
