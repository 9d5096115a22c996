// vila/nn/rope.hpp — rotary position embeddings, LLaMA's half-rotation convention.
//
// Each head vector of size Dh is split in halves x1 = x[:Dh/2], x2 = x[Dh/2:] (HF's
// rotate_half), and for frequency i and position p, angle = p * inv_freq[i]:
//   y1 = x1 cos - x2 sin,   y2 = x2 cos + x1 sin.
// Backward is the inverse rotation: dx1 += dy1 cos + dy2 sin, dx2 += dy2 cos - dy1 sin.
// Shapes: x [B, T, F] with F = heads * Dh (any rank >= 3 whose trailing extents multiply to F),
// positions [B, T] (int32, HF's position_ids), inv_freq [Dh / 2].
// inv_freq is an input so the rope_scaling variants (linear, llama3) only change the table.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/tensor.hpp"

namespace vila::nn {

/// inv_freq[i] = 1 / theta^(2i / Dh), evaluated in T like HF does (float32 for float).
template <class T>
std::vector<T> rope_inv_freq(index_t head_dim, double theta) {
    if (head_dim <= 0 || head_dim % 2)
        throw shape_error("vila::nn::rope: head_dim must be positive and even, got " + std::to_string(head_dim));
    std::vector<T> f(static_cast<std::size_t>(head_dim / 2));
    for (index_t i = 0; i < head_dim / 2; ++i)
        f[static_cast<std::size_t>(i)] = T(1) / std::pow(static_cast<T>(theta), static_cast<T>(2 * i) / static_cast<T>(head_dim));
    return f;
}

namespace detail {
template <class T>
struct rope_apply {
    const T* x;
    const std::int32_t* pos;
    const T* inv_freq;
    T* y;
    index_t features, half;
    bool inverse;  // backward: rotate by -angle and accumulate
    VILA_HOST_DEVICE void operator()(index_t idx) const {
        // idx enumerates (token, head, i) with i < half
        const index_t i = idx % half;
        const index_t head = (idx / half) % (features / (2 * half));
        const index_t token = idx / (features / 2);
        const T ang = static_cast<T>(pos[token]) * inv_freq[i];
        const T c = std::cos(ang), s = inverse ? -std::sin(ang) : std::sin(ang);
        const index_t base = token * features + head * 2 * half + i;
        const T x1 = x[base], x2 = x[base + half];
        if (inverse) {
            y[base] += x1 * c - x2 * s;
            y[base + half] += x2 * c + x1 * s;
        } else {
            y[base] = x1 * c - x2 * s;
            y[base + half] = x2 * c + x1 * s;
        }
    }
};

template <class T, class B>
index_t rope_check(const char* where, const tensor<T, B>& x, const tensor<std::int32_t, B>& pos,
                   const tensor<T, B>& inv_freq) {
    check_rank_at_least(where, "x", x.shape(), 3);
    check_shape(where, "positions", pos.shape(), {x.dim(0), x.dim(1)});
    check_shape(where, "inv_freq", inv_freq.shape(), {any});
    const index_t tokens = x.dim(0) * x.dim(1);
    const index_t features = tokens ? x.size() / tokens : 0;
    const index_t head_dim = 2 * inv_freq.dim(0);
    check_shapes(head_dim > 0 && features % head_dim == 0, where, "x", x.shape(), "inv_freq", inv_freq.shape(),
                 "disagree: features per token must be a multiple of head_dim = 2 * inv_freq size");
    return features;
}
}  // namespace detail

template <class T, class B>
void rope_forward(const tensor<T, B>& x, const tensor<std::int32_t, B>& positions, const tensor<T, B>& inv_freq,
                  tensor<T, B>& y) {
    const index_t features = detail::rope_check("vila::nn::rope", x, positions, inv_freq);
    y.ensure_shape(x.shape());
    B::parallel_for(x.size() / 2, detail::rope_apply<T>{x.data(), positions.data(), inv_freq.data(), y.data(),
                                                        features, inv_freq.dim(0), false});
}

/// dx += R(-angle) dy.
template <class T, class B>
void rope_backward(const tensor<T, B>& dy, const tensor<std::int32_t, B>& positions, const tensor<T, B>& inv_freq,
                   tensor<T, B>& dx) {
    const index_t features = detail::rope_check("vila::nn::rope backward", dy, positions, inv_freq);
    check_shape("vila::nn::rope backward", "dx", dx.shape(), dy.shape());
    B::parallel_for(dy.size() / 2, detail::rope_apply<T>{dy.data(), positions.data(), inv_freq.data(), dx.data(),
                                                         features, inv_freq.dim(0), true});
}

}  // namespace vila::nn
