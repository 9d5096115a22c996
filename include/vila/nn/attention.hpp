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
// Backward uses D_i = dout_i . out_i = sum_j p_ij (dout_i . v_j) (the FlashAttention identity):
//   dS_ij = p_ij (dout_i . v_j - D_i),  dq_i += scale sum_j dS_ij k_j,
//   dk_j += scale sum_{h,i} dS_ij q_i,   dv_j += sum_{h,i} p_ij dout_i,
// with dk/dv computed per key so no two threads write the same element.
#pragma once
#include <cmath>
#include <cstdint>

#include "../core/tensor.hpp"

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

template <class T>
struct attention_fwd_row {
    const T *q, *k, *v;
    const std::int32_t* mask;
    T *out, *probs;
    attention_dims d;
    T scale;
    VILA_HOST_DEVICE void operator()(index_t idx) const {  // idx = (b * H + h) * T + i
        const index_t i = idx % d.T, h = (idx / d.T) % d.H, b = idx / (d.T * d.H);
        const index_t kvh = h / (d.H / d.KVH);
        const T* qi = q + ((b * d.T + i) * d.H + h) * d.Dh;
        T* p = probs + idx * d.S;
        T* o = out + ((b * d.T + i) * d.H + h) * d.Dh;
        T m = 0;
        bool seen = false;
        for (index_t j = 0; j < d.S; ++j) {
            if (!d.visible(mask, b, i, j)) continue;
            const T* kj = k + ((b * d.S_stride + j) * d.KVH + kvh) * d.Dh;
            T s = 0;
            for (index_t c = 0; c < d.Dh; ++c) s += qi[c] * kj[c];
            p[j] = s * scale;
            m = (!seen || p[j] > m) ? p[j] : m;
            seen = true;
        }
        T sum = 0;
        for (index_t j = 0; j < d.S; ++j) {
            p[j] = d.visible(mask, b, i, j) ? std::exp(p[j] - m) : T(0);
            sum += p[j];
        }
        const T inv = seen ? T(1) / sum : T(0);
        for (index_t c = 0; c < d.Dh; ++c) o[c] = 0;
        for (index_t j = 0; j < d.S; ++j) {
            p[j] *= inv;
            if (p[j] == T(0)) continue;
            const T* vj = v + ((b * d.S_stride + j) * d.KVH + kvh) * d.Dh;
            for (index_t c = 0; c < d.Dh; ++c) o[c] += p[j] * vj[c];
        }
    }
};

template <class T>
struct attention_dq_row {
    const T *k, *v, *probs, *out, *dout;
    T *dq, *delta;  // delta [B, H, T] = dout . out, written here for the dk/dv pass
    attention_dims d;
    T scale;
    VILA_HOST_DEVICE void operator()(index_t idx) const {  // idx = (b * H + h) * T + i
        const index_t i = idx % d.T, h = (idx / d.T) % d.H, b = idx / (d.T * d.H);
        const index_t kvh = h / (d.H / d.KVH);
        const index_t off = ((b * d.T + i) * d.H + h) * d.Dh;
        const T* doi = dout + off;
        const T* p = probs + idx * d.S;
        T D = 0;
        for (index_t c = 0; c < d.Dh; ++c) D += doi[c] * out[off + c];
        delta[idx] = D;
        if (!dq) return;
        for (index_t j = 0; j < d.S; ++j) {
            if (p[j] == T(0)) continue;
            const T* vj = v + ((b * d.S_stride + j) * d.KVH + kvh) * d.Dh;
            const T* kj = k + ((b * d.S_stride + j) * d.KVH + kvh) * d.Dh;
            T dp = 0;
            for (index_t c = 0; c < d.Dh; ++c) dp += doi[c] * vj[c];
            const T ds = p[j] * (dp - D) * scale;
            for (index_t c = 0; c < d.Dh; ++c) dq[off + c] += ds * kj[c];
        }
    }
};

template <class T>
struct attention_dkv_row {
    const T *q, *v, *probs, *dout, *delta;
    T *dk, *dv;
    attention_dims d;
    T scale;
    VILA_HOST_DEVICE void operator()(index_t idx) const {  // idx = (b * KVH + kvh) * S + j
        const index_t j = idx % d.S, kvh = (idx / d.S) % d.KVH, b = idx / (d.S * d.KVH);
        const index_t group = d.H / d.KVH;
        const index_t kv_off = ((b * d.S_stride + j) * d.KVH + kvh) * d.Dh;
        const T* vj = v + kv_off;
        for (index_t h = kvh * group; h < (kvh + 1) * group; ++h) {
            for (index_t i = 0; i < d.T; ++i) {
                const index_t row = (b * d.H + h) * d.T + i;
                const T p = probs[row * d.S + j];
                if (p == T(0)) continue;
                const index_t q_off = ((b * d.T + i) * d.H + h) * d.Dh;
                const T* doi = dout + q_off;
                if (dk) {
                    T dp = 0;
                    for (index_t c = 0; c < d.Dh; ++c) dp += doi[c] * vj[c];
                    const T ds = p * (dp - delta[row]) * scale;
                    for (index_t c = 0; c < d.Dh; ++c) dk[kv_off + c] += ds * q[q_off + c];
                }
                if (dv)
                    for (index_t c = 0; c < d.Dh; ++c) dv[kv_off + c] += p * doi[c];
            }
        }
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
    B::parallel_for(d.batch * d.H * d.T,
                    detail::attention_fwd_row<T>{q.data(), k.data(), v.data(), key_mask ? key_mask->data() : nullptr,
                                                 out.data(), probs.data(), d, static_cast<T>(cfg.effective_scale())});
}

/// Accumulates into dq, dk, dv (each may be null). `out` and `probs` are the forward's outputs.
template <class T, class B>
void attention_backward(const attention_config& cfg, const tensor<T, B>& q, const tensor<T, B>& k,
                        const tensor<T, B>& v, const tensor<std::int32_t, B>* key_mask, const tensor<T, B>& out,
                        const tensor<T, B>& probs, const tensor<T, B>& dout, tensor<T, B>* dq, tensor<T, B>* dk,
                        tensor<T, B>* dv) {
    constexpr const char* where = "vila::nn::attention backward";
    const auto d = detail::attention_check(where, cfg, q, k, v, key_mask);
    check_shape(where, "out", out.shape(), q.shape());
    check_shape(where, "dout", dout.shape(), q.shape());
    check_shape(where, "probs", probs.shape(), {d.batch, d.H, d.T, d.S});
    if (dq) check_shape(where, "dq", dq->shape(), q.shape());
    if (dk) check_shape(where, "dk", dk->shape(), k.shape());
    if (dv) check_shape(where, "dv", dv->shape(), v.shape());
    const T scale = static_cast<T>(cfg.effective_scale());
    tensor<T, B> delta({d.batch, d.H, d.T});
    B::parallel_for(d.batch * d.H * d.T,
                    detail::attention_dq_row<T>{k.data(), v.data(), probs.data(), out.data(), dout.data(),
                                                dq ? dq->data() : nullptr, delta.data(), d, scale});
    if (dk || dv)
        B::parallel_for(d.batch * d.KVH * d.S,
                        detail::attention_dkv_row<T>{q.data(), v.data(), probs.data(), dout.data(), delta.data(),
                                                     dk ? dk->data() : nullptr, dv ? dv->data() : nullptr, d, scale});
}

}  // namespace vila::nn
