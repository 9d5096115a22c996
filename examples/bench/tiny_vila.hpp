// tiny_vila.hpp — REFERENCE.md's tiny VILA config, shared by the VLM benchmarks: CLIP ViT
// 4 x 256 (4 heads, MLP 1024, quick_gelu) on 64 px images with patch 8; mlp2x_gelu projector;
// LLaMA width 512, 8 layers, 8 heads, SwiGLU 1376, vocab 32000; image token 31999; weights
// N(0, 0.02), norms 1.
#pragma once
#include <string>

#include <vila/model/vlm.hpp>

namespace bench {

using tiny_vila = vila::vlm<vila::vision::clip, vila::projector::mlp2x_gelu>;
inline constexpr std::int32_t tiny_vila_image_token = 31999;

/// The tiny VILA with weights drawn from `gen`; `select_layer` -1 (the last layer) or -2 (VILA's).
inline tiny_vila make_tiny_vila(int select_layer, vila::rng& gen) {
    vila::vision::vit_config vc;
    vc.model_type = "clip_vision_model";
    vc.hidden_size = 256;
    vc.intermediate_size = 1024;
    vc.num_hidden_layers = 4;
    vc.num_attention_heads = 4;
    vc.image_size = 64;
    vc.patch_size = 8;
    vc.hidden_act = "quick_gelu";
    vc.select_layer = select_layer;
    vila::llm::llama_config c;
    c.hidden_size = 512;
    c.intermediate_size = 1376;
    c.num_hidden_layers = 8;
    c.num_attention_heads = c.num_key_value_heads = 8;
    c.head_dim = 64;
    c.vocab_size = 32000;
    tiny_vila m(vc, c, tiny_vila_image_token);
    m.for_each_parameter([&](const std::string& n, vila::param<float>& p) {
        if (n.find("norm") != std::string::npos && n.find(".weight") != std::string::npos) p.value.fill(1.0f);
        else gen.fill_normal(p.value, 0.0, 0.02);
    });
    return m;
}

}  // namespace bench
