// vila/nn/attention.hpp — scaled dot-product attention: causal or bidirectional, grouped-query
// heads, optional key padding mask. Forward and backward.
//
// Shapes (heads H, key/value heads KVH dividing H, head size Dh, queries T, keys S):
//   q [B, T, H*Dh], k, v [B, S, KVH*Dh]  (the layout linear layers produce: no transposes)
//   key_mask [B, S] int32, nonzero = attend (optional)
//   out [B, T, H*Dh], probs [B, H, T, S] (saved for backward)
// Query head h reads key/value head h / (H / KVH), as in HF's repeat_kv.
// Causal: query i (of the last T of S positions) sees keys j <= i + (S - T), so a KV cache
// (S > T) works unchanged. A query that can see no key (fully padded row) outputs zeros and
// has zero probabilities.
// Computed per head with batched GEMMs (the work is in matrix products, as in any fast
// attention): scores = scale Q K^T, masked softmax, out = P V. Backward:
//   dP = dO V^T,  dS = P (dP - rowsum(P dP)),  dQ += scale dS K,  dK += scale dS^T Q,  dV += P^T dO.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "../core/tensor.hpp"
#include "functors.hpp"
#include "softmax.hpp"

namespace vila::nn {

struct attention_config {
    index_t heads = 1, kv_heads = 1, head_dim = 1;
    bool causal = true;
    double scale = 0;  // 0 = 1 / sqrt(head_dim)
    double effective_scale() const { return scale > 0 ? scale : 1.0 / std::sqrt(double(head_dim)); }
};

namespace detail {
struct attention_dims {
    index_t batch, T, S, H, KVH, Dh;
    bool causal;
    index_t S_stride;  // tokens per batch row in k, v and the mask (>= S with a KV cache)
    VILA_HOST_DEVICE bool visible(const std::int32_t* mask, index_t b, index_t i, index_t j) const {
        return (!causal || j <= i + (S - T)) && (!mask || mask[b * S_stride + j] != 0);
    }
};

/// Masked softmax of one score row in place: probs of hidden keys are 0; a row that sees no
/// key becomes all zeros.
template <class T>
struct attention_softmax_row {
    T* probs;  // [B, H, T, S] scores in, probabilities out
    const std::int32_t* mask;
    attention_dims d;
    VILA_HOST_DEVICE void operator()(index_t idx) const {  // idx = (b * H + h) * T + i
        const index_t i = idx % d.T, b = idx / (d.T * d.H);
        T* p = probs + idx * d.S;
        if (!mask) {  // the visible keys are a prefix: vectorisable loops, no per-key test
            index_t n = d.S;
            if (d.causal) n = i + (d.S - d.T) + 1 < d.S ? i + (d.S - d.T) + 1 : d.S;
            if (n < 0) n = 0;
            softmax_span(p, p, n);
            for (index_t j = n; j < d.S; ++j) p[j] = T(0);
            return;
        }
        T m = 0;
        bool seen = false;
        for (index_t j = 0; j < d.S; ++j)
            if (d.visible(mask, b, i, j)) {
                m = (!seen || p[j] > m) ? p[j] : m;
                seen = true;
            }
        T sum = 0;
        for (index_t j = 0; j < d.S; ++j) {
            p[j] = d.visible(mask, b, i, j) ? std::exp(p[j] - m) : T(0);
            sum += p[j];
        }
        const T inv = seen ? T(1) / sum : T(0);
        for (index_t j = 0; j < d.S; ++j) p[j] *= inv;
    }
};

/// dS = P * (dP - sum_j P dP) per row, in place over dP (the softmax backward).
template <class T>
struct attention_dscore_row {
    const T* probs;
    T* dp;
    index_t S;
    VILA_HOST_DEVICE void operator()(index_t row) const {
        const T* p = probs + row * S;
        T* g = dp + row * S;
        T dot = 0;
        for (index_t j = 0; j < S; ++j) dot += p[j] * g[j];
        for (index_t j = 0; j < S; ++j) g[j] = p[j] * (g[j] - dot);
    }
};

/// Host-side pointer tables for the per-head GEMMs.
template <class T>
struct head_pointers {
    std::vector<const T*> a, b;
    std::vector<T*> c;
    void clear() {
        a.clear();
        b.clear();
        c.clear();
    }
    void add(const T* x, const T* y, T* z) {
        a.push_back(x);
        b.push_back(y);
        c.push_back(z);
    }
};

template <class T, class B>
attention_dims attention_check(const char* where, const attention_config& cfg, const tensor<T, B>& q,
                               const tensor<T, B>& k, const tensor<T, B>& v, const tensor<std::int32_t, B>* mask) {
    if (cfg.heads <= 0 || cfg.kv_heads <= 0 || cfg.head_dim <= 0 || cfg.heads % cfg.kv_heads)
        throw shape_error(std::string(where) + ": heads (" + std::to_string(cfg.heads) + ") must be a positive multiple of kv_heads (" +
                          std::to_string(cfg.kv_heads) + ") and head_dim positive");
    check_shape(where, "q", q.shape(), {any, any, cfg.heads * cfg.head_dim});
    check_shape(where, "k", k.shape(), {q.dim(0), any, cfg.kv_heads * cfg.head_dim});
    check_shape(where, "v", v.shape(), k.shape());
    check_shapes(k.dim(1) >= q.dim(1) || !cfg.causal, where, "q", q.shape(), "k", k.shape(),
                 "disagree: causal attention needs at least as many keys as queries");
    if (mask) check_shape(where, "key_mask", mask->shape(), {q.dim(0), k.dim(1)});
    return {q.dim(0), q.dim(1), k.dim(1), cfg.heads, cfg.kv_heads, cfg.head_dim, cfg.causal, k.dim(1)};
}
}  // namespace detail

/// `kv_len` (optional): only the first kv_len keys of k, v (and the mask) exist, as in a KV
/// cache allocated for more tokens than it holds; probs is then [B, H, T, kv_len].
template <class T, class B>
void attention_forward(const attention_config& cfg, const tensor<T, B>& q, const tensor<T, B>& k,
                       const tensor<T, B>& v, const tensor<std::int32_t, B>* key_mask, tensor<T, B>& out,
                       tensor<T, B>& probs, index_t kv_len = -1) {
    auto d = detail::attention_check("vila::nn::attention", cfg, q, k, v, key_mask);
    if (kv_len >= 0) {
        if (kv_len > d.S || (cfg.causal && kv_len < d.T))
            throw shape_error("vila::nn::attention: kv_len " + std::to_string(kv_len) + " outside [" + std::to_string(d.T) +
                              ", " + std::to_string(d.S) + "] for k " + to_string(k.shape()));
        d.S = kv_len;
    }
    out.ensure_shape(q.shape());
    probs.ensure_shape({d.batch, d.H, d.T, d.S});
    const T scale = static_cast<T>(cfg.effective_scale());
    const index_t qs = d.H * d.Dh, ks = d.KVH * d.Dh, group = d.H / d.KVH;
    detail::head_pointers<T> ptr;
    for (index_t b = 0; b < d.batch; ++b)  // scores = scale * Q_h K_h^T   [T, S] per head
        for (index_t h = 0; h < d.H; ++h)
            ptr.add(q.data() + b * d.T * qs + h * d.Dh, k.data() + b * d.S_stride * ks + (h / group) * d.Dh,
                    probs.data() + (b * d.H + h) * d.T * d.S);
    B::gemm_batched(false, true, d.T, d.S, d.Dh, scale, ptr.a.data(), qs, ptr.b.data(), ks, T(0), ptr.c.data(), d.S, index_t(ptr.c.size()));
    B::parallel_for(d.batch * d.H * d.T,
                    detail::attention_softmax_row<T>{probs.data(), key_mask ? key_mask->data() : nullptr, d});
    ptr.clear();
    for (index_t b = 0; b < d.batch; ++b)  // out_h = P_h V_h   [T, Dh] per head
        for (index_t h = 0; h < d.H; ++h)
            ptr.add(probs.data() + (b * d.H + h) * d.T * d.S, v.data() + b * d.S_stride * ks + (h / group) * d.Dh,
                    out.data() + b * d.T * qs + h * d.Dh);
    B::gemm_batched(false, false, d.T, d.Dh, d.S, T(1), ptr.a.data(), d.S, ptr.b.data(), ks, T(0), ptr.c.data(), qs,
                    index_t(ptr.c.size()));
}

/// Accumulates into dq, dk, dv (each may be null). `probs` is the forward's output.
template <class T, class B>
void attention_backward(const attention_config& cfg, const tensor<T, B>& q, const tensor<T, B>& k,
                        const tensor<T, B>& v, const tensor<std::int32_t, B>* key_mask, const tensor<T, B>& probs,
                        const tensor<T, B>& dout, tensor<T, B>* dq, tensor<T, B>* dk, tensor<T, B>* dv) {
    constexpr const char* where = "vila::nn::attention backward";
    const auto d = detail::attention_check(where, cfg, q, k, v, key_mask);
    check_shape(where, "dout", dout.shape(), q.shape());
    check_shape(where, "probs", probs.shape(), {d.batch, d.H, d.T, d.S});
    if (dq) check_shape(where, "dq", dq->shape(), q.shape());
    if (dk) check_shape(where, "dk", dk->shape(), k.shape());
    if (dv) check_shape(where, "dv", dv->shape(), v.shape());
    const T scale = static_cast<T>(cfg.effective_scale());
    const index_t qs = d.H * d.Dh, ks = d.KVH * d.Dh, group = d.H / d.KVH;
    auto P = [&](index_t b, index_t h) { return probs.data() + (b * d.H + h) * d.T * d.S; };
    tensor<T, B> ds(probs.shape());  // dP, then dS in place
    auto G = [&](index_t b, index_t h) { return ds.data() + (b * d.H + h) * d.T * d.S; };
    auto Q = [&](index_t b, index_t h) { return q.data() + b * d.T * qs + h * d.Dh; };
    auto dO = [&](index_t b, index_t h) { return dout.data() + b * d.T * qs + h * d.Dh; };
    auto KV = [&](const tensor<T, B>& t, index_t b, index_t kvh) { return t.data() + b * d.S_stride * ks + kvh * d.Dh; };
    auto dKV = [&](tensor<T, B>* t, index_t b, index_t kvh) { return t->data() + b * d.S_stride * ks + kvh * d.Dh; };
    detail::head_pointers<T> ptr;
    for (index_t b = 0; b < d.batch; ++b)  // dP_h = dO_h V_h^T   [T, S]
        for (index_t h = 0; h < d.H; ++h) ptr.add(dO(b, h), KV(v, b, h / group), G(b, h));
    B::gemm_batched(false, true, d.T, d.S, d.Dh, T(1), ptr.a.data(), qs, ptr.b.data(), ks, T(0), ptr.c.data(), d.S, index_t(ptr.c.size()));
    B::parallel_for(d.batch * d.H * d.T, detail::attention_dscore_row<T>{probs.data(), ds.data(), d.S});
    if (dq) {  // dQ_h += scale dS_h K_h   [T, Dh]
        ptr.clear();
        for (index_t b = 0; b < d.batch; ++b)
            for (index_t h = 0; h < d.H; ++h) ptr.add(G(b, h), KV(k, b, h / group), dq->data() + b * d.T * qs + h * d.Dh);
        B::gemm_batched(false, false, d.T, d.Dh, d.S, scale, ptr.a.data(), d.S, ptr.b.data(), ks, T(1), ptr.c.data(), qs,
                        index_t(ptr.c.size()));
    }
    // dK_kvh += scale dS_h^T Q_h and dV_kvh += P_h^T dO_h   [S, Dh]: heads sharing a kv head run
    // one after another (g loop) so no two GEMMs of a batch write the same block.
    for (index_t g = 0; g < group; ++g) {
        if (dk) {
            ptr.clear();
            for (index_t b = 0; b < d.batch; ++b)
                for (index_t kvh = 0; kvh < d.KVH; ++kvh) ptr.add(G(b, kvh * group + g), Q(b, kvh * group + g), dKV(dk, b, kvh));
            B::gemm_batched(true, false, d.S, d.Dh, d.T, scale, ptr.a.data(), d.S, ptr.b.data(), qs, T(1), ptr.c.data(), ks,
                            index_t(ptr.c.size()));
        }
        if (dv) {
            ptr.clear();
            for (index_t b = 0; b < d.batch; ++b)
                for (index_t kvh = 0; kvh < d.KVH; ++kvh) ptr.add(P(b, kvh * group + g), dO(b, kvh * group + g), dKV(dv, b, kvh));
            B::gemm_batched(true, false, d.S, d.Dh, d.T, T(1), ptr.a.data(), d.S, ptr.b.data(), qs, T(1), ptr.c.data(), ks,
                            index_t(ptr.c.size()));
        }
    }
}

}  // namespace vila::nn
