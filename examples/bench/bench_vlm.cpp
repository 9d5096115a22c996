// bench_vlm — VLM speed on REFERENCE.md's tiny VILA config, fp32:
//   CLIP ViT 4 x 256 (4 heads, MLP 1024) on 64 px images, patch 8 (64 patches + class token);
//   mlp2x_gelu projector; LLaMA width 512, 8 layers, 8 heads, SwiGLU 1376, vocab 32000.
// Modes:
//   vit:     the vision tower's forward over a batch of images, every layer (equal work with
//            transformers' CLIPVisionModel), images/s
//   vit_features: VILA's feature extraction, hidden_states[-2]: vila stops after the selected
//            layer, transformers (as VILA and LLaVA call it) runs the whole tower; images/s
//   prefill: one multimodal forward of 8 samples of 256 tokens, each one image (64 features,
//            VILA's select layer -2, patch features) spliced into 192 text tokens, tokens/s
// Prints one JSON line; examples/bench/vlm_vs_torch.py runs transformers' CLIPVisionModel and
// LlavaForConditionalGeneration on the same config and threads in the same run.
//   bench_vlm --mode vit|vit_features|prefill [--steps N] [--images N]
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <vila/core/threads.hpp>
#include <vila/model/vlm.hpp>

using namespace vila;

int main(int argc, char** argv) {
    std::string mode = "prefill";
    int steps = 3;
    index_t images = 32;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--mode") mode = v;
        else if (a == "--steps") steps = std::stoi(v);
        else if (a == "--images") images = std::stol(v);
    }
    tune_allocator();
    vision::vit_config vc;
    vc.model_type = "clip_vision_model";
    vc.hidden_size = 256;
    vc.intermediate_size = 1024;
    vc.num_hidden_layers = 4;
    vc.num_attention_heads = 4;
    vc.image_size = 64;
    vc.patch_size = 8;
    vc.hidden_act = "quick_gelu";
    vc.select_layer = mode == "vit" ? -1 : -2;
    if (mode != "vit" && mode != "vit_features" && mode != "prefill") {
        std::fprintf(stderr, "bench_vlm: --mode vit|vit_features|prefill\n");
        return 2;
    }
    llm::llama_config c;
    c.hidden_size = 512;
    c.intermediate_size = 1376;
    c.num_hidden_layers = 8;
    c.num_attention_heads = c.num_key_value_heads = 8;
    c.head_dim = 64;
    c.vocab_size = 32000;
    const std::int32_t image_token = 31999;
    vlm<vision::clip, projector::mlp2x_gelu> m(vc, c, image_token);
    rng gen(1);
    m.for_each_parameter([&](const std::string& n, param<float>& p) {
        if (n.find("norm") != std::string::npos && n.find(".weight") != std::string::npos) p.value.fill(1.0f);
        else gen.fill_normal(p.value, 0.0, 0.02);
    });
    auto now = [] { return std::chrono::steady_clock::now(); };
    auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    double best = 1e30, work = 0;
    if (mode == "vit" || mode == "vit_features") {
        tensor<float> pixels({images, 3, 64, 64});
        gen.fill_normal(pixels, 0.0, 1.0);
        for (int s = 0; s < steps + 1; ++s) {  // the first run allocates: not timed
            const auto a = now();
            m.vision.forward(pixels);
            if (s) best = std::min(best, secs(a, now()));
        }
        work = double(images);
        std::printf("{\"mode\": \"%s\", \"threads\": %d, \"seconds\": %.4f, \"images_per_s\": %.2f}\n", mode.c_str(), num_threads(), best,
                    work / best);
        return 0;
    }
    const index_t B = 8, text = 192, F = m.tokens_per_image();
    std::vector<model::sample> batch;
    for (index_t b = 0; b < B; ++b) {
        model::sample s;
        for (index_t t = 0; t < text; ++t) s.ids.push_back(std::int32_t(gen.below(31999)));
        s.ids.insert(s.ids.begin() + 1, image_token);  // BOS-like first token, then the image, then text
        s.images = 1;
        batch.push_back(std::move(s));
    }
    tensor<float> pixels({B, 3, 64, 64});
    gen.fill_normal(pixels, 0.0, 1.0);
    for (int s = 0; s < steps + 1; ++s) {
        const auto a = now();
        m.forward(batch, &pixels);
        if (s) best = std::min(best, secs(a, now()));
    }
    work = double(B * (text + F));
    std::printf("{\"mode\": \"prefill\", \"threads\": %d, \"seconds\": %.4f, \"tokens_per_s\": %.2f, \"tokens\": %lld}\n", num_threads(), best,
                work / best, (long long)(B * (text + F)));
    return 0;
}
