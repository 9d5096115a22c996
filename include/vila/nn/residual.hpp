// vila/nn/residual.hpp — residual connection y = a + b; backward passes dy to both branches.
#pragma once
#include "../core/tensor.hpp"
#include "functors.hpp"

namespace vila::nn {

template <class T, class B>
void residual_forward(const tensor<T, B>& a, const tensor<T, B>& b, tensor<T, B>& y) {
    check_shapes(a.shape() == b.shape(), "vila::nn::residual", "a", a.shape(), "b", b.shape(),
                 "must have the same shape");
    y.ensure_shape(a.shape());
    B::parallel_for(a.size(), detail::add_into<T>{a.data(), b.data(), y.data()});
}

/// da += dy; db += dy (either may be null).
template <class T, class B>
void residual_backward(const tensor<T, B>& dy, tensor<T, B>* da, tensor<T, B>* db) {
    for (tensor<T, B>* d : {da, db}) {
        if (!d) continue;
        check_shape("vila::nn::residual backward", "gradient", d->shape(), dy.shape());
        B::parallel_for(dy.size(), detail::accumulate<T>{dy.data(), d->data()});
    }
}

}  // namespace vila::nn
