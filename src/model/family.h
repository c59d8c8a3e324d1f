// Architecture families. Each family file (arch_*.cpp) describes how its files name
// things and what it adds to the Llama block; the loader does the rest.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"

namespace rhead {

struct FamilyTraits {
  Family family;
  std::string gguf_arch;                    // general.architecture value and metadata key prefix
  std::vector<std::string> hf_model_types;  // config.json "model_type" values
  RopePairing gguf_rope_pairing;            // layout of Q/K rows in this family's GGUF files
  bool qkv_bias;                            // q/k/v projections carry biases
};

const FamilyTraits& llama_family();  // arch_llama.cpp: Llama 1/2/3, Mistral, Yi
const FamilyTraits& qwen2_family();  // arch_qwen2.cpp: Qwen2, Qwen1.5

// The family for a GGUF architecture name or an HF model_type; nullptr if unknown.
const FamilyTraits* family_for_gguf_arch(const std::string& arch);
const FamilyTraits* family_for_hf_model_type(const std::string& model_type);

}  // namespace rhead
