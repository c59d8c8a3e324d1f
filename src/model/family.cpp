// The family registry.
#include "model/family.h"

#include "io/error.h"
#include "io/gguf.h"

// Every family rhead runs, in lookup order. A new family adds one X(name) here; its
// arch_<name>.cpp defines `const FamilyDef& <name>_family()`.
#define RHEAD_FAMILIES(X) X(llama) X(qwen2) X(mixtral) X(qwen3) X(qwen3moe) X(gemma2) X(phi3)

namespace rhead {

#define RHEAD_DECLARE_FAMILY(name) const FamilyDef& name##_family();
RHEAD_FAMILIES(RHEAD_DECLARE_FAMILY)
#undef RHEAD_DECLARE_FAMILY

const std::vector<const FamilyDef*>& all_families() {
#define RHEAD_LIST_FAMILY(name) &name##_family(),
  static const std::vector<const FamilyDef*> families = {RHEAD_FAMILIES(RHEAD_LIST_FAMILY)};
#undef RHEAD_LIST_FAMILY
  return families;
}

const FamilyDef& family_def(const std::string& name) {
  for (const FamilyDef* d : all_families())
    if (d->name == name) return *d;
  throw Error("no model family named '" + name + "'");
}

const FamilyDef* family_for_gguf(const GGUFFile& g) {
  auto arch = g.get_string("general.architecture");
  if (!arch) return nullptr;
  const bool moe =
      g.get_int(*arch + ".expert_count").value_or(0) > 0 || g.find_tensor("blk.0.ffn_gate_inp.weight") != nullptr;
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
