// vila/vision/vit.hpp — the vision transformer of VILA's vision towers, CLIP and SigLIP flavours
// as policies, forward and backward, with HF weight names and config.json.
//
//   clip:   patches (conv, no bias) + class token + positions, pre_layrnorm, quick_gelu MLP
//   siglip: patches (conv with bias) + positions, no class token, gelu_pytorch_tanh MLP
// Each encoder layer: h += out_proj(attn(ln1(h))) (bidirectional, q/k/v biases);
//                     h += fc2(act(fc1(ln2(h)))).
// Features are HF's hidden_states[select_layer] (VILA: -2; index 0 is the encoder input), and
// select_feature "patch" drops the first token (CLIP's class token), "cls_patch" keeps all.
// Only the layers up to the selected one run. post_layernorm is loaded but, as in VILA, not
// applied to the features.
// Shapes: pixels [B, C, H, W] (HF's pixel_values), features [B, tokens, D].
#pragma once
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/param.hpp"
#include "../io/json.hpp"
#include "../io/parameters.hpp"
#include "../io/safetensors.hpp"
#include "../nn/activations.hpp"
#include "../nn/attention.hpp"
#include "../nn/layer_norm.hpp"
#include "../nn/linear.hpp"
#include "../nn/residual.hpp"

namespace vila::vision {

struct vit_config {
    std::string model_type;  // clip_vision_model | siglip_vision_model
    index_t hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0, num_attention_heads = 0;
    index_t num_channels = 3, image_size = 224, patch_size = 14;
    double layer_norm_eps = 1e-5;
    std::string hidden_act;
    int select_layer = -2;
    std::string select_feature = "patch";
    index_t grid() const { return image_size / patch_size; }
    /// A lower bound of the weights this config implies (the layers' matrices), as llama_config's.
    double weight_count() const {
        const double D = double(hidden_size);
        return double(num_hidden_layers) * (4 * D * D + 2 * D * double(intermediate_size));
    }

