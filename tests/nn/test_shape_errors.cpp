// A wrong shape passed to any kernel throws vila::shape_error naming both shapes.
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "../support/backends.hpp"

using namespace vila;

namespace {
template <class F>
void expect_shape_error(F&& f, const std::vector<std::string>& must_mention) {
    bool thrown = false;
    try {
        f();
    } catch (const shape_error& e) {
        thrown = true;
        const std::string msg = e.what();
        for (const auto& s : must_mention) CHECK_MESSAGE(msg.find(s) != std::string::npos, msg, " lacks ", s);
    }
    CHECK_MESSAGE(thrown, "no vila::shape_error for ", must_mention.front());
}
}  // namespace

TEST_CASE_TEMPLATE("wrong shapes throw shape_error with both shapes", B, VILA_TEST_BACKENDS) {
    using t = tensor<float, B>;
    using ti = tensor<std::int32_t, B>;
    t y, aux, aux2;

    // linear: in_features disagree; bias of the wrong length
    expect_shape_error([&] { nn::linear_forward(t({2, 3}), t({4, 5}), (const t*)nullptr, y); }, {"[2, 3]", "[4, 5]"});
    t b3({3});
    expect_shape_error([&] { nn::linear_forward(t({2, 5}), t({4, 5}), &b3, y); }, {"[3]", "[4]"});
    t dx({2, 5}), dw({4, 5});
    expect_shape_error([&] { nn::linear_backward(t({2, 5}), t({4, 5}), t({2, 3}), &dx, &dw, (t*)nullptr); },
                       {"[2, 3]", "[2, 4]"});
    // embedding: a table must be [vocab, dim]
    expect_shape_error([&] { nn::embedding_forward(ti({2}), t({7}), y); }, {"[7]", "[*, *]"});
    // norms: weight length vs feature size
    expect_shape_error([&] { nn::layer_norm_forward(t({2, 8}), t({7}), (const t*)nullptr, 1e-5f, y, aux, aux2); },
                       {"[7]", "[8]"});
    expect_shape_error([&] { nn::rms_norm_forward(t({2, 8}), t({9}), 1e-6f, y, aux); }, {"[9]", "[8]"});
    // activations and swiglu
    t dxa({4});
    expect_shape_error([&] { nn::activation_backward<nn::silu>(t({4}), t({3}), dxa); }, {"[3]", "[4]"});
    expect_shape_error([&] { nn::swiglu_forward(t({2, 3}), t({2, 4}), y); }, {"[2, 3]", "[2, 4]"});
    // softmax backward: dy vs saved output
    t dxs({2, 4});
    expect_shape_error([&] { nn::softmax_backward(t({2, 4}), t({2, 3}), dxs); }, {"[2, 3]", "[2, 4]"});
    // residual
    expect_shape_error([&] { nn::residual_forward(t({2, 3}), t({3, 2}), y); }, {"[2, 3]", "[3, 2]"});
    // rope: features not a multiple of head_dim; positions of the wrong length
    expect_shape_error([&] { nn::rope_forward(t({2, 5, 12}), ti({2, 5}), t({5}), y); }, {"[2, 5, 12]", "[5]"});
    expect_shape_error([&] { nn::rope_forward(t({2, 5, 12}), ti({2, 4}), t({3}), y); }, {"[2, 4]", "[2, 5]"});
    // attention: q features vs heads * head_dim; k batch vs q batch
    nn::attention_config cfg;
    cfg.heads = 2;
    cfg.kv_heads = 1;
    cfg.head_dim = 3;
    expect_shape_error([&] { nn::attention_forward(cfg, t({2, 5, 8}), t({2, 5, 3}), t({2, 5, 3}), (const ti*)nullptr, y, aux); },
                       {"[2, 5, 8]", "[*, *, 6]"});
    expect_shape_error([&] { nn::attention_forward(cfg, t({2, 5, 6}), t({3, 5, 3}), t({3, 5, 3}), (const ti*)nullptr, y, aux); },
                       {"[3, 5, 3]", "[2, *, 3]"});
    ti mask({2, 4});
    expect_shape_error([&] { nn::attention_forward(cfg, t({2, 5, 6}), t({2, 5, 3}), t({2, 5, 3}), &mask, y, aux); },
                       {"[2, 4]", "[2, 5]"});
    // cross-entropy: targets vs logits rows
    expect_shape_error([&] { nn::cross_entropy_forward(t({2, 3, 11}), ti({2, 4}), aux); }, {"[2, 4]", "[2, 3]"});
    // tensors themselves
    expect_shape_error([&] { t::from_host({2, 2}, {1.f, 2.f, 3.f}); }, {"[2, 2]"});
    expect_shape_error([&] { t({2, 3}).reshape({4, 2}); }, {"[2, 3]", "[4, 2]"});
}

TEST_CASE_TEMPLATE("ids outside the vocabulary are errors, not reads out of bounds", B, VILA_TEST_BACKENDS) {
    using t = tensor<float, B>;
    using ti = tensor<std::int32_t, B>;
    t y, lse;
    CHECK_THROWS_WITH_AS(nn::embedding_forward(ti::from_host({2}, {1, 7}), t({7, 3}), y),
                         doctest::Contains("token id 7"), vila::error);
    CHECK_THROWS_WITH_AS(nn::embedding_forward(ti::from_host({1}, {-2}), t({7, 3}), y),
                         doctest::Contains("token id -2"), vila::error);
    CHECK_THROWS_WITH_AS(nn::cross_entropy_forward(t({2, 5}), ti::from_host({2}, {0, 5}), lse),
                         doctest::Contains("target 5"), vila::error);
    CHECK_NOTHROW(nn::cross_entropy_forward(t({2, 5}), ti::from_host({2}, {0, nn::ignore_index}), lse));
}
