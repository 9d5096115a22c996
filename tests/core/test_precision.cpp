// Mixed precision (backend/bf16.hpp): rounding as PyTorch rounds, the GEMM against a double
// reference on bf16-rounded operands (every transpose, alpha, beta, strides) for each kernel this
// build has, and a decoder's logits, gradients and short training run against fp32 within bf16
// tolerance.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../support/tiny_llama.hpp"
#include "vila/core/rng.hpp"
#include "vila/llm/llama.hpp"
#include "vila/optim/adamw.hpp"

using namespace vila;
namespace bf = vila::backend::bf16;

namespace {
/// The kernels to test: the emulation always; oneDNN's where this build and CPU have it.
std::vector<bf::kernel> bf16_kernels() {
    std::vector<bf::kernel> k{bf::kernel::emulated};
    if (bf::onednn_available()) k.push_back(bf::kernel::onednn);
    return k;
}
/// Restores the process-wide precision and kernel after a test.
struct bf16_guard {
    bf16_guard(precision p, bf::kernel k) : scope(p) { bf::set_kernel(k); }
    ~bf16_guard() { bf::set_kernel(bf::kernel::automatic); }
    bf::precision_scope scope;
};
}  // namespace

TEST_CASE("bf16 rounding is round-to-nearest-even, as torch.bfloat16") {
    CHECK(bf::round(1.0f) == 1.0f);
    CHECK(bf::round(1.0f + 1.0f / 256) == 1.0f);                         // halfway, even below
    CHECK(bf::round(1.0f + 3.0f / 256) == 1.0f + 4.0f / 256);            // halfway, even above
    CHECK(bf::round(1.0f + 1.0f / 256 + 1.0f / 65536) == 1.0f + 2.0f / 256);  // above halfway
    CHECK(bf::round(-3.14159265f) == -3.140625f);
    CHECK(bf::to_bits(1.0f) == 0x3F80);
    CHECK(bf::round(std::numeric_limits<float>::infinity()) == std::numeric_limits<float>::infinity());
    CHECK(bf::round(std::numeric_limits<float>::max()) == std::numeric_limits<float>::infinity());  // as torch
    CHECK(std::isnan(bf::round(std::numeric_limits<float>::quiet_NaN())));
    CHECK(std::isnan(bf::from_bits(bf::to_bits(-std::numeric_limits<float>::quiet_NaN()))));
    CHECK(parse_precision("bf16") == precision::bf16);
    CHECK(parse_precision("fp32") == precision::fp32);
    CHECK_THROWS_AS(parse_precision("fp8"), error);
}

