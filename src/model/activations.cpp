// Activations: allocation in backend memory.
#include "model/activations.h"

#include <algorithm>
#include <type_traits>

namespace rhead {

void Activations::release() {
  if (!backend_) return;
  for (float** p : {&x, &xn, &y, &q, &k, &v, &att, &gate, &up, &logits, &router, &xe, &ye}) {
    if (*p) backend_->free(*p);
    *p = nullptr;
  }
  if (moe_sum) backend_->free(moe_sum);
  moe_sum = nullptr;
  capacity = 0;
  logit_rows = 0;
}

void Activations::reserve(Backend& backend, const ModelConfig& c, int64_t n_tokens, int64_t n_logit_rows) {
  if (backend_ && backend_ != &backend) release();
  backend_ = &backend;
  if (n_tokens > capacity) {
    Backend& be = backend;
    auto grow = [&](auto*& p, int64_t per_token) {
      using Elem = std::remove_reference_t<decltype(*p)>;
      if (p) be.free(p);
      p = static_cast<Elem*>(be.alloc(static_cast<size_t>(n_tokens * per_token) * sizeof(Elem)));
    };
    const int64_t ff = std::max<int64_t>(c.n_ff, c.n_ff_expert);
    grow(x, c.n_embd);
    grow(xn, c.n_embd);
    grow(y, c.n_embd);
    grow(q, c.q_dim());
    grow(k, c.kv_dim());
    grow(v, c.kv_dim());
    grow(att, c.q_dim());
    grow(gate, ff);
    grow(up, ff);
    if (c.n_expert > 0) {
      grow(router, c.n_expert);
      grow(xe, c.n_embd);
      grow(ye, c.n_embd);
      grow(moe_sum, c.n_embd);
    }
    capacity = n_tokens;
  }
  if (n_logit_rows > logit_rows) reserve_logits(c, n_logit_rows);
}

void Activations::reserve_logits(const ModelConfig& c, int64_t rows) {
  if (logits) backend_->free(logits);
  logits = static_cast<float*>(backend_->alloc(static_cast<size_t>(rows * c.n_vocab) * sizeof(float)));
  logit_rows = rows;
}

}  // namespace rhead
