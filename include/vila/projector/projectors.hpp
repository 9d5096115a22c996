// vila/projector/projectors.hpp — VILA's multimodal projectors: vision features [N, L, C] to
// LLM embeddings [N, L', H], forward and backward, with VILA's weight names (mm_projector/).
//
//   linear          layers = Linear(C -> H)                                  "layers.{weight,bias}"
//   mlp2x_gelu      Linear(C -> H), GELU, Linear(H -> H)                     "layers.0.*", "layers.2.*"
//   mlp_downsample  merge 2x2 patches into 4C (zero-pad an odd side), LayerNorm(4C), Linear(4C -> H),
//                   GELU, Linear(H -> H)                                     "layers.1.*", "layers.2.*", "layers.4.*"
// mlp_downsample keeps VILA's token order exactly: for an s x s grid (s = sqrt(L)), output token
// (j, i) = j * ceil(s/2) + i gathers [x(2i, 2j), x(2i, 2j+1), x(2i+1, 2j), x(2i+1, 2j+1)] where
// x(r, c) is input token r * s + c (VILA's flat_square: a transpose of the row-major order).
// GELU is the exact (erf) one, as nn.GELU().
#pragma once
#include <cmath>
#include <string>

#include "../core/param.hpp"
#include "../nn/activations.hpp"
#include "../nn/layer_norm.hpp"
#include "../nn/linear.hpp"

namespace vila::projector {

struct config {
    index_t mm_hidden_size = 0;  // C, the vision tower's width
    index_t hidden_size = 0;     // H, the LLM's width
};

/// Linear(C -> H).
template <class T, class B = backend::cpu>
class linear {
public:
    static constexpr const char* type_name = "linear";
    struct cache {
        typename nn::linear<T, B>::cache c;
    };
    nn::linear<T, B> layers;
    explicit linear(const config& c) : layers({c.mm_hidden_size, c.hidden_size, true}, "layers") {}
    static index_t output_tokens(index_t L) { return L; }
    void forward(const tensor<T, B>& x, tensor<T, B>& y, cache& c) const { layers.forward(x, y, &c.c); }
    void backward(const cache& c, const tensor<T, B>& dy, tensor<T, B>* dx) { layers.backward(c.c, dy, dx); }
    template <class F>
    void for_each_parameter(F&& f) { layers.for_each_parameter(f); }
};

/// Linear(C -> H), GELU, Linear(H -> H).
template <class T, class B = backend::cpu>
class mlp2x_gelu {
public:
    static constexpr const char* type_name = "mlp2x_gelu";
    struct cache {
        typename nn::linear<T, B>::cache c0, c2;
        tensor<T, B> h, a;
    };
    nn::linear<T, B> fc0, fc2;
    explicit mlp2x_gelu(const config& c)
        : fc0({c.mm_hidden_size, c.hidden_size, true}, "layers.0"), fc2({c.hidden_size, c.hidden_size, true}, "layers.2") {}
    static index_t output_tokens(index_t L) { return L; }
    void forward(const tensor<T, B>& x, tensor<T, B>& y, cache& c) const {
        fc0.forward(x, c.h, &c.c0);
        nn::activation_forward<nn::gelu_erf>(c.h, c.a);
        fc2.forward(c.a, y, &c.c2);
    }
    void backward(const cache& c, const tensor<T, B>& dy, tensor<T, B>* dx) {
        tensor<T, B> da(c.a.shape()), dh(c.h.shape());
        fc2.backward(c.c2, dy, &da);
        nn::activation_backward<nn::gelu_erf>(c.h, da, dh);
        fc0.backward(c.c0, dh, dx);
    }
    template <class F>
    void for_each_parameter(F&& f) {
        fc0.for_each_parameter(f);
        fc2.for_each_parameter(f);
    }
};

namespace detail {
/// Gathers (or, backward, scatters) the 2x2 merge. idx enumerates the output [N, L', 4C].
template <class T>
struct downsample_map {
    const T* src;  // forward: x [N, s*s, C];  backward: dy [N, L', 4C]
    T* dst;        // forward: y [N, L', 4C];  backward: dx [N, s*s, C] (accumulated)
    index_t s, half, C;
    bool backward;
    VILA_HOST_DEVICE void operator()(index_t idx) const {
        const index_t c4 = idx % (4 * C), tok = (idx / (4 * C)) % (half * half), n = idx / (4 * C * half * half);
        const index_t j = tok / half, i = tok % half;  // column pair j, row pair i
        const index_t q = c4 / C, c = c4 % C;          // which of the four, which channel
        const index_t r = 2 * i + q / 2, col = 2 * j + q % 2;
        const bool inside = r < s && col < s;
        const index_t x_at = (n * s * s + r * s + col) * C + c;
        if (!backward) dst[idx] = inside ? src[x_at] : T(0);
        else if (inside) dst[x_at] += src[idx];
    }
};
}  // namespace detail

/// VILA's mlp_downsample: 2x2 merge, LayerNorm(4C), Linear(4C -> H), GELU, Linear(H -> H).
template <class T, class B = backend::cpu>
class mlp_downsample {
public:
    static constexpr const char* type_name = "mlp_downsample";
    struct cache {
        tensor<T, B> merged, mean, rstd, normed, h, a;
        typename nn::linear<T, B>::cache c2, c4;
        index_t side = 0;
    };
    param<T, B> ln_weight, ln_bias;
    nn::linear<T, B> fc2, fc4;
    T eps = T(1e-5);  // nn.LayerNorm's default