    /// Reads a CLIPVisionModel / SiglipVisionModel config.json (or a full CLIP/SigLIP config's vision_config).
    static vit_config from_json(const nlohmann::json& j0, const std::string& file) {
        const nlohmann::json& j = j0.contains("vision_config") ? j0["vision_config"] : j0;
        const io::config_fields f(j, file, &j == &j0 ? "" : "vision_config.");
        auto fail = [&](const std::string& key, const std::string& why) { f.fail(key, why); };
        vit_config c;
        c.model_type = f.str("model_type", "");
        if (c.model_type != "clip_vision_model" && c.model_type != "siglip_vision_model")
            fail("model_type", "'" + c.model_type + "' is not a supported vision tower (clip_vision_model, siglip_vision_model)");
        // a key present wins; else CLIPVisionConfig's / SiglipVisionConfig's default (transformers 5.2)
        const bool clip = c.model_type == "clip_vision_model";
        auto int_or = [&](const char* k, index_t fallback) { return index_t(f.integer(k, fallback, 1, INT32_MAX)); };
        c.hidden_size = int_or("hidden_size", 768);
        c.intermediate_size = int_or("intermediate_size", 3072);
        c.num_hidden_layers = int_or("num_hidden_layers", 12);
        c.num_attention_heads = int_or("num_attention_heads", 12);
        c.image_size = int_or("image_size", 224);
        c.patch_size = int_or("patch_size", clip ? 32 : 16);
        c.num_channels = int_or("num_channels", 3);
        c.layer_norm_eps = f.number("layer_norm_eps", clip ? 1e-5 : 1e-6);
        c.hidden_act = f.str("hidden_act", clip ? "quick_gelu" : "gelu_pytorch_tanh");
        if (c.hidden_act != "quick_gelu" && c.hidden_act != "gelu_pytorch_tanh" && c.hidden_act != "gelu")
            fail("hidden_act", "'" + c.hidden_act + "' is not supported (quick_gelu, gelu_pytorch_tanh, gelu)");
        if (c.hidden_size % c.num_attention_heads) fail("num_attention_heads", "does not divide hidden_size");
        if (c.image_size % c.patch_size) fail("patch_size", "does not divide image_size");
        return c;
    }
    /// The tower's config.json as transformers writes it (VILA's vision_tower/config.json).
    nlohmann::json to_json() const {
        const bool clip = model_type == "clip_vision_model";
        return {{"architectures", {clip ? "CLIPVisionModel" : "SiglipVisionModel"}},
                {"model_type", model_type},
                {"hidden_size", hidden_size},
                {"intermediate_size", intermediate_size},
                {"num_hidden_layers", num_hidden_layers},
                {"num_attention_heads", num_attention_heads},
                {"num_channels", num_channels},
                {"image_size", image_size},
                {"patch_size", patch_size},
                {"layer_norm_eps", layer_norm_eps},
                {"hidden_act", hidden_act},
                {"torch_dtype", "float32"}};
    }
    static vit_config load(const std::filesystem::path& dir) {
        const auto file = std::filesystem::is_directory(dir) ? dir / "config.json" : dir;
        return from_json(io::read_json(file), file.string());
    }
};

namespace detail {
// Work items are rows of contiguous elements (a patch row, a token): index arithmetic (64-bit
// divisions) once per row instead of per element, and the inner loops vectorise.

/// im2col for a stride-P convolution: patches[b, p, (c, ky, kx)] = pixels[b, c, py*P + ky, px*P + kx].
/// One work item per (b, p, c, ky): P contiguous pixels.
template <class T>
struct im2col {
    const T* pixels;
    T* patches;
    index_t C, H, W, P, grid;
    VILA_HOST_DEVICE void operator()(index_t row) const {
        const index_t ky = row % P, c = (row / P) % C, p = (row / (P * C)) % (grid * grid), b = row / (P * C * grid * grid);
        const index_t py = p / grid, px = p % grid;
        const T* src = pixels + ((b * C + c) * H + py * P + ky) * W + px * P;
        T* dst = patches + row * P;  // rows are laid out (b, p, c, ky), each P long
        for (index_t kx = 0; kx < P; ++kx) dst[kx] = src[kx];
    }
};
/// h[b, t, :] = (t < offset ? cls : patch_out[b, t - offset, :]) + pos[t, :]; one work item per (b, t).
template <class T>
struct assemble_tokens {
    const T* patch_out;
    const T* cls;  // null: no class token
    const T* pos;
    T* h;
    index_t tokens, D, offset;
    VILA_HOST_DEVICE void operator()(index_t row) const {
        const index_t t = row % tokens, b = row / tokens;
        const T* src = t < offset ? cls : patch_out + (b * (tokens - offset) + t - offset) * D;
        const T* pr = pos + t * D;
        T* dst = h + row * D;
        for (index_t d = 0; d < D; ++d) dst[d] = src[d] + pr[d];
    }
};
/// Gradients of the token assembly: dpos[t] += sum_b dh[b, t]; dcls += sum_b dh[b, 0]; dpatch = dh[:, offset:].
template <class T>
struct tokens_backward_col {
    const T* dh;
    T* dpos;  // may be null
    T* dcls;  // may be null
    index_t batch, tokens, D, offset;
    VILA_HOST_DEVICE void operator()(index_t idx) const {  // idx = t * D + d
        const index_t d = idx % D, t = idx / D;
        T acc = 0;
        for (index_t b = 0; b < batch; ++b) acc += dh[(b * tokens + t) * D + d];
        if (dpos) dpos[idx] += acc;
        if (dcls && t < offset) dcls[d] += acc;
    }
};
/// dst[b, t, :] = src[b, t + first, :] (or, scattering, its gradient); one work item per (b, t).
template <class T>
struct drop_tokens {
    const T* src;
    T* dst;
    index_t tokens_dst, tokens_src, D, first;
    bool scatter;
    VILA_HOST_DEVICE void operator()(index_t row) const {
        const index_t t = row % tokens_dst, b = row / tokens_dst;
        const index_t s = (b * tokens_src + t + first) * D, o = row * D;
        if (scatter)
            for (index_t d = 0; d < D; ++d) dst[s + d] += src[o + d];
        else
            for (index_t d = 0; d < D; ++d) dst[o + d] = src[s + d];
    }
};
}  // namespace detail

/// The CLIP flavour (class token, pre_layrnorm, quick_gelu).
struct clip {
    static constexpr const char* model_type = "clip_vision_model";
    static constexpr bool class_token = true, patch_bias = false, pre_norm = true;
};
/// The SigLIP flavour (no class token, patch bias, gelu tanh).
struct siglip {
    static constexpr const char* model_type = "siglip_vision_model";
    static constexpr bool class_token = false, patch_bias = true, pre_norm = false;
};

template <class Flavor, class T = float, class B = backend::cpu>
class vit {
public:
    using tensor_t = tensor<T, B>;
    /// One encoder layer's parameters.
    struct layer {
        nn::layer_norm<T, B> ln1, ln2;
        nn::linear<T, B> q, k, v, out, fc1, fc2;
    };
    /// What one layer's forward keeps for its backward.
    struct layer_activations {
        typename nn::layer_norm<T, B>::cache c_ln1, c_ln2;
        typename nn::linear<T, B>::cache c_q, c_k, c_v, c_out, c_fc1, c_fc2;
        tensor_t n1, qt, kt, vt, a, lse, h1, n2, f1, act, out_h;
    };

