// The Gemma-2 family. Per layer (HF Gemma2DecoderLayer):
//   x = x + post_attn_norm(attention(attn_norm(x)))
//   x = x + post_ffn_norm(W_down · (gelu_tanh(W_gate · h) * W_up · h)),  h = ffn_norm(x)
// with every RMSNorm multiplying by (1 + w) in the HF form (GGUF files store w + 1, as
// llama.cpp's converter writes them; rhead keeps w + 1), the embedding multiplied by
// sqrt(hidden_size), attention scores scaled by query_pre_attn_scalar^-1/2 and soft-capped
// (cap * tanh(s / cap)), a sliding window on the even layers (0, 2, ...), the final logits
// soft-capped, and the output head tied to the embedding. RoPE pairs are half-split in both
// forms.
//
// config.json keys read: model_type, num_hidden_layers, hidden_size, intermediate_size,
//   num_attention_heads, num_key_value_heads, head_dim, vocab_size, max_position_embeddings,
//   rms_norm_eps, rope_theta, rope_scaling (linear, llama3), tie_word_embeddings (default
//   true; false refused), hidden_activation (gelu_pytorch_tanh), query_pre_attn_scalar,
//   sliding_window (sliding_window_size, an older spelling, must agree), attn_logit_softcapping,
//   final_logit_softcapping, layer_types (must be the alternating sliding/full pattern). Refused unless default:
//   attention_bias, mlp_bias, partial_rotary_factor, use_bidirectional_attention. Ignored: hidden_act (Gemma-2 uses
//   hidden_activation), cache_implementation, and the keys every family ignores (arch_llama.cpp).
// GGUF keys (gemma2.*): those of the llama family plus attention.sliding_window,
//   attn_logit_softcapping, final_logit_softcapping, attention.scale (when present; else
//   1/sqrt(key_length), or 1/sqrt(n_embd / n_head) for the 46-layer 27B model, as llama.cpp
//   runs it, since its converter writes no query_pre_attn_scalar).
#include <cmath>

#include "io/error.h"
#include "model/blocks.h"
#include "model/family.h"
#include "model/hparams.h"

