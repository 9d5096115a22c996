// vila/backend/cpu.hpp — the CPU backend: xtensor storage, OpenMP loops, Eigen GEMM.
//
// A backend is a tag type with static members; kernels are written once as VILA_HOST_DEVICE
// functors over an index and run through `parallel_for`, so the same math serves every backend.
// Required members (the Thrust backend has the same):
//   template <class T> using storage        owning N-d array of T
//   resize(storage&, shape) / data(storage&) / upload / download / fill
//   parallel_for(n, f)                      f(i) for i in [0, n), in any order, maybe in parallel
//   sum(p, n)                               sum of n values
//   gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
//                                           row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C
//   gemm_batched(..., A[], B[], C[], count)  `count` independent GEMMs of one shape (pointer arrays
//                                           on the host; the C matrices must not overlap)
#pragma once
#include <algorithm>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "../config.hpp"
#include "../core/shape.hpp"
#include "../detail/xtensor_compat.hpp"
#include "bf16.hpp"

namespace vila::backend {

namespace detail {
/// 64-byte aligned allocation (a cache line, an AVX-512 register). Beyond speed, it makes
/// results reproducible bit for bit: Eigen's vectorised loops peel a different number of
/// leading elements for a different alignment, which changes the order of a sum, so two
/// copies of one model could otherwise give logits differing in the last bit.
template <class T>
struct aligned_allocator {
    using value_type = T;
    static constexpr std::size_t alignment = 64;
    aligned_allocator() noexcept = default;
    template <class U>
    aligned_allocator(const aligned_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(alignment))); }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t(alignment)); }
    template <class U>
    struct rebind {
        using other = aligned_allocator<U>;
    };
    friend bool operator==(const aligned_allocator&, const aligned_allocator&) noexcept { return true; }
    friend bool operator!=(const aligned_allocator&, const aligned_allocator&) noexcept { return false; }
};
}  // namespace detail

struct cpu {
    static constexpr const char* name = "cpu";

    /// xtensor's row-major N-d container owns the memory (64-byte aligned); Eigen maps view it.
    template <class T>
    using storage = xt::xarray<T, xt::layout_type::row_major, detail::aligned_allocator<T>>;

    template <class T>
    static void resize(storage<T>& s, const shape_t& shape) {
        std::vector<std::size_t> ext(shape.begin(), shape.end());
        if (static_cast<index_t>(s.size()) == numel(shape)) s.reshape(ext);  // keeps the buffer
        else s.resize(ext);
    }
    template <class T>
    static T* data(storage<T>& s) noexcept { return s.data(); }
    template <class T>
    static const T* data(const storage<T>& s) noexcept { return s.data(); }
    template <class T>
    static void upload(T* dst, const T* host, index_t n) {
        if (n) std::memcpy(dst, host, static_cast<std::size_t>(n) * sizeof(T));
    }
    template <class T>
    static void download(T* host, const T* src, index_t n) {
        if (n) std::memcpy(host, src, static_cast<std::size_t>(n) * sizeof(T));
    }
    template <class T>
    static void fill(T* p, index_t n, T value) { std::fill(p, p + n, value); }

    template <class F>
    static void parallel_for(index_t n, const F& f) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (n > 1)
#endif
        for (index_t i = 0; i < n; ++i) f(i);
    }

    /// f(begin, end) over [0, n) in chunks of 16384 spread across the threads: the form of
    /// elementwise kernels written as Eigen array expressions (vectorised exp, sqrt, ...).
    template <class F>
    static void parallel_chunks(index_t n, const F& f) {
        constexpr index_t chunk = 16384;
        parallel_for((n + chunk - 1) / chunk, [&](index_t c) { f(c * chunk, std::min(n, (c + 1) * chunk)); });
    }

    /// Sum in double over fixed chunks of 4096, added in chunk order: the result depends on
    /// neither the thread count nor thread timing (an OpenMP reduction combines partial sums in
    /// whatever order threads finish, which would make resumed training differ in the last bit).
    template <class T>
    static T sum(const T* p, index_t n) {
        constexpr index_t chunk = 4096;
        const index_t chunks = (n + chunk - 1) / chunk;
        std::vector<double> part(static_cast<std::size_t>(chunks), 0.0);
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (chunks > 1)
#endif
        for (index_t c = 0; c < chunks; ++c) {
            double acc = 0;
            const index_t end = std::min(n, (c + 1) * chunk);
            for (index_t i = c * chunk; i < end; ++i) acc += static_cast<double>(p[i]);
            part[static_cast<std::size_t>(c)] = acc;
        }
        double total = 0;
        for (double x : part) total += x;
        return static_cast<T>(total);
    }

    /// y[n] = alpha dot(W[n, :K], x) + beta y[n] for n < N (W row-major with stride ldw): every
    /// output a contiguous row, the rows split across the threads. Batch-1 decoding is this
    /// product in every layer, bound by reading W once; BLAS's sgemv through Eigen and Eigen's own
    /// (one thread) both left bandwidth unused. Each dot sums 16 lanes in a fixed order.
    template <class T>
    static void gemv_rows(index_t N, index_t K, T alpha, const T* W, index_t ldw, const T* x, T beta, T* y) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (N * K >= 65536)
