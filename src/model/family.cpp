// The family registry.
#include "model/family.h"

#include "io/error.h"
#include "io/gguf.h"

// Every family rhead runs, in lookup order. A new family adds one X(name) here; its
// arch_<name>.cpp defines `FamilyDef <name>_family_def()`.
#define RHEAD_FAMILIES(X) X(llama) X(qwen2) X(mixtral) X(qwen3) X(qwen3moe) X(gemma2) X(phi3)

namespace rhead {

#define RHEAD_DECLARE_FAMILY(name) FamilyDef name##_family_def();
RHEAD_FAMILIES(RHEAD_DECLARE_FAMILY)
#undef RHEAD_DECLARE_FAMILY

namespace {

// Built once, on first use; the vector never changes, so pointers into it stay valid.
const std::vector<FamilyDef>& family_defs() {
#define RHEAD_LIST_FAMILY(name) name##_family_def(),
  static const std::vector<FamilyDef> defs = {RHEAD_FAMILIES(RHEAD_LIST_FAMILY)};
#undef RHEAD_LIST_FAMILY
  return defs;
}

}  // namespace

const std::vector<const FamilyDef*>& all_families() {
  static const std::vector<const FamilyDef*> families = [] {
    std::vector<const FamilyDef*> out;
    for (const FamilyDef& d : family_defs()) out.push_back(&d);
    return out;
  }();
  return families;
}

const FamilyDef& llama_family() { return family_def("llama"); }

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
