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
        const family& fam = family_of(j, f);
        c.architecture = fam.architecture;
        c.model_type = fam.model_type;
        // a key present wins; else the default of transformers' config class for model_type
        auto int_or = [&](const char* key, index_t fallback) -> index_t {
            return index_t(f.integer(key, fallback, 1, INT32_MAX));
        };
        c.hidden_size = int_or("hidden_size", fam.hidden_size);
        c.intermediate_size = int_or("intermediate_size", fam.intermediate_size);
        c.num_hidden_layers = int_or("num_hidden_layers", fam.num_hidden_layers);
        c.num_attention_heads = int_or("num_attention_heads", fam.num_attention_heads);
        c.vocab_size = int_or("vocab_size", fam.vocab_size);
        // absent: the class default (LLaMA: the head count); null: the head count (all three)
        c.num_key_value_heads = !j.contains("num_key_value_heads") && fam.num_key_value_heads ? fam.num_key_value_heads
                                                                                              : int_or("num_key_value_heads", c.num_attention_heads);
        if (c.hidden_size % c.num_attention_heads && !f.has("head_dim"))
            fail("num_attention_heads", std::to_string(c.num_attention_heads) + " does not divide hidden_size " +
                                            std::to_string(c.hidden_size) + " (and no head_dim is given)");
        c.head_dim = int_or("head_dim", c.hidden_size / c.num_attention_heads);
        if (c.num_attention_heads % c.num_key_value_heads)
            fail("num_key_value_heads", std::to_string(c.num_key_value_heads) + " does not divide num_attention_heads " +
                                            std::to_string(c.num_attention_heads));
        if (c.head_dim % 2) fail("head_dim", "must be even for rotary embeddings");
        c.max_position_embeddings = int_or("max_position_embeddings", fam.max_position_embeddings);
        c.rms_norm_eps = f.number("rms_norm_eps", 1e-6);
        c.rope_theta = f.number("rope_theta", 10000.0);
        c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
        // LLaMA reads attention_bias / mlp_bias; Mistral never has biases and Qwen2 always has
        // q/k/v biases (and no others), whatever the keys say, as transformers' modules are built
        if (fam.reads_bias_keys) {
            c.attention_bias = f.boolean("attention_bias", false);
            c.mlp_bias = f.boolean("mlp_bias", false);
        }
        c.qkv_bias = fam.qkv_bias;
        const std::string act = f.str("hidden_act", "silu");
        if (act != "silu") fail("hidden_act", "'" + act + "' is not supported (LLaMA-family models use silu)");
        if (f.boolean("use_sliding_window", false)) fail("use_sliding_window", "sliding-window attention is not supported");
        if (c.architecture == "MistralForCausalLM" && f.number("sliding_window", j.contains("sliding_window") ? 1e300 : 4096) <
                                                           double(c.max_position_embeddings))
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
        c.eos_token_ids = j.contains("eos_token_id") ? ids_of("eos_token_id") : fam.default_ids(fam.eos_token_id);
        const auto bos = j.contains("bos_token_id") ? ids_of("bos_token_id") : fam.default_ids(fam.bos_token_id);
        if (!bos.empty()) c.bos_token_id = bos[0];
        return c;
    }

    /// What a config.json's model_type stands for: the architecture and the defaults of its
    /// transformers config class (LlamaConfig, MistralConfig, Qwen2Config in transformers 5.2,
    /// the same in 4.4x) for the keys a checkpoint may leave out.
    struct family {
        const char* model_type;
        const char* architecture;
        index_t vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads;
        index_t num_key_value_heads;  // 0: the head count
        index_t max_position_embeddings;
        index_t bos_token_id, eos_token_id;  // -1: none
        bool reads_bias_keys, qkv_bias;
        std::vector<index_t> default_ids(index_t id) const { return id < 0 ? std::vector<index_t>{} : std::vector<index_t>{id}; }
    };
    static const std::vector<family>& families() {
        static const std::vector<family> list = {
            {"llama", "LlamaForCausalLM", 32000, 4096, 11008, 32, 32, 0, 2048, 1, 2, true, false},
            {"mistral", "MistralForCausalLM", 32000, 4096, 14336, 32, 32, 8, 131072, 1, 2, false, false},
            {"qwen2", "Qwen2ForCausalLM", 151936, 4096, 22016, 32, 32, 32, 32768, -1, -1, false, true},
        };
        return list;
    }

    /// The family: model_type when it names one (transformers builds the model from it), else
    /// architectures[0], else LLaMA. An architecture vila does not run, or one that names
    /// another family than model_type, is an error.
    static const family& family_of(const nlohmann::json& j, const io::config_fields& f) {
        const family* by_type = nullptr;
        const family* by_arch = nullptr;
        const std::string type = f.str("model_type", "");
        for (const auto& fam : families())
            if (type == fam.model_type) by_type = &fam;
        std::string arch;
        if (j.contains("architectures") && !j["architectures"].is_null()) {
            if (!j["architectures"].is_array() || j["architectures"].empty() || !j["architectures"][0].is_string())
                f.fail("architectures", "expected a list of names");
            arch = j["architectures"][0].get<std::string>();
            for (const auto& fam : families())
                if (arch == fam.architecture) by_arch = &fam;
        }
        if (!arch.empty() && !by_arch)
            f.fail("architectures", "unsupported architecture '" + arch + "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
        if (by_type && by_arch && by_type != by_arch)
            f.fail("architectures", "'" + arch + "' contradicts model_type '" + type + "'");
        if (by_type) return *by_type;
        if (by_arch) return *by_arch;
        if (!type.empty()) f.fail("model_type", "unsupported model_type '" + type + "' (supported: llama, mistral, qwen2)");
        return families().front();
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
