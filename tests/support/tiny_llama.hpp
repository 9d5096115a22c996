// A small LLaMA config for the training tests (GQA, two layers): fast, and every part present.
#pragma once
#include <string>
#include <vector>

#include <vila/llm/config.hpp>

namespace vila::test {

inline llm::llama_config tiny_llama_config(index_t hidden, index_t intermediate, index_t head_dim, index_t vocab) {
    llm::llama_config c;
    c.hidden_size = hidden;
    c.intermediate_size = intermediate;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = head_dim;
    c.vocab_size = vocab;
    c.max_position_embeddings = 64;
    return c;
}

/// Every parameter's values of a model, concatenated in visiting order (for bitwise comparisons).
template <class Model>
std::vector<float> flat_parameters(Model& m) {
    std::vector<float> out;
    m.for_each_parameter([&](const std::string&, auto& p) {
        const auto h = p.value.to_host();
        out.insert(out.end(), h.begin(), h.end());
    });
    return out;
}

}  // namespace vila::test
