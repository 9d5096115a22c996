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
//
// Parameters and activations are apart (llm.c's params / acts split): `layer` holds a decoder
// layer's weights, `layer_activations` what its forward keeps for backward. One layer forward
// (layer_forward) serves training (activations kept per layer), prefill and KV-cached decoding
// (llm/generate.hpp passes a kv_slot and reuses two scratch activations). The model copies its
// inputs (ids, mask, positions, input embeddings) into its activations: a caller's temporaries
// may die before backward.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../core/param.hpp"
#include "../core/rng.hpp"
#include "../io/atomic_file.hpp"
#include "../io/folder.hpp"
#include "../io/json.hpp"
#include "../io/parameters.hpp"
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

namespace detail {
template <class T>
struct copy_rows {  // dst[(offset + t) * width + c] = src[t * width + c]
    const T* src;
    T* dst;
    index_t width, offset;
    VILA_HOST_DEVICE void operator()(index_t i) const { dst[offset * width + i] = src[i]; }
};
}  // namespace detail

template <class T, class B = backend::cpu>
class llama {
public:
    using tensor_t = tensor<T, B>;
    using ids_t = tensor<std::int32_t, B>;

    /// One decoder layer's parameters.
    struct layer {
        nn::rms_norm<T, B> input_layernorm, post_attention_layernorm;
        nn::linear<T, B> q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj;

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

    /// What one layer's forward keeps for its backward (see the header comment for names).
    struct layer_activations {
        typename nn::rms_norm<T, B>::cache c_n1, c_n2;
        typename nn::linear<T, B>::cache c_q, c_k, c_v, c_o, c_gate, c_up, c_down;
        tensor_t n1, qr, kr, v, a, lse, h1, n2, g, u, m, out;
    };
    /// Buffers a layer forward needs but backward does not (shared by all layers).
    struct layer_scratch {
        tensor_t q, k, o, d;
    };
    /// Where a layer writes its keys and values at inference: rows [start, start + T) of k and
    /// v ([1, capacity, KVH * Dh]); attention then reads their first start + T rows.
    struct kv_slot {
        tensor_t* k;
        tensor_t* v;
        index_t start;
    };
    /// Everything a training forward keeps for backward, apart from the parameters.
    struct activations {
        ids_t ids, mask, positions, targets;  // copies of the inputs
        nn::rope_table<T, B> rope;             // cos/sin of the positions, for every layer
        bool from_ids = false, masked = false;
        bool logits_hold_gradient = false;  // set by backward_loss, which computes the gradient in place
        tensor_t h0, final_norm_out, logits, lse;
        typename nn::rms_norm<T, B>::cache c_norm;
        typename nn::linear<T, B>::cache c_head;
        std::vector<layer_activations> layers;
        layer_scratch scratch;
        nn::cross_entropy_result<T> last_loss;
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
        acts_.layers.resize(layers.size());
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
    /// Visits every linear layer as f(nn::linear&, is_output_head) (LoRA targets them).
    template <class Fn>
    void for_each_linear(Fn&& f) {
        for (auto& l : layers)
            for (auto* p : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj}) f(*p, false);
        if (!config.tie_word_embeddings) f(lm_head, true);
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
        acts_.ids = ids;
        acts_.from_ids = true;
        nn::embedding_forward(acts_.ids, embed_tokens.weight.value, acts_.h0);
        return run(attention_mask, position_ids);
    }
    /// Logits of input embeddings [B, T, D] (a VLM passes text embeddings with image features spliced in).
    const tensor_t& forward_embeddings(const tensor_t& embeds, const ids_t* attention_mask = nullptr,
                                       const ids_t* position_ids = nullptr) {
        check_shape("vila::llm::llama", "input embeddings", embeds.shape(), {any, any, config.hidden_size});
        acts_.from_ids = false;
        if (&embeds != &acts_.h0) acts_.h0 = embeds;
        return run(attention_mask, position_ids);
    }
    /// Token embeddings of ids (for a caller that splices other features in).
    void embed(const ids_t& ids, tensor_t& out) const { nn::embedding_forward(ids, embed_tokens.weight.value, out); }

    const tensor_t& logits() const {
        require_logits("logits");
        return acts_.logits;
    }