    explicit mlp_downsample(const config& c)
        : ln_weight("layers.1.weight", {4 * c.mm_hidden_size}),
          ln_bias("layers.1.bias", {4 * c.mm_hidden_size}),
          fc2({4 * c.mm_hidden_size, c.hidden_size, true}, "layers.2"),
          fc4({c.hidden_size, c.hidden_size, true}, "layers.4") {
        ln_weight.value.fill(T(1));
    }
    static index_t side_of(index_t L) {
        const index_t s = index_t(std::lround(std::sqrt(double(L))));
        if (s * s != L) throw shape_error("vila::projector::mlp_downsample: " + std::to_string(L) + " tokens are not a square grid");
        return s;
    }
    static index_t output_tokens(index_t L) {
        const index_t half = (side_of(L) + 1) / 2;
        return half * half;
    }
    void forward(const tensor<T, B>& x, tensor<T, B>& y, cache& c) const {
        check_shape("vila::projector::mlp_downsample", "x", x.shape(), {any, any, ln_weight.value.dim(0) / 4});
        const index_t N = x.dim(0), C = x.dim(2), s = side_of(x.dim(1)), half = (s + 1) / 2;
        c.side = s;
        c.merged.ensure_shape({N, half * half, 4 * C});
        B::parallel_for(c.merged.size(), detail::downsample_map<T>{x.data(), c.merged.data(), s, half, C, false});
        nn::layer_norm_forward(c.merged, ln_weight.value, &ln_bias.value, eps, c.normed, c.mean, c.rstd);
        fc2.forward(c.normed, c.h, &c.c2);
        nn::activation_forward<nn::gelu_erf>(c.h, c.a);
        fc4.forward(c.a, y, &c.c4);
    }
    void backward(const cache& c, const tensor<T, B>& dy, tensor<T, B>* dx) {
        tensor<T, B> da(c.a.shape()), dh(c.h.shape()), dnormed(c.normed.shape()), dmerged(c.merged.shape());
        fc4.backward(c.c4, dy, &da);
        nn::activation_backward<nn::gelu_erf>(c.h, da, dh);
        fc2.backward(c.c2, dh, &dnormed);
        nn::layer_norm_backward(c.merged, ln_weight.value, c.mean, c.rstd, dnormed, &dmerged, ln_weight.grad_if_trainable(),
                                ln_bias.grad_if_trainable());
        if (dx) {
            const index_t C = dx->dim(2), half = (c.side + 1) / 2;
            B::parallel_for(dmerged.size(), detail::downsample_map<T>{dmerged.data(), dx->data(), c.side, half, C, true});
        }
    }
    template <class F>
    void for_each_parameter(F&& f) {
        f(ln_weight.name, ln_weight);
        f(ln_bias.name, ln_bias);
        fc2.for_each_parameter(f);
        fc4.for_each_parameter(f);
    }
};

}  // namespace vila::projector
