// Family lookup by GGUF architecture name or HF model_type.
#include "model/family.h"

namespace rhead {

const FamilyTraits* family_for_gguf_arch(const std::string& arch) {
  for (const FamilyTraits* f : {&llama_family(), &qwen2_family()})
    if (f->gguf_arch == arch) return f;
  return nullptr;
}

const FamilyTraits* family_for_hf_model_type(const std::string& model_type) {
  for (const FamilyTraits* f : {&llama_family(), &qwen2_family()})
    for (const auto& t : f->hf_model_types)
      if (t == model_type) return f;
  return nullptr;
}

}  // namespace rhead
