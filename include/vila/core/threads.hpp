// vila/core/threads.hpp — thread count and allocator tuning for the CPU paths.
//
// The CPU backend parallelises with OpenMP (and Eigen's GEMM uses the same OpenMP pool), so one
// knob sets both. tune_allocator() is for programs, not libraries: call it once from main().
#pragma once
#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace vila {

/// Threads the CPU kernels (and Eigen's GEMM) use; 1 without OpenMP.
inline int num_threads() noexcept {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// Sets the OpenMP thread count used by the CPU kernels. No effect without OpenMP.
inline void set_num_threads(int n) noexcept {
#if defined(_OPENMP)
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

/// Keeps freed buffers in the process instead of returning them to the OS.
///
/// Why: Eigen allocates its GEMM packing buffers for every product, and on VMs that hand freed
/// pages back to the host, touching fresh pages costs ~12 us per 4 KiB. With glibc's default
/// thresholds a 256^3 product ran 4x slower here. Raising the mmap/trim thresholds fixes it.
/// Affects the whole process (glibc malloc only); returns false where it cannot be applied.
inline bool tune_allocator() noexcept {
#if defined(__GLIBC__)
    bool ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;  // glibc's maximum on 64-bit
    ok = (mallopt(M_TRIM_THRESHOLD, 512 << 20) == 1) && ok;
    ok = (mallopt(M_TOP_PAD, 64 << 20) == 1) && ok;
    return ok;
#else
    return false;
#endif
}

}  // namespace vila
