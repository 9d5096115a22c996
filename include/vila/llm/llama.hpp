// vila/llm/llama.hpp — the LLaMA-family decoder (LLaMA-2/3, Mistral, Qwen2): training-grade
// forward and backward, HF weight names, checkpoints in the HF folder layout.
//
//   h0 = embed(ids)                       or the caller's input embeddings (a VLM's splice)
//   per layer:  n1 = rms1(h);  q,k,v = proj(n1);  qr,kr = rope(q,k);  a = attn(qr,kr,v)
//               h1 = h + o_proj(a);  n2 = rms2(h1);  m = silu(gate(n2)) * up(n2);  h' = h1 + down(m)
//   logits = lm_head(norm(hL))            (lm_head = embed_tokens when tied)
// Shapes: ids [B, T] int32, attention_mask [B, T] (1 = token, 0 = padding), position_ids [B, T]
// (default 0..T-1 in every row, as HF), hidden [B, T, D], logits [B, T, V].
// backward(dlogits, d_embeds*) accumulates every trainable parameter's gradient and, if asked,
// the gradient of the input embeddings (where a VLM's image features were spliced in).
// Activations live in the model and are reused while batch shapes stay the same.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "../core/param.hpp"
#include "../core/rng.hpp"
#include "../io/atomic_file.hpp"
#include "../io/safetensors.hpp"
#include "../nn/activations.hpp"
#include "../nn/attention.hpp"
#include "../nn/cross_entropy.hpp"
#include "../nn/embedding.hpp"
#include "../nn/linear.hpp"
#include "../nn/residual.hpp"
#include "../nn/rms_norm.hpp"
#include "../nn/rope.hpp"
#include "config.hpp"

namespace vila::llm {

template <class T, class B = backend::cpu>
class llama {
public:
    using tensor_t = tensor<T, B>;
    using ids_t = tensor<std::int32_t, B>;

    /// One decoder layer: parameters and the activations its backward needs.
    struct layer {
        nn::rms_norm<T, B> input_layernorm, post_attention_layernorm;
        nn::linear<T, B> q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj;
        // saved activations (see the header comment for names)
        typename nn::rms_norm<T, B>::cache c_n1, c_n2;
        typename nn::linear<T, B>::cache c_q, c_k, c_v, c_o, c_gate, c_up, c_down;
        tensor_t n1, qr, kr, v, a, probs, h1, n2, g, u, m, out;

        layer(const llama_config& c, index_t i) {
            const std::string p = "model.layers." + std::to_string(i) + ".";
            const index_t D = c.hidden_size, Q = c.num_attention_heads * c.head_dim, KV = c.num_key_value_heads * c.head_dim,
                          F = c.intermediate_size;
            const bool qkv_bias = c.attention_bias || c.qkv_bias;
            input_layernorm = nn::rms_norm<T, B>({D, c.rms_norm_eps}, p + "input_layernorm");
            post_attention_layernorm = nn::rms_norm<T, B>({D, c.rms_norm_eps}, p + "post_attention_layernorm");
            q_proj = nn::linear<T, B>({D, Q, qkv_bias}, p + "self_attn.q_proj");
            k_proj = nn::linear<T, B>({D, KV, qkv_bias}, p + "self_attn.k_proj");
            v_proj = nn::linear<T, B>({D, KV, qkv_bias}, p + "self_attn.v_proj");
            o_proj = nn::linear<T, B>({Q, D, c.attention_bias}, p + "self_attn.o_proj");
            gate_proj = nn::linear<T, B>({D, F, c.mlp_bias}, p + "mlp.gate_proj");
            up_proj = nn::linear<T, B>({D, F, c.mlp_bias}, p + "mlp.up_proj");
            down_proj = nn::linear<T, B>({F, D, c.mlp_bias}, p + "mlp.down_proj");
        }
        template <class Fn>
        void for_each_parameter(Fn&& f) {
            input_layernorm.for_each_parameter(f);
            for (auto* l : {&q_proj, &k_proj, &v_proj, &o_proj}) l->for_each_parameter(f);
            post_attention_layernorm.for_each_parameter(f);
            for (auto* l : {&gate_proj, &up_proj, &down_proj}) l->for_each_parameter(f);
        }
    };

    llama_config config;
    nn::embedding<T, B> embed_tokens;
    std::vector<layer> layers;
    nn::rms_norm<T, B> norm;
    nn::linear<T, B> lm_head;  // holds no parameter when tied
    nn::attention_config attention;

