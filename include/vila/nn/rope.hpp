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

/// cos and sin of every (token, frequency) angle, [tokens, Dh / 2] each: computed once per forward
/// and shared by q and k, forward and backward, and every layer (per element, the angle and its
/// sincos cost more than the rotation: 2.7% of a training step).
template <class T, class B>
struct rope_table {
    tensor<T, B> cos, sin;
    index_t tokens() const { return cos.dim(0); }
    index_t half() const { return cos.dim(1); }
};

namespace detail {
template <class T>
struct rope_angles {
    const std::int32_t* pos;
    const T* inv_freq;
    T* cos;
    T* sin;
    index_t half;
    VILA_HOST_DEVICE void operator()(index_t idx) const {  // idx = token * half + i
        const T ang = static_cast<T>(pos[idx / half]) * inv_freq[idx % half];
        cos[idx] = std::cos(ang);
        sin[idx] = std::sin(ang);
    }
};
/// One (token, head) pair per work item: the frequency loop runs over contiguous halves.
template <class T>
struct rope_apply {
    const T* x;
    const T* cos;
    const T* sin;
    T* y;
    index_t heads, half;
    bool inverse;  // backward: rotate by -angle and accumulate
    VILA_HOST_DEVICE void operator()(index_t idx) const {  // idx = token * heads + head
        const index_t token = idx / heads;
        const T* c = cos + token * half;
        const T* s = sin + token * half;
        const T* x1 = x + idx * 2 * half;
        const T* x2 = x1 + half;
        T* y1 = y + idx * 2 * half;
        T* y2 = y1 + half;
        if (inverse) {
            for (index_t i = 0; i < half; ++i) {
                const T a = x1[i], b = x2[i];
                y1[i] += a * c[i] + b * s[i];
                y2[i] += b * c[i] - a * s[i];
            }
        } else {
            for (index_t i = 0; i < half; ++i) {
                const T a = x1[i], b = x2[i];
                y1[i] = a * c[i] - b * s[i];
                y2[i] = b * c[i] + a * s[i];
            }
        }
    }
};

/// The heads per token of x [B, T, ...] for the table, with the shapes checked.
template <class T, class B>
index_t rope_heads(const char* where, const tensor<T, B>& x, const rope_table<T, B>& table) {
    check_rank_at_least(where, "x", x.shape(), 3);
    const index_t tokens = x.dim(0) * x.dim(1);
    check_shapes(tokens == table.tokens(), where, "x", x.shape(), "rope table", table.cos.shape(), "disagree on the token count");
    const index_t features = tokens ? x.size() / tokens : 0;
    const index_t head_dim = 2 * table.half();
    check_shapes(head_dim > 0 && features % head_dim == 0, where, "x", x.shape(), "inv_freq", {table.half()},
                 "disagree: features per token must be a multiple of head_dim = 2 * inv_freq size");
    return features / head_dim;
}
}  // namespace detail

/// The table of positions [B, T] (int32, HF's position_ids) and inv_freq [Dh / 2].
template <class T, class B>
void rope_table_compute(const tensor<std::int32_t, B>& positions, const tensor<T, B>& inv_freq, rope_table<T, B>& table,
                        const char* where = "vila::nn::rope") {
    check_shape(where, "positions", positions.shape(), {any, any});
    check_shape(where, "inv_freq", inv_freq.shape(), {any});
    const index_t tokens = positions.size(), half = inv_freq.dim(0);
    table.cos.ensure_shape({tokens, half});
    table.sin.ensure_shape({tokens, half});
    if (half > 0)
        B::parallel_for(tokens * half, detail::rope_angles<T>{positions.data(), inv_freq.data(), table.cos.data(), table.sin.data(), half});
}

/// y = R(angle) x with the angles of `table`.
template <class T, class B>
void rope_forward(const tensor<T, B>& x, const rope_table<T, B>& table, tensor<T, B>& y) {
    const index_t heads = detail::rope_heads("vila::nn::rope", x, table);
    y.ensure_shape(x.shape());
    B::parallel_for(table.tokens() * heads,
                    detail::rope_apply<T>{x.data(), table.cos.data(), table.sin.data(), y.data(), heads, table.half(), false});
}

/// dx += R(-angle) dy.
template <class T, class B>
void rope_backward(const tensor<T, B>& dy, const rope_table<T, B>& table, tensor<T, B>& dx) {
    constexpr const char* where = "vila::nn::rope backward";
    const index_t heads = detail::rope_heads(where, dy, table);
    check_shape(where, "dx", dx.shape(), dy.shape());
    B::parallel_for(table.tokens() * heads,
                    detail::rope_apply<T>{dy.data(), table.cos.data(), table.sin.data(), dx.data(), heads, table.half(), true});
}

namespace detail {
template <class T, class B>
void rope_check_positions(const char* where, const tensor<T, B>& x, const tensor<std::int32_t, B>& pos) {
    check_rank_at_least(where, "x", x.shape(), 3);
    check_shape(where, "positions", pos.shape(), {x.dim(0), x.dim(1)});
}
}  // namespace detail

/// The same from positions (builds the table: a model with several heads' projections or
/// layers builds it once and passes it instead).
template <class T, class B>
void rope_forward(const tensor<T, B>& x, const tensor<std::int32_t, B>& positions, const tensor<T, B>& inv_freq,
                  tensor<T, B>& y) {
    detail::rope_check_positions("vila::nn::rope", x, positions);
    rope_table<T, B> table;
    rope_table_compute(positions, inv_freq, table);
    rope_forward(x, table, y);
}

template <class T, class B>
void rope_backward(const tensor<T, B>& dy, const tensor<std::int32_t, B>& positions, const tensor<T, B>& inv_freq,
                   tensor<T, B>& dx) {
    detail::rope_check_positions("vila::nn::rope backward", dy, positions);
    rope_table<T, B> table;
    rope_table_compute(positions, inv_freq, table, "vila::nn::rope backward");
    rope_backward(dy, table, dx);
}

}  // namespace vila::nn
