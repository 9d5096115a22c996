// vila/projector/projectors.hpp — VILA's multimodal projectors: vision features [N, L, C] to
// LLM embeddings [N, L', H], forward and backward, with VILA's weight names (mm_projector/).
//
//   linear                  Linear(C -> H)                                   "layers.{weight,bias}"
//   mlp2x_gelu              Linear(C -> H), GELU, Linear(H -> H)             "layers.0.*", "layers.2.*"
//   mlp_downsample          2x2 merge into 4C, LayerNorm(4C), Linear(4C -> H), GELU, Linear(H -> H)
//                                                                            "layers.1.*", "layers.2.*", "layers.4.*"
//   mlp_downsample_2x2_fix  the same, blocks in row-major order (NVILA)
//   mlp_downsample_3x3_fix  3x3 merge into 9C, LN, Linear(9C -> 3C), GELU, LN, Linear(3C -> H), GELU, Linear(H -> H)
//   mlp_downsample_3x3_s2   3x3 merge, then 9C -> 3C -> C -> C/3 -> H -> H (and *_s2_new: 9C -> 4C -> 2C -> C -> C/3 -> H -> H)
// A merge zero-pads the grid's sides up to a multiple of k and concatenates each k x k block's
// tokens row by row. mlp_downsample keeps VILA 1.5's order exactly: for an s x s grid, output
// token j * ceil(s/2) + i holds block (i, j) (its flat_square permutes once: a transpose of the
// row-major order); the *_fix types and NVILA's release permute twice (row-major).
// GELU is the exact (erf) one, as nn.GELU(); LayerNorm eps 1e-5, as nn.LayerNorm.
#pragma once
#include <cmath>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "../core/param.hpp"
#include "../nn/activations.hpp"
#include "../nn/layer_norm.hpp"
#include "../nn/linear.hpp"

namespace vila::projector {

struct config {
    index_t mm_hidden_size = 0;  // C, the vision tower's width (times the scales, with NVILA's dynamic S2)
    index_t hidden_size = 0;     // H, the LLM's width
    std::string type;            // mm_projector_type: read by projector::any only
};

/// Linear(C -> H).
template <class T, class B = backend::cpu>
class linear {
public:
    static constexpr const char* type_name = "linear";
    static bool accepts(const std::string& t) { return t == type_name; }
    std::string type() const { return type_name; }
    struct cache {
        typename nn::linear<T, B>::cache c;
    };
    nn::linear<T, B> layers;
    explicit linear(const config& c) : layers({c.mm_hidden_size, c.hidden_size, true}, "layers") {}
    static index_t output_tokens(index_t L) { return L; }
    static index_t output_side(index_t s) { return s; }
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
    static bool accepts(const std::string& t) { return t == type_name; }
    std::string type() const { return type_name; }
    struct cache {
        typename nn::linear<T, B>::cache c0, c2;
        tensor<T, B> h, a;
    };
    nn::linear<T, B> fc0, fc2;
    explicit mlp2x_gelu(const config& c)
        : fc0({c.mm_hidden_size, c.hidden_size, true}, "layers.0"), fc2({c.hidden_size, c.hidden_size, true}, "layers.2") {}
    static index_t output_tokens(index_t L) { return L; }
    static index_t output_side(index_t s) { return s; }
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
/// Gathers (or, backward, scatters) a k x k merge of an s x s grid whose sides are zero-padded
/// to g = ceil(s / k) blocks. idx enumerates the output [N, g*g, k*k*C]: token (i, j) (block
/// row i, block column j) holds x(k*i + q/k, k*j + q%k) in channel block q. Its position is
/// i * g + j (row-major, VILA's *_fix blocks) or j * g + i (`transposed`: VILA 1.5's
/// DownSampleBlock, whose single permute leaves the blocks in column-major order).
template <class T>
struct merge_map {
    const T* src;  // forward: x [N, s*s, C];  backward: dy [N, g*g, k*k*C]
    T* dst;        // forward: y [N, g*g, k*k*C];  backward: dx [N, s*s, C] (accumulated)
    index_t s, g, k, C;
    bool transposed, backward;
    VILA_HOST_DEVICE void operator()(index_t idx) const {
        const index_t width = k * k * C, c_all = idx % width, tok = (idx / width) % (g * g), n = idx / (width * g * g);
        const index_t i = transposed ? tok % g : tok / g, j = transposed ? tok / g : tok % g;
        const index_t q = c_all / C, c = c_all % C;
        const index_t r = k * i + q / k, col = k * j + q % k;
        const bool inside = r < s && col < s;
        const index_t x_at = (n * s * s + r * s + col) * C + c;
        if (!backward) dst[idx] = inside ? src[x_at] : T(0);
        else if (inside) dst[x_at] += src[idx];
    }
};

/// One layer of a projector's nn.Sequential after its merge block (index 0). Widths are
/// C * num / den (C the vision width, Python's floor division) or H (`llm`: the LLM width).
struct stage {
    enum kind { norm, linear, gelu } op;
    index_t num = 1, den = 1;
    bool llm = false;
};
}  // namespace detail

/// A k x k token merge followed by LayerNorm / Linear / GELU layers: VILA's mlp_downsample
/// family. Spec names the type and gives k, the block order and the layers, so that each of
/// VILA's projector types is a one-line spec below and all share this forward and backward.
/// Weights are nn.Sequential's: "layers.<index>.{weight,bias}" (index 0 is the merge block).
template <class Spec, class T, class B = backend::cpu>
class merge_mlp {
public:
    static constexpr const char* type_name = Spec::name;
    static constexpr index_t k = Spec::k;
    static bool accepts(const std::string& t) { return t == type_name; }
    std::string type() const { return type_name; }
    struct cache {
        tensor<T, B> merged;
        std::vector<tensor<T, B>> out;  // each layer's output but the last's (that is y)
        std::vector<typename nn::layer_norm<T, B>::cache> norm;
        std::vector<typename nn::linear<T, B>::cache> lin;
        index_t side = 0;
    };
    std::vector<nn::layer_norm<T, B>> norms;
    std::vector<nn::linear<T, B>> linears;

