// vila/nn/layer_norm.hpp — LayerNorm over the last dimension (PyTorch semantics: biased variance).
//
// y = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + eps).
// Shapes: x [..., D], w [D], b [D] (optional), y like x; saved per row: mean [rows], rstd [rows].
#pragma once
#include <cmath>
#include <string>

#include "../core/param.hpp"
#include "../core/tensor.hpp"
#include "functors.hpp"

namespace vila::nn {
namespace detail {
template <class T>
struct layer_norm_row {
    const T* x;
    const T* w;
    const T* b;  // may be null
    T* y;
    T* mean;
    T* rstd;
    index_t dim;
    T eps;
    VILA_HOST_DEVICE void operator()(index_t r) const {
        const T* xr = x + r * dim;
        const T m = lane_sum(xr, dim, identity_of<T>{}) / T(dim);
        const T v = lane_sum(xr, dim, squared_deviation<T>{m});
        const T s = T(1) / std::sqrt(v / T(dim) + eps);
        T* yr = y + r * dim;
        if (b)
            for (index_t i = 0; i < dim; ++i) yr[i] = (xr[i] - m) * s * w[i] + b[i];
        else
            for (index_t i = 0; i < dim; ++i) yr[i] = (xr[i] - m) * s * w[i];
        mean[r] = m;
        rstd[r] = s;
    }
};
template <class T>
struct layer_norm_dx_row {
    const T* x;
    const T* w;
    const T* mean;
    const T* rstd;
    const T* dy;
    T* dx;
    index_t dim;
    VILA_HOST_DEVICE void operator()(index_t r) const {
        const T* xr = x + r * dim;
        const T* dyr = dy + r * dim;
        const T m = mean[r], s = rstd[r];
        T sum_g = 0, sum_gx = 0;  // g = dy * w; sums of g and g * xhat
        for (index_t i = 0; i < dim; ++i) {
            const T g = dyr[i] * w[i];
            sum_g += g;
            sum_gx += g * (xr[i] - m) * s;
        }
        sum_g /= T(dim);
        sum_gx /= T(dim);
        T* dxr = dx + r * dim;
        for (index_t i = 0; i < dim; ++i) {
            const T xhat = (xr[i] - m) * s;
            dxr[i] += s * (dyr[i] * w[i] - sum_g - xhat * sum_gx);
        }
    }
};
template <class T>
struct layer_norm_dw_col {
    const T* x;
    const T* mean;
    const T* rstd;
    const T* dy;
    T* dw;
    T* db;  // may be null
    index_t rows, dim;
    VILA_HOST_DEVICE void operator()(index_t c) const {
        T aw = 0, ab = 0;
        for (index_t r = 0; r < rows; ++r) {
            const T g = dy[r * dim + c];
            aw += g * (x[r * dim + c] - mean[r]) * rstd[r];
            ab += g;
        }
        dw[c] += aw;
        if (db) db[c] += ab;
    }
};
}  // namespace detail

template <class T, class B>
void layer_norm_forward(const tensor<T, B>& x, const tensor<T, B>& w, const tensor<T, B>* b, T eps,
                        tensor<T, B>& y, tensor<T, B>& mean, tensor<T, B>& rstd) {
    constexpr const char* where = "vila::nn::layer_norm";
    check_rank_at_least(where, "x", x.shape(), 1);
    const index_t dim = x.dim(-1), rows = x.size() / (dim ? dim : 1);
    check_shape(where, "weight", w.shape(), {dim});
    if (b) check_shape(where, "bias", b->shape(), {dim});
    y.ensure_shape(x.shape());
    mean.ensure_shape({rows});
    rstd.ensure_shape({rows});
    B::parallel_for(rows, detail::layer_norm_row<T>{x.data(), w.data(), b ? b->data() : nullptr, y.data(),
                                                   mean.data(), rstd.data(), dim, eps});
}

template <class T, class B>
void layer_norm_backward(const tensor<T, B>& x, const tensor<T, B>& w, const tensor<T, B>& mean,
                         const tensor<T, B>& rstd, const tensor<T, B>& dy, tensor<T, B>* dx, tensor<T, B>* dw,
                         tensor<T, B>* db) {
    constexpr const char* where = "vila::nn::layer_norm backward";
    const index_t dim = x.dim(-1), rows = x.size() / (dim ? dim : 1);
    check_shape(where, "dy", dy.shape(), x.shape());
    check_shape(where, "mean", mean.shape(), {rows});
    check_shape(where, "rstd", rstd.shape(), {rows});
    if (dx) {
        check_shape(where, "dx", dx->shape(), x.shape());
        B::parallel_for(rows, detail::layer_norm_dx_row<T>{x.data(), w.data(), mean.data(), rstd.data(), dy.data(),
                                                          dx->data(), dim});
    }
    if (db) check_shape(where, "db", db->shape(), {dim});
    if (dw) {
        check_shape(where, "dW", dw->shape(), {dim});
        B::parallel_for(dim, detail::layer_norm_dw_col<T>{x.data(), mean.data(), rstd.data(), dy.data(), dw->data(),
                                                         db ? db->data() : nullptr, rows, dim});
    } else if (db) {
        B::parallel_for(dim, detail::column_sum_add<T>{dy.data(), db->data(), rows, dim});
    }
}

/// LayerNorm owning "<prefix>.weight" and "<prefix>.bias".
template <class T, class B = backend::cpu>
class layer_norm {
public:
    struct config {
        index_t dim = 0;
        double eps = 1e-5;
        bool bias = true;
    };
    struct cache {
        const tensor<T, B>* x = nullptr;
        tensor<T, B> mean, rstd;
    };

    param<T, B> weight, bias;
    T eps = T(1e-5);

    layer_norm() = default;
    layer_norm(const config& c, const std::string& prefix)
        : weight(prefix + ".weight", {c.dim}),
          bias(c.bias ? param<T, B>(prefix + ".bias", {c.dim}) : param<T, B>()),
          eps(static_cast<T>(c.eps)) {
        weight.value.fill(T(1));
    }
    bool has_bias() const noexcept { return !bias.name.empty(); }

    void forward(const tensor<T, B>& x, tensor<T, B>& y, cache& c) const {
        layer_norm_forward(x, weight.value, has_bias() ? &bias.value : nullptr, eps, y, c.mean, c.rstd);
        c.x = &x;
    }
    void backward(const cache& c, const tensor<T, B>& dy, tensor<T, B>* dx) {
        layer_norm_backward(*c.x, weight.value, c.mean, c.rstd, dy, dx, weight.grad_if_trainable(),
                            has_bias() ? bias.grad_if_trainable() : nullptr);
    }
    template <class F>
    void for_each_parameter(F&& f) {
        f(weight.name, weight);
        if (has_bias()) f(bias.name, bias);
    }
};

}  // namespace vila::nn
