// The Qwen2 family (Qwen2, Qwen1.5): the Llama block plus biases on the q/k/v projections.
// Its GGUF files keep Hugging Face's half-split RoPE layout (no Q/K permutation).
#include "model/family.h"

namespace rhead {

const FamilyTraits& qwen2_family() {
  static const FamilyTraits traits{Family::qwen2, "qwen2", {"qwen2"}, RopePairing::half, true};
  return traits;
}

}  // namespace rhead
