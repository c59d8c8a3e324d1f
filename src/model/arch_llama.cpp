// The Llama family: Llama 1/2/3/3.1/3.2, Mistral and Yi share one block (RMSNorm, RoPE, GQA
// attention, SwiGLU MLP). llama.cpp's converter permutes Q/K rows of llama GGUFs into the
// adjacent-pair RoPE layout.
//
// config.json keys read: model_type, num_hidden_layers, hidden_size, intermediate_size,
//   num_attention_heads, num_key_value_heads, head_dim, vocab_size, max_position_embeddings,
//   rms_norm_eps, rope_theta, rope_scaling (linear, llama3), tie_word_embeddings, hidden_act
//   (silu), attention_bias (q/k/v/o biases), sliding_window (Mistral v0.1: every layer).
// Refused unless default: mlp_bias, partial_rotary_factor. Ignored (no effect on the
//   forward pass): architectures, torch_dtype, dtype, transformers_version, bos/eos/pad_token_id,
//   initializer_range, use_cache, attention_dropout, pretraining_tp, tokenizer_class,
//   output_attentions, output_hidden_states, return_dict, auto_map, _name_or_path.
// GGUF keys (llama.*) read: block_count, embedding_length, feed_forward_length,
//   attention.head_count, attention.head_count_kv, attention.key_length,
//   attention.value_length (= key_length), rope.dimension_count (= head_dim),
//   context_length, attention.layer_norm_rms_epsilon, rope.freq_base, rope.scaling.type
//   (linear) and rope.scaling.factor, attention.sliding_window. Ignored: vocab_size (the
//   embedding tensor gives it), rope.scaling.finetuned, rope.scaling.original_context_length.
//   Llama-3 scaling arrives as the rope_freqs.weight tensor.
// Every other key, and every tensor not in the table below, is refused.
#include "model/blocks.h"
#include "model/family.h"
#include "model/hparams.h"

namespace rhead {

std::vector<TensorEntry> llama_tensor_rows(bool moe) {
  using D = Dim;
  std::vector<TensorEntry> rows = {
      {"token_embd.weight", "token_embd.weight", "model.embed_tokens.weight", {D::vocab, D::embd}},
      {"output_norm.weight", "output_norm.weight", "model.norm.weight", {D::embd}},
      {"output.weight", "output.weight", "lm_head.weight", {D::vocab, D::embd}, true},
      {"rope_freqs.weight", "rope_freqs.weight", "", {D::rope_half}, true},
      // Older HF checkpoints store RoPE's inverse frequencies; rhead computes them.
      {"", "", "model.layers.{L}.self_attn.rotary_emb.inv_freq", {}},
      {"blk.{L}.attn_norm.weight", "blk.{L}.attn_norm.weight", "model.layers.{L}.input_layernorm.weight", {D::embd}},
      {"blk.{L}.attn_q.weight", "blk.{L}.attn_q.weight", "model.layers.{L}.self_attn.q_proj.weight", {D::q, D::embd}},
      {"blk.{L}.attn_k.weight", "blk.{L}.attn_k.weight", "model.layers.{L}.self_attn.k_proj.weight", {D::kv, D::embd}},
      {"blk.{L}.attn_v.weight", "blk.{L}.attn_v.weight", "model.layers.{L}.self_attn.v_proj.weight", {D::kv, D::embd}},
      {"blk.{L}.attn_output.weight",
       "blk.{L}.attn_output.weight",
       "model.layers.{L}.self_attn.o_proj.weight",
       {D::embd, D::q}},
      {"blk.{L}.ffn_norm.weight",
       "blk.{L}.ffn_norm.weight",
       "model.layers.{L}.post_attention_layernorm.weight",
       {D::embd}},
  };
  if (!moe) {
    rows.push_back({"blk.{L}.ffn_gate.weight",
                    "blk.{L}.ffn_gate.weight",
                    "model.layers.{L}.mlp.gate_proj.weight",
                    {D::ff, D::embd}});
    rows.push_back(
        {"blk.{L}.ffn_up.weight", "blk.{L}.ffn_up.weight", "model.layers.{L}.mlp.up_proj.weight", {D::ff, D::embd}});
    rows.push_back({"blk.{L}.ffn_down.weight",
                    "blk.{L}.ffn_down.weight",
                    "model.layers.{L}.mlp.down_proj.weight",
                    {D::embd, D::ff}});
  }
  return rows;
}

namespace {

std::vector<TensorEntry> tensors() {
  using D = Dim;
  std::vector<TensorEntry> rows = llama_tensor_rows(false);
  // attention_bias: biases on all four projections.
  rows.push_back(
      {"blk.{L}.attn_q.bias", "blk.{L}.attn_q.bias", "model.layers.{L}.self_attn.q_proj.bias", {D::q}, true});
  rows.push_back(
      {"blk.{L}.attn_k.bias", "blk.{L}.attn_k.bias", "model.layers.{L}.self_attn.k_proj.bias", {D::kv}, true});
  rows.push_back(
      {"blk.{L}.attn_v.bias", "blk.{L}.attn_v.bias", "model.layers.{L}.self_attn.v_proj.bias", {D::kv}, true});
  rows.push_back({"blk.{L}.attn_output.bias",
                  "blk.{L}.attn_output.bias",
                  "model.layers.{L}.self_attn.o_proj.bias",
                  {D::embd},
                  true});
  return rows;
}

void read_hf(HfConfigReader& r, ModelConfig& c) {
  read_llama_hf(r, c);
  require_silu(r, c, "llama");
  c.qkv_bias = c.o_bias = r.opt_bool("attention_bias", false);
  c.sliding_window = r.opt_int("sliding_window", 0);
  read_layer_types_hf(r, c);
}

void read_gguf(GgufConfigReader& r, ModelConfig& c) {
  read_llama_gguf(r, c);
  c.sliding_window = r.opt_int("attention.sliding_window", 0);
}

}  // namespace

FamilyDef llama_family_def() {
  return {"llama", "llama", false, RopePairing::adjacent, {"llama", "mistral", "yi"}, tensors(), read_gguf, read_hf, pre_norm_layer};
}

}  // namespace rhead
