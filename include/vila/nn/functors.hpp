// vila/nn/functors.hpp — small index functors shared by several kernels.
//
// Kernels are VILA_HOST_DEVICE functors over an index, launched with Backend::parallel_for, so
// one definition runs on the CPU (OpenMP) and on every Thrust system (CUDA included).
#pragma once
#include "../config.hpp"
#include "../core/shape.hpp"

namespace vila::nn::detail {

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
