// The Mixtral family: the Mistral attention block with a sparse mixture of SwiGLU experts in
// place of the MLP. Each token is routed to the top num_experts_per_tok of num_local_experts
// experts by the router's logits; the chosen experts' outputs are weighted by a softmax over
// the chosen logits (= the full softmax renormalized over the chosen). Attention is dense, so
// probes, masks and detection are unchanged. llama.cpp writes Mixtral as GGUF architecture
// "llama" with ffn_gate_inp and 3-D ffn_{gate,up,down}_exps tensors (Q/K permuted like llama);
// older files hold one tensor per expert (blk.L.ffn_gate.E.weight).
//
// config.json keys read: those of the llama family (arch_llama.cpp) without attention_bias,
//   plus num_local_experts, num_experts_per_tok (intermediate_size is the expert width) and
//   sliding_window (every layer). Ignored (training only): router_aux_loss_coef,
//   output_router_logits, router_jitter_noise.
// GGUF keys (llama.*): those of the llama family plus expert_count, expert_used_count.
#include "model/blocks.h"
#include "model/family.h"
#include "model/hparams.h"

namespace rhead {

std::vector<TensorEntry> moe_tensor_rows(const std::string& hf_router, const std::string& hf_expert_prefix,
                                         const std::string& hf_gate, const std::string& hf_up,
                                         const std::string& hf_down) {
  using D = Dim;
  const std::string p = "model.layers.{L}." + hf_expert_prefix + "{E}.";
  return {
      {"blk.{L}.ffn_gate_inp.weight",
       "blk.{L}.ffn_gate_inp.weight",
       "model.layers.{L}." + hf_router,
       {D::expert, D::embd}},
      {"blk.{L}.ffn_gate_exps.weight", "blk.{L}.ffn_gate_exps.weight", p + hf_gate, {D::expert, D::ff_expert, D::embd}},
      {"blk.{L}.ffn_up_exps.weight", "blk.{L}.ffn_up_exps.weight", p + hf_up, {D::expert, D::ff_expert, D::embd}},
      {"blk.{L}.ffn_down_exps.weight", "blk.{L}.ffn_down_exps.weight", p + hf_down, {D::expert, D::embd, D::ff_expert}},
      // The older GGUF layout: one 2-D tensor per expert.
      {"blk.{L}.ffn_gate_exps.weight", "blk.{L}.ffn_gate.{E}.weight", "", {D::expert, D::ff_expert, D::embd}},
      {"blk.{L}.ffn_up_exps.weight", "blk.{L}.ffn_up.{E}.weight", "", {D::expert, D::ff_expert, D::embd}},
      {"blk.{L}.ffn_down_exps.weight", "blk.{L}.ffn_down.{E}.weight", "", {D::expert, D::embd, D::ff_expert}},
  };
}

namespace {

std::vector<TensorEntry> tensors() {
  std::vector<TensorEntry> rows = llama_tensor_rows(true);
  for (auto& r : moe_tensor_rows("block_sparse_moe.gate.weight", "block_sparse_moe.experts.", "w1.weight", "w3.weight",
                                 "w2.weight"))
    rows.push_back(r);
  return rows;
}

void read_hf(HfConfigReader& r, ModelConfig& c) {
  read_llama_hf(r, c);
  require_silu(r, c, "mixtral");
  c.n_expert = r.need_int("num_local_experts");
  c.n_expert_used = r.need_int("num_experts_per_tok");
  c.n_ff_expert = c.n_ff;
  c.expert_weights_norm = true;
  c.sliding_window = r.opt_int("sliding_window", 0);
  r.ignore({"router_aux_loss_coef", "output_router_logits", "router_jitter_noise"});
  read_layer_types_hf(r, c);
}

void read_gguf(GgufConfigReader& r, ModelConfig& c) {
  read_llama_gguf(r, c);
  read_moe_gguf(r, c, false);
  c.expert_weights_norm = true;
  c.sliding_window = r.opt_int("attention.sliding_window", 0);
}

}  // namespace

FamilyDef mixtral_family_def() {
  return {"mixtral", "llama", true, RopePairing::adjacent, {"mixtral"}, tensors(), read_gguf, read_hf, pre_norm_layer};
}

}  // namespace rhead
