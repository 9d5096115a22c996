// vila/nn/activations.hpp — elementwise activations and SwiGLU, forward and backward.
//
// Each activation is a policy with VILA_HOST_DEVICE `value(x)` and `derivative(x)`; one pair of
// functors applies any of them. Names follow HF's ACT2FN keys:
//   gelu_erf    "gelu"               0.5 x (1 + erf(x / sqrt 2))
//   gelu_tanh   "gelu_pytorch_tanh"  0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))   (SigLIP)
//   quick_gelu  "quick_gelu"         x sigmoid(1.702 x)                                  (CLIP)
//   silu        "silu"               x sigmoid(x)                                        (LLaMA)
// SwiGLU (LLaMA's MLP): y = silu(gate) * up.
// On the CPU backend the forward of the policies with an `array` form runs as Eigen array
// expressions in chunks (vectorised exp/tanh: the scalar std::exp loop took 11% of a ViT
// forward); the math is the same formula, so results agree to float rounding.
#pragma once
#include <cmath>
#include <type_traits>

#include <Eigen/Core>

#include "../backend/cpu.hpp"
#include "../core/tensor.hpp"

namespace vila::nn {

struct gelu_erf {
    static constexpr const char* name = "gelu";
    template <class T>
    VILA_HOST_DEVICE static T value(T x) { return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440))); }
    template <class T>
    VILA_HOST_DEVICE static T derivative(T x) {
        const T cdf = T(0.5) * (T(1) + std::erf(x * T(0.70710678118654752440)));
        const T pdf = std::exp(T(-0.5) * x * x) * T(0.39894228040143267794);  // 1/sqrt(2 pi)
        return cdf + x * pdf;
    }
};

struct gelu_tanh {
    static constexpr const char* name = "gelu_pytorch_tanh";
    template <class T>
    VILA_HOST_DEVICE static T value(T x) {
        const T k = T(0.79788456080286535588);  // sqrt(2/pi)
        return T(0.5) * x * (T(1) + std::tanh(k * (x + T(0.044715) * x * x * x)));
    }
    template <class A>
    static auto array(const A& x) {
        using T = typename A::Scalar;
        return T(0.5) * x * (T(1) + (T(0.79788456080286535588) * (x + T(0.044715) * x * x * x)).tanh());
    }
    template <class T>
    VILA_HOST_DEVICE static T derivative(T x) {
        const T k = T(0.79788456080286535588);
        const T t = std::tanh(k * (x + T(0.044715) * x * x * x));
        return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * k * (T(1) + T(3 * 0.044715) * x * x);
    }
};

struct quick_gelu {
    static constexpr const char* name = "quick_gelu";
    template <class T>
    VILA_HOST_DEVICE static T value(T x) { return x / (T(1) + std::exp(T(-1.702) * x)); }
    template <class A>
    static auto array(const A& x) {
        using T = typename A::Scalar;
        return x / (T(1) + (T(-1.702) * x).exp());
    }
    template <class T>
    VILA_HOST_DEVICE static T derivative(T x) {
        const T s = T(1) / (T(1) + std::exp(T(-1.702) * x));
        return s + T(1.702) * x * s * (T(1) - s);
    }
};

struct silu {
    static constexpr const char* name = "silu";
    template <class T>
    VILA_HOST_DEVICE static T value(T x) { return x / (T(1) + std::exp(-x)); }
    template <class A>
    static auto array(const A& x) {
        using T = typename A::Scalar;
        return x / (T(1) + (-x).exp());
    }
    template <class T>
    VILA_HOST_DEVICE static T derivative(T x) {
        const T s = T(1) / (T(1) + std::exp(-x));
        return s * (T(1) + x * (T(1) - s));
    }
};

namespace detail {
template <class T, class Act>
struct activation_fwd {
    const T* x;
    T* y;
    VILA_HOST_DEVICE void operator()(index_t i) const { y[i] = Act::value(x[i]); }
};
template <class T, class Act>
struct activation_bwd {
    const T* x;
    const T* dy;
    T* dx;
    VILA_HOST_DEVICE void operator()(index_t i) const { dx[i] += dy[i] * Act::derivative(x[i]); }
};
template <class T>
struct swiglu_fwd {
    const T* gate;
    const T* up;
    T* y;
    VILA_HOST_DEVICE void operator()(index_t i) const { y[i] = silu::value(gate[i]) * up[i]; }
};
template <class T>
struct swiglu_bwd {
    const T* gate;
    const T* up;
    const T* dy;
    T* dgate;  // may be null
    T* dup;    // may be null
    VILA_HOST_DEVICE void operator()(index_t i) const {
        if (dgate) dgate[i] += dy[i] * up[i] * silu::derivative(gate[i]);
        if (dup) dup[i] += dy[i] * silu::value(gate[i]);
    }
};
}  // namespace detail