    explicit merge_mlp(const config& c) : in_width_(c.mm_hidden_size) {
        index_t width = k * k * c.mm_hidden_size;
        for (std::size_t i = 0; i < std::size(Spec::stages); ++i) {
            const detail::stage& st = Spec::stages[i];
            const std::string name = "layers." + std::to_string(i + 1);
            if (st.op == detail::stage::norm) norms.emplace_back(typename nn::layer_norm<T, B>::config{width, 1e-5, true}, name);
            if (st.op == detail::stage::linear) {
                const index_t out = st.llm ? c.hidden_size : c.mm_hidden_size * st.num / st.den;
                if (out <= 0) throw config_error(std::string("vila::projector::") + type_name + ": a vision width of " +
                                                 std::to_string(c.mm_hidden_size) + " gives an empty layer " + name);
                linears.emplace_back(typename nn::linear<T, B>::config{width, out, true}, name);
                width = out;
            }
        }
    }
    static index_t side_of(index_t L) {
        const index_t s = index_t(std::lround(std::sqrt(double(L))));
        if (s * s != L || L == 0)
            throw shape_error(std::string("vila::projector::") + type_name + ": " + std::to_string(L) + " tokens are not a square grid");
        return s;
    }
    /// Side of the output grid for an s x s input grid.
    static index_t output_side(index_t s) { return (s + k - 1) / k; }
    static index_t output_tokens(index_t L) {
        const index_t g = output_side(side_of(L));
        return g * g;
    }

    void forward(const tensor<T, B>& x, tensor<T, B>& y, cache& c) const {
        check_shape((std::string("vila::projector::") + type_name).c_str(), "x", x.shape(), {any, any, in_width_});
        const index_t N = x.dim(0), C = x.dim(2), s = side_of(x.dim(1)), g = output_side(s);
        constexpr std::size_t n = std::size(Spec::stages);
        c.side = s;
        c.merged.ensure_shape({N, g * g, k * k * C});
        B::parallel_for(c.merged.size(), detail::merge_map<T>{x.data(), c.merged.data(), s, g, k, C, Spec::transposed, false});
        c.out.resize(n - 1);
        c.norm.resize(norms.size());
        c.lin.resize(linears.size());
        std::size_t ni = 0, li = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const tensor<T, B>& in = i == 0 ? c.merged : c.out[i - 1];
            tensor<T, B>& out = i + 1 == n ? y : c.out[i];
            switch (Spec::stages[i].op) {
                case detail::stage::norm: norms[ni].forward(in, out, c.norm[ni]), ++ni; break;
                case detail::stage::linear: linears[li].forward(in, out, &c.lin[li]), ++li; break;
                case detail::stage::gelu: nn::activation_forward<nn::gelu_erf>(in, out); break;
            }
        }
    }
    void backward(const cache& c, const tensor<T, B>& dy, tensor<T, B>* dx) {
        constexpr std::size_t n = std::size(Spec::stages);
        tensor<T, B> dcur = dy, din;
        std::size_t ni = norms.size(), li = linears.size();
        for (std::size_t i = n; i-- > 0;) {
            const tensor<T, B>& in = i == 0 ? c.merged : c.out[i - 1];
            const bool need_din = i > 0 || dx;
            if (need_din) din = tensor<T, B>(in.shape());  // zeros: the layers accumulate into it
            switch (Spec::stages[i].op) {
                case detail::stage::norm: --ni, norms[ni].backward(c.norm[ni], dcur, need_din ? &din : nullptr); break;
                case detail::stage::linear: --li, linears[li].backward(c.lin[li], dcur, need_din ? &din : nullptr); break;
                case detail::stage::gelu: nn::activation_backward<nn::gelu_erf>(in, dcur, din); break;
            }
            if (need_din) std::swap(dcur, din);
        }
        if (dx) {
            const index_t C = dx->dim(2), g = output_side(c.side);
            B::parallel_for(dcur.size(), detail::merge_map<T>{dcur.data(), dx->data(), c.side, g, k, C, Spec::transposed, true});
        }
    }
    template <class F>
    void for_each_parameter(F&& f) {
        std::size_t ni = 0, li = 0;
        for (const auto& st : Spec::stages) {
            if (st.op == detail::stage::norm) norms[ni++].for_each_parameter(f);
            if (st.op == detail::stage::linear) linears[li++].for_each_parameter(f);
        }
    }

private:
    index_t in_width_;
};

