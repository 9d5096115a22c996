// vila/nn/rms_norm.hpp — RMSNorm over the last dimension (LLaMA: y = w * x / sqrt(mean(x^2) + eps)).
//
// Shapes: x [..., D], w [D], y like x; saved per row: rstd [rows] = 1 / sqrt(mean(x^2) + eps).
// Backward: dx = r g - x r^3 mean(g x) with g = w dy;  dw += sum over rows of dy x r.
#pragma once
#include <cmath>
#include <string>
#include <type_traits>

#include "../backend/cpu.hpp"
#include "../core/param.hpp"
#include "../core/tensor.hpp"
#include "functors.hpp"

namespace vila::nn {
namespace detail {
template <class T>
struct rms_norm_row {
    const T* x;
    const T* w;
    T* y;
    T* rstd;
    index_t dim;
    T eps;
    VILA_HOST_DEVICE void operator()(index_t r) const {
        const T* xr = x + r * dim;
        const T ss = lane_sum(xr, dim, square_of<T>{});
        const T s = T(1) / std::sqrt(ss / T(dim) + eps);
        T* yr = y + r * dim;
        for (index_t i = 0; i < dim; ++i) yr[i] = w[i] * (xr[i] * s);
        rstd[r] = s;
    }
};
template <class T>
struct rms_norm_dx_row {
    const T* x;
    const T* w;
    const T* rstd;
    const T* dy;
    T* dx;
    index_t dim;
    VILA_HOST_DEVICE void operator()(index_t r) const {
        const T* xr = x + r * dim;
        const T* dyr = dy + r * dim;
        const T s = rstd[r];
        T dot = 0;
        for (index_t i = 0; i < dim; ++i) dot += dyr[i] * w[i] * xr[i];
        const T k = s * s * s * dot / T(dim);
        T* dxr = dx + r * dim;
        for (index_t i = 0; i < dim; ++i) dxr[i] += s * dyr[i] * w[i] - k * xr[i];
    }
};
template <class T>
struct rms_norm_dw_col {
    const T* x;
    const T* rstd;
    const T* dy;
    T* dw;
    index_t rows, dim;
    VILA_HOST_DEVICE void operator()(index_t c) const {
        T acc = 0;
        for (index_t r = 0; r < rows; ++r) acc += dy[r * dim + c] * x[r * dim + c] * rstd[r];
        dw[c] += acc;
    }
};
/// The same sums a block of 16 columns at a time, rows outer: contiguous, vectorised reads (the
/// column form strides by `dim` on every row); each column still sums its rows in order.
template <class T>
struct rms_norm_dw_block {
    static constexpr index_t width = 16;
    const T* x;
    const T* rstd;
    const T* dy;
    T* dw;
    index_t rows, dim;
    void operator()(index_t blk) const {
        const index_t c0 = blk * width, n = dim - c0 < width ? dim - c0 : width;
        T acc[width] = {};
        for (index_t r = 0; r < rows; ++r) {
            const T* a = dy + r * dim + c0;
            const T* b = x + r * dim + c0;
            const T s = rstd[r];
            for (index_t j = 0; j < n; ++j) acc[j] += a[j] * b[j] * s;
        }
        for (index_t j = 0; j < n; ++j) dw[c0 + j] += acc[j];
    }
};
}  // namespace detail

template <class T, class B>
void rms_norm_forward(const tensor<T, B>& x, const tensor<T, B>& w, T eps, tensor<T, B>& y, tensor<T, B>& rstd) {
    constexpr const char* where = "vila::nn::rms_norm";
    check_rank_at_least(where, "x", x.shape(), 1);
    const index_t dim = x.dim(-1), rows = x.size() / (dim ? dim : 1);
    check_shape(where, "weight", w.shape(), {dim});
    y.ensure_shape(x.shape());
    rstd.ensure_shape({rows});
    B::parallel_for(rows, detail::rms_norm_row<T>{x.data(), w.data(), y.data(), rstd.data(), dim, eps});
}

template <class T, class B>
void rms_norm_backward(const tensor<T, B>& x, const tensor<T, B>& w, const tensor<T, B>& rstd,
                       const tensor<T, B>& dy, tensor<T, B>* dx, tensor<T, B>* dw) {
    constexpr const char* where = "vila::nn::rms_norm backward";
    const index_t dim = x.dim(-1), rows = x.size() / (dim ? dim : 1);
    check_shape(where, "dy", dy.shape(), x.shape());
    check_shape(where, "rstd", rstd.shape(), {rows});
    if (dx) {
        check_shape(where, "dx", dx->shape(), x.shape());
        B::parallel_for(rows, detail::rms_norm_dx_row<T>{x.data(), w.data(), rstd.data(), dy.data(), dx->data(), dim});
    }
    if (dw) {
        check_shape(where, "dW", dw->shape(), {dim});
        if constexpr (std::is_same<B, backend::cpu>::value) {
            constexpr index_t w16 = detail::rms_norm_dw_block<T>::width;
            B::parallel_for((dim + w16 - 1) / w16, detail::rms_norm_dw_block<T>{x.data(), rstd.data(), dy.data(), dw->data(), rows, dim});
        } else {
            B::parallel_for(dim, detail::rms_norm_dw_col<T>{x.data(), rstd.data(), dy.data(), dw->data(), rows, dim});
        }
    }
}

/// RMSNorm owning "<prefix>.weight" (initialised to ones, as in HF).
template <class T, class B = backend::cpu>
class rms_norm {
public:
    struct config {
        index_t dim = 0;
        double eps = 1e-6;
    };
    struct cache {
        const tensor<T, B>* x = nullptr;
        tensor<T, B> rstd;
    };

    param<T, B> weight;
    T eps = T(1e-6);

    rms_norm() = default;
    rms_norm(const config& c, const std::string& prefix)
        : weight(prefix + ".weight", {c.dim}), eps(static_cast<T>(c.eps)) {
        weight.value.fill(T(1));
    }

    void forward(const tensor<T, B>& x, tensor<T, B>& y, cache& c) const {
        rms_norm_forward(x, weight.value, eps, y, c.rstd);
        c.x = &x;
    }
    void backward(const cache& c, const tensor<T, B>& dy, tensor<T, B>* dx) {
        rms_norm_backward(*c.x, weight.value, c.rstd, dy, dx, weight.grad_if_trainable());
    }
    template <class F>
    void for_each_parameter(F&& f) { f(weight.name, weight); }
};

}  // namespace vila::nn
