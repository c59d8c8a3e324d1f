// cuBLAS, opened when the first CUDA backend is made: the binary does not link it (and links
// the CUDA runtime statically, which opens the driver on its first call), so a command that
// never runs on the GPU (--help, plot, merge, compare, report) loads no GPU library.
#pragma once
#include <cublas_v2.h>

namespace rhead::cuda {

struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasDestroy_v2) destroy = nullptr;
  decltype(&cublasSetStream_v2) set_stream = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  // cublasGemmEx is overloaded in C++ (a cudaDataType compute type too): the exported one.
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
};

// The entry points, resolved once; throws Error naming the library (or the missing symbol)
// when it cannot be opened.
const CublasApi& cublas();

}  // namespace rhead::cuda
