// The Qwen3-MoE family: Qwen3's attention (per-head q_norm/k_norm before RoPE, no biases) with
// a mixture of num_experts SwiGLU experts of width moe_intermediate_size in every layer. Each
// token takes the top num_experts_per_tok experts of a softmax over all router logits; with
// norm_topk_prob their weights are renormalized to sum 1, else used as they are.
//
// config.json keys read: those of the llama family (arch_llama.cpp) except sliding_window,
//   plus num_experts (or num_local_experts), num_experts_per_tok, moe_intermediate_size, norm_topk_prob.
//   Refused unless default: decoder_sparse_step (1), mlp_only_layers ([]), attention_bias
//   (false), use_sliding_window (false; then sliding_window and max_window_layers are
//   ignored). intermediate_size (the width of dense layers, of which there are none) is read
//   and unused. Ignored (training only): router_aux_loss_coef, output_router_logits.
// GGUF keys (qwen3moe.*): those of the llama family plus expert_count, expert_used_count,
//   expert_feed_forward_length, expert_weights_norm (default true, as llama.cpp runs it).
#include "model/blocks.h"
#include "model/family.h"
#include "model/hparams.h"

namespace rhead {
namespace {

std::vector<TensorEntry> tensors() {
  std::vector<TensorEntry> rows = llama_tensor_rows(true);
  for (auto& r : qwen3_qk_norm_rows()) rows.push_back(r);
  for (auto& r :
       moe_tensor_rows("mlp.gate.weight", "mlp.experts.", "gate_proj.weight", "up_proj.weight", "down_proj.weight"))
    rows.push_back(r);
  return rows;
}

void read_hf(HfConfigReader& r, ModelConfig& c) {
  read_llama_hf(r, c);
  require_silu(r, c, "qwen3moe");
  r.refuse_unless("attention_bias", false);
  r.refuse_unless("decoder_sparse_step", 1);
  r.refuse_unless("mlp_only_layers", nlohmann::json::array());
  read_qwen_window_hf(r);
  // Newer transformers versions save the expert count as num_local_experts; both must agree.
  c.n_expert = r.has("num_experts") ? r.need_int("num_experts") : r.need_int("num_local_experts");
  r.refuse_unless("num_local_experts", c.n_expert);
  c.n_expert_used = r.need_int("num_experts_per_tok");
  c.n_ff_expert = r.need_int("moe_intermediate_size");
  c.expert_weights_norm = r.opt_bool("norm_topk_prob", false);
  c.qk_norm = true;
  r.ignore({"router_aux_loss_coef", "output_router_logits"});
  read_layer_types_hf(r, c);
}

void read_gguf(GgufConfigReader& r, ModelConfig& c) {
  read_llama_gguf(r, c);
  read_moe_gguf(r, c, true);
  c.expert_weights_norm = r.opt_bool("expert_weights_norm", true);
  c.qk_norm = true;
}

}  // namespace

FamilyDef qwen3moe_family_def() {
  return {"qwen3moe", "qwen3moe", true, RopePairing::half, {"qwen3_moe"}, tensors(), read_gguf, read_hf, pre_norm_layer};
}

}  // namespace rhead