    vit_config config;
    param<T, B> patch_weight, patch_bias, class_embedding, position_embedding;
    nn::layer_norm<T, B> pre_layrnorm, post_layernorm;
    std::vector<layer> layers;
    nn::attention_config attention;

    explicit vit(const vit_config& c) : config(c) {
        if (c.model_type != Flavor::model_type)
            throw config_error("vila::vision::vit: config is " + c.model_type + ", the model type expects " + Flavor::model_type);
        const std::string p = "vision_model.";
        const index_t D = c.hidden_size;
        const index_t tokens = c.grid() * c.grid() + (Flavor::class_token ? 1 : 0);
        patch_weight = param<T, B>(p + "embeddings.patch_embedding.weight", {D, c.num_channels, c.patch_size, c.patch_size});
        if (Flavor::patch_bias) patch_bias = param<T, B>(p + "embeddings.patch_embedding.bias", {D});
        if (Flavor::class_token) class_embedding = param<T, B>(p + "embeddings.class_embedding", {D});
        position_embedding = param<T, B>(p + "embeddings.position_embedding.weight", {tokens, D});
        if (Flavor::pre_norm) pre_layrnorm = nn::layer_norm<T, B>({D, c.layer_norm_eps, true}, p + "pre_layrnorm");
        post_layernorm = nn::layer_norm<T, B>({D, c.layer_norm_eps, true}, p + "post_layernorm");
        for (index_t i = 0; i < c.num_hidden_layers; ++i) {
            const std::string l = p + "encoder.layers." + std::to_string(i) + ".";
            layer L;
            L.ln1 = nn::layer_norm<T, B>({D, c.layer_norm_eps, true}, l + "layer_norm1");
            L.ln2 = nn::layer_norm<T, B>({D, c.layer_norm_eps, true}, l + "layer_norm2");
            L.q = nn::linear<T, B>({D, D, true}, l + "self_attn.q_proj");
            L.k = nn::linear<T, B>({D, D, true}, l + "self_attn.k_proj");
            L.v = nn::linear<T, B>({D, D, true}, l + "self_attn.v_proj");
            L.out = nn::linear<T, B>({D, D, true}, l + "self_attn.out_proj");
            L.fc1 = nn::linear<T, B>({D, c.intermediate_size, true}, l + "mlp.fc1");
            L.fc2 = nn::linear<T, B>({c.intermediate_size, D, true}, l + "mlp.fc2");
            layers.push_back(std::move(L));
        }
        attention = {c.num_attention_heads, c.num_attention_heads, D / c.num_attention_heads, false, 0.0};
        acts_.resize(layers.size());
    }

    static vit load(const std::filesystem::path& dir) {
        auto config = vit_config::load(dir);
        const io::safetensors_checkpoint ck(dir);
        io::check_holds(ck, "", config.weight_count(), dir.string());
        vit m(std::move(config));
        m.load_weights(ck, dir.string());
        return m;
    }
    /// Reads every parameter (names and shapes checked); the unused attention-pooling head of
    /// SigLIP ("vision_model.head.*") may be present. `prefix` locates the tower inside a larger
    /// checkpoint (LLaVA's "vision_tower."); only names under it are checked for strays.
    void load_weights(const io::safetensors_checkpoint& ck, const std::string& where, const std::string& prefix = "") {
        // transformers 4.x (and VILA's checkpoints) name tensors "vision_model.*"; 5.x saves a
        // bare vision model without that prefix. Accept both.
        const std::string vm = "vision_model.";
        const bool prefixed = ck.contains(prefix + position_embedding.name);
        std::set<std::string> used;
        io::read_parameters(*this, ck, where, [&](const std::string& full) { return prefix + (prefixed ? full : full.substr(vm.size())); },
                            &used);
        const std::string head = prefix + (prefixed ? vm : "") + "head.";
        io::check_no_strays(ck, where, used, prefix, [&](const std::string& n) {
            return n.rfind(head, 0) == 0 || n.find("position_ids") != std::string::npos;
        }, "for a " + config.model_type);
    }

