// Head-mask specifications as users write them on the command line, and the calibration
// run behind MaskMode::mean.
//
//   heads:L-H[,L-H...]   the listed (layer, query head) pairs
//   kv:L-G[,L-G...]      every query head that reads KV group G of layer L (GQA view:
//                        query heads G*group_size .. (G+1)*group_size-1)
//   none                 no head (an empty mask)
//
// Layers and heads count from 0. A spec is "KIND:ARGS"; each kind is one entry of the table
// in head_mask_spec.cpp, so a new kind (e.g. top:K, random:K, which need a score map) is one
// more parser function there.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "model/config.h"
#include "model/model.h"
#include "model/probes.h"
#include "model/session.h"

namespace rhead {

// Parses `spec` into a mask over the model's query heads (mode uniform, phase decode: set
// them afterwards). Error with a one-line message naming the spec on any malformed or
// out-of-range entry.
HeadMask parse_head_mask(const std::string& spec, const ModelConfig& config);

// "L-H" -> (layer, head); Error naming `what` if it is not two non-negative integers.
std::pair<int, int> parse_layer_head_pair(const std::string& text, const std::string& what);

// The calibration run of MaskMode::mean: `tokens` are run through a fresh Session of
// `model` (options as given), with no mask and no probes, and every head's attention
// output (the per-head vector that enters the output projection) is averaged over all of
// those token positions. The result is what mask.means expects: [n_layer, n_head, head_dim].
// The usual calibration text is the prompt itself.
std::vector<float> record_head_means(std::shared_ptr<const Model> model, std::span<const int32_t> tokens,
                                     const SessionOptions& options = {});

}  // namespace rhead
