// The one visibility rule of attention and the row map of a compacted KV cache, usable from
// host code and from CUDA device code (nvcc sees __host__ __device__ inline functions).
//
// Visibility (ops/attention.h's contract): a query at absolute position i sees key j iff
//   j <= i
//   and (window == 0 || i - j < window)                           model sliding window
//   and (head_window == 0 || j < sink || i - j < head_window)     KV policy of the query head
// ops/attention.cpp, cuda/attention_cuda.cu, cuda/flash_prefill.cu and model/kv_policy.h all
// decide visibility with these functions.
//
// Row map (ops/kv_cache.h, compacted layout): positions stay absolute (RoPE is applied before
// a row is stored); a KV head whose query heads are all windowed keeps its first `sink`
// positions at rows 0..sink-1 and the later ones in a ring of `ring` rows after them, a KV
// head kept whole (ring 0) stores position j at row j.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define RHEAD_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define RHEAD_HOST_DEVICE inline
#endif

namespace rhead {

// Positions are int64_t on the host; a device kernel may use int (I: the integer type).

// First key a query at position i may see under a model window (0: none).
template <class I>
RHEAD_HOST_DEVICE I kv_window_start(I i, I window) {
  return window > 0 && i - window + 1 > 0 ? i - window + 1 : 0;
}

// The KV-policy part of the rule: a windowed head (head_window > 0) sees the sink and its
// last head_window positions; 0 is a full head.
template <class I>
RHEAD_HOST_DEVICE bool kv_policy_sees(I i, I j, I head_window, I sink) {
  return head_window <= 0 || j < sink || i - j < head_window;
}

// The whole rule, with lo = kv_window_start(i, window).
template <class I>
RHEAD_HOST_DEVICE bool kv_sees(I i, I j, I lo, I head_window, I sink) {
  return j <= i && j >= lo && kv_policy_sees(i, j, head_window, sink);
}

// The keys one query sees as at most two runs of ascending positions [begin, end): the sink
// run of a windowed head, then the recent run that ends at the query.
struct KvRuns {
  int64_t begin[2] = {0, 0}, end[2] = {0, 0};
  int n = 0;
};

RHEAD_HOST_DEVICE KvRuns kv_runs(int64_t i, int64_t window, int64_t head_window, int64_t sink) {
  KvRuns v;
  const int64_t lo = kv_window_start<int64_t>(i, window);
  int64_t recent = head_window > 0 && i - head_window + 1 > lo ? i - head_window + 1 : lo;
  if (head_window > 0 && sink > lo) {
    if (sink >= recent) {
      recent = lo;  // the sink run reaches the recent run: one run
    } else {
      v.begin[0] = lo;
      v.end[0] = sink;
      v.n = 1;
    }
  }
  v.begin[v.n] = recent;
  v.end[v.n] = i + 1;
  ++v.n;
  return v;
}

// Where a KV head stores position j.
struct KvRowMap {
  int64_t sink = 0;  // positions [0, sink) at rows [0, sink)
  int64_t ring = 0;  // 0: row = position; else later positions cycle through rows sink .. sink + ring - 1

  RHEAD_HOST_DEVICE int64_t row(int64_t j) const { return ring == 0 || j < sink ? j : sink + (j - sink) % ring; }
  // How many positions from j on sit in consecutive rows (row(j), row(j) + 1, ...).
  RHEAD_HOST_DEVICE int64_t run(int64_t j) const {
    if (ring == 0) return INT64_MAX;
    return j < sink ? sink - j : ring - (j - sink) % ring;
  }
  // Whether position j is still held once positions 0 .. n_written - 1 have been written.
  RHEAD_HOST_DEVICE bool holds(int64_t j, int64_t n_written) const {
    return j < n_written && (ring == 0 || j < sink || j + ring >= n_written);
  }
};

}  // namespace rhead