    explicit llama(const llama_config& c)
        : config(c),
          embed_tokens({c.vocab_size, c.hidden_size}, "model.embed_tokens"),
          norm({c.hidden_size, c.rms_norm_eps}, "model.norm"),
          attention{c.num_attention_heads, c.num_key_value_heads, c.head_dim, true, 0.0} {
        for (index_t i = 0; i < c.num_hidden_layers; ++i) layers.emplace_back(c, i);
        if (!c.tie_word_embeddings) lm_head = nn::linear<T, B>({c.hidden_size, c.vocab_size, false}, "lm_head");
        const auto f = c.inv_freq();
        inv_freq_ = tensor_t::from_host({index_t(f.size())}, std::vector<T>(f.begin(), f.end()));
    }

    /// HF's initialisation: normal(0, std) for linear and embedding weights, zero biases, unit norms.
    void init_weights(std::uint64_t seed, double stddev = 0.02) {
        rng gen(seed);
        for_each_parameter([&](const std::string& name, param<T, B>& p) {
            if (name.find("norm") != std::string::npos) p.value.fill(T(1));
            else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) p.value.zero();
            else gen.fill_normal(p.value, 0.0, stddev);
        });
    }

    /// Visits (HF name, param&) in checkpoint order.
    template <class Fn>
    void for_each_parameter(Fn&& f) {
        embed_tokens.for_each_parameter(f);
        for (auto& l : layers) l.for_each_parameter(f);
        norm.for_each_parameter(f);
        if (!config.tie_word_embeddings) lm_head.for_each_parameter(f);
    }
    void zero_grad() {
        for_each_parameter([](const std::string&, param<T, B>& p) { p.zero_grad(); });
    }
    index_t parameter_count() {
        index_t n = 0;
        for_each_parameter([&](const std::string&, param<T, B>& p) { n += p.value.size(); });
        return n;
    }

    // --- forward ---------------------------------------------------------------------------------

    /// Logits [B, T, V] of token ids [B, T].
    const tensor_t& forward(const ids_t& ids, const ids_t* attention_mask = nullptr, const ids_t* position_ids = nullptr) {
        check_shape("vila::llm::llama", "ids", ids.shape(), {any, any});
        embed_tokens.forward(ids, h0_, &c_embed_);
        ids_ = &ids;
        return run(h0_, attention_mask, position_ids);
    }
    /// Logits of input embeddings [B, T, D] (a VLM passes text embeddings with image features spliced in).
    const tensor_t& forward_embeddings(const tensor_t& embeds, const ids_t* attention_mask = nullptr,
                                       const ids_t* position_ids = nullptr) {
        check_shape("vila::llm::llama", "input embeddings", embeds.shape(), {any, any, config.hidden_size});
        ids_ = nullptr;
        return run(embeds, attention_mask, position_ids);
    }
    /// Token embeddings of ids (for a caller that splices other features in).
    void embed(const ids_t& ids, tensor_t& out) const { nn::embedding_forward(ids, embed_tokens.weight.value, out); }

    const tensor_t& logits() const noexcept { return logits_; }

    /// Next-token cross-entropy of the last forward: labels [B, T] are shifted left inside
    /// (HF's convention: position t predicts labels[t + 1]); -100 is ignored.
    nn::cross_entropy_result<T> loss(const ids_t& labels) {
        check_shape("vila::llm::llama loss", "labels", labels.shape(), {logits_.dim(0), logits_.dim(1)});
        const auto h = labels.to_host();
        std::vector<std::int32_t> shifted(h.size(), nn::ignore_index);
        const index_t Bn = labels.dim(0), Tn = labels.dim(1);
        for (index_t b = 0; b < Bn; ++b)
            for (index_t t = 0; t + 1 < Tn; ++t) shifted[std::size_t(b * Tn + t)] = h[std::size_t(b * Tn + t + 1)];
        targets_ = ids_t::from_host(labels.shape(), shifted);
        last_loss_ = nn::cross_entropy_forward(logits_, targets_, lse_);
        return last_loss_;
    }

    // --- backward --------------------------------------------------------------------------------

    /// Backward of the last loss() (d loss = 1).
    void backward_loss(tensor_t* d_embeds = nullptr) {
        dlogits_.ensure_shape(logits_.shape());
        dlogits_.zero();
        nn::cross_entropy_backward(logits_, targets_, lse_, last_loss_.count, T(1), dlogits_);
        backward(dlogits_, d_embeds);
    }

