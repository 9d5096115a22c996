// Generation: the KV cache reproduces the full forward; sampling options behave; bad prompts fail.
#include <doctest/doctest.h>
#include <vila/llm/generate.hpp>

#include "../support/fixtures.hpp"

using namespace vila;

namespace {
std::filesystem::path generate_case_dir(const std::string& name) { return std::filesystem::path(VILA_TEST_DATA_DIR) / "llm" / name; }
}

TEST_CASE("KV-cache decoding equals the full forward within 1e-5") {
    for (const char* name : {"llama_gqa", "llama3_rope_scaling", "qwen2_bias"}) {
        CAPTURE(name);
        auto model = llm::llama<float>::load(generate_case_dir(name));
        llm::generate_options o;
        o.max_new_tokens = 12;
        const std::vector<std::int32_t> prompt = {5, 17, 3, 42, 8};
        const auto generated = llm::generate(model, prompt, o);
        REQUIRE(generated.size() == 12);
        // replay: full forward over prompt + generated, and the cached pass token by token
        std::vector<std::int32_t> all = prompt;
        all.insert(all.end(), generated.begin(), generated.end());
        const auto full = model.forward(tensor<std::int32_t>::from_host({1, index_t(all.size())}, all)).to_host();
        llm::kv_cache<float> cache(model.config, index_t(all.size()));
        llm::cached_runner<float, backend::cpu> runner(model);
        const index_t V = model.config.vocab_size;
        const auto prefill = runner.forward(tensor<std::int32_t>::from_host({1, index_t(prompt.size())}, prompt), cache).to_host();
        {  // last_only: the prompt's last row alone, equal to the full prefill's last row
            llm::kv_cache<float> c2(model.config, index_t(all.size()));
            llm::cached_runner<float, backend::cpu> r2(model);
            const auto& last = r2.forward(tensor<std::int32_t>::from_host({1, index_t(prompt.size())}, prompt), c2, true);
            REQUIRE(last.shape() == shape_t{1, 1, V});
            const auto lh = last.to_host();
            double worst = 0;  // one row through the GEMV, T rows through the GEMM: rounding differs
            for (index_t v = 0; v < V; ++v)
                worst = std::max(worst, double(std::abs(lh[std::size_t(v)] - prefill[std::size_t((index_t(prompt.size()) - 1) * V + v)])));
            CHECK(worst <= 1e-5);
            CHECK(c2.size() == index_t(prompt.size()));
        }
        for (std::size_t t = prompt.size(); t < all.size(); ++t) {
            const auto step = runner.forward(tensor<std::int32_t>::from_host({1, 1}, {all[t]}), cache).to_host();
            double worst = 0;
            for (index_t v = 0; v < V; ++v) worst = std::max(worst, double(std::abs(step[std::size_t(v)] - full[std::size_t(index_t(t) * V + v)])));
            CHECK_MESSAGE(worst <= 1e-5, "position ", t, " max diff ", worst);
        }
        // greedy choice = argmax of the full forward at each position
        for (std::size_t t = prompt.size() - 1; t + 1 < all.size(); ++t) {
            const float* row = full.data() + std::ptrdiff_t(index_t(t) * V);
            CHECK(std::max_element(row, row + V) - row == all[t + 1]);
        }
    }
}

TEST_CASE("sampling: seeds reproduce, top-k 1 is greedy, stop tokens and callbacks stop") {
    auto model = llm::llama<float>::load(generate_case_dir("llama_gqa"));
    llm::generate_options o;
    o.max_new_tokens = 10;
    o.temperature = 0.9;
    o.top_p = 0.9;
    o.seed = 7;
    const std::vector<std::int32_t> prompt = {1, 2, 3};
    CHECK(llm::generate(model, prompt, o) == llm::generate(model, prompt, o));
    o.seed = 8;
    const auto other = llm::generate(model, prompt, o);
    o.top_k = 1;
    llm::generate_options g;
    g.max_new_tokens = 10;
    CHECK(llm::generate(model, prompt, o) == llm::generate(model, prompt, g));
    const auto greedy = llm::generate(model, prompt, g);
    g.stop_tokens = {greedy[3]};
    const auto stopped = llm::generate(model, prompt, g);
    CHECK(stopped.size() <= 4);
    CHECK(stopped.back() == greedy[3]);
    int seen = 0;
    llm::generate(model, prompt, g, [&](std::int32_t) { return ++seen < 2; });
    CHECK(seen == 2);
    g.repetition_penalty = 1e6;  // a huge penalty forbids repeating any context token
    g.stop_tokens.clear();
    const auto fresh = llm::generate(model, prompt, g);
    std::vector<std::int32_t> ctx = prompt;
    for (auto t : fresh) {
        CHECK(std::find(ctx.begin(), ctx.end(), t) == ctx.end());
        ctx.push_back(t);
    }
    CHECK_THROWS_WITH_AS(llm::generate(model, {1, 500}, g), doctest::Contains("outside the vocabulary"), vila::error);
    (void)other;
}

TEST_CASE("llama: gradients reach the input embeddings (finite differences, double)") {
    llm::llama_config c;
    c.hidden_size = 16;
    c.intermediate_size = 24;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.head_dim = 4;
    c.vocab_size = 11;
    llm::llama<double> m(c);
    m.init_weights(3, 0.3);
    tensor<double> embeds({2, 5, 16}), d_embeds({2, 5, 16});
    rng(4).fill_normal(embeds);
    const auto labels = tensor<std::int32_t>::from_host({2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    const auto mask = tensor<std::int32_t>::from_host({2, 5}, {1, 1, 1, 1, 1, 1, 1, 1, 0, 0});
    m.forward_embeddings(embeds, &mask);
    m.loss(labels);
    m.zero_grad();
    m.backward_loss(&d_embeds);
    const auto g = d_embeds.to_host();
    auto h = embeds.to_host();
    double worst = 0;
    for (std::size_t i = 0; i < h.size(); i += 7) {
        const double x = h[i], e = 1e-6;
        h[i] = x + e;
        m.forward_embeddings(tensor<double>::from_host(embeds.shape(), h), &mask);
        const double lp = m.loss(labels).loss;
        h[i] = x - e;
        m.forward_embeddings(tensor<double>::from_host(embeds.shape(), h), &mask);
        const double lm = m.loss(labels).loss;
        h[i] = x;
        worst = std::max(worst, std::abs(g[i] - (lp - lm) / (2 * e)) / std::max(1.0, std::abs(g[i])));
    }
    CHECK(worst < 1e-6);
}
