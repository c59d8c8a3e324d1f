// Model bookkeeping: parameter and byte counts, config names.
#include "model/model.h"

#include "io/enum_names.h"

namespace rhead {

constexpr EnumName<RopeScaling> kRopeScalings[] = {
    {RopeScaling::none, "none"}, {RopeScaling::linear, "linear"}, {RopeScaling::llama3, "llama3"},
    {RopeScaling::longrope, "longrope"}};

const char* rope_scaling_name(RopeScaling s) { return name_in(kRopeScalings, s); }

namespace {
template <typename F>
void for_each_weight(const Model& m, F&& f) {
  f(m.tok_embd);
  if (m.output.data != m.tok_embd.data) f(m.output);
  for (const auto& l : m.layers) for_each_layer_weight(l, f);
}
int64_t vector_params(const Model& m) {
  int64_t n = static_cast<int64_t>(m.output_norm.size());
  for (const auto& l : m.layers)
    for (const auto* v : {&l.attn_norm, &l.bq, &l.bk, &l.bv, &l.bo, &l.q_norm, &l.k_norm, &l.post_attn_norm,
                          &l.ffn_norm, &l.post_ffn_norm})
      n += static_cast<int64_t>(v->size());
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