namespace rhead {
namespace {

// An RMSNorm weight: HF stores w, rhead (and GGUF) w + 1.
TensorEntry norm(const std::string& name, const std::string& hf) {
  return {name, name, hf, {Dim::embd}, false, {}, 0, 1.0f};
}

std::vector<TensorEntry> tensors() {
  using D = Dim;
  const std::string p = "model.layers.{L}.";
  return {
      {"token_embd.weight", "token_embd.weight", "model.embed_tokens.weight", {D::vocab, D::embd}},
      norm("output_norm.weight", "model.norm.weight"),
      norm("blk.{L}.attn_norm.weight", p + "input_layernorm.weight"),
      {"blk.{L}.attn_q.weight", "blk.{L}.attn_q.weight", p + "self_attn.q_proj.weight", {D::q, D::embd}},
      {"blk.{L}.attn_k.weight", "blk.{L}.attn_k.weight", p + "self_attn.k_proj.weight", {D::kv, D::embd}},
      {"blk.{L}.attn_v.weight", "blk.{L}.attn_v.weight", p + "self_attn.v_proj.weight", {D::kv, D::embd}},
      {"blk.{L}.attn_output.weight", "blk.{L}.attn_output.weight", p + "self_attn.o_proj.weight", {D::embd, D::q}},
      norm("blk.{L}.post_attention_norm.weight", p + "post_attention_layernorm.weight"),
      norm("blk.{L}.ffn_norm.weight", p + "pre_feedforward_layernorm.weight"),
      norm("blk.{L}.post_ffw_norm.weight", p + "post_feedforward_layernorm.weight"),
      {"blk.{L}.ffn_gate.weight", "blk.{L}.ffn_gate.weight", p + "mlp.gate_proj.weight", {D::ff, D::embd}},
      {"blk.{L}.ffn_up.weight", "blk.{L}.ffn_up.weight", p + "mlp.up_proj.weight", {D::ff, D::embd}},
      {"blk.{L}.ffn_down.weight", "blk.{L}.ffn_down.weight", p + "mlp.down_proj.weight", {D::embd, D::ff}},
  };
}

void common(ModelConfig& c) {
  c.embd_scale = static_cast<float>(std::sqrt(static_cast<double>(c.n_embd)));
  c.post_norms = true;
  c.activation = Activation::gelu_tanh;
  c.sliding_window_period = 2;
  c.tied_embeddings = true;
}

void read_hf(HfConfigReader& r, ModelConfig& c) {
  read_llama_hf(r, c);
  common(c);
  const std::string act = r.opt_string("hidden_activation", "gelu_pytorch_tanh");
  if (act != "gelu_pytorch_tanh")
    fail(r.path(), "hidden_activation '" + act + "' is not implemented by the gemma2 family");
  r.ignore({"hidden_act", "cache_implementation"});
  if (!r.opt_bool("tie_word_embeddings", true))
    fail(r.path(), "tie_word_embeddings = false is not implemented by the gemma2 family");
  r.refuse_unless("attention_bias", false);
  r.refuse_unless("use_bidirectional_attention", false);  // newer configs write it; true is not causal
  c.attn_scale = static_cast<float>(1.0 / std::sqrt(r.opt_double("query_pre_attn_scalar", c.head_dim)));
  c.sliding_window = r.opt_int("sliding_window", 4096);
  r.refuse_unless("sliding_window_size", c.sliding_window);  // an older spelling, same value
  if (c.sliding_window < 1)
    fail(r.path(), "sliding_window " + std::to_string(c.sliding_window) + " must be at least 1");
  c.attn_softcap = static_cast<float>(r.opt_double("attn_logit_softcapping", 0.0));
  c.final_softcap = static_cast<float>(r.opt_double("final_logit_softcapping", 0.0));
  read_layer_types_hf(r, c);
}

void read_gguf(GgufConfigReader& r, ModelConfig& c) {
  read_llama_gguf(r, c);
  common(c);
  c.sliding_window = r.opt_int("attention.sliding_window", 4096);
  if (c.sliding_window < 1)
    fail(r.path(), "attention.sliding_window " + std::to_string(c.sliding_window) + " must be at least 1");
  c.attn_softcap = static_cast<float>(r.opt_double("attn_logit_softcapping", 0.0));
  c.final_softcap = static_cast<float>(r.opt_double("final_logit_softcapping", 0.0));
  const double scale_dim = c.n_layer == 46 ? static_cast<double>(c.n_embd) / c.n_head : c.head_dim;
  c.attn_scale = static_cast<float>(r.opt_double("attention.scale", 1.0 / std::sqrt(scale_dim)));
}

// Gemma-2 layer: pre- and post-norms around attention and the GeGLU MLP.
void forward_layer(LayerContext& ctx, int l) {
  const LayerWeights& w = ctx.layer(l);
  float* xn = ctx.act.xn;  // xn, y: [T, D]
  float* y = ctx.act.y;
  norm_rows(ctx, ctx.x, w.attn_norm, xn);
  attention_block(ctx, l, xn, y);  // sliding window on even layers, scale, soft-cap
  norm_rows(ctx, y, w.post_attn_norm, y);
  add_residual(ctx, y);
  norm_rows(ctx, ctx.x, w.ffn_norm, xn);
  mlp_block(ctx, w, xn, y);  // GeGLU
  norm_rows(ctx, y, w.post_ffn_norm, y);
  add_residual(ctx, y);
}

}  // namespace

FamilyDef gemma2_family_def() {
  return {"gemma2", "gemma2", false, RopePairing::half, {"gemma2"}, tensors(), read_gguf, read_hf, forward_layer};
}

}  // namespace rhead
