// The attention contract of ops/attention.h on the GPU (attention_ref is the oracle).
//  - prefill (more than kRowModeMaxTokens tokens): a tiled causal flash-attention kernel
//    (online softmax, f32 arithmetic; the query rows of one KV head's GQA group share each
//    K/V tile in shared memory); the observed rows then go through the row kernel for their
//    probes.
//  - decode and observed rows: a split-K row kernel. Each block scores one split of keys for
//    the query heads of one KV head, keeps that split's scores in shared memory, and leaves
//    partial softmax sums, partial outputs and partial probes (argmax, top-k candidates, span
//    sum, position-0 score); a combine kernel merges the splits.
// Neither keeps an [n_head, n_kv] matrix: only one split of scores lives at a time, in
// shared memory.
#pragma once
#include <cuda_runtime.h>

#include "cuda/cuda_common.cuh"
#include "ops/attention.h"

namespace rhead::cuda {

constexpr int64_t kRowModeMaxTokens = 4;  // calls with at most this many tokens use the row kernel only

struct AttentionScratch {
  Scratch rows, overrides, head_window, head_means;
  Scratch part_m, part_l, part_acc, part_arg, part_span, part_sink, part_tk_pos, part_tk_s;
  Scratch out_arg, out_arg_w, out_span, out_sink, out_tk_pos, out_tk_w;
  Scratch kv_heads;  // the compacted cache's KvHeadRows of the layer
  Scratch key_w;     // per-key weights (AttentionProbeOut::key_weights): [n_rows, n_head, key_weights_len]
  void release();
};

// q, k, v, out: device memory; every other pointer of `a`: host memory (backend.h's rule).
void attention(const AttentionArgs& a, AttentionScratch& scratch, cudaStream_t stream);

}  // namespace rhead::cuda
