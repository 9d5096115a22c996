// vila/train/gradients.hpp — what a training step does with gradients between backward and
// the optimizer: their global norm, clipping (as torch.nn.utils.clip_grad_norm_), scaling, and
// finding a non-finite one (the NaN guard).
//
// Sums of squares run over fixed chunks of 4096 elements in double and are added in chunk and
// parameter order, so the norm, and every update after a clip, does not depend on thread count
// or timing: a resumed run is bit for bit the uninterrupted one.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "../core/param.hpp"
#include "part.hpp"

namespace vila::train {

namespace detail {
template <class T>
struct sum_squares_chunk {
    const T* x;
    double* out;
    index_t n, chunk;
    VILA_HOST_DEVICE void operator()(index_t c) const {
        double acc = 0;
        const index_t end = (c + 1) * chunk < n ? (c + 1) * chunk : n;
        for (index_t i = c * chunk; i < end; ++i) acc += double(x[i]) * double(x[i]);
        out[c] = acc;
    }
};
template <class T>
struct scale_values {
    T* x;
    T s;
    VILA_HOST_DEVICE void operator()(index_t i) const { x[i] *= s; }
};
}  // namespace detail

/// Sum of squares of a tensor (double, deterministic).
template <class T, class B>
double sum_of_squares(const tensor<T, B>& t) {
    constexpr index_t chunk = 4096;
    const index_t n = t.size(), chunks = (n + chunk - 1) / chunk;
    if (chunks == 0) return 0;
    tensor<double, B> part({chunks});
    B::parallel_for(chunks, detail::sum_squares_chunk<T>{t.data(), part.data(), n, chunk});
    double total = 0;
    for (double x : part.to_host()) total += x;
    return total;
}

/// Global L2 norm of every trainable parameter's gradient.
template <class Model>
double grad_norm(Model& model) {
    double total = 0;
    model.for_each_parameter([&](const std::string&, auto& p) {
        if (p.trainable) total += sum_of_squares(p.grad);
    });
    return std::sqrt(total);
}

/// Multiplies every trainable gradient by s.
template <class Model>
void scale_grads(Model& model, double s) {
    model.for_each_parameter([&](const std::string&, auto& p) {
        using T = typename std::decay_t<decltype(p.grad)>::value_type;
        using B = typename std::decay_t<decltype(p.grad)>::backend_type;
        if (p.trainable) B::parallel_for(p.grad.size(), detail::scale_values<T>{p.grad.data(), T(s)});
    });
}

/// torch.nn.utils.clip_grad_norm_: scales the gradients by min(1, max_norm / (norm + 1e-6)) and
/// returns the norm before clipping. max_norm <= 0 only measures.
template <class Model>
double clip_grad_norm(Model& model, double max_norm) {
    const double norm = grad_norm(model);
    if (max_norm > 0 && std::isfinite(norm)) {
        const double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) scale_grads(model, coef);
    }
    return norm;
}

/// The name of the first trainable parameter whose gradient holds a NaN or an infinity ("" if none).
template <class Model>
std::string first_non_finite_grad(Model& model) {
    std::string found;
    model.for_each_parameter([&](const std::string& name, auto& p) {
        if (found.empty() && p.trainable && !std::isfinite(sum_of_squares(p.grad))) found = name;
    });
    return found;
}

}  // namespace vila::train
