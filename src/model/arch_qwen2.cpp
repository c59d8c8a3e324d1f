// The Qwen2 family (Qwen1.5, Qwen2, Qwen2.5): the Llama block plus biases on the q/k/v
// projections. Its GGUF files keep Hugging Face's half-split RoPE layout (no Q/K permutation).
//
// config.json keys: those of the llama family (arch_llama.cpp) except attention_bias and
//   sliding_window; use_sliding_window is refused unless false, and then sliding_window and
//   max_window_layers are ignored (they have no effect).
// GGUF keys (qwen2.*): those of the llama family, without attention.sliding_window.
#include "model/blocks.h"
#include "model/family.h"
#include "model/hparams.h"

namespace rhead {
namespace {

std::vector<TensorEntry> tensors() {
  using D = Dim;
  std::vector<TensorEntry> rows = llama_tensor_rows(false);
  rows.push_back({"blk.{L}.attn_q.bias", "blk.{L}.attn_q.bias", "model.layers.{L}.self_attn.q_proj.bias", {D::q}});
  rows.push_back({"blk.{L}.attn_k.bias", "blk.{L}.attn_k.bias", "model.layers.{L}.self_attn.k_proj.bias", {D::kv}});
  rows.push_back({"blk.{L}.attn_v.bias", "blk.{L}.attn_v.bias", "model.layers.{L}.self_attn.v_proj.bias", {D::kv}});
  return rows;
}

void read_hf(HfConfigReader& r, ModelConfig& c) {
  read_llama_hf(r, c);
  require_silu(r, c, "qwen2");
  read_qwen_window_hf(r);
  c.qkv_bias = true;
  read_layer_types_hf(r, c);
}

void read_gguf(GgufConfigReader& r, ModelConfig& c) {
  read_llama_gguf(r, c);
  c.qkv_bias = true;
}

}  // namespace

FamilyDef qwen2_family_def() {
  return {"qwen2", "qwen2", false, RopePairing::half, {"qwen2"}, tensors(), read_gguf, read_hf, pre_norm_layer};
}

}  // namespace rhead
