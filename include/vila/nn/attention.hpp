// vila/nn/attention.hpp — scaled dot-product attention: causal or bidirectional, grouped-query
// heads, optional key padding mask. Forward and backward.
//
// Shapes (heads H, key/value heads KVH dividing H, head size Dh, queries T, keys S):
//   q [B, T, H*Dh], k, v [B, S, KVH*Dh]  (the layout linear layers produce: no transposes)
//   key_mask [B, S] int32, nonzero = attend (optional)
//   out [B, T, H*Dh], lse [B, H, T] (the log-sum-exp of each score row, saved for backward)
// Query head h reads key/value head h / (H / KVH), as in HF's repeat_kv.
// Causal: query i (of the last T of S positions) sees keys j <= i + (S - T), so a KV cache
// (S > T) works unchanged. A query that can see no key (fully padded row) outputs zeros and
// has zero probabilities (its lse is stored as 0 and never read).
//
// What is saved is O(T) per head, never the [B, H, T, S] probabilities: backward recomputes
// P = exp(scale Q K^T - lse) from q and k (as FlashAttention does), which at T = 4096 is the
// difference between 64 MiB and 16 KiB per head and layer.
//   dP = dO V^T,  dS = P (dP - D) with D = rowsum(dO * O),  dQ += scale dS K,
//   dK += scale dS^T Q,  dV += P^T dO.
// Two implementations compute the same function:
//  - CPU backend: fused and blocked. Per (batch, head, block of queries) the forward walks
//    blocks of keys with an online softmax (running max and sum, output rescaled when the max
//    grows) and skips the key blocks a causal mask hides entirely; its scratch is a few
//    blocks. Backward runs one task per (batch, key/value head), so every dK, dV and dQ row has
//    a single writer: no atomics, and results independent of the thread count.
//  - Other backends (Thrust, CUDA): per-head batched GEMMs through a transient [B, H, T, S]
//    scores buffer, freed on return (`detail::attention_forward_gemm`, also the fused path's
//    reference in the tests).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include <Eigen/Core>

#include "../backend/cpu.hpp"
#include "../core/tensor.hpp"
#include "functors.hpp"

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
    /// Keys [0, n) of row i that the causal mask leaves (all S without it).
    VILA_HOST_DEVICE index_t causal_limit(index_t i) const {
        if (!causal) return S;
        const index_t n = i + (S - T) + 1;
        return n < 0 ? 0 : (n < S ? n : S);
    }
};

/// Masked softmax of one score row in place, and the row's log-sum-exp: probs of hidden keys
/// are 0; a row that sees no key becomes all zeros (lse 0).
template <class T>
struct attention_softmax_row {
    T* probs;  // [B, H, T, S] scores in, probabilities out
    T* lse;    // [B, H, T]
    const std::int32_t* mask;
    attention_dims d;
    VILA_HOST_DEVICE void operator()(index_t idx) const {  // idx = (b * H + h) * T + i
        const index_t i = idx % d.T, b = idx / (d.T * d.H);
        T* p = probs + idx * d.S;
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
        lse[idx] = seen ? m + std::log(sum) : T(0);
    }
};

