// Sanity checks for model configs read from files.
#include "model/config_checks.h"

#include <charconv>
#include <cmath>
#include <set>

#include "io/checked.h"
#include "io/error.h"

namespace rhead {

void validate_model_config(const ModelConfig& c, const std::string& where) {
  auto count = [&](int64_t v, const char* what) {
    if (v <= 0) fail(where, std::string("invalid or missing ") + what);
    if (v > kMaxModelCount)
      fail(where, std::string(what) + " " + std::to_string(v) + " is beyond any real model (limit 2^24)");
  };
  count(c.n_layer, "layer count");
  count(c.n_embd, "embedding width");
  count(c.n_ff, "feed-forward width");
  count(c.n_head, "head count");
  count(c.n_kv_head, "KV head count");
  count(c.head_dim, "head dimension");
  count(c.n_vocab, "vocabulary size");
  if (c.n_head % c.n_kv_head != 0) fail(where, "head count is not a multiple of the KV head count");
  if (c.head_dim % 2 != 0) fail(where, "head dimension must be even for RoPE");
  if (c.n_ctx_train <= 0) fail(where, "invalid or missing context length");
  // q_dim() and kv_dim() are int products: both must stay within the count bound.
  if (static_cast<int64_t>(c.n_head) * c.head_dim > kMaxModelCount)
    fail(where, "head count x head dimension (" + std::to_string(c.n_head) + " x " + std::to_string(c.head_dim) +
                    ") is beyond any real model (limit 2^24)");
  if (!(std::isfinite(c.rms_eps) && c.rms_eps > 0))
    fail(where, "RMS norm epsilon " + std::to_string(c.rms_eps) + " must be a positive finite number");
  if (!(std::isfinite(c.rope_theta) && c.rope_theta > 0))
    fail(where, "RoPE theta " + std::to_string(c.rope_theta) + " must be a positive finite number");
  if (c.rope_scaling != RopeScaling::none && !(std::isfinite(c.rope_factor) && c.rope_factor > 0))
    fail(where, "RoPE scaling factor must be a positive finite number");
  if (!(std::isfinite(c.rope_attn_factor) && c.rope_attn_factor > 0))
    fail(where, "RoPE attention factor (rope.scaling.attn_factor) must be a positive finite number");
  if (c.rope_scaling == RopeScaling::longrope) {
    if (c.rope_original_ctx <= 0) fail(where, "rope_scaling: original context length must be positive");
    for (const auto* list : {&c.rope_short_factors, &c.rope_long_factors})
      for (float f : *list)
        if (!(std::isfinite(f) && f > 0))
          fail(where, std::string("rope_scaling: ") + (list == &c.rope_short_factors ? "short" : "long") + " factor " +
                          std::to_string(f) + " must be a positive finite number");
  }
  if (c.sliding_window < 0) fail(where, "sliding window " + std::to_string(c.sliding_window) + " must be at least 1");
  if (c.sliding_window_period < 1) fail(where, "sliding window period must be at least 1");
  if (c.n_expert < 0 || c.n_expert_used < 0) fail(where, "expert counts must not be negative");
  if (c.n_expert == 0 && c.n_expert_used > 0)
    fail(where, "expert_used_count " + std::to_string(c.n_expert_used) + " with expert_count 0");
  if (c.n_expert > 0 && (c.n_expert_used < 1 || c.n_expert_used > c.n_expert))
    fail(where, "expert_used_count " + std::to_string(c.n_expert_used) + " must be in [1, expert_count " +
                    std::to_string(c.n_expert) + "]");
  if (c.n_expert > 0 && c.n_ff_expert <= 0) fail(where, "expert feed-forward width must be positive");
  for (float v : {c.attn_softcap, c.final_softcap, c.attn_scale, c.embd_scale})
    if (!(v >= 0) || !std::isfinite(v)) fail(where, "soft-caps and scales must be finite and non-negative");
  if (c.rope_scaling == RopeScaling::llama3) {
    if (!(std::isfinite(c.rope_low_freq_factor) && std::isfinite(c.rope_high_freq_factor) &&
          c.rope_low_freq_factor > 0 && c.rope_high_freq_factor > c.rope_low_freq_factor))
      fail(where, "rope_scaling: need 0 < low_freq_factor < high_freq_factor");
    if (c.rope_original_ctx <= 0) fail(where, "rope_scaling: original_max_position_embeddings must be positive");
  }
}

void check_block_tensors(const std::vector<std::string>& tensor_names, int n_layer, const std::string& where) {
  std::set<int64_t> blocks;
  for (const auto& name : tensor_names) {
    if (name.rfind("blk.", 0) != 0) continue;
    const size_t dot = name.find('.', 4);
    if (dot == std::string::npos) continue;
    int64_t block = -1;
    const char* first = name.data() + 4;
    const char* last = name.data() + dot;
    auto [ptr, ec] = std::from_chars(first, last, block);
    if (ec != std::errc() || ptr != last || block < 0)
      fail(where, "tensor '" + name + "' has a malformed block number");
    if (block >= n_layer)
      fail(where, "tensor '" + name + "' belongs to block " + std::to_string(block) + " but the model declares " +
                      std::to_string(n_layer) + " blocks");
    blocks.insert(block);
  }
  if (static_cast<int64_t>(blocks.size()) != n_layer)
    fail(where, "the model declares " + std::to_string(n_layer) + " blocks but tensors exist for " +
                    std::to_string(blocks.size()));
}

}  // namespace rhead