    /// One decoder layer, x [B, T, D] -> A.out. Training keeps A for layer_backward; inference
    /// passes `kv` (keys and values go to the cache, attention reads it) and may reuse A.
    void layer_forward(const layer& L, const tensor_t& x, layer_activations& A, layer_scratch& S, const nn::rope_table<T, B>& rope,
                       const ids_t* mask, const kv_slot* kv = nullptr) const {
        L.input_layernorm.forward(x, A.n1, A.c_n1);
        L.q_proj.forward(A.n1, S.q, &A.c_q);  // [B, T, H*Dh]
        L.k_proj.forward(A.n1, S.k, &A.c_k);  // [B, T, KVH*Dh]
        L.v_proj.forward(A.n1, A.v, &A.c_v);
        nn::rope_forward(S.q, rope, A.qr);
        nn::rope_forward(S.k, rope, A.kr);
        if (kv) {
            const index_t Tn = x.dim(1), width = A.kr.dim(2);
            B::parallel_for(Tn * width, detail::copy_rows<T>{A.kr.data(), kv->k->data(), width, kv->start});
            B::parallel_for(Tn * width, detail::copy_rows<T>{A.v.data(), kv->v->data(), width, kv->start});
            nn::attention_forward(attention, A.qr, *kv->k, *kv->v, mask, A.a, A.lse, kv->start + Tn);
        } else {
            nn::attention_forward(attention, A.qr, A.kr, A.v, mask, A.a, A.lse);
        }
        L.o_proj.forward(A.a, S.o, &A.c_o);  // [B, T, D]
        nn::residual_forward(x, S.o, A.h1);
        L.post_attention_layernorm.forward(A.h1, A.n2, A.c_n2);
        L.gate_proj.forward(A.n2, A.g, &A.c_gate);  // [B, T, F]
        L.up_proj.forward(A.n2, A.u, &A.c_up);
        nn::swiglu_forward(A.g, A.u, A.m);
        L.down_proj.forward(A.m, S.d, &A.c_down);  // [B, T, D]
        nn::residual_forward(A.h1, S.d, A.out);
    }
    /// The final norm and the LM head: h [B, T, D] -> logits [B, T, V].
    void head_forward(const tensor_t& h, tensor_t& normed, typename nn::rms_norm<T, B>::cache& cn,
                      typename nn::linear<T, B>::cache& ch, tensor_t& logits) const {
        norm.forward(h, normed, cn);
        if (config.tie_word_embeddings) nn::linear_forward(normed, embed_tokens.weight.value, (const tensor_t*)nullptr, logits);
        else lm_head.forward(normed, logits, &ch);
    }

    /// Next-token cross-entropy of the last forward: labels [B, T] are shifted left inside
    /// (HF's convention: position t predicts labels[t + 1]); -100 is ignored.
    nn::cross_entropy_result<T> loss(const ids_t& labels) {
        require_logits("loss");
        check_shape("vila::llm::llama loss", "labels", labels.shape(), {acts_.logits.dim(0), acts_.logits.dim(1)});
        const auto h = labels.to_host();
        std::vector<std::int32_t> shifted(h.size(), nn::ignore_index);
        const index_t Bn = labels.dim(0), Tn = labels.dim(1);
        for (index_t b = 0; b < Bn; ++b)
            for (index_t t = 0; t + 1 < Tn; ++t) shifted[std::size_t(b * Tn + t)] = h[std::size_t(b * Tn + t + 1)];
        acts_.targets = ids_t::from_host(labels.shape(), shifted);
        acts_.last_loss = nn::cross_entropy_forward(acts_.logits, acts_.targets, acts_.lse);
        return acts_.last_loss;
    }

    // --- backward --------------------------------------------------------------------------------

    /// Backward of the last loss() with d loss = scale (gradient accumulation over micro-batches
    /// passes each micro-batch's share of the labels; loss weighting its weight).
    /// The logits' memory holds their gradient afterwards: logits() and loss() then need a new forward.
    void backward_loss(double scale = 1.0, tensor_t* d_embeds = nullptr) {
        require_logits("backward_loss");
        nn::cross_entropy_backward_inplace(acts_.logits, acts_.targets, acts_.lse, acts_.last_loss.count, T(scale));
        acts_.logits_hold_gradient = true;
        backward(acts_.logits, d_embeds);
    }

    void backward_loss(tensor_t* d_embeds) { backward_loss(1.0, d_embeds); }

