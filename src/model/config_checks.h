// Checks that a ModelConfig read from a file describes a model rhead can run, before any
// buffer is sized from it: positive counts within sanity bounds, products of dims that fit,
// finite positive epsilon and RoPE base, and a block count that matches the tensors present.
// Every family's hparams reader ends with these.
#pragma once
#include <string>
#include <vector>

#include "model/config.h"

namespace rhead {

// Error "where: <problem>" naming the first field that is missing, out of range or
// inconsistent (counts up to 2^24, q_dim/kv_dim that fit in int, rms epsilon and RoPE
// theta finite and positive, RoPE scaling factors finite and positive).
void validate_model_config(const ModelConfig& c, const std::string& where);

// The block numbers N of tensors named "blk.N.*" must be exactly 0..n_layer-1: a tensor of
// block N >= n_layer means the block count is too small, a missing block means it is too
// large. Checked before anything is allocated per layer.
void check_block_tensors(const std::vector<std::string>& tensor_names, int n_layer, const std::string& where);

}  // namespace rhead
