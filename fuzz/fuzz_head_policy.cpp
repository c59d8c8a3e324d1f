// Fuzz target: a head_policy.json (rhead kv-plan's output, read by --kv-policy-file) for a
// model of 4 layers x 8 query heads x 4 KV heads.
#include "fuzz_support.h"
#include "model/config.h"
#include "conditions/kv_conditions.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rhead;
  static const ModelConfig config = [] {
    ModelConfig c;
    c.n_layer = 4;
    c.n_embd = 128;
    c.n_ff = 256;
    c.n_head = 8;
    c.n_kv_head = 4;
    c.head_dim = 16;
    c.n_vocab = 64;
    c.n_ctx_train = 1024;
    return c;
  }();
  const std::string path = fuzz::write_scratch("head_policy.json", fuzz::as_text(data, size));
  fuzz::expect_clean([&] { read_head_policy(path, config); });
  return 0;
}
