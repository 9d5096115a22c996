// Layer classes: HF parameter names, the forward/backward contract, and freezing.
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "../support/backends.hpp"
#include "../support/fixtures.hpp"

using namespace vila;

TEST_CASE_TEMPLATE("layers expose HF-named parameters", B, VILA_TEST_BACKENDS) {
    nn::linear<float, B> q({16, 8, false}, "model.layers.0.self_attn.q_proj");
    nn::linear<float, B> fc({8, 32, true}, "vision_model.encoder.layers.0.mlp.fc1");
    nn::embedding<float, B> emb({100, 16}, "model.embed_tokens");
    nn::rms_norm<float, B> norm({16, 1e-6}, "model.norm");
    nn::layer_norm<float, B> ln({8, 1e-5, true}, "vision_model.post_layernorm");
    std::vector<std::string> names;
    auto collect = [&](const std::string& n, param<float, B>& p) {
        names.push_back(n);
        CHECK(p.name == n);
    };
    q.for_each_parameter(collect);
    fc.for_each_parameter(collect);
    emb.for_each_parameter(collect);
    norm.for_each_parameter(collect);
    ln.for_each_parameter(collect);
    CHECK(names == std::vector<std::string>{"model.layers.0.self_attn.q_proj.weight",
                                            "vision_model.encoder.layers.0.mlp.fc1.weight",
                                            "vision_model.encoder.layers.0.mlp.fc1.bias", "model.embed_tokens.weight",
                                            "model.norm.weight", "vision_model.post_layernorm.weight",
                                            "vision_model.post_layernorm.bias"});
    CHECK(q.weight.value.shape() == shape_t{8, 16});  // [out, in]
    CHECK(norm.weight.value.to_host() == std::vector<float>(16, 1.0f));
}

TEST_CASE_TEMPLATE("a frozen linear layer passes gradients through but computes none for itself", B,
                   VILA_TEST_BACKENDS) {
    nn::linear<double, B> layer({3, 2, true}, "proj");
    rng gen(9);
    gen.fill_normal(layer.weight.value);
    gen.fill_normal(layer.bias.value);
    tensor<double, B> x({4, 3}), y, dy({4, 2}), dx({4, 3});
    gen.fill_normal(x);
    gen.fill_normal(dy);
    typename nn::linear<double, B>::cache cache;
    layer.forward(x, y, &cache);
    layer.weight.set_trainable(false);
    layer.bias.set_trainable(false);
    layer.backward(cache, dy, &dx);
    CHECK(layer.weight.grad.size() == 0);
    // dx = dy W, computed on the host for comparison
    const auto w = layer.weight.value.to_host(), g = dy.to_host();
    std::vector<double> expect(12, 0.0);
    for (int r = 0; r < 4; ++r)
        for (int i = 0; i < 3; ++i)
            for (int o = 0; o < 2; ++o) expect[r * 3 + i] += g[r * 2 + o] * w[o * 3 + i];
    test::require_close(dx, tensor<double>::from_host({4, 3}, expect), 1e-12, 1e-12, "dx");
}

TEST_CASE_TEMPLATE("norm layers agree with their functional kernels", B, VILA_TEST_BACKENDS) {
    rng gen(4);
    nn::rms_norm<double, B> norm({6, 1e-6}, "n");
    gen.fill_normal(norm.weight.value);
    tensor<double, B> x({3, 6}), y, y2, rstd, dy({3, 6}), dx({3, 6}), dx2({3, 6}), dw({6});
    gen.fill_normal(x);
    gen.fill_normal(dy);
    typename nn::rms_norm<double, B>::cache c;
    norm.forward(x, y, c);
    norm.backward(c, dy, &dx);
    nn::rms_norm_forward(x, norm.weight.value, 1e-6, y2, rstd);
    nn::rms_norm_backward(x, norm.weight.value, rstd, dy, &dx2, &dw);
    test::require_close(y, y2, 0, 0, "y");
    test::require_close(dx, dx2, 0, 0, "dx");
    test::require_close(norm.weight.grad, dw, 0, 0, "dw");
}
