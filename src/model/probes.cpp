// Head masks and mean recording.
#include "model/probes.h"

#include "io/enum_names.h"
#include "io/error.h"

namespace rhead {

constexpr EnumName<MaskMode> kMaskModes[] = {
    {MaskMode::uniform, "uniform"}, {MaskMode::zero, "zero"}, {MaskMode::mean, "mean"}};
constexpr EnumName<MaskPhase> kMaskPhases[] = {{MaskPhase::decode, "decode"}, {MaskPhase::all, "all"}};

const char* mask_mode_name(MaskMode m) { return name_in(kMaskModes, m); }
const char* mask_phase_name(MaskPhase p) { return name_in(kMaskPhases, p); }
MaskMode parse_mask_mode(const std::string& name) { return parse_in(kMaskModes, name, "mask mode"); }
MaskPhase parse_mask_phase(const std::string& name) { return parse_in(kMaskPhases, name, "mask phase"); }

void HeadMask::add(HeadId head) {
  if (head.layer < 0 || head.layer >= n_layer || head.head < 0 || head.head >= n_head)
    throw Error("head " + head.key() + " is outside the model (" + std::to_string(n_layer) + " layers x " +
                std::to_string(n_head) + " heads)");
  masked[static_cast<size_t>(head.layer) * n_head + head.head] = 1;
}

int HeadMask::count() const {
  int n = 0;
  for (uint8_t m : masked) n += m;
  return n;
}

std::vector<HeadId> HeadMask::heads() const {
  return heads_where(n_layer, n_head, [&](int l, int h) { return contains(l, h); });
}

HeadMask make_head_mask(const std::vector<HeadId>& heads, const ModelConfig& config, MaskMode mode, MaskPhase phase) {
  HeadMask m(config.n_layer, config.n_head);
  for (HeadId h : heads) m.add(h);
  m.mode = mode;
  m.phase = phase;
  return m;
}

HeadMask parse_head_mask(const std::string& spec, const ModelConfig& config) {
  return make_head_mask(select_heads(spec, config), config);
}

std::vector<float> HeadMeanRecorder::means() const {
  std::vector<float> out(sum.size(), 0.0f);
  if (n_tokens == 0) return out;
  for (size_t i = 0; i < sum.size(); ++i) out[i] = static_cast<float>(sum[i] / static_cast<double>(n_tokens));
  return out;
}

}  // namespace rhead
