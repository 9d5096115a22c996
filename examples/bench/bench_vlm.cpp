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
//   train_stage1 | train_stage2 | train_all: one training step of that batch through
//            train::trainer (forward, backward, clipping at 1.0, AdamW) with VILA's stage 1
//            policy (projector only), stage 2 (projector + LLM) or everything trainable;
//            tokens/s, plus the analytic memory need (docs/performance.md has the formula)
// Prints one JSON line; examples/bench/vlm_vs_torch.py runs transformers' CLIPVisionModel and
// LlavaForConditionalGeneration on the same config and threads in the same run.
//   bench_vlm --mode vit|vit_features|prefill [--steps N] [--images N] [--precision fp32|bf16]
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <vila/core/threads.hpp>
#include <vila/model/vlm.hpp>
#include <vila/optim/adamw.hpp>
#include <vila/train/trainer.hpp>

#include "tiny_vila.hpp"

using namespace vila;

namespace {
/// The same batch every step (the benchmark times compute, not data).
struct fixed_sampler {
    data::batch b;
    data::batch next() { return b; }
    nlohmann::json state() const { return nlohmann::json::object(); }
    void restore(const nlohmann::json&) {}
};
struct step_timer {
    std::vector<double>* seconds;
    template <class M>
    bool on_step_end(M&, const train::step_info& s) {
        seconds->push_back(s.seconds);
        return false;
    }
};
/// Best step time of `steps` timed steps (the first step allocates: not timed); counts parameters.
template <class Freeze, class Model>
double best_train_step(Model& m, data::batch b, int steps, double& trainable, double& all) {
    std::vector<double> secs;
    train::trainer_options o;
    o.steps = steps + 1;
    o.handle_signals = false;
    train::param_groups g;
    g.lr = 1e-4;
    train::trainer<Model, Freeze, fixed_sampler, optim::adamw<float>, train::constant, step_timer> t(
        m, optim::adamw<float>({1e-4, 0.9, 0.999, 1e-8, 0.0}), train::constant{}, g, o, step_timer{&secs});
    trainable = all = 0;
    m.for_each_parameter([&](const std::string&, param<float>& p) {
        all += double(p.value.size());
        if (p.trainable) trainable += double(p.value.size());
    });
    fixed_sampler s{std::move(b)};
    t.fit(s);
    double best = 1e30;
    for (std::size_t i = 1; i < secs.size(); ++i) best = std::min(best, secs[i]);
    return best;
}
}  // namespace

int main(int argc, char** argv) {
    std::string mode = "prefill";
    int steps = 3;
    index_t images = 32;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--mode") mode = v;
        else if (a == "--steps") steps = std::stoi(v);
        else if (a == "--images") images = std::stol(v);
        else if (a == "--precision") backend::bf16::set_matmul_precision(parse_precision(v));
    }
    tune_allocator();
    const bool training = mode == "train_stage1" || mode == "train_stage2" || mode == "train_all";
    if (mode != "vit" && mode != "vit_features" && mode != "prefill" && !training) {
        std::fprintf(stderr, "bench_vlm: --mode vit|vit_features|prefill|train_stage1|train_stage2|train_all\n");
        return 2;
    }
    const std::int32_t image_token = bench::tiny_vila_image_token;
    rng gen(1);
    auto m = bench::make_tiny_vila(mode == "vit" ? -1 : -2, gen);
    const llm::llama_config& c = m.llm.config;
    const vision::vit_config& vc = m.vision.config;
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
        std::printf("{\"mode\": \"%s\", \"threads\": %d, \"precision\": \"%s\", \"seconds\": %.4f, \"images_per_s\": %.2f}\n", mode.c_str(),
                    num_threads(), to_string(backend::bf16::matmul_precision()), best,
                    work / best);
        return 0;
    }
    const index_t B = 8, text = 192, F = m.tokens_per_image();
    std::vector<data::sample> batch;
    for (index_t b = 0; b < B; ++b) {
        data::sample s;
        for (index_t t = 0; t < text; ++t) s.ids.push_back(std::int32_t(gen.below(31999)));
        s.ids.insert(s.ids.begin() + 1, image_token);  // BOS-like first token, then the image, then text
        s.images = 1;
        batch.push_back(std::move(s));
    }
    tensor<float> pixels({B, 3, 64, 64});
    gen.fill_normal(pixels, 0.0, 1.0);
    if (training) {
        data::batch b;
        b.samples = batch;
        b.pixels = pixels;
        double trainable = 0, all = 0;
        if (mode == "train_stage1") best = best_train_step<train::freeze::align_projector>(m, b, steps, trainable, all);
        else if (mode == "train_stage2") best = best_train_step<train::freeze::pretrain>(m, b, steps, trainable, all);
        else best = best_train_step<train::freeze::all_trainable>(m, b, steps, trainable, all);
        // analytic need (floats): weights; gradients and two AdamW moments of the trainable
        // ones; the LLM's activations as bench_llm counts them, the splice's input embeddings and
        // their gradient; the vision tower's activations only when its backward runs.
        const double T = double(text + F), BT = double(B) * T, D = double(c.hidden_size), Fd = double(c.intermediate_size);
        const double llm_layer = BT * (8 * D + 3 * Fd) + double(B) * double(c.num_attention_heads) * T;
        const double llm_acts = double(c.num_hidden_layers) * llm_layer + BT * (2 * D + double(c.vocab_size)) + 2 * BT * D;
        const double Lv = double(m.vision.tokens()), Dv = double(vc.hidden_size), Fv = double(vc.intermediate_size);
        const double vit_layer = double(B) * Lv * (8 * Dv + 2 * Fv) + double(B) * double(vc.num_attention_heads) * Lv;
        const double vit_acts = mode == "train_all" ? double(m.vision.layers_run()) * vit_layer : 0;
        const double analytic_mb = (all + 3 * trainable + llm_acts + vit_acts) * 4 / (1024.0 * 1024.0);
        std::printf("{\"mode\": \"%s\", \"threads\": %d, \"precision\": \"%s\", \"seconds\": %.4f, \"tokens_per_s\": %.2f, \"trainable\": %.0f, "
                    "\"parameters\": %.0f, \"analytic_mb\": %.0f}\n",
                    mode.c_str(), num_threads(), to_string(backend::bf16::matmul_precision()), best, BT / best, trainable, all, analytic_mb);
        return 0;
    }
    for (int s = 0; s < steps + 1; ++s) {
        const auto a = now();
        m.forward(batch, &pixels);
        if (s) best = std::min(best, secs(a, now()));
    }
    work = double(B * (text + F));
    std::printf("{\"mode\": \"prefill\", \"threads\": %d, \"precision\": \"%s\", \"seconds\": %.4f, \"tokens_per_s\": %.2f, \"tokens\": %lld}\n",
                num_threads(), to_string(backend::bf16::matmul_precision()), best,
                work / best, (long long)(B * (text + F)));
    return 0;
}
