// Backend GEMM (row-major, transposes, leading dimensions, alpha/beta) against a naive loop.
#include <vector>

#include <doctest/doctest.h>

#include "../support/backends.hpp"
#include "../support/fixtures.hpp"

using namespace vila;

TEST_CASE_TEMPLATE("gemm matches a naive product for every transpose combination", B, VILA_TEST_BACKENDS) {
    const index_t M = 5, N = 7, K = 4, pad = 3;
    rng gen(11);
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
            CAPTURE(ta);
            CAPTURE(tb);
            // stored operands with padded leading dimensions
            const index_t ar = ta ? K : M, ac = ta ? M : K, lda = ac + pad;
            const index_t br = tb ? N : K, bc = tb ? K : N, ldb = bc + pad;
            const index_t ldc = N + pad;
            std::vector<double> a(ar * lda), b(br * ldb), c(M * ldc);
            for (auto& v : a) v = gen.normal();
            for (auto& v : b) v = gen.normal();
            for (auto& v : c) v = gen.normal();
            const double alpha = 0.75, beta = -0.5;
            std::vector<double> expect = c;
            for (index_t i = 0; i < M; ++i)
                for (index_t j = 0; j < N; ++j) {
                    double s = 0;
                    for (index_t k = 0; k < K; ++k)
                        s += (ta ? a[k * lda + i] : a[i * lda + k]) * (tb ? b[j * ldb + k] : b[k * ldb + j]);
                    expect[i * ldc + j] = alpha * s + beta * c[i * ldc + j];
                }
            auto A = tensor<double, B>::from_host({index_t(a.size())}, a);
            auto Bm = tensor<double, B>::from_host({index_t(b.size())}, b);
            auto C = tensor<double, B>::from_host({index_t(c.size())}, c);
            B::gemm(bool(ta), bool(tb), M, N, K, alpha, A.data(), lda, Bm.data(), ldb, beta, C.data(), ldc);
            test::require_close(C, tensor<double>::from_host({index_t(expect.size())}, expect), 1e-12, 1e-12, "C");
        }
}

TEST_CASE_TEMPLATE("backend sum and fill", B, VILA_TEST_BACKENDS) {
    tensor<float, B> t({1000});
    t.fill(0.5f);
    CHECK(B::sum(t.data(), t.size()) == doctest::Approx(500.0));
}
