// The Phi-3 family (Phi-3 mini/medium, Phi-3.5-mini): the Llama block with a fused q/k/v
// projection (qkv_proj: rows q, then k, then v) and a fused gate/up projection (gate_up_proj:
// gate rows, then up rows), half-split RoPE, a sliding window on every layer, and LongRoPE
// for the 128K models: per-pair divisors short_factor / long_factor of the inverse
// frequencies (long when the session holds more than original_max_position_embeddings
// positions), cos and sin scaled by sqrt(1 + ln(s) / ln(original)), s = max_position_embeddings
// / original_max_position_embeddings (or rope_scaling.attention_factor).
// GGUF (llama.cpp) keeps the fusion: attn_qkv and a 2 * n_ff-row ffn_up; LongRoPE factors as
// rope_factors_short / rope_factors_long tensors.
//
// config.json keys read: those of the llama family (arch_llama.cpp) except attention_bias,
//   plus sliding_window, original_max_position_embeddings and rope_scaling longrope/su
//   (short_factor, long_factor, attention_factor, original_max_position_embeddings).
//   Refused unless default: attention_bias, mlp_bias, partial_rotary_factor. Ignored
//   (dropout at training): resid_pdrop, embd_pdrop; original_max_position_embeddings
//   without LongRoPE.
// GGUF keys (phi3.*): those of the llama family plus attention.sliding_window,
//   rope.scaling.attn_factor, rope.scaling.original_context_length.
#include "io/error.h"
#include "model/blocks.h"
#include "model/family.h"
#include "model/hparams.h"

namespace rhead {
namespace {

std::vector<TensorEntry> tensors() {
  using D = Dim;
  const std::string p = "model.layers.{L}.";
  const std::vector<Dim> qkv = {D::q, D::kv, D::kv}, gate_up = {D::ff, D::ff};
  return {
      {"token_embd.weight", "token_embd.weight", "model.embed_tokens.weight", {D::vocab, D::embd}},
      {"output_norm.weight", "output_norm.weight", "model.norm.weight", {D::embd}},
      {"output.weight", "output.weight", "lm_head.weight", {D::vocab, D::embd}, true},
      {"rope_factors_short.weight", "rope_factors_short.weight", "", {D::rope_half}, true},
      {"rope_factors_long.weight", "rope_factors_long.weight", "", {D::rope_half}, true},
      {"blk.{L}.attn_norm.weight", "blk.{L}.attn_norm.weight", p + "input_layernorm.weight", {D::embd}},
      {"blk.{L}.attn_q.weight",
       "blk.{L}.attn_qkv.weight",
       p + "self_attn.qkv_proj.weight",
       {D::q, D::embd},
       false,
       qkv,
       0},
      {"blk.{L}.attn_k.weight",
       "blk.{L}.attn_qkv.weight",
       p + "self_attn.qkv_proj.weight",
       {D::kv, D::embd},
       false,
       qkv,
       1},
      {"blk.{L}.attn_v.weight",
       "blk.{L}.attn_qkv.weight",
       p + "self_attn.qkv_proj.weight",
       {D::kv, D::embd},
       false,
       qkv,
       2},
      {"blk.{L}.attn_output.weight", "blk.{L}.attn_output.weight", p + "self_attn.o_proj.weight", {D::embd, D::q}},
      {"blk.{L}.ffn_norm.weight", "blk.{L}.ffn_norm.weight", p + "post_attention_layernorm.weight", {D::embd}},
      {"blk.{L}.ffn_gate.weight",
       "blk.{L}.ffn_up.weight",
       p + "mlp.gate_up_proj.weight",
       {D::ff, D::embd},
       false,
       gate_up,
       0},
      {"blk.{L}.ffn_up.weight",
       "blk.{L}.ffn_up.weight",
       p + "mlp.gate_up_proj.weight",
       {D::ff, D::embd},
       false,
       gate_up,
       1},
      {"blk.{L}.ffn_down.weight", "blk.{L}.ffn_down.weight", p + "mlp.down_proj.weight", {D::embd, D::ff}},
  };
}

void read_hf(HfConfigReader& r, ModelConfig& c) {
  read_llama_hf(r, c, true);
  require_silu(r, c, "phi3");
  r.refuse_unless("attention_bias", false);
  c.sliding_window = r.opt_int("sliding_window", 0);
  r.ignore({"resid_pdrop", "embd_pdrop", "original_max_position_embeddings"});
  read_layer_types_hf(r, c);
}

void read_gguf(GgufConfigReader& r, ModelConfig& c) {
  read_llama_gguf(r, c);
  c.sliding_window = r.opt_int("attention.sliding_window", 0);
  c.rope_original_ctx = r.opt_int("rope.scaling.original_context_length", c.n_ctx_train);
  c.rope_attn_factor = static_cast<float>(r.opt_double("rope.scaling.attn_factor", 1.0));
}

}  // namespace

FamilyDef phi3_family_def() {
  return {"phi3", "phi3", false, RopePairing::half, {"phi3"}, tensors(), read_gguf, read_hf, pre_norm_layer};
}

}  // namespace rhead
