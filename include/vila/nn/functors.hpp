// vila/nn/functors.hpp — small index functors shared by several kernels.
//
// Kernels are VILA_HOST_DEVICE functors over an index, launched with Backend::parallel_for, so
// one definition runs on the CPU (OpenMP) and on every Thrust system (CUDA included).
#pragma once
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
