// bench_llm — decoder speed on the reference config (width 512, 8 layers, 8 heads,
// SwiGLU 1376, vocab 32000, batch 8 x 256 tokens), fp32:
//   train:   forward + backward + AdamW, tokens/s
//   prefill: one batched forward of the batch, tokens/s
//   decode:  single-stream greedy generation with the KV cache, tokens/s
// Decode also reports the rate at which it reads the weights (GB/s); --mode bandwidth is a
// STREAM-style read probe, the ceiling of batch-1 decoding.
// Prints one JSON line; examples/bench/llm_vs_torch.py runs PyTorch on the same config and
// threads in the same run and writes the table. Peak RSS is measured by the driver.
//   bench_llm --mode train|prefill|decode|bandwidth [--steps N] [--batch B] [--seq T] [--layers L]
//             [--precision fp32|bf16]   (bf16: backend/bf16.hpp; the JSON names the kernel)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <vila/core/threads.hpp>
#include <vila/llm/generate.hpp>
#include <vila/llm/llama.hpp>
#include <vila/optim/adamw.hpp>

using namespace vila;

namespace {
/// STREAM-style read bandwidth, GB/s: the threads sum a 1 GiB array (far beyond the caches) with
/// 16 lanes each, best of 3. Batch-1 decoding reads every weight once per token, so this is its
/// ceiling.
double read_bandwidth_gbps() {
    const index_t n = index_t(1) << 28;  // own process (--mode bandwidth): not in decode's peak RSS
    std::vector<float> a(std::size_t(n), 1.0f);
    double best = 0;
    volatile float sink = 0;
    for (int run = 0; run < 3; ++run) {
        float total = 0;
        const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel for schedule(static) reduction(+ : total)
        for (index_t blk = 0; blk < n / 4096; ++blk) {
            float acc[16] = {};
            const float* p = a.data() + blk * 4096;
            for (index_t i = 0; i < 4096; i += 16)
                for (int l = 0; l < 16; ++l) acc[l] += p[i + l];
            for (float x : acc) total += x;
        }
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        sink = sink + total;
        best = std::max(best, double(n) * sizeof(float) / s * 1e-9);
    }
    return best;
}
}  // namespace

int main(int argc, char** argv) {
    std::string mode = "train";
    int steps = 3;
    index_t B = 8, T = 256, L = 8;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--mode") mode = v;
        else if (a == "--steps") steps = std::stoi(v);
        else if (a == "--batch") B = std::stol(v);
        else if (a == "--seq") T = std::stol(v);
        else if (a == "--layers") L = std::stol(v);
        else if (a == "--precision") backend::bf16::set_matmul_precision(parse_precision(v));
    }
    tune_allocator();
    if (mode == "bandwidth") {
        std::printf("{\"mode\": \"bandwidth\", \"threads\": %d, \"read_gbps\": %.1f}\n", num_threads(), read_bandwidth_gbps());
        return 0;
    }
    llm::llama_config c;
    c.hidden_size = 512;
    c.intermediate_size = 1376;
    c.num_hidden_layers = L;
    c.num_attention_heads = 8;
    c.num_key_value_heads = 8;
    c.head_dim = 64;
    c.vocab_size = 32000;
    c.max_position_embeddings = 2048;
    llm::llama<float> m(c);
    m.init_weights(1);
    rng gen(2);
    std::vector<std::int32_t> h(std::size_t(B * T));
    for (auto& x : h) x = std::int32_t(gen.below(std::uint64_t(c.vocab_size)));
    const auto ids = tensor<std::int32_t>::from_host({B, T}, h);
    auto now = [] { return std::chrono::steady_clock::now(); };
    auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
    double best = 1e30;
    double tokens = 0;
    if (mode == "train") {
        optim::adamw<float> opt;
        for (int s = 0; s < steps + 1; ++s) {  // the first step allocates: not timed
            const auto a = now();
            m.forward(ids);
            m.loss(ids);
            m.zero_grad();
            m.backward_loss();
            opt.step(m);
            if (s) best = std::min(best, secs(a, now()));
        }
        tokens = double(B * T);
    } else if (mode == "prefill") {
        for (int s = 0; s < steps + 1; ++s) {
            const auto a = now();
            m.forward(ids);
            if (s) best = std::min(best, secs(a, now()));
        }
        tokens = double(B * T);
    } else {
        llm::generate_options o;
        o.max_new_tokens = 64;
        const std::vector<std::int32_t> prompt(h.begin(), h.begin() + 16);
        for (int s = 0; s < steps + 1; ++s) {
            llm::kv_cache<float> cache(c, index_t(prompt.size()) + o.max_new_tokens);
            llm::cached_runner<float, backend::cpu> run(m);
            run.forward(tensor<std::int32_t>::from_host({1, index_t(prompt.size())}, prompt), cache);
            const auto a = now();
            std::int32_t next = prompt.back();
            for (int t = 0; t < o.max_new_tokens; ++t) {
                const auto lg = run.forward(tensor<std::int32_t>::from_host({1, 1}, {next}), cache).to_host();
                next = std::int32_t(std::max_element(lg.begin(), lg.end()) - lg.begin());
            }
            if (s) best = std::min(best, secs(a, now()));
        }
        tokens = 64;
    }
    // FLOPs per token of the forward: 2 * (matmul params) + attention (4 * T * D per layer, causal ~half)
    const double matmul_params = double(m.parameter_count() - c.vocab_size * c.hidden_size);
    const double fwd_flops_per_token = 2 * matmul_params + 4.0 * double(T) * double(c.hidden_size) * double(L) / 2;
    const double flops = (mode == "train" ? 3 : 1) * fwd_flops_per_token * tokens;
    // Analytic memory of a training step: weights, gradients, two Adam moments, and the
    // activations backward reads (per layer n1, qr, kr, v, a, h1, n2, out [D each], g, u, m [F each],
    // attention's lse [H, T] per sequence; plus the embedding output, final norm output and logits).
    const double P = double(m.parameter_count()), BT = double(B * T);
    const double per_layer = BT * (8.0 * double(c.hidden_size) + 3.0 * double(c.intermediate_size)) +
                             double(B) * double(c.num_attention_heads) * double(T);
    const double acts = double(L) * per_layer + BT * (2.0 * double(c.hidden_size) + double(c.vocab_size));
    const double analytic_mb = (mode == "train" ? (4 * P + acts) : (P + acts)) * 4 / (1024.0 * 1024.0);
    std::string extra;
    if (mode == "decode") {  // bytes read per token: every weight but the embedding table (one row of it)
        const double weight_bytes = double(m.parameter_count() - c.vocab_size * c.hidden_size) * sizeof(float);
        char buf[64];
        std::snprintf(buf, sizeof buf, ", \"weight_gbps\": %.1f", weight_bytes * tokens / best * 1e-9);
        extra = buf;
    }
    const bool bf = backend::bf16::matmul_precision() == precision::bf16;
    std::printf("{\"mode\": \"%s\", \"threads\": %d, \"precision\": \"%s\", \"bf16_kernel\": \"%s\", \"seconds\": %.4f, "
                "\"tokens_per_s\": %.2f, \"gflops\": %.1f, \"gflop_per_step\": %.1f, \"analytic_mb\": %.0f%s}\n",
                mode.c_str(), num_threads(), to_string(backend::bf16::matmul_precision()),
                bf ? (backend::bf16::active_kernel() == backend::bf16::kernel::onednn ? "onednn" : "emulated") : "none", best,
                tokens / best, flops / best * 1e-9, flops * 1e-9, analytic_mb, extra.c_str());
    return 0;
}
