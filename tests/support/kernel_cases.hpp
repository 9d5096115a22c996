// One runner for every kernel case in tests/fixtures/kernels.json, shared by the PyTorch
// parity tests, the finite-difference checks and the backend-agreement tests.
//
// run_case(c, dy, grads): returns the forward output; when dy is given, also runs the backward
// pass and accumulates d(sum(out * dy))/d(input) into grads (zero-initialised by the caller).
#pragma once
#include <map>
#include <string>

#include <nlohmann/json.hpp>
#include <vila/vila.hpp>

#include "fixtures.hpp"

namespace vila::test {

template <class T, class B>
struct kernel_case {
    std::string name, op;
    nlohmann::json attrs;
    std::map<std::string, tensor<T, B>> in;                 // differentiable inputs
    std::map<std::string, tensor<std::int32_t, B>> ints;   // ids, positions, masks, targets

    const tensor<T, B>& x(const std::string& k) const { return in.at(k); }
    const tensor<std::int32_t, B>* int_or_null(const std::string& k) const {
        auto it = ints.find(k);
        return it == ints.end() ? nullptr : &it->second;
    }
    const tensor<T, B>* in_or_null(const std::string& k) const {
        auto it = in.find(k);
        return it == in.end() ? nullptr : &it->second;
    }
};

template <class T, class B>
kernel_case<T, B> case_from_json(const nlohmann::json& j) {
    kernel_case<T, B> c;
    c.name = j.at("name");
    c.op = j.at("op");
    c.attrs = j.at("attrs");
    for (auto& [k, v] : j.at("inputs").items()) c.in.emplace(k, tensor_from_json<T, B>(v));
    for (auto& [k, v] : j.at("ints").items()) c.ints.emplace(k, tensor_from_json<std::int32_t, B>(v));
    return c;
}

template <class T, class B>
using grad_map = std::map<std::string, tensor<T, B>>;

template <class Act, class T, class B>
tensor<T, B> run_activation(const kernel_case<T, B>& c, const tensor<T, B>* dy, grad_map<T, B>* g) {
    tensor<T, B> y;
    nn::activation_forward<Act>(c.x("x"), y);
    if (dy) nn::activation_backward<Act>(c.x("x"), *dy, g->at("x"));
    return y;
}

template <class T, class B>
tensor<T, B> run_case(const kernel_case<T, B>& c, const tensor<T, B>* dy = nullptr, grad_map<T, B>* g = nullptr) {
    auto grad = [&](const std::string& k) -> tensor<T, B>* {
        auto it = g->find(k);
        return it == g->end() ? nullptr : &it->second;
    };
    tensor<T, B> y;
    const std::string& op = c.op;
    if (op == "linear") {
        nn::linear_forward(c.x("x"), c.x("weight"), c.in_or_null("bias"), y);
        if (dy) nn::linear_backward(c.x("x"), c.x("weight"), *dy, grad("x"), grad("weight"), grad("bias"));
    } else if (op == "embedding") {
        nn::embedding_forward(c.ints.at("ids"), c.x("weight"), y);
        if (dy) nn::embedding_backward(c.ints.at("ids"), *dy, *grad("weight"));
    } else if (op == "layer_norm") {
        tensor<T, B> mean, rstd;
        const T eps = c.attrs.at("eps").template get<T>();
        nn::layer_norm_forward(c.x("x"), c.x("weight"), c.in_or_null("bias"), eps, y, mean, rstd);
        if (dy)
            nn::layer_norm_backward(c.x("x"), c.x("weight"), mean, rstd, *dy, grad("x"), grad("weight"), grad("bias"));
    } else if (op == "rms_norm") {
        tensor<T, B> rstd;
        nn::rms_norm_forward(c.x("x"), c.x("weight"), c.attrs.at("eps").template get<T>(), y, rstd);
        if (dy) nn::rms_norm_backward(c.x("x"), c.x("weight"), rstd, *dy, grad("x"), grad("weight"));
    } else if (op == "gelu_erf") {
        return run_activation<nn::gelu_erf>(c, dy, g);
    } else if (op == "gelu_tanh") {
        return run_activation<nn::gelu_tanh>(c, dy, g);
    } else if (op == "quick_gelu") {
        return run_activation<nn::quick_gelu>(c, dy, g);
    } else if (op == "silu") {
        return run_activation<nn::silu>(c, dy, g);
    } else if (op == "swiglu") {
        nn::swiglu_forward(c.x("gate"), c.x("up"), y);
        if (dy) nn::swiglu_backward(c.x("gate"), c.x("up"), *dy, grad("gate"), grad("up"));
    } else if (op == "softmax") {
        nn::softmax_forward(c.x("x"), y);
        if (dy) nn::softmax_backward(y, *dy, *grad("x"));
    } else if (op == "residual") {
        nn::residual_forward(c.x("a"), c.x("b"), y);
        if (dy) nn::residual_backward(*dy, grad("a"), grad("b"));
    } else if (op == "rope") {
        const auto freq = nn::rope_inv_freq<T>(c.attrs.at("head_dim").template get<index_t>(),
                                               c.attrs.at("theta").template get<double>());
        const auto inv_freq = tensor<T, B>::from_host({index_t(freq.size())}, freq);
        nn::rope_forward(c.x("x"), c.ints.at("positions"), inv_freq, y);
        if (dy) nn::rope_backward(*dy, c.ints.at("positions"), inv_freq, *grad("x"));
    } else if (op == "attention") {
        nn::attention_config cfg;
        cfg.heads = c.attrs.at("heads");
        cfg.kv_heads = c.attrs.at("kv_heads");
        cfg.head_dim = c.attrs.at("head_dim");
        cfg.causal = c.attrs.at("causal");
        tensor<T, B> lse;
        const auto* mask = c.int_or_null("key_mask");
        nn::attention_forward(cfg, c.x("q"), c.x("k"), c.x("v"), mask, y, lse);
        if (dy)
            nn::attention_backward(cfg, c.x("q"), c.x("k"), c.x("v"), mask, y, lse, *dy, grad("q"), grad("k"), grad("v"));
    } else if (op == "cross_entropy") {
        tensor<T, B> lse;
        const auto res = nn::cross_entropy_forward(c.x("logits"), c.ints.at("targets"), lse);
        y = tensor<T, B>::from_host({}, {res.loss});
        if (dy) {
            nn::cross_entropy_backward(c.x("logits"), c.ints.at("targets"), lse, res.count, dy->to_host().at(0),
                                       *grad("logits"));
            // the in-place form (llama's backward_loss) writes the same gradient over the logits
            tensor<T, B> in_place = c.x("logits");
            nn::cross_entropy_backward_inplace(in_place, c.ints.at("targets"), lse, res.count, dy->to_host().at(0));
            tensor<T, B> fresh(in_place.shape());
            nn::cross_entropy_backward(c.x("logits"), c.ints.at("targets"), lse, res.count, dy->to_host().at(0), fresh);
            CHECK(in_place.to_host() == fresh.to_host());
        }
    } else {
        FAIL("unknown op in fixture: " << op);
    }
    return y;
}

/// Zero gradients shaped like every differentiable input.
template <class T, class B>
grad_map<T, B> zero_grads(const kernel_case<T, B>& c) {
    grad_map<T, B> g;
    for (const auto& [k, v] : c.in) g.emplace(k, tensor<T, B>(v.shape()));
    return g;
}

/// All kernel cases of the fixture, for iteration in tests.
inline const nlohmann::json& kernel_fixture_cases() { return load_json_fixture("kernels.json").at("cases"); }

}  // namespace vila::test