/// Backward's recomputation of one probability row from its scores and saved lse.
template <class T>
struct attention_probs_row {
    T* probs;  // [B, H, T, S] scores in, probabilities out
    const T* lse;
    const std::int32_t* mask;
    attention_dims d;
    VILA_HOST_DEVICE void operator()(index_t idx) const {
        const index_t i = idx % d.T, b = idx / (d.T * d.H);
        T* p = probs + idx * d.S;
        for (index_t j = 0; j < d.S; ++j) p[j] = d.visible(mask, b, i, j) ? std::exp(p[j] - lse[idx]) : T(0);
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

/// The unfused form: scores of every head through batched GEMMs into a transient buffer.
template <class T, class B>
void attention_forward_gemm(const attention_config& cfg, const attention_dims& d, const tensor<T, B>& q, const tensor<T, B>& k,
                            const tensor<T, B>& v, const tensor<std::int32_t, B>* key_mask, tensor<T, B>& out, tensor<T, B>& lse) {
    tensor<T, B> probs({d.batch, d.H, d.T, d.S});
    const T scale = static_cast<T>(cfg.effective_scale());
    const index_t qs = d.H * d.Dh, ks = d.KVH * d.Dh, group = d.H / d.KVH;
    head_pointers<T> ptr;
    for (index_t b = 0; b < d.batch; ++b)  // scores = scale * Q_h K_h^T   [T, S] per head
        for (index_t h = 0; h < d.H; ++h)
            ptr.add(q.data() + b * d.T * qs + h * d.Dh, k.data() + b * d.S_stride * ks + (h / group) * d.Dh,
                    probs.data() + (b * d.H + h) * d.T * d.S);
    B::gemm_batched(false, true, d.T, d.S, d.Dh, scale, ptr.a.data(), qs, ptr.b.data(), ks, T(0), ptr.c.data(), d.S, index_t(ptr.c.size()));
    B::parallel_for(d.batch * d.H * d.T,
                    attention_softmax_row<T>{probs.data(), lse.data(), key_mask ? key_mask->data() : nullptr, d});
    ptr.clear();
    for (index_t b = 0; b < d.batch; ++b)  // out_h = P_h V_h   [T, Dh] per head
        for (index_t h = 0; h < d.H; ++h)
            ptr.add(probs.data() + (b * d.H + h) * d.T * d.S, v.data() + b * d.S_stride * ks + (h / group) * d.Dh,
                    out.data() + b * d.T * qs + h * d.Dh);
    B::gemm_batched(false, false, d.T, d.Dh, d.S, T(1), ptr.a.data(), d.S, ptr.b.data(), ks, T(0), ptr.c.data(), qs,
                    index_t(ptr.c.size()));
}

template <class T, class B>
void attention_backward_gemm(const attention_config& cfg, const attention_dims& d, const tensor<T, B>& q, const tensor<T, B>& k,
                             const tensor<T, B>& v, const tensor<std::int32_t, B>* key_mask, const tensor<T, B>& lse,
                             const tensor<T, B>& dout, tensor<T, B>* dq, tensor<T, B>* dk, tensor<T, B>* dv) {
    const T scale = static_cast<T>(cfg.effective_scale());
    const index_t qs = d.H * d.Dh, ks = d.KVH * d.Dh, group = d.H / d.KVH;
    tensor<T, B> probs({d.batch, d.H, d.T, d.S}), ds({d.batch, d.H, d.T, d.S});  // ds: dP, then dS in place
    auto P = [&](index_t b, index_t h) { return probs.data() + (b * d.H + h) * d.T * d.S; };
    auto G = [&](index_t b, index_t h) { return ds.data() + (b * d.H + h) * d.T * d.S; };
    auto Q = [&](index_t b, index_t h) { return q.data() + b * d.T * qs + h * d.Dh; };
    auto dO = [&](index_t b, index_t h) { return dout.data() + b * d.T * qs + h * d.Dh; };
    auto KV = [&](const tensor<T, B>& t, index_t b, index_t kvh) { return t.data() + b * d.S_stride * ks + kvh * d.Dh; };
    auto dKV = [&](tensor<T, B>* t, index_t b, index_t kvh) { return t->data() + b * d.S_stride * ks + kvh * d.Dh; };
    head_pointers<T> ptr;
    for (index_t b = 0; b < d.batch; ++b)  // P_h = exp(scale Q_h K_h^T - lse)   [T, S]
        for (index_t h = 0; h < d.H; ++h) ptr.add(Q(b, h), KV(k, b, h / group), P(b, h));
    B::gemm_batched(false, true, d.T, d.S, d.Dh, scale, ptr.a.data(), qs, ptr.b.data(), ks, T(0), ptr.c.data(), d.S, index_t(ptr.c.size()));
    B::parallel_for(d.batch * d.H * d.T, attention_probs_row<T>{probs.data(), lse.data(), key_mask ? key_mask->data() : nullptr, d});
    ptr.clear();
    for (index_t b = 0; b < d.batch; ++b)  // dP_h = dO_h V_h^T   [T, S]
        for (index_t h = 0; h < d.H; ++h) ptr.add(dO(b, h), KV(v, b, h / group), G(b, h));
    B::gemm_batched(false, true, d.T, d.S, d.Dh, T(1), ptr.a.data(), qs, ptr.b.data(), ks, T(0), ptr.c.data(), d.S, index_t(ptr.c.size()));
    B::parallel_for(d.batch * d.H * d.T, attention_dscore_row<T>{probs.data(), ds.data(), d.S});
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

/// The fused CPU form (see the header comment). Blocks: 64 queries x 128 keys of scores (32 KiB
/// in fp32) stay in L1/L2 between the two products that use them.
template <class T>
struct attention_fused_cpu {
    static constexpr index_t block_q = 64, block_k = 128;
    using mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using cmap = Eigen::Map<const mat, Eigen::Unaligned, Eigen::OuterStride<>>;
    using map = Eigen::Map<mat, Eigen::Unaligned, Eigen::OuterStride<>>;

    attention_dims d;
    const T* q;
    const T* k;
    const T* v;
    const std::int32_t* mask;
    T scale;
    index_t qs, ks, group;

    attention_fused_cpu(const attention_config& cfg, const attention_dims& dims, const T* q_, const T* k_, const T* v_,
                        const std::int32_t* mask_)
        : d(dims), q(q_), k(k_), v(v_), mask(mask_), scale(static_cast<T>(cfg.effective_scale())), qs(dims.H * dims.Dh),
          ks(dims.KVH * dims.Dh), group(dims.H / dims.KVH) {}

    cmap Q(const T* base, index_t b, index_t h, index_t i0, index_t n) const {  // rows [i0, i0 + n) of head h
        return cmap(base + (b * d.T + i0) * qs + h * d.Dh, n, d.Dh, Eigen::OuterStride<>(qs));
    }
    cmap KV(const T* base, index_t b, index_t kvh, index_t j0, index_t n) const {
        return cmap(base + (b * d.S_stride + j0) * ks + kvh * d.Dh, n, d.Dh, Eigen::OuterStride<>(ks));
    }
    /// Keys of row i inside the key block [j0, j0 + nk) that are visible are a prefix [0, n) as
    /// far as causality goes; the padding mask then hides single keys (set to -inf before the
    /// running max, so it ignores them, and to 0 after the exponential).
    index_t visible_prefix(index_t i, index_t j0, index_t nk) const {
        const index_t n = d.causal_limit(i) - j0;
        return n < 0 ? 0 : (n < nk ? n : nk);
    }
    void set_masked(T* row, index_t b, index_t j0, index_t n, T value) const {
        if (!mask) return;
        const std::int32_t* mrow = mask + b * d.S_stride + j0;
        for (index_t c = 0; c < n; ++c)
            if (mrow[c] == 0) row[c] = value;
    }
    /// One past the last key any query of [i0, i0 + nq) sees.
    index_t key_end(index_t i0, index_t nq) const { return d.causal_limit(i0 + nq - 1); }

    /// Task (b, h, query block): out rows and lse of those queries.
    void forward_block(index_t task, T* out, T* lse) const {
        const index_t blocks = (d.T + block_q - 1) / block_q;
        const index_t qb = task % blocks, h = (task / blocks) % d.H, b = task / (blocks * d.H);
        const index_t i0 = qb * block_q, nq = std::min(block_q, d.T - i0), kvh = h / group;
        alignas(64) T s_buf[block_q * block_k];
        mat o = mat::Zero(nq, d.Dh);
        T m[block_q], l[block_q];
        for (index_t r = 0; r < nq; ++r) m[r] = -std::numeric_limits<T>::infinity(), l[r] = T(0);
        const auto qb_ = Q(q, b, h, i0, nq);
        const index_t end = key_end(i0, nq);
        for (index_t j0 = 0; j0 < end; j0 += block_k) {
            const index_t nk = std::min(block_k, end - j0);
            map s(s_buf, nq, nk, Eigen::OuterStride<>(nk));
            s.noalias() = scale * qb_ * KV(k, b, kvh, j0, nk).transpose();
            for (index_t r = 0; r < nq; ++r) {
                T* row = s_buf + r * nk;
                const index_t n = visible_prefix(i0 + r, j0, nk);
                set_masked(row, b, j0, n, -std::numeric_limits<T>::infinity());
                const T mx = n > 0 ? max_of(row, n) : -std::numeric_limits<T>::infinity();
                if (!(mx > -std::numeric_limits<T>::infinity())) {  // nothing visible here
                    std::fill(row, row + nk, T(0));
                    continue;
                }
                const T m_new = std::max(m[r], mx), alpha = std::exp(m[r] - m_new);
                exp_shifted(row, m_new, row, n);
                set_masked(row, b, j0, n, T(0));
                std::fill(row + n, row + nk, T(0));
                l[r] = l[r] * alpha + lane_sum(row, n, identity_of<T>{});
                m[r] = m_new;
                if (alpha != T(1)) o.row(r) *= alpha;
            }
            o.noalias() += s * KV(v, b, kvh, j0, nk);
        }
        map dst(out + (b * d.T + i0) * qs + h * d.Dh, nq, d.Dh, Eigen::OuterStride<>(qs));
        T* lse_row = lse + (b * d.H + h) * d.T + i0;
        for (index_t r = 0; r < nq; ++r) {
            if (l[r] > T(0)) {
                dst.row(r) = o.row(r) * (T(1) / l[r]);
                lse_row[r] = m[r] + std::log(l[r]);
            } else {
                dst.row(r).setZero();
                lse_row[r] = T(0);
            }
        }
    }

    /// Task (b, kv head): every dK, dV row of that kv head and every dQ row of its query heads.
    void backward_kv_head(index_t task, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv) const {
        const index_t kvh = task % d.KVH, b = task / d.KVH;
        alignas(64) T p_buf[block_q * block_k];
        alignas(64) T ds_buf[block_q * block_k];
        std::vector<T> D(static_cast<std::size_t>(d.T));
        mat dk_acc(block_k, d.Dh), dv_acc(block_k, d.Dh);
        for (index_t g = 0; g < group; ++g) {
            const index_t h = kvh * group + g;
            for (index_t i = 0; i < d.T; ++i) {  // D_i = dO_i . O_i = sum_j P_ij dP_ij
                const T* o = out + (b * d.T + i) * qs + h * d.Dh;
                const T* go = dout + (b * d.T + i) * qs + h * d.Dh;
                T acc = 0;
                for (index_t c = 0; c < d.Dh; ++c) acc += o[c] * go[c];
                D[static_cast<std::size_t>(i)] = acc;
            }
            const T* lse_h = lse + (b * d.H + h) * d.T;
            for (index_t j0 = 0; j0 < d.S; j0 += block_k) {
                const index_t nk = std::min(block_k, d.S - j0);
                const auto kb = KV(k, b, kvh, j0, nk), vb = KV(v, b, kvh, j0, nk);
                dk_acc.topRows(nk).setZero();
                dv_acc.topRows(nk).setZero();
                // the first query that sees key j0: i + S - T >= j0
                const index_t i_begin = d.causal ? std::max<index_t>(0, j0 - (d.S - d.T)) : 0;
                for (index_t i0 = i_begin; i0 < d.T; i0 += block_q) {
                    const index_t nq = std::min(block_q, d.T - i0);
                    const auto qb = Q(q, b, h, i0, nq), gob = Q(dout, b, h, i0, nq);
                    map p(p_buf, nq, nk, Eigen::OuterStride<>(nk));
                    p.noalias() = scale * qb * kb.transpose();
                    for (index_t r = 0; r < nq; ++r) {
                        T* row = p_buf + r * nk;
                        const index_t n = visible_prefix(i0 + r, j0, nk);
                        exp_shifted(row, lse_h[i0 + r], row, n);
                        set_masked(row, b, j0, n, T(0));
                        std::fill(row + n, row + nk, T(0));
                    }
                    if (dv) dv_acc.topRows(nk).noalias() += p.transpose() * gob;
                    if (!dq && !dk) continue;
                    map ds(ds_buf, nq, nk, Eigen::OuterStride<>(nk));
                    ds.noalias() = gob * vb.transpose();  // dP
                    for (index_t r = 0; r < nq; ++r) {
                        const T Di = D[static_cast<std::size_t>(i0 + r)];
                        T* drow = ds_buf + r * nk;
                        const T* prow = p_buf + r * nk;
                        for (index_t c = 0; c < nk; ++c) drow[c] = prow[c] * (drow[c] - Di);
                    }
                    if (dq) map(dq + (b * d.T + i0) * qs + h * d.Dh, nq, d.Dh, Eigen::OuterStride<>(qs)).noalias() += scale * ds * kb;
                    if (dk) dk_acc.topRows(nk).noalias() += scale * ds.transpose() * qb;
                }
                if (dk) map(dk + (b * d.S_stride + j0) * ks + kvh * d.Dh, nk, d.Dh, Eigen::OuterStride<>(ks)) += dk_acc.topRows(nk);
                if (dv) map(dv + (b * d.S_stride + j0) * ks + kvh * d.Dh, nk, d.Dh, Eigen::OuterStride<>(ks)) += dv_acc.topRows(nk);
            }
        }
    }
};
}  // namespace detail

/// `kv_len` (optional): only the first kv_len keys of k, v (and the mask) exist, as in a KV
/// cache allocated for more tokens than it holds.
template <class T, class B>
void attention_forward(const attention_config& cfg, const tensor<T, B>& q, const tensor<T, B>& k,
                       const tensor<T, B>& v, const tensor<std::int32_t, B>* key_mask, tensor<T, B>& out,
                       tensor<T, B>& lse, index_t kv_len = -1) {
    auto d = detail::attention_check("vila::nn::attention", cfg, q, k, v, key_mask);
    if (kv_len >= 0) {
        if (kv_len > d.S || (cfg.causal && kv_len < d.T))
            throw shape_error("vila::nn::attention: kv_len " + std::to_string(kv_len) + " outside [" + std::to_string(d.T) +
                              ", " + std::to_string(d.S) + "] for k " + to_string(k.shape()));
        d.S = kv_len;
    }
    out.ensure_shape(q.shape());
    lse.ensure_shape({d.batch, d.H, d.T});
    if constexpr (std::is_same<B, backend::cpu>::value) {
        const detail::attention_fused_cpu<T> f(cfg, d, q.data(), k.data(), v.data(), key_mask ? key_mask->data() : nullptr);
        const index_t blocks = (d.T + f.block_q - 1) / f.block_q;
        T* o = out.data();
        T* l = lse.data();
        B::parallel_for(d.batch * d.H * blocks, [&](index_t t) { f.forward_block(t, o, l); });
    } else {
        detail::attention_forward_gemm(cfg, d, q, k, v, key_mask, out, lse);
    }
}

/// Accumulates into dq, dk, dv (each may be null). `out` and `lse` are the forward's outputs.
template <class T, class B>
void attention_backward(const attention_config& cfg, const tensor<T, B>& q, const tensor<T, B>& k,
                        const tensor<T, B>& v, const tensor<std::int32_t, B>* key_mask, const tensor<T, B>& out,
                        const tensor<T, B>& lse, const tensor<T, B>& dout, tensor<T, B>* dq, tensor<T, B>* dk, tensor<T, B>* dv) {
    constexpr const char* where = "vila::nn::attention backward";
    const auto d = detail::attention_check(where, cfg, q, k, v, key_mask);
    check_shape(where, "dout", dout.shape(), q.shape());
    check_shape(where, "out", out.shape(), q.shape());
    check_shape(where, "lse", lse.shape(), {d.batch, d.H, d.T});
    if (dq) check_shape(where, "dq", dq->shape(), q.shape());
    if (dk) check_shape(where, "dk", dk->shape(), k.shape());
    if (dv) check_shape(where, "dv", dv->shape(), v.shape());
    if (!dq && !dk && !dv) return;
    if constexpr (std::is_same<B, backend::cpu>::value) {
        const detail::attention_fused_cpu<T> f(cfg, d, q.data(), k.data(), v.data(), key_mask ? key_mask->data() : nullptr);
        T* gq = dq ? dq->data() : nullptr;
        T* gk = dk ? dk->data() : nullptr;
        T* gv = dv ? dv->data() : nullptr;
        B::parallel_for(d.batch * d.KVH, [&](index_t t) { f.backward_kv_head(t, out.data(), lse.data(), dout.data(), gq, gk, gv); });
    } else {
        detail::attention_backward_gemm(cfg, d, q, k, v, key_mask, lse, dout, dq, dk, dv);
    }
}

}  // namespace vila::nn