#endif
        for (index_t n = 0; n < N; ++n) {
            const T* w = W + n * ldw;
            T acc[16] = {};
            index_t k = 0;
            for (; k + 16 <= K; k += 16)
                for (int l = 0; l < 16; ++l) acc[l] += w[k + l] * x[k + l];
            T tail = 0;
            for (; k < K; ++k) tail += w[k] * x[k];
            for (int l = 0; l < 8; ++l) acc[l] += acc[l + 8];
            for (int l = 0; l < 4; ++l) acc[l] += acc[l + 4];
            const T dot = (acc[0] + acc[2]) + (acc[1] + acc[3]) + tail;
            y[n] = alpha * dot + (beta == T(0) ? T(0) : beta * y[n]);
        }
    }

    /// Row-major GEMM: batch-1 rows through gemv_rows; float products in bf16 when the process
    /// asks for it (backend/bf16.hpp); the rest through Eigen (which calls BLAS when
    /// EIGEN_USE_BLAS is defined).
    template <class T>
    static void gemm(bool ta, bool tb, index_t M, index_t N, index_t K, T alpha, const T* A,
                     index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc) {
        if (M == 0 || N == 0) return;
        if (M == 1 && !ta && tb && K > 0) {  // y = x W^T of one row: decoding's products
            gemv_rows(N, K, alpha, B, ldb, A, beta, C);
            return;
        }
        if constexpr (std::is_same<T, float>::value)
            if (K > 0 && bf16::matmul_precision() == precision::bf16) {
                gemm_bf16(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
                return;
            }
        gemm_eigen(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }

    /// bf16 operands, fp32 accumulation: oneDNN's kernel, or the emulation (operands rounded to
    /// bf16 values in fp32 copies, then the fp32 GEMM).
    static void gemm_bf16(bool ta, bool tb, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
                          const float* B, index_t ldb, float beta, float* C, index_t ldc) {
#if defined(VILA_WITH_DNNL)
        if (bf16::active_kernel() == bf16::kernel::onednn) {
            bf16::onednn_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
            return;
        }
#endif
        thread_local std::vector<float> a, b;
        const index_t a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K, b_cols = tb ? K : N;  // as stored
        a.resize(static_cast<std::size_t>(a_rows * a_cols));
        b.resize(static_cast<std::size_t>(b_rows * b_cols));
        bf16::detail::pack_rounded(A, a_rows, a_cols, lda, a.data());
        bf16::detail::pack_rounded(B, b_rows, b_cols, ldb, b.data());
        gemm_eigen(ta, tb, M, N, K, alpha, a.data(), a_cols, b.data(), b_cols, beta, C, ldc);
    }

    /// Row-major GEMM through Eigen (BLAS with EIGEN_USE_BLAS).
    template <class T>
    static void gemm_eigen(bool ta, bool tb, index_t M, index_t N, index_t K, T alpha, const T* A,
                           index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc) {
        using mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        using cmap = Eigen::Map<const mat, Eigen::Unaligned, Eigen::OuterStride<>>;
        Eigen::Map<mat, Eigen::Unaligned, Eigen::OuterStride<>> c(C, M, N, Eigen::OuterStride<>(ldc));
        if (beta == T(0)) c.setZero();
        else if (beta != T(1)) c *= beta;
        if (K == 0) return;
        cmap a(A, ta ? K : M, ta ? M : K, Eigen::OuterStride<>(lda));  // stored op(A) or op(A)^T
        cmap b(B, tb ? N : K, tb ? K : N, Eigen::OuterStride<>(ldb));
        if (!ta && !tb) c.noalias() += alpha * a * b;
        else if (!ta && tb) c.noalias() += alpha * a * b.transpose();
        else if (ta && !tb) c.noalias() += alpha * a.transpose() * b;
        else c.noalias() += alpha * a.transpose() * b.transpose();
    }

    /// Many small GEMMs (attention heads): parallel across the batch, each one single-threaded
    /// (Eigen does not spawn threads inside an OpenMP parallel region).
    template <class T>
    static void gemm_batched(bool ta, bool tb, index_t M, index_t N, index_t K, T alpha, const T* const* A, index_t lda,
                             const T* const* B, index_t ldb, T beta, T* const* C, index_t ldc, index_t count) {
#if defined(_OPENMP)
#pragma omp parallel for schedule(static) if (count > 1)
#endif
        for (index_t i = 0; i < count; ++i) gemm(ta, tb, M, N, K, alpha, A[i], lda, B[i], ldb, beta, C[i], ldc);
    }
};

}  // namespace vila::backend
