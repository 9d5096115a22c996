// vila/llm/config.hpp — HF config.json -> the runtime configuration of a LLaMA-family decoder.
//
// Architectures: LlamaForCausalLM (LLaMA-2/3, Vicuna, Sheared-LLaMA), MistralForCausalLM
// (without sliding window), Qwen2ForCausalLM (q/k/v biases). rope_scaling: none/"default",
// "linear", "llama3". A missing required key, an unknown architecture or a setting that changes
// the math in a way vila does not implement throws vila::config_error naming the file and key.
#pragma once
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/shape.hpp"
#include "../error.hpp"
#include "../io/json.hpp"

namespace vila::llm {

struct rope_scaling {
    std::string type = "default";  // default | linear | llama3
    double factor = 1.0;
    double low_freq_factor = 1.0, high_freq_factor = 4.0;
    double original_max_position_embeddings = 8192;
};

struct llama_config {
    std::string architecture = "LlamaForCausalLM";
    std::string model_type = "llama";
    index_t hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
    index_t num_attention_heads = 0, num_key_value_heads = 0, head_dim = 0;
    index_t vocab_size = 0, max_position_embeddings = 2048;
    double rms_norm_eps = 1e-6, rope_theta = 10000.0;
    rope_scaling scaling;
    bool tie_word_embeddings = false;
    bool attention_bias = false;  // q, k, v, o biases (LLaMA option)
    bool qkv_bias = false;        // q, k, v biases only (Qwen2)
    bool mlp_bias = false;
    std::vector<index_t> eos_token_ids;
    index_t bos_token_id = -1;

    /// RoPE inverse frequencies [head_dim / 2] after rope_scaling (HF's computation, in double
    /// then rounded: matches HF's float32 table to an ulp).
    std::vector<double> inv_freq() const {
        std::vector<double> f(std::size_t(head_dim / 2));
        for (index_t i = 0; i < head_dim / 2; ++i) {
            // HF: 1 / base ** (arange(0, dim, 2).float() / dim), all in float32
            const float e = float(2 * i) / float(head_dim);
            f[std::size_t(i)] = double(1.0f / std::pow(float(rope_theta), e));
        }
        if (scaling.type == "linear") {
            for (auto& x : f) x = double(float(x) / float(scaling.factor));
        } else if (scaling.type == "llama3") {
            const double pi = 3.14159265358979323846;
            const double low_wavelen = scaling.original_max_position_embeddings / scaling.low_freq_factor;
            const double high_wavelen = scaling.original_max_position_embeddings / scaling.high_freq_factor;
            for (auto& x : f) {
                const double wavelen = 2 * pi / x;
                if (wavelen < high_wavelen) continue;  // high frequency: unchanged
                if (wavelen > low_wavelen) {
                    x = x / scaling.factor;  // low frequency: scaled
                    continue;
                }
                const double smooth = (scaling.original_max_position_embeddings / wavelen - scaling.low_freq_factor) /
                                      (scaling.high_freq_factor - scaling.low_freq_factor);
                x = (1 - smooth) * x / scaling.factor + smooth * x;
            }
        }
        return f;
    }