    template <class F>
    void for_each_parameter(F&& f) {
        if (Flavor::class_token) f(class_embedding.name, class_embedding);
        f(patch_weight.name, patch_weight);
        if (Flavor::patch_bias) f(patch_bias.name, patch_bias);
        f(position_embedding.name, position_embedding);
        if (Flavor::pre_norm) pre_layrnorm.for_each_parameter(f);
        for (auto& L : layers) {
            L.ln1.for_each_parameter(f);
            for (auto* l : {&L.k, &L.v, &L.q, &L.out}) l->for_each_parameter(f);
            L.ln2.for_each_parameter(f);
            L.fc1.for_each_parameter(f);
            L.fc2.for_each_parameter(f);
        }
        post_layernorm.for_each_parameter(f);
    }

    /// Number of layers run for the selected hidden state.
    index_t layers_run() const {
        const index_t n = config.num_hidden_layers, s = config.select_layer;
        const index_t idx = s < 0 ? n + 1 + s : s;
        if (idx < 0 || idx > n) throw config_error("vila::vision::vit: select_layer " + std::to_string(s) + " outside the model");
        return idx;
    }
    index_t tokens() const { return config.grid() * config.grid() + (Flavor::class_token ? 1 : 0); }
    index_t feature_tokens() const { return tokens() - (config.select_feature == "patch" ? 1 : 0); }

    /// The selected features of the last forward.
    const tensor_t& features() const noexcept { return features_; }

    /// Selected features [B, feature_tokens, D] of pixels [B, C, H, W].
    const tensor_t& forward(const tensor_t& pixels) {
        const auto& c = config;
        check_shape("vila::vision::vit", "pixels", pixels.shape(), {any, c.num_channels, c.image_size, c.image_size});
        const index_t Bn = pixels.dim(0), D = c.hidden_size, P = c.patch_size, g = c.grid(), Tn = tokens();
        const index_t K = c.num_channels * P * P, offset = Flavor::class_token ? 1 : 0;
        batch_ = Bn;
        patches_.ensure_shape({Bn, g * g, K});
        B::parallel_for(patches_.size() / P, detail::im2col<T>{pixels.data(), patches_.data(), c.num_channels, c.image_size, c.image_size, P, g});
        patch_weight.value.reshape({D, K});
        nn::linear_forward(patches_, patch_weight.value, Flavor::patch_bias ? &patch_bias.value : nullptr, patch_out_);
        patch_weight.value.reshape({D, c.num_channels, P, P});
        embeddings_.ensure_shape({Bn, Tn, D});
        B::parallel_for(embeddings_.size() / D, detail::assemble_tokens<T>{patch_out_.data(), Flavor::class_token ? class_embedding.value.data() : nullptr,
                                                                         position_embedding.value.data(), embeddings_.data(), Tn, D, offset});
        const tensor_t* h = &embeddings_;
        if (Flavor::pre_norm) {
            pre_layrnorm.forward(embeddings_, pre_out_, c_pre_);
            h = &pre_out_;
        }
        for (index_t i = 0; i < layers_run(); ++i) {
            layer_forward(layers[std::size_t(i)], acts_[std::size_t(i)], *h);
            h = &acts_[std::size_t(i)].out_h;
        }
        selected_input_ = h;
        const index_t first = Tn - feature_tokens();
        features_.ensure_shape({Bn, Tn - first, D});
        B::parallel_for(features_.size() / D, detail::drop_tokens<T>{h->data(), features_.data(), Tn - first, Tn, D, first, false});
        return features_;
    }