    /// Accumulates parameter gradients from dlogits [B, T, V]; adds d(input embeddings) if asked.
    void backward(const tensor_t& dlogits, tensor_t* d_embeds = nullptr) {
        check_shape("vila::llm::llama backward", "dlogits", dlogits.shape(), acts_.logits.shape());
        const shape_t hs = acts_.h0.shape();
        for (tensor_t* t : {&g_.dn, &g_.dh_a, &g_.dh_b}) {
            t->ensure_shape(hs);
            t->zero();
        }
        if (config.tie_word_embeddings)
            nn::linear_backward(acts_.final_norm_out, embed_tokens.weight.value, dlogits, &g_.dn, embed_tokens.weight.grad_if_trainable(),
                                (tensor_t*)nullptr);
        else
            lm_head.backward(acts_.c_head, dlogits, &g_.dn);
        tensor_t* dh = &g_.dh_a;  // gradient at the current layer's output
        tensor_t* dx = &g_.dh_b;  // gradient at its input
        norm.backward(acts_.c_norm, g_.dn, dh);
        for (index_t l = index_t(layers.size()) - 1; l >= 0; --l) {
            dx->zero();
            layer_backward(layers[std::size_t(l)], acts_.layers[std::size_t(l)], *dh, *dx);
            std::swap(dh, dx);
        }
        if (acts_.from_ids && embed_tokens.weight.trainable) nn::embedding_backward(acts_.ids, *dh, embed_tokens.weight.grad);
        if (d_embeds) {
            check_shape("vila::llm::llama backward", "d_embeds", d_embeds->shape(), hs);
            nn::residual_backward(*dh, d_embeds, (tensor_t*)nullptr);
        }
    }

    // --- checkpoints -----------------------------------------------------------------------------

    /// Loads config.json and the safetensors (one file or shards) of an HF folder.
    static llama load(const std::filesystem::path& dir) {
        auto config = llama_config::load(dir);
        const io::safetensors_checkpoint ck(dir);  // header checked against the file first
        check_checkpoint(config, ck, dir.string());
        llama m(std::move(config));
        m.load_weights(ck, dir.string());
        return m;
    }

    /// Checks a checkpoint against a config before anything is allocated: the weights fit the
    /// memory limit (io::weight_bytes_limit), the checkpoint holds at least as many as the config
    /// implies, and every tensor is there with its shape and a float dtype.
    static void check_checkpoint(const llama_config& c, const io::safetensors_checkpoint& ck, const std::string& where, const std::string& prefix = "") {
        io::check_weight_memory(c.weight_count(), sizeof(T), where);
        io::check_holds(ck, prefix, c.weight_count(), where);
        io::check_parameter_shapes(ck, prefix, where, [&](auto&& f) { c.for_each_parameter_shape(f); });
    }

    /// Reads every parameter, checking names and shapes; extra tensors are reported.
    void load_weights(const io::safetensors_checkpoint& ckpt, const std::string& where, const std::string& prefix = "") {
        std::set<std::string> used;
        io::read_parameters(*this, ckpt, where, [&](const std::string& n) { return prefix + n; }, &used);
        const bool tied = config.tie_word_embeddings;
        io::check_no_strays(ckpt, where, used, prefix, [&](const std::string& n) {
            return (tied && n == prefix + "lm_head.weight") || n.find("rotary_emb.inv_freq") != std::string::npos;
        }, "not part of a " + config.architecture + " with this config");
    }

    /// Writes the HF folder (config.json, model.safetensors in F32 or BF16) as a unit: after a
    /// crash `dir` is the old folder or the new one, whole (io::write_folder). It replaces
    /// everything in `dir`: to add tokenizer files, compose with save_into.
    void save(const std::filesystem::path& dir, io::dtype type = io::dtype::f32) {
        io::write_folder(dir, [&](const std::filesystem::path& tmp) { save_into(tmp, type); });
    }
    /// Writes config.json and model.safetensors into the existing folder `dir` (each file
    /// atomically, the folder not): the piece to call inside io::write_folder.
    void save_into(const std::filesystem::path& dir, io::dtype type = io::dtype::f32) {
        std::map<std::string, io::tensor_to_write> out;
        collect_weights(out);
        io::save_safetensors(dir / "model.safetensors", out, {{"format", "pt"}}, type);
        io::write_json(dir / "config.json", config.to_json());
    }
    void collect_weights(std::map<std::string, io::tensor_to_write>& out, const std::string& prefix = "") {
        io::collect_parameters(*this, out, [&](const std::string& n) { return prefix + n; });
    }