    /// Accumulates parameter gradients from dlogits [B, T, V]; adds d(input embeddings) if asked.
    void backward(const tensor_t& dlogits, tensor_t* d_embeds = nullptr) {
        check_shape("vila::llm::llama backward", "dlogits", dlogits.shape(), logits_.shape());
        const shape_t hs = h0_shape_;
        for (tensor_t* t : {&dn_, &dh_a_, &dh_b_}) {
            t->ensure_shape(hs);
            t->zero();
        }
        if (config.tie_word_embeddings)
            nn::linear_backward(final_norm_out_, embed_tokens.weight.value, dlogits, &dn_, embed_tokens.weight.grad_if_trainable(),
                                (tensor_t*)nullptr);
        else
            lm_head.backward(c_head_, dlogits, &dn_);
        tensor_t* dh = &dh_a_;  // gradient at the current layer's output
        tensor_t* dx = &dh_b_;  // gradient at its input
        norm.backward(c_norm_, dn_, dh);
        for (index_t l = index_t(layers.size()) - 1; l >= 0; --l) {
            dx->zero();
            layer_backward(layers[std::size_t(l)], *dh, *dx);
            std::swap(dh, dx);
        }
        if (ids_ && embed_tokens.weight.trainable) embed_tokens.backward(c_embed_, *dh);
        if (d_embeds) {
            check_shape("vila::llm::llama backward", "d_embeds", d_embeds->shape(), hs);
            nn::residual_backward(*dh, d_embeds, (tensor_t*)nullptr);
        }
    }

    // --- checkpoints -----------------------------------------------------------------------------

    /// Loads config.json and the safetensors (one file or shards) of an HF folder.
    static llama load(const std::filesystem::path& dir) {
        llama m(llama_config::load(dir));
        m.load_weights(io::safetensors_checkpoint(dir), dir.string());
        return m;
    }

    /// Reads every parameter, checking names and shapes; extra tensors are reported.
    void load_weights(const io::safetensors_checkpoint& ckpt, const std::string& where, const std::string& prefix = "") {
        std::map<std::string, bool> used;
        for (const auto& n : ckpt.names()) used[n] = false;
        for_each_parameter([&](const std::string& name, param<T, B>& p) {
            const std::string key = prefix + name;
            if (!ckpt.contains(key)) throw format_error(where + ": missing tensor '" + key + "'");
            const auto& info = ckpt.info(key);
            if (info.shape != p.value.shape())
                throw format_error(where + ": tensor '" + key + "' has shape " + to_string(info.shape) + ", config.json implies " +
                                   to_string(p.value.shape()));
            ckpt.read(key, p.value);
            used[key] = true;
        });
        if (config.tie_word_embeddings && ckpt.contains(prefix + "lm_head.weight")) used[prefix + "lm_head.weight"] = true;
        for (const auto& [n, u] : used)
            if (!u && n.rfind(prefix, 0) == 0 && n.find("rotary_emb.inv_freq") == std::string::npos)
                throw format_error(where + ": unexpected tensor '" + n + "' (not part of a " + config.architecture + " with this config)");
    }

    /// Writes config.json and model.safetensors (F32 or BF16), each atomically.
    void save(const std::filesystem::path& dir, io::dtype type = io::dtype::f32) {
        std::map<std::string, io::tensor_to_write> out;
        collect_weights(out);
        io::save_safetensors(dir / "model.safetensors", out, {{"format", "pt"}}, type);
        const std::string cfg = config.to_json().dump(2) + "\n";
        io::write_atomically(dir / "config.json", [&](std::FILE* f) { io::write_all(f, cfg.data(), cfg.size(), dir / "config.json"); });
    }
    void collect_weights(std::map<std::string, io::tensor_to_write>& out, const std::string& prefix = "") {
        for_each_parameter([&](const std::string& name, param<T, B>& p) {
            const auto h = p.value.to_host();
            out[prefix + name] = {p.value.shape(), std::vector<float>(h.begin(), h.end())};
        });
    }

    const tensor_t& rope_inv_freq() const noexcept { return inv_freq_; }

private:
    const tensor_t& run(const tensor_t& h0, const ids_t* mask, const ids_t* positions) {
        const index_t Bn = h0.dim(0), Tn = h0.dim(1);
        if (mask) check_shape("vila::llm::llama", "attention_mask", mask->shape(), {Bn, Tn});
        if (positions) {
            check_shape("vila::llm::llama", "position_ids", positions->shape(), {Bn, Tn});
        } else if (default_positions_.shape() != shape_t{Bn, Tn}) {
            std::vector<std::int32_t> p(std::size_t(Bn * Tn));
            for (index_t i = 0; i < Bn * Tn; ++i) p[std::size_t(i)] = std::int32_t(i % Tn);
            default_positions_ = ids_t::from_host({Bn, Tn}, p);
        }
        positions_ = positions ? positions : &default_positions_;
        mask_ = mask;
        h0_shape_ = h0.shape();
        const tensor_t* h = &h0;
        for (auto& l : layers) {
            layer_forward(l, *h);
            h = &l.out;
        }
        norm.forward(*h, final_norm_out_, c_norm_);
        if (config.tie_word_embeddings) nn::linear_forward(final_norm_out_, embed_tokens.weight.value, (const tensor_t*)nullptr, logits_);
        else lm_head.forward(final_norm_out_, logits_, &c_head_);
        return logits_;
    }

