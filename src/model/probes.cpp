// Head masks and mean recording.
#include "model/probes.h"

#include "io/error.h"

namespace rhead {

const char* mask_mode_name(MaskMode m) {
  switch (m) {
    case MaskMode::uniform: return "uniform";
    case MaskMode::zero: return "zero";
    case MaskMode::mean: return "mean";
  }
  return "?";
}

const char* mask_phase_name(MaskPhase p) { return p == MaskPhase::decode ? "decode" : "all"; }

void HeadMask::add(int layer, int head) {
  if (layer < 0 || layer >= n_layer || head < 0 || head >= n_head)
    throw Error("head " + std::to_string(layer) + "-" + std::to_string(head) + " is outside the model (" +
                std::to_string(n_layer) + " layers x " + std::to_string(n_head) + " heads)");
  masked[static_cast<size_t>(layer) * n_head + head] = 1;
}

int HeadMask::count() const {
  int n = 0;
  for (uint8_t m : masked) n += m;
  return n;
}

std::vector<std::pair<int, int>> HeadMask::heads() const {
  std::vector<std::pair<int, int>> out;
  for (int l = 0; l < n_layer; ++l)
    for (int h = 0; h < n_head; ++h)
      if (contains(l, h)) out.emplace_back(l, h);
  return out;
}

std::vector<float> HeadMeanRecorder::means() const {
  std::vector<float> out(sum.size(), 0.0f);
  if (n_tokens == 0) return out;
  for (size_t i = 0; i < sum.size(); ++i) out[i] = static_cast<float>(sum[i] / static_cast<double>(n_tokens));
  return out;
}

}  // namespace rhead
