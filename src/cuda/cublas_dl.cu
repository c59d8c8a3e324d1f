#include <dlfcn.h>

#include <string>

#include "cuda/cublas_dl.cuh"
#include "io/error.h"

namespace rhead::cuda {

namespace {

// The soname of the toolkit we compiled against first, then the unversioned development link.
constexpr const char* kLibraries[] = {"libcublas.so." RHEAD_CUBLAS_MAJOR, "libcublas.so"};

template <typename F>
void resolve(void* lib, const char* library, const char* name, F& out) {
  out = reinterpret_cast<F>(dlsym(lib, name));
  if (!out) throw Error(std::string(library) + ": no symbol " + name + " (a cuBLAS too old for this build?)");
}

CublasApi open_cublas() {
  void* lib = nullptr;
  const char* opened = nullptr;
  std::string tried;
  for (const char* name : kLibraries) {
    lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (lib) {
      opened = name;
      break;
    }
    const char* why = dlerror();
    tried += std::string(tried.empty() ? "" : "; ") + (why ? why : name);
  }
  if (!lib) throw Error("cannot open cuBLAS for the CUDA backend: " + tried);
  CublasApi api;
  resolve(lib, opened, "cublasCreate_v2", api.create);
  resolve(lib, opened, "cublasDestroy_v2", api.destroy);
  resolve(lib, opened, "cublasSetStream_v2", api.set_stream);
  resolve(lib, opened, "cublasSgemm_v2", api.sgemm);
  resolve(lib, opened, "cublasGemmEx", api.gemm_ex);
  return api;  // the library stays open for the life of the process
}

}  // namespace

const CublasApi& cublas() {
  static const CublasApi api = open_cublas();
  return api;
}

}  // namespace rhead::cuda