    void layer_forward(layer& L, const tensor_t& x) {
        L.input_layernorm.forward(x, L.n1, L.c_n1);
        L.q_proj.forward(L.n1, q_, &L.c_q);  // [B, T, H*Dh]
        L.k_proj.forward(L.n1, k_, &L.c_k);  // [B, T, KVH*Dh]
        L.v_proj.forward(L.n1, L.v, &L.c_v);
        nn::rope_forward(q_, *positions_, inv_freq_, L.qr);
        nn::rope_forward(k_, *positions_, inv_freq_, L.kr);
        nn::attention_forward(attention, L.qr, L.kr, L.v, mask_, L.a, L.probs);
        L.o_proj.forward(L.a, o_, &L.c_o);    // [B, T, D]
        nn::residual_forward(x, o_, L.h1);
        L.post_attention_layernorm.forward(L.h1, L.n2, L.c_n2);
        L.gate_proj.forward(L.n2, L.g, &L.c_gate);  // [B, T, F]
        L.up_proj.forward(L.n2, L.u, &L.c_up);
        nn::swiglu_forward(L.g, L.u, L.m);
        L.down_proj.forward(L.m, d_, &L.c_down);  // [B, T, D]
        nn::residual_forward(L.h1, d_, L.out);
    }

    /// dx += d(layer)/dx given dy at the layer's output.
    void layer_backward(layer& L, const tensor_t& dy, tensor_t& dx) {
        auto zeroed = [](tensor_t& t, const shape_t& s) {
            t.ensure_shape(s);
            t.zero();
        };
        // out = h1 + down(m)
        zeroed(dm_, L.m.shape());
        L.down_proj.backward(L.c_down, dy, &dm_);
        zeroed(dg_, L.g.shape());
        zeroed(du_, L.u.shape());
        nn::swiglu_backward(L.g, L.u, dm_, &dg_, &du_);
        zeroed(dn2_, L.n2.shape());
        L.gate_proj.backward(L.c_gate, dg_, &dn2_);
        L.up_proj.backward(L.c_up, du_, &dn2_);
        zeroed(dh1_, L.h1.shape());
        nn::residual_backward(dy, &dh1_, (tensor_t*)nullptr);
        L.post_attention_layernorm.backward(L.c_n2, dn2_, &dh1_);
        // h1 = x + o_proj(a)
        nn::residual_backward(dh1_, &dx, (tensor_t*)nullptr);
        zeroed(da_, L.a.shape());
        L.o_proj.backward(L.c_o, dh1_, &da_);
        zeroed(dqr_, L.qr.shape());
        zeroed(dkr_, L.kr.shape());
        zeroed(dv_, L.v.shape());
        nn::attention_backward(attention, L.qr, L.kr, L.v, mask_, L.probs, da_, &dqr_, &dkr_, &dv_);
        zeroed(dq_, L.qr.shape());
        zeroed(dk_, L.kr.shape());
        nn::rope_backward(dqr_, *positions_, inv_freq_, dq_);
        nn::rope_backward(dkr_, *positions_, inv_freq_, dk_);
        zeroed(dn1_, L.n1.shape());
        L.q_proj.backward(L.c_q, dq_, &dn1_);
        L.k_proj.backward(L.c_k, dk_, &dn1_);
        L.v_proj.backward(L.c_v, dv_, &dn1_);
        L.input_layernorm.backward(L.c_n1, dn1_, &dx);
    }

    tensor_t inv_freq_;
    // forward state
    const ids_t* ids_ = nullptr;
    const ids_t* mask_ = nullptr;
    const ids_t* positions_ = nullptr;
    ids_t default_positions_, targets_;
    shape_t h0_shape_;
    typename nn::embedding<T, B>::cache c_embed_;
    typename nn::rms_norm<T, B>::cache c_norm_;
    typename nn::linear<T, B>::cache c_head_;
    tensor_t h0_, q_, k_, o_, d_, final_norm_out_, logits_, lse_, dlogits_;
    nn::cross_entropy_result<T> last_loss_;
    // backward scratch shared by all layers
    tensor_t dn_, dh_a_, dh_b_, dm_, dg_, du_, dn2_, dh1_, da_, dqr_, dkr_, dv_, dq_, dk_, dn1_;
};

}  // namespace vila::llm