    const tensor_t& rope_inv_freq() const noexcept { return inv_freq_; }

private:
    const tensor_t& run(const ids_t* mask, const ids_t* positions) {
        const tensor_t& h0 = acts_.h0;
        const index_t Bn = h0.dim(0), Tn = h0.dim(1);
        if (mask) {
            check_shape("vila::llm::llama", "attention_mask", mask->shape(), {Bn, Tn});
            acts_.mask = *mask;
        }
        acts_.masked = mask != nullptr;
        if (positions) {
            check_shape("vila::llm::llama", "position_ids", positions->shape(), {Bn, Tn});
            acts_.positions = *positions;
        } else {
            std::vector<std::int32_t> p(std::size_t(Bn * Tn));
            for (index_t i = 0; i < Bn * Tn; ++i) p[std::size_t(i)] = std::int32_t(i % Tn);
            acts_.positions = ids_t::from_host({Bn, Tn}, p);
        }
        nn::rope_table_compute(acts_.positions, inv_freq_, acts_.rope, "vila::llm::llama");
        const ids_t* m = acts_.masked ? &acts_.mask : nullptr;
        const tensor_t* h = &h0;
        for (std::size_t l = 0; l < layers.size(); ++l) {
            layer_forward(layers[l], *h, acts_.layers[l], acts_.scratch, acts_.rope, m);
            h = &acts_.layers[l].out;
        }
        head_forward(*h, acts_.final_norm_out, acts_.c_norm, acts_.c_head, acts_.logits);
        acts_.logits_hold_gradient = false;
        return acts_.logits;
    }

    /// dx += d(layer)/dx given dy at the layer's output.
    void layer_backward(layer& L, const layer_activations& A, const tensor_t& dy, tensor_t& dx) {
        auto zeroed = [](tensor_t& t, const shape_t& s) {
            t.ensure_shape(s);
            t.zero();
        };
        const ids_t* mask = acts_.masked ? &acts_.mask : nullptr;
        // out = h1 + down(m)
        zeroed(g_.dm, A.m.shape());
        L.down_proj.backward(A.c_down, dy, &g_.dm);
        zeroed(g_.dg, A.g.shape());
        zeroed(g_.du, A.u.shape());
        nn::swiglu_backward(A.g, A.u, g_.dm, &g_.dg, &g_.du);
        zeroed(g_.dn2, A.n2.shape());
        L.gate_proj.backward(A.c_gate, g_.dg, &g_.dn2);
        L.up_proj.backward(A.c_up, g_.du, &g_.dn2);
        zeroed(g_.dh1, A.h1.shape());
        nn::residual_backward(dy, &g_.dh1, (tensor_t*)nullptr);
        L.post_attention_layernorm.backward(A.c_n2, g_.dn2, &g_.dh1);
        // h1 = x + o_proj(a)
        nn::residual_backward(g_.dh1, &dx, (tensor_t*)nullptr);
        zeroed(g_.da, A.a.shape());
        L.o_proj.backward(A.c_o, g_.dh1, &g_.da);
        zeroed(g_.dqr, A.qr.shape());
        zeroed(g_.dkr, A.kr.shape());
        zeroed(g_.dv, A.v.shape());
        nn::attention_backward(attention, A.qr, A.kr, A.v, mask, A.a, A.lse, g_.da, &g_.dqr, &g_.dkr, &g_.dv);
        zeroed(g_.dq, A.qr.shape());
        zeroed(g_.dk, A.kr.shape());
        nn::rope_backward(g_.dqr, acts_.rope, g_.dq);
        nn::rope_backward(g_.dkr, acts_.rope, g_.dk);
        zeroed(g_.dn1, A.n1.shape());
        L.q_proj.backward(A.c_q, g_.dq, &g_.dn1);
        L.k_proj.backward(A.c_k, g_.dk, &g_.dn1);
        L.v_proj.backward(A.c_v, g_.dv, &g_.dn1);
        L.input_layernorm.backward(A.c_n1, g_.dn1, &dx);
    }

    /// Backward workspace shared by all layers (nothing here outlives one backward).
    struct gradient_scratch {
        tensor_t dn, dh_a, dh_b, dm, dg, du, dn2, dh1, da, dqr, dkr, dv, dq, dk, dn1;
    };

    void require_logits(const char* what) const {
        if (acts_.logits_hold_gradient)
            throw error(std::string("vila::llm::llama ") + what + ": the last backward_loss overwrote the logits with their gradient; run forward again");
    }

    tensor_t inv_freq_;
    activations acts_;
    gradient_scratch g_;
};

}  // namespace vila::llm
