// The Llama family: Llama 1/2/3, Mistral and Yi share one block (RMSNorm, RoPE, GQA attention,
// SwiGLU MLP, no biases). llama.cpp's converter permutes Q/K rows of llama GGUFs into the
// adjacent-pair RoPE layout.
#include "model/family.h"

namespace rhead {

const FamilyTraits& llama_family() {
  static const FamilyTraits traits{Family::llama, "llama", {"llama", "mistral", "yi"},
                                   RopePairing::adjacent, false};
  return traits;
}

}  // namespace rhead
