// Compile-only check: every vila::nn kernel, forward and backward, instantiated on the Thrust
// backend with the CUDA device system (cuBLAS GEMM), for float and double. Built by
// tests/cuda/compile_check.sh in CI; run on a GPU with run_on_gpu() from a driver if one is lent.
#include <cstdio>

#include <vila/vila.hpp>

namespace {
using namespace vila;
using B = backend::thrust;

template <class T>
T exercise_all_kernels() {
    using t = tensor<T, B>;
    using ti = tensor<std::int32_t, B>;
    rng gen(1);
    t x({2, 4, 8}), w({8, 8}), bias({8}), y({2, 4, 8}), dx({2, 4, 8}), dw({8, 8}), db({8}), dy({2, 4, 8}), aux, aux2;
    gen.fill_normal(x);
    gen.fill_normal(w);
    gen.fill_normal(dy);
    nn::linear_forward(x, w, &bias, y);
    nn::linear_backward(x, w, dy, &dx, &dw, &db);
    ti ids = ti::from_host({2, 4}, {0, 1, 2, 3, 4, 5, 6, 7});
    nn::embedding_forward(ids, w, y);
    nn::embedding_backward(ids, dy, dw);
    nn::layer_norm_forward(x, bias, &bias, T(1e-5), y, aux, aux2);
    nn::layer_norm_backward(x, bias, aux, aux2, dy, &dx, &db, &db);
    nn::rms_norm_forward(x, bias, T(1e-6), y, aux);
    nn::rms_norm_backward(x, bias, aux, dy, &dx, &db);
    nn::activation_forward<nn::gelu_erf>(x, y);
    nn::activation_backward<nn::gelu_erf>(x, dy, dx);
    nn::activation_forward<nn::gelu_tanh>(x, y);
    nn::activation_backward<nn::gelu_tanh>(x, dy, dx);
    nn::activation_forward<nn::quick_gelu>(x, y);
    nn::activation_backward<nn::quick_gelu>(x, dy, dx);
    nn::activation_forward<nn::silu>(x, y);
    nn::activation_backward<nn::silu>(x, dy, dx);
    nn::swiglu_forward(x, x, y);
    nn::swiglu_backward(x, x, dy, &dx, &dx);
    nn::softmax_forward(x, y);
    nn::softmax_backward(y, dy, dx);
    nn::residual_forward(x, x, y);
    nn::residual_backward(dy, &dx, &dx);
    const auto f = nn::rope_inv_freq<T>(4, 10000.0);
    const t inv_freq = t::from_host({2}, f);
    ti pos = ti::from_host({2, 4}, {0, 1, 2, 3, 0, 1, 2, 3});
    nn::rope_forward(x, pos, inv_freq, y);
    nn::rope_backward(dy, pos, inv_freq, dx);
    nn::attention_config cfg;
    cfg.heads = 2;
    cfg.kv_heads = 1;
    cfg.head_dim = 4;
    t k({2, 4, 4}), v({2, 4, 4}), dk({2, 4, 4}), dv({2, 4, 4}), lse;
    ti mask = ti::from_host({2, 4}, {1, 1, 1, 0, 1, 1, 1, 1});
    nn::attention_forward(cfg, x, k, v, &mask, y, lse);
    nn::attention_backward(cfg, x, k, v, &mask, y, lse, dy, &dx, &dk, &dv);
    ti targets = ti::from_host({2, 4}, {1, 2, nn::ignore_index, 3, 4, 5, 6, 7});
    const auto ce = nn::cross_entropy_forward(x, targets, aux);
    nn::cross_entropy_backward(x, targets, aux, ce.count, T(1), dx);
    return ce.loss + B::sum(dx.data(), dx.size());
}
}  // namespace

int main() {
    try {
        std::printf("float: %g  double: %g\n", double(exercise_all_kernels<float>()), exercise_all_kernels<double>());
        return 0;
    } catch (const vila::error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
