// The family registry. A new family adds one line here.
#include "model/family.h"

#include "io/gguf.h"

namespace rhead {

const std::vector<const FamilyDef*>& all_families() {
  static const std::vector<const FamilyDef*> families = {
      &llama_family(), &qwen2_family(), &mixtral_family(), &qwen3_family(),
      &qwen3moe_family(), &gemma2_family(), &phi3_family(),
  };
  return families;
}

const FamilyDef& family_def(Family f) {
  for (const FamilyDef* d : all_families())
    if (d->family == f) return *d;
  return llama_family();
}

const FamilyDef* family_for_gguf(const GGUFFile& g) {
  auto arch = g.get_string("general.architecture");
  if (!arch) return nullptr;
  const bool moe = g.get_int(*arch + ".expert_count").value_or(0) > 0 ||
                   g.find_tensor("blk.0.ffn_gate_inp.weight") != nullptr;
  for (const FamilyDef* f : all_families())
    if (f->gguf_arch == *arch && f->gguf_moe == moe) return f;
  return nullptr;
}

const FamilyDef* family_for_hf_model_type(const std::string& model_type) {
  for (const FamilyDef* f : all_families())
    for (const auto& t : f->hf_model_types)
      if (t == model_type) return f;
  return nullptr;
}

}  // namespace rhead
