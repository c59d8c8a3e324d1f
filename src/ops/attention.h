// The attention kernel, with probes and head interventions computed in place.
//
// For each query token t (absolute position i = pos0 + t) and query head h, the kernel scores
// the keys of KV head h / group_size that the query sees, softmaxes over them, mixes V, and —
// only if asked — reads the probes off that query's row of scores: argmax (ties go to the
// earliest position, because the scan keeps the first strict maximum), top-k (ties: earlier
// first), attention mass in a span, mass on position 0. Scores are kept only for the rows that
// carry probes; no [n_head, n_kv] matrix is ever materialized otherwise.
//
// attention() is tiled (flash attention): blocks of queries of one GQA group against tiles of
// keys with an online softmax, each K/V tile converted from f16 once for all heads of the
// group; at decode, when threads outnumber the KV heads, the keys are split across threads and
// the partial softmaxes merged. Decode-sized blocks (at most 32 query rows of a group) skip the
// sgemm tiles for register kernels: query rows and key pairs in the lanes of AVX-512 vectors,
// or query rows in the 8 lanes of AVX2 ones. Overridden heads take the row-at-a-time path.
// attention_ref() is the scalar row-at-a-time oracle; the two agree to float rounding.
//
// Visibility (ops/kv_visibility.h has the rule, shared with the CUDA kernels): query i of
// head h sees key j iff
//   j <= i
//   and (window == 0 || i - j < window)
//   and (head_window == nullptr || head_window[h] == 0 || j < head_sink || i - j < head_window[h]).
// Softmax, the uniform override and every probe run over the visible keys only: sink_mass is
// the weight on position 0 (0 when position 0 is not visible), top-k slots past the number of
// visible keys report position -1 and weight 0.
#pragma once
#include <cstdint>

namespace rhead {

enum class KernelISA;  // ops/quant.h
struct KvHeadRows;     // ops/kv_cache.h

// Probes of an overridden head: uniform reports the uniform row (argmax 0, weight 1/n, as a
// zeroed query would); zero and mean still score their keys, so the probes show where the
// head's query looks even though its output is replaced.
enum class HeadOverride : uint8_t {
  none,
  uniform,  // attend uniformly to the causal prefix: output = mean of V[0..pos]
  zero,     // output removed (zeros) before the output projection
  mean,     // output replaced by a recorded mean output
};

// Where probe results for one layer go. Index of (observation o, head h): o * obs_stride + h.
struct AttentionProbeOut {
  int64_t obs_stride = 0;
  int32_t* argmax = nullptr;       // key position
  float* argmax_weight = nullptr;  // its attention weight
  int top_k = 0;
  int32_t* topk = nullptr;  // [(o * obs_stride + h) * top_k + i]
  float* topk_weight = nullptr;
  int64_t span_begin = 0, span_end = 0;  // [begin, end) absolute positions
  float* span_mass = nullptr;
  float* sink_mass = nullptr;  // weight on position 0
  // The weights of keys [0, key_weights_len) (0 for keys the row does not see):
  // [(o * key_weights_stride + h) * key_weights_len + j].
  int64_t key_weights_len = 0, key_weights_stride = 0;
  float* key_weights = nullptr;
};

struct AttentionArgs {
  int64_t n_tokens = 0;
  int64_t pos0 = 0;
  int n_head = 0, n_kv_head = 0, head_dim = 0;
  const float* q = nullptr;  // [n_tokens, n_head, head_dim], RoPE applied
  // KV cache of this layer: [n_kv_head][capacity] rows of head_dim values, f16 or f32, or Q8_0
  // blocks (kv_q8_0; ops/kv_cache.h has the row layout; the kernels dequantize, so scores,
  // outputs and probes are those of the dequantized values); rows 0..pos0+n_tokens-1 valid.
  const void* k = nullptr;
  const void* v = nullptr;
  bool kv_f16 = true;
  bool kv_q8_0 = false;        // Q8_0 blocks (takes precedence over kv_f16)
  int64_t kv_head_stride = 0;  // elements between consecutive KV heads (capacity * head_dim)
  // Compacted cache (ops/kv_cache.h): [n_kv_head] rows and row map of each KV head; k, v and
  // kv_head_stride are then unused. The kernels visit keys in the same order either way, so
  // results do not depend on the layout; only keys a query sees must still be held.
  const KvHeadRows* kv_heads = nullptr;
  float* out = nullptr;  // [n_tokens, n_head, head_dim]

  // Visibility and scoring (see the file comment). The defaults give plain causal attention.
  int64_t window = 0;                    // model sliding window in positions, layer-wide; 0: none
  const int32_t* head_window = nullptr;  // [n_head] KV-policy window per query head (>= 0); 0 entry: full
  int64_t head_sink = 0;                 // KV policy: positions [0, head_sink) stay visible to windowed heads
  float scale = 0.0f;                    // score = scale * (q . k); 0: 1/sqrt(head_dim)
  float softcap = 0.0f;                  // 0: none; else score -> softcap * tanh(score / softcap)

  const HeadOverride* overrides = nullptr;  // [n_head], nullptr: no intervention
  const float* head_means = nullptr;        // [n_head, head_dim] for HeadOverride::mean

  const int32_t* obs_slot = nullptr;  // [n_tokens]: observation index of token t, or -1; nullptr: no probes
  AttentionProbeOut probes;

  double* head_out_sum = nullptr;  // [n_head, head_dim]: adds every token's head output (calibration)
};

void attention(const AttentionArgs& a);
// attention() with its decode kernels limited to `isa` (AVX512: keys in the lanes; AVX2: query
// rows in the lanes; Scalar: sgemm tiles only), so that tests check each; error if the CPU lacks it.
void attention_isa(KernelISA isa, const AttentionArgs& a);
// Scalar reference with the same contract (straightforward loops, f32 everywhere).
void attention_ref(const AttentionArgs& a);

}  // namespace rhead
