// The Qwen3 family (dense): the Llama block with per-head RMSNorm of q and k (q_norm, k_norm,
// [head_dim] each, eps rms_norm_eps) before RoPE, and no biases. head_dim is explicit
// (n_head * head_dim may differ from hidden_size). GGUF keeps the half-split RoPE layout.
//
// config.json keys: those of the llama family (arch_llama.cpp) except sliding_window;
//   attention_bias is refused unless false; use_sliding_window refused unless false, then
//   sliding_window and max_window_layers are ignored.
// GGUF keys (qwen3.*): those of the llama family, without attention.sliding_window.
#include "model/blocks.h"
#include "model/family.h"
#include "model/hparams.h"

namespace rhead {
namespace {

std::vector<TensorEntry> qk_norm_rows() {
  return {{"blk.{L}.attn_q_norm.weight",
           "blk.{L}.attn_q_norm.weight",
           "model.layers.{L}.self_attn.q_norm.weight",
           {Dim::head_dim}},
          {"blk.{L}.attn_k_norm.weight",
           "blk.{L}.attn_k_norm.weight",
           "model.layers.{L}.self_attn.k_norm.weight",
           {Dim::head_dim}}};
}

std::vector<TensorEntry> tensors() {
  std::vector<TensorEntry> rows = llama_tensor_rows(false);
  for (auto& r : qk_norm_rows()) rows.push_back(r);
  return rows;
}

void read_hf(HfConfigReader& r, ModelConfig& c) {
  read_llama_hf(r, c);
  require_silu(r, c, "qwen3");
  r.refuse_unless("attention_bias", false);
  read_qwen_window_hf(r);
  c.qk_norm = true;
  read_layer_types_hf(r, c);
}

void read_gguf(GgufConfigReader& r, ModelConfig& c) {
  read_llama_gguf(r, c);
  c.qk_norm = true;
}

}  // namespace

std::vector<TensorEntry> qwen3_qk_norm_rows() { return qk_norm_rows(); }

FamilyDef qwen3_family_def() {
  return {"qwen3", "qwen3", false, RopePairing::half, {"qwen3"}, tensors(), read_gguf, read_hf, pre_norm_layer};
}

}  // namespace rhead
