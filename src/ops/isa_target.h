// Per-file instruction sets for the kernel files (quant_avx2.cpp, quant_avx512.cpp,
// quant_vnni.cpp): every function between RHEAD_ISA_BEGIN("avx2,fma,f16c") and RHEAD_ISA_END
// is compiled for those extensions, whatever the file's -m flags (clang and gcc spell the
// pragma differently). Such a file is entered only after a CPU check (quant.cpp).
#pragma once

#define RHEAD_PRAGMA(x) _Pragma(#x)
#if defined(__clang__)
#define RHEAD_ISA_BEGIN(isa) RHEAD_PRAGMA(clang attribute push(__attribute__((target(isa))), apply_to = function))
#define RHEAD_ISA_END RHEAD_PRAGMA(clang attribute pop)
#else
#define RHEAD_ISA_BEGIN(isa) RHEAD_PRAGMA(GCC push_options) RHEAD_PRAGMA(GCC target(isa))
#define RHEAD_ISA_END RHEAD_PRAGMA(GCC pop_options)
#endif