namespace specs {
using st = detail::stage;
inline constexpr st norm{st::norm}, gelu{st::gelu}, to_llm{st::linear, 1, 1, true};
constexpr st to_vision(index_t num, index_t den = 1) { return {st::linear, num, den, false}; }

/// VILA 1.5: 2x2 merge (blocks column-major), LayerNorm(4C), Linear(4C -> H), GELU, Linear(H -> H).
struct mlp_downsample {
    static constexpr const char* name = "mlp_downsample";
    static constexpr index_t k = 2;
    static constexpr bool transposed = true;
    static constexpr st stages[] = {norm, to_llm, gelu, to_llm};
};
/// NVILA: the same layers with the blocks row-major.
struct mlp_downsample_2x2_fix {
    static constexpr const char* name = "mlp_downsample_2x2_fix";
    static constexpr index_t k = 2;
    static constexpr bool transposed = false;
    static constexpr st stages[] = {norm, to_llm, gelu, to_llm};
};
/// NVILA: 3x3 merge, LayerNorm(9C), Linear(9C -> 3C), GELU, LayerNorm(3C), Linear(3C -> H), GELU, Linear(H -> H).
struct mlp_downsample_3x3_fix {
    static constexpr const char* name = "mlp_downsample_3x3_fix";
    static constexpr index_t k = 3;
    static constexpr bool transposed = false;
    static constexpr st stages[] = {norm, to_vision(3), gelu, norm, to_llm, gelu, to_llm};
};
/// NVILA (dynamic S2): 3x3 merge, then 9C -> 3C -> C -> C/3 -> H -> H, a LayerNorm before each narrowing Linear.
struct mlp_downsample_3x3_s2 {
    static constexpr const char* name = "mlp_downsample_3x3_s2";
    static constexpr index_t k = 3;
    static constexpr bool transposed = false;
    static constexpr st stages[] = {norm, to_vision(3), gelu, norm, to_vision(1), gelu, norm, to_vision(1, 3), gelu,
                                    norm, to_llm,       gelu, to_llm};
};
/// 9C -> 4C -> 2C -> C -> C/3 -> H -> H.
struct mlp_downsample_3x3_s2_new {
    static constexpr const char* name = "mlp_downsample_3x3_s2_new";
    static constexpr index_t k = 3;
    static constexpr bool transposed = false;
    static constexpr st stages[] = {norm, to_vision(4), gelu, norm, to_vision(2),    gelu, norm, to_vision(1),
                                    gelu, norm,         to_vision(1, 3), gelu, norm, to_llm, gelu, to_llm};
};
}  // namespace specs

template <class T, class B = backend::cpu>
using mlp_downsample = merge_mlp<specs::mlp_downsample, T, B>;
template <class T, class B = backend::cpu>
using mlp_downsample_2x2_fix = merge_mlp<specs::mlp_downsample_2x2_fix, T, B>;
template <class T, class B = backend::cpu>
using mlp_downsample_3x3_fix = merge_mlp<specs::mlp_downsample_3x3_fix, T, B>;
template <class T, class B = backend::cpu>
using mlp_downsample_3x3_s2 = merge_mlp<specs::mlp_downsample_3x3_s2, T, B>;
template <class T, class B = backend::cpu>
using mlp_downsample_3x3_s2_new = merge_mlp<specs::mlp_downsample_3x3_s2_new, T, B>;

}  // namespace vila::projector