    /// Accumulates parameter gradients from d(features). (Pixels get no gradient.)
    void backward(const tensor_t& dfeatures) {
        const auto& c = config;
        check_shape("vila::vision::vit backward", "dfeatures", dfeatures.shape(), features_.shape());
        const index_t D = c.hidden_size, Tn = tokens(), first = Tn - feature_tokens();
        tensor_t dh(selected_input_->shape()), dx(selected_input_->shape());
        B::parallel_for(dfeatures.size() / D, detail::drop_tokens<T>{dfeatures.data(), dh.data(), Tn - first, Tn, D, first, true});
        for (index_t i = layers_run() - 1; i >= 0; --i) {
            dx.zero();
            layer_backward(layers[std::size_t(i)], acts_[std::size_t(i)], dh, dx);
            std::swap(dh, dx);
        }
        tensor_t demb(embeddings_.shape());
        if (Flavor::pre_norm) pre_layrnorm.backward(c_pre_, dh, &demb);
        else demb = dh;
        const index_t offset = Flavor::class_token ? 1 : 0;
        B::parallel_for(Tn * D, detail::tokens_backward_col<T>{demb.data(), position_embedding.grad_if_trainable() ? position_embedding.grad.data() : nullptr,
                                                              (Flavor::class_token && class_embedding.trainable) ? class_embedding.grad.data() : nullptr,
                                                              batch_, Tn, D, offset});
        if (patch_weight.trainable || (Flavor::patch_bias && patch_bias.trainable)) {
            tensor_t dpatch({batch_, Tn - offset, D});
            B::parallel_for(dpatch.size() / D, detail::drop_tokens<T>{demb.data(), dpatch.data(), Tn - offset, Tn, D, offset, false});
            const index_t K = c.num_channels * c.patch_size * c.patch_size;
            patch_weight.value.reshape({D, K});
            if (patch_weight.trainable) patch_weight.grad.reshape({D, K});
            nn::linear_backward(patches_, patch_weight.value, dpatch, (tensor_t*)nullptr, patch_weight.grad_if_trainable(),
                                Flavor::patch_bias ? patch_bias.grad_if_trainable() : nullptr);
            patch_weight.value.reshape({D, c.num_channels, c.patch_size, c.patch_size});
            if (patch_weight.trainable) patch_weight.grad.reshape(patch_weight.value.shape());
        }
    }

private:
    void act_forward(const tensor_t& x, tensor_t& y) const {
        if (config.hidden_act == "quick_gelu") nn::activation_forward<nn::quick_gelu>(x, y);
        else if (config.hidden_act == "gelu") nn::activation_forward<nn::gelu_erf>(x, y);
        else nn::activation_forward<nn::gelu_tanh>(x, y);
    }
    void act_backward(const tensor_t& x, const tensor_t& dy, tensor_t& dx) const {
        if (config.hidden_act == "quick_gelu") nn::activation_backward<nn::quick_gelu>(x, dy, dx);
        else if (config.hidden_act == "gelu") nn::activation_backward<nn::gelu_erf>(x, dy, dx);
        else nn::activation_backward<nn::gelu_tanh>(x, dy, dx);
    }
    void layer_forward(const layer& L, layer_activations& A, const tensor_t& x) {
        L.ln1.forward(x, A.n1, A.c_ln1);
        L.q.forward(A.n1, A.qt, &A.c_q);
        L.k.forward(A.n1, A.kt, &A.c_k);
        L.v.forward(A.n1, A.vt, &A.c_v);
        nn::attention_forward(attention, A.qt, A.kt, A.vt, (const tensor<std::int32_t, B>*)nullptr, A.a, A.lse);
        L.out.forward(A.a, o_, &A.c_out);
        nn::residual_forward(x, o_, A.h1);
        L.ln2.forward(A.h1, A.n2, A.c_ln2);
        L.fc1.forward(A.n2, A.f1, &A.c_fc1);
        act_forward(A.f1, A.act);
        L.fc2.forward(A.act, o_, &A.c_fc2);
        nn::residual_forward(A.h1, o_, A.out_h);
    }
    void layer_backward(layer& L, const layer_activations& A, const tensor_t& dy, tensor_t& dx) {
        tensor_t dact(A.act.shape()), df1(A.f1.shape()), dn2(A.n2.shape()), dh1(A.h1.shape()), da(A.a.shape());
        tensor_t dq(A.qt.shape()), dk(A.kt.shape()), dv(A.vt.shape()), dn1(A.n1.shape());
        L.fc2.backward(A.c_fc2, dy, &dact);
        act_backward(A.f1, dact, df1);
        L.fc1.backward(A.c_fc1, df1, &dn2);
        nn::residual_backward(dy, &dh1, (tensor_t*)nullptr);
        L.ln2.backward(A.c_ln2, dn2, &dh1);
        nn::residual_backward(dh1, &dx, (tensor_t*)nullptr);
        L.out.backward(A.c_out, dh1, &da);
        nn::attention_backward(attention, A.qt, A.kt, A.vt, (const tensor<std::int32_t, B>*)nullptr, A.a, A.lse, da, &dq, &dk, &dv);
        L.q.backward(A.c_q, dq, &dn1);
        L.k.backward(A.c_k, dk, &dn1);
        L.v.backward(A.c_v, dv, &dn1);
        L.ln1.backward(A.c_ln1, dn1, &dx);
    }

    std::vector<layer_activations> acts_;
    index_t batch_ = 0;
    tensor_t patches_, patch_out_, embeddings_, pre_out_, o_, features_;
    typename nn::layer_norm<T, B>::cache c_pre_;
    const tensor_t* selected_input_ = nullptr;
};

}  // namespace vila::vision
