// tensor<T, Backend>: construction, host transfer, reshape, xtensor/Eigen views of one buffer.
#include <doctest/doctest.h>

#include "../support/backends.hpp"

using namespace vila;

TEST_CASE_TEMPLATE("tensor basics", B, VILA_TEST_BACKENDS) {
    tensor<float, B> t({2, 3});
    CHECK(t.size() == 6);
    CHECK(t.rank() == 2);
    CHECK(t.dim(-1) == 3);
    CHECK(t.dim(0) == 2);
    CHECK_THROWS_AS(t.dim(2), shape_error);
    for (float v : t.to_host()) CHECK(v == 0.0f);  // zero-filled

    auto u = tensor<float, B>::from_host({3, 2}, {1, 2, 3, 4, 5, 6});
    u.reshape({2, 3});
    CHECK(u.shape() == shape_t{2, 3});
    CHECK(u.to_host() == std::vector<float>{1, 2, 3, 4, 5, 6});
    u.ensure_shape({2, 3});  // no clearing when the shape is already right
    CHECK(u.to_host()[5] == 6.0f);
    u.resize({4});
    CHECK(u.to_host() == std::vector<float>(4, 0.0f));
    CHECK_THROWS_AS(u.resize({2, -1}), shape_error);

    tensor<float, B> s({}, 3.5f);  // rank 0 holds one value
    CHECK(s.size() == 1);
    CHECK(s.to_host()[0] == 3.5f);

    const auto d = tensor_cast<double, backend::cpu>(tensor<float, B>::from_host({2}, {1.5f, -2.f}));
    CHECK(d.to_host() == std::vector<double>{1.5, -2.0});
}

TEST_CASE("CPU tensors: xtensor container and Eigen map share one buffer") {
    auto t = tensor<float>::from_host({2, 3}, {1, 2, 3, 4, 5, 6});
    CHECK(t.xt().shape()[0] == 2);
    CHECK(t.xt()(1, 2) == 6.0f);
    auto m = as_matrix(t);
    CHECK(m.rows() == 2);
    CHECK(m.cols() == 3);
    m(0, 1) = 20.0f;
    CHECK(t.xt()(0, 1) == 20.0f);
    CHECK(m.data() == t.data());
    t.reshape({3, 2});
    CHECK(t.xt().shape()[0] == 3);
    CHECK(t.xt()(0, 1) == 20.0f);
}

TEST_CASE_TEMPLATE("param: frozen parameters hold no gradient", B, VILA_TEST_BACKENDS) {
    param<float, B> p("model.norm.weight", {4});
    CHECK(p.grad.shape() == shape_t{4});
    CHECK(p.grad_if_trainable() == &p.grad);
    p.set_trainable(false);
    CHECK(p.grad.size() == 0);
    CHECK(p.grad_if_trainable() == nullptr);
    p.set_trainable(true);
    CHECK(p.grad.shape() == shape_t{4});
}
