// vila/nn/linear.hpp — y = x W^T + b, with W stored [out, in] as in PyTorch.
//
// Shapes: x [..., in], W [out, in], b [out] (optional), y [..., out].
// Backward accumulates: dx += dy W, dW += dy^T x, db += sum over rows of dy.
#pragma once
#include <string>
#include <utility>

#include "../core/param.hpp"
#include "../core/tensor.hpp"
#include "functors.hpp"

namespace vila::nn {

template <class T, class B>
void linear_forward(const tensor<T, B>& x, const tensor<T, B>& w, const tensor<T, B>* b, tensor<T, B>& y) {
    constexpr const char* where = "vila::nn::linear";
    check_shape(where, "weight", w.shape(), {any, any});
    const index_t out = w.dim(0), in = w.dim(1);
    check_rank_at_least(where, "x", x.shape(), 1);
    check_shapes(x.dim(-1) == in, where, "x", x.shape(), "weight", w.shape(), "disagree on in_features");
    if (b) check_shape(where, "bias", b->shape(), {out});
    const index_t rows = x.size() / (in ? in : 1);
    y.ensure_shape(with_last(x.shape(), out));  // y [rows, out]
    if (b) B::parallel_for(rows, detail::broadcast_row<T>{b->data(), y.data(), out});
    B::gemm(false, true, rows, out, in, T(1), x.data(), in, w.data(), in, b ? T(1) : T(0), y.data(), out);
}

template <class T, class B>
void linear_backward(const tensor<T, B>& x, const tensor<T, B>& w, const tensor<T, B>& dy, tensor<T, B>* dx,
                     tensor<T, B>* dw, tensor<T, B>* db) {
    constexpr const char* where = "vila::nn::linear backward";
    const index_t out = w.dim(0), in = w.dim(1);
    const index_t rows = x.size() / (in ? in : 1);
    check_shape(where, "dy", dy.shape(), with_last(x.shape(), out));
    if (dx) {
        check_shape(where, "dx", dx->shape(), x.shape());
        B::gemm(false, false, rows, in, out, T(1), dy.data(), out, w.data(), in, T(1), dx->data(), in);  // [rows,out][out,in]
    }
    if (dw) {
        check_shape(where, "dW", dw->shape(), w.shape());
        B::gemm(true, false, out, in, rows, T(1), dy.data(), out, x.data(), in, T(1), dw->data(), in);  // [out,rows][rows,in]
    }
    if (db) {
        check_shape(where, "db", db->shape(), {out});
        B::parallel_for(out, detail::column_sum_add<T>{dy.data(), db->data(), rows, out});
    }
}

/// A linear layer owning its parameters (HF names "<prefix>.weight", "<prefix>.bias").
template <class T, class B = backend::cpu>
class linear {
public:
    struct config {
        index_t in_features = 0, out_features = 0;
        bool bias = true;
    };
    /// What backward needs: the input (not copied; it must outlive backward).
    struct cache {
        const tensor<T, B>* x = nullptr;
    };

    param<T, B> weight, bias;

    linear() = default;
    linear(const config& c, const std::string& prefix)
        : weight(prefix + ".weight", {c.out_features, c.in_features}),
          bias(c.bias ? param<T, B>(prefix + ".bias", {c.out_features}) : param<T, B>()) {}

    bool has_bias() const noexcept { return !bias.name.empty(); }

    void forward(const tensor<T, B>& x, tensor<T, B>& y, cache* c = nullptr) const {
        linear_forward(x, weight.value, has_bias() ? &bias.value : nullptr, y);
        if (c) c->x = &x;
    }
    void backward(const cache& c, const tensor<T, B>& dy, tensor<T, B>* dx) {
        linear_backward(*c.x, weight.value, dy, dx, weight.grad_if_trainable(),
                        has_bias() ? bias.grad_if_trainable() : nullptr);
    }
    template <class F>
    void for_each_parameter(F&& f) {
        f(weight.name, weight);
        if (has_bias()) f(bias.name, bias);
    }
};

}  // namespace vila::nn
