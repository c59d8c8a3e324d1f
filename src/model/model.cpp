// Model bookkeeping: parameter and byte counts, config names.
#include "model/model.h"

namespace rhead {

const char* family_name(Family f) {
  switch (f) {
    case Family::llama: return "llama";
    case Family::qwen2: return "qwen2";
  }
  return "?";
}

const char* rope_scaling_name(RopeScaling s) {
  switch (s) {
    case RopeScaling::none: return "none";
    case RopeScaling::linear: return "linear";
    case RopeScaling::llama3: return "llama3";
  }
  return "?";
}

namespace {
template <typename F>
void for_each_weight(const Model& m, F&& f) {
  f(m.tok_embd);
  if (m.output.data != m.tok_embd.data) f(m.output);
  for (const auto& l : m.layers)
    for (const Weight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) f(*w);
}
int64_t vector_params(const Model& m) {
  int64_t n = static_cast<int64_t>(m.output_norm.size());
  for (const auto& l : m.layers)
    n += static_cast<int64_t>(l.attn_norm.size() + l.ffn_norm.size() + l.bq.size() + l.bk.size() +
                              l.bv.size());
  return n;
}
}  // namespace

int64_t Model::n_params() const {
  int64_t n = vector_params(*this);
  for_each_weight(*this, [&](const Weight& w) { n += w.rows * w.cols; });
  return n;
}

int64_t Model::weight_bytes() const {
  int64_t n = vector_params(*this) * 4;
  for_each_weight(*this, [&](const Weight& w) { n += w.bytes(); });
  return n;
}

}  // namespace rhead
