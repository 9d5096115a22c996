// The CPU backend's fused, blocked attention against the unfused batched-GEMM form (which the
// PyTorch fixtures and finite differences check on every backend): equal within 1e-5 in fp32,
// on shapes that span several query and key blocks, with GQA, padding masks, a KV cache, a
// decode step and bidirectional (ViT) attention; and bit-identical for 1 and 2 threads.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "../support/fixtures.hpp"
#include "vila/core/rng.hpp"
#include "vila/core/threads.hpp"
#include "vila/nn/attention.hpp"

using namespace vila;
using namespace vila::test;

namespace {
using tf = tensor<float>;
using ti = tensor<std::int32_t>;

struct attention_case {
    const char* name;
    index_t batch, T, S, H, KVH, Dh;
    bool causal, masked;
    index_t kv_len = -1;  // a KV cache holding fewer keys than allocated
};

struct result {
    tf out, lse, dq, dk, dv;
};

/// Forward, then (training shapes only: no KV cache) backward into zeroed gradients.
template <class Fwd, class Bwd>
result run(const attention_case& c, const tf& q, const tf& k, Fwd fwd, Bwd bwd) {
    result r;
    fwd(r.out, r.lse);
    if (c.kv_len < 0) {
        r.dq = tf(q.shape()), r.dk = tf(k.shape()), r.dv = tf(k.shape());
        bwd(r.out, r.lse, r.dq, r.dk, r.dv);
    }
    return r;
}
}  // namespace

TEST_CASE("fused CPU attention equals the unfused form within 1e-5 and is thread-count independent") {
    const attention_case cases[] = {
        {"causal GQA, 3 query blocks x 2 key blocks", 2, 150, 150, 4, 2, 16, true, false},
        {"causal with padding masks (one row fully padded)", 3, 130, 130, 2, 2, 8, true, true},
        {"bidirectional (vision tower), masked", 2, 197, 197, 3, 3, 16, false, true},
        {"bidirectional, more keys than queries", 1, 40, 300, 2, 1, 8, false, false},
        {"KV cache: 70 new queries over 260 of 400 keys", 2, 70, 400, 4, 1, 16, true, true, 260},
        {"decode step: 1 query over 257 keys", 2, 1, 300, 4, 2, 16, true, false, 257},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        nn::attention_config cfg;
        cfg.heads = c.H, cfg.kv_heads = c.KVH, cfg.head_dim = c.Dh, cfg.causal = c.causal;
        rng g(42);
        tf q({c.batch, c.T, c.H * c.Dh}), k({c.batch, c.S, c.KVH * c.Dh}), v(k.shape()), dout(q.shape());
        g.fill_normal(q, 0, 1.5), g.fill_normal(k, 0, 1.5), g.fill_normal(v), g.fill_normal(dout);
        std::vector<std::int32_t> m(static_cast<std::size_t>(c.batch * c.S), 1);
        if (c.masked) {
            for (index_t j = 0; j < c.S / 3; ++j) m[static_cast<std::size_t>(j)] = 0;  // left padding of sequence 0
            for (index_t j = c.S - 17; j < c.S; ++j) m[static_cast<std::size_t>(c.S + j)] = 0;  // right padding of sequence 1
            if (c.batch > 2)
                for (index_t j = 0; j < c.S; ++j) m[static_cast<std::size_t>(2 * c.S + j)] = 0;  // nothing to attend to
        }
        const ti mask = ti::from_host({c.batch, c.S}, m);
        const ti* mp = c.masked ? &mask : nullptr;

        auto fused = [&] {
            return run(
                c, q, k, [&](tf& o, tf& l) { nn::attention_forward(cfg, q, k, v, mp, o, l, c.kv_len); },
                [&](const tf& o, const tf& l, tf& dq, tf& dk, tf& dv) {
                    nn::attention_backward(cfg, q, k, v, mp, o, l, dout, &dq, &dk, &dv);
                });
        };
        const result a = fused();
        auto d = nn::detail::attention_check("test", cfg, q, k, v, mp);
        if (c.kv_len >= 0) d.S = c.kv_len;
        const result ref = run(
            c, q, k,
            [&](tf& o, tf& l) {
                o.ensure_shape(q.shape()), l.ensure_shape({c.batch, c.H, c.T});
                nn::detail::attention_forward_gemm(cfg, d, q, k, v, mp, o, l);
            },
            [&](const tf&, const tf& l, tf& dq, tf& dk, tf& dv) {
                nn::detail::attention_backward_gemm(cfg, d, q, k, v, mp, l, dout, &dq, &dk, &dv);
            });
        require_close(a.out, ref.out, 1e-5, 1e-5, "out");
        require_close(a.lse, ref.lse, 1e-5, 1e-5, "lse");
        if (c.kv_len < 0) {
            require_close(a.dq, ref.dq, 1e-5, 1e-5, "dq");
            require_close(a.dk, ref.dk, 1e-5, 1e-5, "dk");
            require_close(a.dv, ref.dv, 1e-5, 1e-5, "dv");
        }
        if (c.masked && c.batch > 2) {  // the fully padded sequence: zero output and zero gradients
            const auto o = a.out.to_host(), gq = a.dq.to_host();
            const std::size_t row = static_cast<std::size_t>(c.T * c.H * c.Dh);
            for (std::size_t i = 2 * row; i < 3 * row; ++i) REQUIRE(o[i] == 0.0f);
            for (std::size_t i = 2 * row; i < 3 * row; ++i) REQUIRE(gq[i] == 0.0f);
        }

        const int threads = num_threads();
        set_num_threads(1);
        const result one = fused();
        set_num_threads(threads);
        CHECK(one.out.to_host() == a.out.to_host());
        CHECK(one.lse.to_host() == a.lse.to_host());
        if (c.kv_len < 0) {
            CHECK(one.dq.to_host() == a.dq.to_host());
            CHECK(one.dk.to_host() == a.dk.to_host());
            CHECK(one.dv.to_host() == a.dv.to_host());
        }
    }
}

TEST_CASE("attention backward checks the saved forward outputs' shapes") {
    nn::attention_config cfg;
    cfg.heads = 2, cfg.kv_heads = 1, cfg.head_dim = 4;
    tf q({1, 5, 8}), k({1, 5, 4}), v({1, 5, 4}), out, lse;
    nn::attention_forward(cfg, q, k, v, (const ti*)nullptr, out, lse);
    CHECK(lse.shape() == shape_t{1, 2, 5});
    tf dq(q.shape()), wrong_lse({1, 2, 4});
    CHECK_THROWS_AS(nn::attention_backward(cfg, q, k, v, (const ti*)nullptr, out, wrong_lse, out, &dq, (tf*)nullptr, (tf*)nullptr),
                    shape_error);
}
