// vila/nn/softmax.hpp — softmax over the last dimension, forward and backward.
//
// y = exp(x - max) / sum exp(x - max) per row;  dx += y * (dy - sum(y * dy)).
#pragma once
#include <cmath>

#include "../core/tensor.hpp"
#include "functors.hpp"

namespace vila::nn {
namespace detail {
/// y[0, n) = softmax(x[0, n)); y may be x (in place). n = 0 does nothing.
template <class T>
VILA_HOST_DEVICE void softmax_span(const T* x, T* y, index_t n) {
    if (n <= 0) return;
    exp_shifted(x, max_of(x, n), y, n);
    const T inv = T(1) / lane_sum(y, n, identity_of<T>{});
    for (index_t i = 0; i < n; ++i) y[i] *= inv;
}
template <class T>
struct softmax_row {
    const T* x;
    T* y;
    index_t dim;
    VILA_HOST_DEVICE void operator()(index_t r) const { softmax_span(x + r * dim, y + r * dim, dim); }
};
template <class T>
struct softmax_dx_row {
    const T* y;
    const T* dy;
    T* dx;
    index_t dim;
    VILA_HOST_DEVICE void operator()(index_t r) const {
        const T* yr = y + r * dim;
        const T* dyr = dy + r * dim;
        T dot = 0;
        for (index_t i = 0; i < dim; ++i) dot += yr[i] * dyr[i];
        T* dxr = dx + r * dim;
        for (index_t i = 0; i < dim; ++i) dxr[i] += yr[i] * (dyr[i] - dot);
    }
};
}  // namespace detail

template <class T, class B>
void softmax_forward(const tensor<T, B>& x, tensor<T, B>& y) {
    check_rank_at_least("vila::nn::softmax", "x", x.shape(), 1);
    const index_t dim = x.dim(-1);
    y.ensure_shape(x.shape());
    if (dim == 0) return;
    B::parallel_for(x.size() / dim, detail::softmax_row<T>{x.data(), y.data(), dim});
}

/// Backward from the saved output y.
template <class T, class B>
void softmax_backward(const tensor<T, B>& y, const tensor<T, B>& dy, tensor<T, B>& dx) {
    constexpr const char* where = "vila::nn::softmax backward";
    check_shape(where, "dy", dy.shape(), y.shape());
    check_shape(where, "dx", dx.shape(), y.shape());
    const index_t dim = y.dim(-1);
    if (dim == 0) return;
    B::parallel_for(y.size() / dim, detail::softmax_dx_row<T>{y.data(), dy.data(), dx.data(), dim});
}

}  // namespace vila::nn