namespace detail {
template <class Act, class = void>
struct has_array_form : std::false_type {};
template <class Act>
struct has_array_form<Act, std::void_t<decltype(Act::array(std::declval<Eigen::ArrayXf>()))>> : std::true_type {};

template <class T>
using array_map = Eigen::Map<Eigen::Array<T, Eigen::Dynamic, 1>>;
template <class T>
using const_array_map = Eigen::Map<const Eigen::Array<T, Eigen::Dynamic, 1>>;
}  // namespace detail

/// y = Act(x), elementwise; y takes x's shape.
template <class Act, class T, class B>
void activation_forward(const tensor<T, B>& x, tensor<T, B>& y) {
    y.ensure_shape(x.shape());
    if constexpr (std::is_same<B, backend::cpu>::value && detail::has_array_form<Act>::value) {
        backend::cpu::parallel_chunks(x.size(), [&](index_t b, index_t e) {
            detail::array_map<T>(y.data() + b, e - b) = Act::array(detail::const_array_map<T>(x.data() + b, e - b));
        });
    } else {
        B::parallel_for(x.size(), detail::activation_fwd<T, Act>{x.data(), y.data()});
    }
}

/// dx += dy * Act'(x).
template <class Act, class T, class B>
void activation_backward(const tensor<T, B>& x, const tensor<T, B>& dy, tensor<T, B>& dx) {
    check_shape(Act::name, "dy", dy.shape(), x.shape());
    check_shape(Act::name, "dx", dx.shape(), x.shape());
    B::parallel_for(x.size(), detail::activation_bwd<T, Act>{x.data(), dy.data(), dx.data()});
}

/// y = silu(gate) * up.  gate, up, y: same shape ([..., intermediate]).
template <class T, class B>
void swiglu_forward(const tensor<T, B>& gate, const tensor<T, B>& up, tensor<T, B>& y) {
    check_shapes(gate.shape() == up.shape(), "vila::nn::swiglu", "gate", gate.shape(), "up", up.shape(),
                 "must have the same shape");
    y.ensure_shape(gate.shape());
    if constexpr (std::is_same<B, backend::cpu>::value) {
        backend::cpu::parallel_chunks(gate.size(), [&](index_t b, index_t e) {
            detail::array_map<T>(y.data() + b, e - b) =
                silu::array(detail::const_array_map<T>(gate.data() + b, e - b)) * detail::const_array_map<T>(up.data() + b, e - b);
        });
    } else {
        B::parallel_for(gate.size(), detail::swiglu_fwd<T>{gate.data(), up.data(), y.data()});
    }
}

/// dgate += dy * up * silu'(gate);  dup += dy * silu(gate).  Either output may be null.
template <class T, class B>
void swiglu_backward(const tensor<T, B>& gate, const tensor<T, B>& up, const tensor<T, B>& dy, tensor<T, B>* dgate,
                     tensor<T, B>* dup) {
    constexpr const char* where = "vila::nn::swiglu backward";
    check_shape(where, "dy", dy.shape(), gate.shape());
    if (dgate) check_shape(where, "dgate", dgate->shape(), gate.shape());
    if (dup) check_shape(where, "dup", dup->shape(), up.shape());
    if constexpr (std::is_same<B, backend::cpu>::value) {  // the sigmoid once, as vectorised arrays
        backend::cpu::parallel_chunks(gate.size(), [&](index_t b, index_t e) {
            const auto g = detail::const_array_map<T>(gate.data() + b, e - b);
            const auto d = detail::const_array_map<T>(dy.data() + b, e - b);
            const Eigen::Array<T, Eigen::Dynamic, 1> sig = T(1) / (T(1) + (-g).exp());
            if (dgate) detail::array_map<T>(dgate->data() + b, e - b) += d * detail::const_array_map<T>(up.data() + b, e - b) * sig * (T(1) + g * (T(1) - sig));
            if (dup) detail::array_map<T>(dup->data() + b, e - b) += d * g * sig;
        });
    } else {
        B::parallel_for(gate.size(), detail::swiglu_bwd<T>{gate.data(), up.data(), dy.data(),
                                                            dgate ? dgate->data() : nullptr, dup ? dup->data() : nullptr});
    }
}

}  // namespace vila::nn