TEST_CASE("bf16 GEMM equals a double GEMM of the bf16-rounded operands, for every layout and kernel") {
    const index_t M = 37, N = 70, K = 129;
    for (const auto kern : bf16_kernels()) {
        CAPTURE(bf::to_string(kern));
        for (int ta = 0; ta < 2; ++ta)
            for (int tb = 0; tb < 2; ++tb)
                for (const float beta : {0.0f, 1.0f, 0.25f}) {
                    CAPTURE(ta);
                    CAPTURE(tb);
                    CAPTURE(beta);
                    const float alpha = 0.5f;
                    const index_t lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 5, ldc = N;  // padded operands
                    rng g(7);
                    std::vector<float> A(std::size_t((ta ? K : M) * lda)), B(std::size_t((tb ? N : K) * ldb)), C(std::size_t(M * ldc));
                    for (auto& x : A) x = float(g.normal());
                    for (auto& x : B) x = float(g.normal());
                    for (auto& x : C) x = float(g.normal());
                    std::vector<double> want(C.size()), bound(C.size());
                    for (index_t i = 0; i < M; ++i)
                        for (index_t j = 0; j < N; ++j) {
                            double s = 0, mag = 0;
                            for (index_t k = 0; k < K; ++k) {
                                const double a = bf::round(ta ? A[std::size_t(k * lda + i)] : A[std::size_t(i * lda + k)]);
                                const double b = bf::round(tb ? B[std::size_t(j * ldb + k)] : B[std::size_t(k * ldb + j)]);
                                s += a * b, mag += std::abs(a * b);
                            }
                            const std::size_t at = std::size_t(i * ldc + j);
                            want[at] = alpha * s + beta * double(C[at]);
                            bound[at] = 1e-6 * (mag + std::abs(double(C[at]))) + 1e-6;  // fp32 accumulation of K terms
                        }
                    {
                        bf16_guard guard(precision::bf16, kern);
                        backend::cpu::gemm(ta != 0, tb != 0, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
                    }
                    double worst = 0;
                    bool ok = true;
                    for (std::size_t i = 0; i < C.size(); ++i) {
                        const double d = std::abs(double(C[i]) - want[i]);
                        worst = std::max(worst, d);
                        ok = ok && d <= bound[i];
                    }
                    INFO("max |diff| " << worst);
                    CHECK(ok);
                }
    }
}

TEST_CASE("a decoder in bf16: logits and gradients within bf16 tolerance of fp32, and training follows the fp32 loss") {
    const auto cfg = test::tiny_llama_config(64, 128, 16, 97);
    const index_t Bn = 2, Tn = 24;
    rng g(3);
    std::vector<std::int32_t> h(std::size_t(Bn * Tn));
    for (auto& x : h) x = std::int32_t(g.below(std::uint64_t(cfg.vocab_size)));
    const auto ids = tensor<std::int32_t>::from_host({Bn, Tn}, h);

    auto run = [&](precision p, bf::kernel k, std::vector<float>& logits, std::vector<std::vector<float>>& grads) {
        bf16_guard guard(p, k);
        llm::llama<float> m(cfg);
        m.init_weights(11, 0.1);
        logits = m.forward(ids).to_host();
        m.loss(ids);
        m.zero_grad();
        m.backward_loss();
        grads.clear();
        m.for_each_parameter([&](const std::string&, param<float>& q) { grads.push_back(q.grad.to_host()); });
    };
    std::vector<float> ref_logits;
    std::vector<std::vector<float>> ref_grads;
    run(precision::fp32, bf::kernel::automatic, ref_logits, ref_grads);
    auto rel = [](const std::vector<float>& a, const std::vector<float>& b) {  // ||a - b|| / ||b||
        double num = 0, den = 0;
        for (std::size_t i = 0; i < a.size(); ++i) num += double(a[i] - b[i]) * double(a[i] - b[i]), den += double(b[i]) * double(b[i]);
        return std::sqrt(num / std::max(den, 1e-30));
    };
    for (const auto kern : bf16_kernels()) {
        CAPTURE(bf::to_string(kern));
        std::vector<float> logits;
        std::vector<std::vector<float>> grads;
        run(precision::bf16, kern, logits, grads);
        const double lr = rel(logits, ref_logits);
        INFO("logits relative error " << lr);
        CHECK(lr < 2e-2);  // bf16 keeps 8 bits: operand errors ~2^-9 per product, through 2 layers
        CHECK(lr > 1e-5);  // and bf16 was really used
        REQUIRE(grads.size() == ref_grads.size());
        for (std::size_t i = 0; i < grads.size(); ++i) {
            CAPTURE(i);
            CHECK(rel(grads[i], ref_grads[i]) < 5e-2);
        }
    }

    // 40 AdamW steps on a fixed batch: the bf16 loss curve stays within a few percent of fp32's
    auto curve = [&](precision p) {
        bf::precision_scope scope(p);
        llm::llama<float> m(cfg);
        m.init_weights(11, 0.1);
        optim::adamw_options o;
        o.lr = 3e-3;
        optim::adamw<float> opt(o);
        std::vector<double> out;
        for (int s = 0; s < 40; ++s) {
            m.forward(ids);
            out.push_back(m.loss(ids).loss);
            m.zero_grad();
            m.backward_loss();
            opt.step(m);
        }
        return out;
    };
    const auto f = curve(precision::fp32), b = curve(precision::bf16);
    CHECK(f.back() < 0.5 * f.front());  // it learns
    for (std::size_t s = 0; s < f.size(); ++s) {
        CAPTURE(s);
        CHECK(std::abs(b[s] - f[s]) <= 0.03 * f[s] + 0.02);
    }
}
