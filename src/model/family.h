// Architecture families as units of code. Each family file (model/arch_*.cpp) owns:
//   - its tensor table: canonical name <-> GGUF name <-> HF name, shape, optional or not, and
//     the row block of a fused file tensor;
//   - its hparams readers (GGUF metadata keys, config.json keys), which refuse every key that
//     changes the maths and that the family does not implement;
//   - its layer forward, assembled from the shared blocks of model/blocks.h.
// Adding a family is one arch_*.cpp file defining <name>_family_def() plus one X(<name>) in the
// registry list of model/family.cpp.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"

namespace rhead {

class GGUFFile;
class HfConfigReader;
class GgufConfigReader;
struct LayerContext;

// Symbolic tensor dimensions, resolved against a ModelConfig.
enum class Dim { embd, ff, q, kv, vocab, head_dim, rope_half, expert, ff_expert };

// One row of a family's tensor table. Name patterns hold "{L}" (layer index) and "{E}" (expert
// index). An {E} in a file name that the canonical name lacks means the file stores experts as
// separate tensors that rhead stacks into the canonical [n_expert, ...] tensor.
struct TensorEntry {
  std::string canonical;   // GGUF-style name rhead binds; "" marks a tensor known and deliberately ignored
  std::string gguf;        // name in GGUF files; "" when GGUF files have no such tensor
  std::string hf;          // name in HF safetensors; "" when HF checkpoints have no such tensor
  std::vector<Dim> shape;  // canonical shape, row-major (outermost first)
  bool optional = false;
  // Fused file tensors: the file tensor stacks these row blocks and this entry is block `part`
  // (Phi-3 qkv_proj = {q, kv, kv}, gate_up_proj = {ff, ff}). Empty: not fused.
  std::vector<Dim> fused_rows = {};
  int part = 0;
  float hf_add = 0.0f;  // added to a vector read from an HF file (Gemma norms: HF stores w, rhead w + 1)
};

struct FamilyDef {
  std::string name;                         // ModelConfig::family; `rhead info` prints it
  std::string gguf_arch;                    // general.architecture value and metadata key prefix
  bool gguf_moe;                            // a GGUF of gguf_arch is this family iff it has experts == gguf_moe
  RopePairing gguf_rope_pairing;            // layout of Q/K rows in this family's GGUF files
  std::vector<std::string> hf_model_types;  // config.json "model_type" values
  std::vector<TensorEntry> tensors;
  // Reads the config; marks every key it reads or deliberately ignores, the caller refuses the rest.
  void (*read_gguf)(GgufConfigReader& r, ModelConfig& c);
  void (*read_hf)(HfConfigReader& r, ModelConfig& c);
  // One layer: reads and updates ctx.x ([n_tokens, n_embd] residual stream).
  void (*forward_layer)(LayerContext& ctx, int layer);
};

// Llama 1/2/3, Mistral, Yi (arch_llama.cpp); also the family of llama2.c checkpoints. Each
// family's <name>_family_def() is declared by the registry in family.cpp.
const FamilyDef& llama_family();

// Table rows shared by the Llama-like families (arch_llama.cpp): embeddings, final norm,
// optional output head and rope_freqs, the attention projections and norms, and the dense
// SwiGLU MLP unless moe.
std::vector<TensorEntry> llama_tensor_rows(bool moe);
// Qwen3's per-head q_norm / k_norm rows (arch_qwen3.cpp), shared with qwen3moe.
std::vector<TensorEntry> qwen3_qk_norm_rows();
// MoE rows: router and the three expert tensors, canonical [n_expert, ...] in GGUF's 3-D
// layout; hf_expert_prefix + "{E}." + the HF per-expert names; the older GGUF per-expert
// layout (blk.L.ffn_gate.E.weight) is accepted too.
std::vector<TensorEntry> moe_tensor_rows(const std::string& hf_router, const std::string& hf_expert_prefix,
                                         const std::string& hf_gate, const std::string& hf_up,
                                         const std::string& hf_down);

// The registry: every family rhead runs.
const std::vector<const FamilyDef*>& all_families();
// The family named `name` (ModelConfig::family); rhead::Error when none is.
const FamilyDef& family_def(const std::string& name);
// The family of a GGUF file (architecture name, experts or not) or of an HF model_type;
// nullptr if none.
const FamilyDef* family_for_gguf(const GGUFFile& g);
const FamilyDef* family_for_hf_model_type(const std::string& model_type);

}  // namespace rhead
