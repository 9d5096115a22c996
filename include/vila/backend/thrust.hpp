// vila/backend/thrust.hpp — the Thrust backend: one source for the CPP, OMP and CUDA systems.
//
// Opt-in: include it (or link vila::thrust, which defines VILA_USE_THRUST) to get
// vila::backend::thrust. Storage is thrust::device_vector; kernels are the same VILA_HOST_DEVICE
// functors the CPU backend runs, launched with thrust::for_each on the device system. GEMM goes
// to cuBLAS under nvcc (VILA_USE_CUBLAS) and to the CPU backend's Eigen GEMM on host systems,
// where "device" memory is ordinary host memory.
//
// Every translation unit of a program must see the same THRUST_DEVICE_SYSTEM (ODR); the CMake
// target sets it as an INTERFACE definition for that reason.
#pragma once
#include "../config.hpp"

#include <thrust/copy.h>
#include <thrust/device_ptr.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/fill.h>
#include <thrust/for_each.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/reduce.h>

#include "../core/shape.hpp"

#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
#if !defined(__CUDACC__)
#error "vila: THRUST_DEVICE_SYSTEM_CUDA needs a CUDA compiler (nvcc); use OMP or CPP with a host compiler"
#endif
#include "cuda/check.hpp"
#if defined(VILA_USE_CUBLAS)
#include "cuda/cublas_gemm.hpp"
#endif
#else
#include "cpu.hpp"
#endif

namespace vila::backend {

struct thrust {
    static constexpr const char* name = "thrust";

    template <class T>
    using storage = ::thrust::device_vector<T>;

    template <class T>
    static void resize(storage<T>& s, const shape_t& shape) { s.resize(static_cast<std::size_t>(numel(shape))); }
    template <class T>
    static T* data(storage<T>& s) noexcept { return ::thrust::raw_pointer_cast(s.data()); }
    template <class T>
    static const T* data(const storage<T>& s) noexcept { return ::thrust::raw_pointer_cast(s.data()); }
    template <class T>
    static void upload(T* dst, const T* host, index_t n) {
        ::thrust::copy(host, host + n, ::thrust::device_pointer_cast(dst));
    }
    template <class T>
    static void download(T* host, const T* src, index_t n) {
        ::thrust::copy(::thrust::device_pointer_cast(src), ::thrust::device_pointer_cast(src) + n, host);
    }
    template <class T>
    static void fill(T* p, index_t n, T value) {
        ::thrust::fill_n(::thrust::device, ::thrust::device_pointer_cast(p), n, value);
    }

    template <class F>
    static void parallel_for(index_t n, const F& f) {
        if (n <= 0) return;
        ::thrust::for_each_n(::thrust::device, ::thrust::counting_iterator<index_t>(0), n, f);
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
        cuda::check(cudaGetLastError(), "thrust::for_each_n");
#endif
    }

    template <class T>
    static T sum(const T* p, index_t n) {
        auto first = ::thrust::device_pointer_cast(p);
        return ::thrust::reduce(::thrust::device, first, first + n, T(0));
    }

    template <class T>
    static void gemm(bool ta, bool tb, index_t M, index_t N, index_t K, T alpha, const T* A,
                     index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc) {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
#if defined(VILA_USE_CUBLAS)
        cuda::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
        static_assert(sizeof(T) == 0, "vila: the CUDA Thrust backend needs VILA_USE_CUBLAS for GEMM");
#endif
#else
        cpu::gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);  // host memory here
#endif
    }

    /// `count` GEMMs of one shape; the pointer arrays live on the host.
    template <class T>
    static void gemm_batched(bool ta, bool tb, index_t M, index_t N, index_t K, T alpha, const T* const* A, index_t lda,
                             const T* const* B, index_t ldb, T beta, T* const* C, index_t ldc, index_t count) {
#if THRUST_DEVICE_SYSTEM == THRUST_DEVICE_SYSTEM_CUDA
        for (index_t i = 0; i < count; ++i) gemm(ta, tb, M, N, K, alpha, A[i], lda, B[i], ldb, beta, C[i], ldc);
#else
        cpu::gemm_batched(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, count);
#endif
    }
};

}  // namespace vila::backend
