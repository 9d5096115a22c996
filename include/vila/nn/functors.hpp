// vila/nn/functors.hpp — small index functors shared by several kernels.
//
// Kernels are VILA_HOST_DEVICE functors over an index, launched with Backend::parallel_for, so
// one definition runs on the CPU (OpenMP) and on every Thrust system (CUDA included).
#pragma once
#include <cmath>

#include <Eigen/Core>

#include "../config.hpp"
#include "../core/shape.hpp"

namespace vila::nn::detail {

/// sum_i f(p[i]) over a row with 8 independent partial sums: a single running sum is one long
/// dependency chain of adds the compiler may not reorder (no -ffast-math), so it neither
/// pipelines nor vectorises; eight lanes do both. (Row reductions of the norms.)
template <class T, class F>
VILA_HOST_DEVICE T lane_sum(const T* p, index_t n, F f) {
    T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    index_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += f(p[i + l]);
    T tail = 0;
    for (; i < n; ++i) tail += f(p[i]);
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}
template <class T>
struct identity_of {
    VILA_HOST_DEVICE T operator()(T v) const { return v; }
};

/// The exponentials of softmax-like rows: the scalar std::exp loop (glibc's expf, one call per
/// element) took 5% of a VLM training step (cross-entropy over a 32000-word vocabulary, attention
/// softmax). On the host the exponentials run as Eigen array expressions (vectorised exp); on a
/// CUDA device, as plain loops. Reductions stay ours (lane loops): their order is then fixed, and
/// g++ 12 misreports Eigen's AVX-512 reductions as uninitialised reads (-Werror).
template <class T>
VILA_HOST_DEVICE T max_of(const T* x, index_t n) {  // n >= 1
    T acc[8];
    for (int l = 0; l < 8; ++l) acc[l] = x[0];
    index_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] = x[i + l] > acc[l] ? x[i + l] : acc[l];
    T m = x[0];
    for (; i < n; ++i) m = x[i] > m ? x[i] : m;
    for (int l = 0; l < 8; ++l) m = acc[l] > m ? acc[l] : m;
    return m;
}
/// y[i] = exp(x[i] - shift) for i < n; y may be x.
template <class T>
VILA_HOST_DEVICE void exp_shifted(const T* x, T shift, T* y, index_t n) {
#if defined(__CUDA_ARCH__)
    for (index_t i = 0; i < n; ++i) y[i] = std::exp(x[i] - shift);
#else
    Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>(y, n) = (Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>(x, n) - shift).exp();
#endif
}
/// sum_i exp(x[i] - shift) (the log-sum-exp's sum), x untouched: blocks of 512 through a stack buffer.
template <class T>
VILA_HOST_DEVICE T exp_shifted_sum(const T* x, T shift, index_t n) {
#if defined(__CUDA_ARCH__)
    T s = 0;
    for (index_t i = 0; i < n; ++i) s += std::exp(x[i] - shift);
    return s;
#else
    constexpr index_t block = 512;
    alignas(64) T buf[block];
    T s = 0;
    for (index_t b = 0; b < n; b += block) {
        const index_t len = n - b < block ? n - b : block;
        exp_shifted(x + b, shift, buf, len);
        s += lane_sum(buf, len, identity_of<T>{});
    }
    return s;
#endif
}

template <class T>
struct square_of {
    VILA_HOST_DEVICE T operator()(T v) const { return v * v; }
};
template <class T>
struct squared_deviation {
    T mean;
    VILA_HOST_DEVICE T operator()(T v) const { return (v - mean) * (v - mean); }
};

/// out[c] += sum over rows r of in[r * cols + c]   (bias gradients)
template <class T>
struct column_sum_add {
    const T* in;
    T* out;
    index_t rows, cols;
    VILA_HOST_DEVICE void operator()(index_t c) const {
        T acc = 0;
        for (index_t r = 0; r < rows; ++r) acc += in[r * cols + c];
        out[c] += acc;
    }
};

/// y[i] = a[i] + b[i]
template <class T>
struct add_into {
    const T* a;
    const T* b;
    T* y;
    VILA_HOST_DEVICE void operator()(index_t i) const { y[i] = a[i] + b[i]; }
};

/// y[i] += x[i]
template <class T>
struct accumulate {
    const T* x;
    T* y;
    VILA_HOST_DEVICE void operator()(index_t i) const { y[i] += x[i]; }
};

/// y[r * cols + c] = b[c]   (broadcast a bias before a GEMM with beta = 1)
template <class T>
struct broadcast_row {  // one work item per row: the column loop vectorises (no i % cols per element)
    const T* b;
    T* y;
    index_t cols;
    VILA_HOST_DEVICE void operator()(index_t r) const {
        T* row = y + r * cols;
        for (index_t c = 0; c < cols; ++c) row[c] = b[c];
    }
};

}  // namespace vila::nn::detail