    static llama_config from_json(const nlohmann::json& j, const std::string& file) {
        auto fail = [&](const std::string& key, const std::string& why) -> void {
            throw config_error(file + ": " + key + ": " + why);
        };
        if (!j.is_object()) throw config_error(file + ": expected a JSON object");
        const io::config_fields f(j, file);
        llama_config c;
        if (j.contains("architectures")) {
            if (!j["architectures"].is_array() || j["architectures"].empty() || !j["architectures"][0].is_string())
                fail("architectures", "expected a list of names");
            c.architecture = j["architectures"][0].get<std::string>();
        }
        if (c.architecture != "LlamaForCausalLM" && c.architecture != "Qwen2ForCausalLM" && c.architecture != "MistralForCausalLM")
            fail("architectures", "unsupported architecture '" + c.architecture +
                                      "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
        c.model_type = f.str("model_type", c.architecture == "Qwen2ForCausalLM" ? "qwen2" : "llama");
        auto req_int = [&](const char* key) -> index_t {
            if (!j.contains(key)) fail(key, "missing (required)");
            return index_t(f.integer(key, 0, 1, INT32_MAX));
        };
        c.hidden_size = req_int("hidden_size");
        c.intermediate_size = req_int("intermediate_size");
        c.num_hidden_layers = req_int("num_hidden_layers");
        c.num_attention_heads = req_int("num_attention_heads");
        c.vocab_size = req_int("vocab_size");
        c.num_key_value_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null() ? req_int("num_key_value_heads")
                                                                                                         : c.num_attention_heads;
        c.head_dim = j.contains("head_dim") && !j["head_dim"].is_null() ? req_int("head_dim") : c.hidden_size / c.num_attention_heads;
        if (c.num_attention_heads % c.num_key_value_heads)
            fail("num_key_value_heads", std::to_string(c.num_key_value_heads) + " does not divide num_attention_heads " +
                                            std::to_string(c.num_attention_heads));
        if (c.head_dim % 2) fail("head_dim", "must be even for rotary embeddings");
        if (j.contains("max_position_embeddings")) c.max_position_embeddings = req_int("max_position_embeddings");
        c.rms_norm_eps = f.number("rms_norm_eps", 1e-6);
        c.rope_theta = f.number("rope_theta", 10000.0);
        c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
        c.attention_bias = f.boolean("attention_bias", false);
        c.mlp_bias = f.boolean("mlp_bias", false);
        c.qkv_bias = c.architecture == "Qwen2ForCausalLM";
        const std::string act = f.str("hidden_act", "silu");
        if (act != "silu") fail("hidden_act", "'" + act + "' is not supported (LLaMA-family models use silu)");
        if (f.boolean("use_sliding_window", false)) fail("use_sliding_window", "sliding-window attention is not supported");
        if (c.architecture == "MistralForCausalLM" && f.number("sliding_window", 1e300) < double(c.max_position_embeddings))
            fail("sliding_window", "sliding-window attention is not supported");
        if (j.contains("layer_types") && j["layer_types"].is_array())
            for (const auto& t : j["layer_types"])
                if (t != "full_attention") fail("layer_types", "only full_attention layers are supported, got " + t.dump());
        // transformers >= 5 writes "rope_parameters" (rope_theta inside); 4.x "rope_theta" + "rope_scaling"
        const char* rope_key = j.contains("rope_parameters") && !j["rope_parameters"].is_null() ? "rope_parameters" : "rope_scaling";
        if (std::string(rope_key) == "rope_parameters" && j[rope_key].is_object() && j[rope_key].contains("rope_theta")) {
            c.rope_theta = io::config_fields(j[rope_key], file, "rope_parameters.").number("rope_theta", c.rope_theta);
        }
        if (j.contains(rope_key) && !j[rope_key].is_null()) {
            const auto& r = j[rope_key];
            if (!r.is_object()) fail(rope_key, "expected an object or null");
            const io::config_fields rf(r, file, std::string(rope_key) + ".");
            c.scaling.type = rf.str("rope_type", rf.str("type", "default"));
            c.scaling.factor = rf.number("factor", 1.0);
            if (c.scaling.type == "llama3") {
                c.scaling.low_freq_factor = rf.number("low_freq_factor", 1.0);
                c.scaling.high_freq_factor = rf.number("high_freq_factor", 4.0);
                c.scaling.original_max_position_embeddings = rf.number("original_max_position_embeddings", 8192);
            } else if (c.scaling.type != "linear" && c.scaling.type != "default") {
                fail(std::string(rope_key) + ".rope_type", "'" + c.scaling.type + "' is not supported (default, linear, llama3)");
            }
        }
        auto ids_of = [&](const char* key) {
            std::vector<index_t> out;
            if (!j.contains(key) || j[key].is_null()) return out;
            if (!j[key].is_array()) out.push_back(index_t(f.integer(key, 0, 0, INT32_MAX)));
            else
                for (const auto& v : j[key]) out.push_back(index_t(f.integer_value(key, v, 0, INT32_MAX)));
            return out;
        };
        c.eos_token_ids = ids_of("eos_token_id");
        const auto bos = ids_of("bos_token_id");
        if (!bos.empty()) c.bos_token_id = bos[0];
        return c;
    }

    /// A lower bound of the weights this config implies (embeddings and the layers' matrices;
    /// norms, biases and an untied head left out): loaders compare it with what the checkpoint
    /// holds before allocating, so a config alone cannot make them allocate gigabytes.
    double weight_count() const {
        const double H = double(hidden_size), q = double(num_attention_heads * head_dim), kv = double(num_key_value_heads * head_dim);
        return double(vocab_size) * H + double(num_hidden_layers) * (2 * H * q + 2 * H * kv + 3 * H * double(intermediate_size));
    }

    /// Visits (HF name, shape) of every parameter llm::llama allocates for this config, in its
    /// order, without allocating: loaders check a checkpoint against it first. f returns false
    /// to stop (a missing tensor), so a config of 2^31 layers costs only as many visits as the
    /// checkpoint has tensors. tests/llm/test_llama_parity.cpp holds it equal to the model.
    template <class F>
    void for_each_parameter_shape(F&& f) const {
        const index_t D = hidden_size, Q = num_attention_heads * head_dim, KV = num_key_value_heads * head_dim, Fm = intermediate_size;
        if (!f(std::string("model.embed_tokens.weight"), shape_t{vocab_size, D})) return;
        const bool qkv = attention_bias || qkv_bias;
        for (index_t i = 0; i < num_hidden_layers; ++i) {
            const std::string p = "model.layers." + std::to_string(i) + ".";
            auto linear = [&](const char* n, index_t in, index_t out, bool bias) {
                return f(p + n + ".weight", shape_t{out, in}) && (!bias || f(p + n + ".bias", shape_t{out}));
            };
            if (!(f(p + "input_layernorm.weight", shape_t{D}) && linear("self_attn.q_proj", D, Q, qkv) && linear("self_attn.k_proj", D, KV, qkv) &&
                  linear("self_attn.v_proj", D, KV, qkv) && linear("self_attn.o_proj", Q, D, attention_bias) &&
                  f(p + "post_attention_layernorm.weight", shape_t{D}) && linear("mlp.gate_proj", D, Fm, mlp_bias) &&
                  linear("mlp.up_proj", D, Fm, mlp_bias) && linear("mlp.down_proj", Fm, D, mlp_bias)))
                return;
        }
        if (!f(std::string("model.norm.weight"), shape_t{D})) return;
        if (!tie_word_embeddings) f(std::string("lm_head.weight"), shape_t{vocab_size, D});
    }

    static llama_config load(const std::filesystem::path& path) {
        const auto file = std::filesystem::is_directory(path) ? path / "config.json" : path;
        return from_json(io::read_json(file), file.string());
    }

    nlohmann::json to_json() const {
        nlohmann::json j = {{"architectures", {architecture}},
                            {"model_type", model_type},
                            {"hidden_size", hidden_size},
                            {"intermediate_size", intermediate_size},
                            {"num_hidden_layers", num_hidden_layers},
                            {"num_attention_heads", num_attention_heads},
                            {"num_key_value_heads", num_key_value_heads},
                            {"head_dim", head_dim},
                            {"vocab_size", vocab_size},
                            {"max_position_embeddings", max_position_embeddings},
                            {"rms_norm_eps", rms_norm_eps},
                            {"rope_theta", rope_theta},
                            {"tie_word_embeddings", tie_word_embeddings},
                            {"hidden_act", "silu"},
                            {"torch_dtype", "float32"}};
        if (architecture != "Qwen2ForCausalLM") {
            j["attention_bias"] = attention_bias;
            j["mlp_bias"] = mlp_bias;
        }
        if (scaling.type == "linear") j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", scaling.factor}};
        else if (scaling.type == "llama3")
            j["rope_scaling"] = {{"rope_type", "llama3"},
                                 {"factor", scaling.factor},
                                 {"low_freq_factor", scaling.low_freq_factor},
                                 {"high_freq_factor", scaling.high_freq_factor},
                                 {"original_max_position_embeddings", scaling.original_max_position_embeddings}};
        else j["rope_scaling"] = nullptr;
        if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
        if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
        else if (!eos_token_ids.empty()) j["eos_token_id"] = eos_token_ids;
        return j;
    }
};

}  // namespace vila::llm
