// vila/llm/generate.hpp — text generation: a KV cache, sampling, streaming.
//
// The prompt is prefilled in one batched forward pass that fills the cache; each new token then
// costs one single-position pass attending to the cached keys and values. Sampling follows HF's
// processor order: repetition penalty, temperature, top-k, top-p, then a draw from vila::rng
// (seeded, so a seed reproduces the text); temperature 0 is greedy.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <vector>

#include "../core/rng.hpp"
#include "llama.hpp"

namespace vila::llm {

struct generate_options {
    int max_new_tokens = 64;
    double temperature = 0.0;          // 0: greedy
    int top_k = 0;                     // 0: off
    double top_p = 1.0;                // 1: off
    double repetition_penalty = 1.0;   // 1: off (HF: divide positive logits, multiply negative ones)
    std::uint64_t seed = 0;
    std::vector<std::int32_t> stop_tokens;  // generation ends after emitting one of these
};

/// Keys and values of every layer for one sequence (batch 1), allocated for `capacity` tokens.
template <class T, class B = backend::cpu>
class kv_cache {
public:
    kv_cache(const llama_config& c, index_t capacity) : capacity_(capacity) {
        const index_t kv = c.num_key_value_heads * c.head_dim;
        for (index_t l = 0; l < c.num_hidden_layers; ++l) {
            k_.emplace_back(shape_t{1, capacity, kv});
            v_.emplace_back(shape_t{1, capacity, kv});
        }
    }
    index_t size() const noexcept { return len_; }
    index_t capacity() const noexcept { return capacity_; }
    void clear() noexcept { len_ = 0; }
    tensor<T, B>& k(std::size_t l) { return k_[l]; }
    tensor<T, B>& v(std::size_t l) { return v_[l]; }
    void advance(index_t n) { len_ += n; }

private:
    index_t capacity_, len_ = 0;
    std::vector<tensor<T, B>> k_, v_;
};

/// Runs ids [1, T] (or input embeddings [1, T, D]: a VLM's spliced prompt) through the model,
/// using and extending the cache; returns logits [1, T, V], or with `last_only` [1, 1, V] of the
/// last position: what generation samples from (a 256-token prompt's other 255 rows of the
/// vocabulary product were a quarter of the benchmark model's prefill). Each layer is the model's own
/// llama::layer_forward with a kv_slot; two scratch activations alternate between layers, so
/// inference keeps no per-layer training activations.
template <class T, class B>
class cached_runner {
public:
    using model_t = llama<T, B>;
    explicit cached_runner(const model_t& m) : m_(m) {}

    const tensor<T, B>& forward(const tensor<std::int32_t, B>& ids, kv_cache<T, B>& cache, bool last_only = false) {
        check_shape("vila::llm::generate", "ids", ids.shape(), {1, any});
        nn::embedding_forward(ids, m_.embed_tokens.weight.value, h_);
        return run(cache, last_only);
    }
    const tensor<T, B>& forward_embeddings(const tensor<T, B>& embeds, kv_cache<T, B>& cache, bool last_only = false) {
        check_shape("vila::llm::generate", "input embeddings", embeds.shape(), {1, any, m_.config.hidden_size});
        h_ = embeds;
        return run(cache, last_only);
    }

private:
    const tensor<T, B>& run(kv_cache<T, B>& cache, bool last_only) {
        const index_t Tn = h_.dim(1), start = cache.size();
        if (start + Tn > cache.capacity())
            throw error("vila::llm::generate: " + std::to_string(start + Tn) + " tokens exceed the KV cache's " +
                        std::to_string(cache.capacity()));
        std::vector<std::int32_t> p(static_cast<std::size_t>(Tn));
        std::iota(p.begin(), p.end(), std::int32_t(start));
        pos_ = tensor<std::int32_t, B>::from_host({1, Tn}, p);
        nn::rope_table_compute(pos_, m_.rope_inv_freq(), rope_, "vila::llm::generate");
        const tensor<T, B>* h = &h_;
        for (std::size_t l = 0; l < m_.layers.size(); ++l) {
            const typename model_t::kv_slot slot{&cache.k(l), &cache.v(l), start};
            auto& A = acts_[l % 2];
            m_.layer_forward(m_.layers[l], *h, A, scratch_, rope_, nullptr, &slot);
            h = &A.out;
        }
        cache.advance(Tn);
        if (last_only && Tn > 1) {
            const index_t D = h->dim(2);
            last_.ensure_shape({1, 1, D});
            B::parallel_for(D, detail::copy_rows<T>{h->data() + (Tn - 1) * D, last_.data(), D, 0});
            h = &last_;
        }
        m_.head_forward(*h, normed_, c_norm_, c_head_, logits_);
        return logits_;
    }

    const model_t& m_;
    tensor<std::int32_t, B> pos_;
    nn::rope_table<T, B> rope_;
    tensor<T, B> h_, last_, normed_, logits_;
    typename model_t::layer_activations acts_[2];
    typename model_t::layer_scratch scratch_;
    typename nn::rms_norm<T, B>::cache c_norm_;
    typename nn::linear<T, B>::cache c_head_;
};

/// Chooses the next token from one row of logits (the context feeds the repetition penalty).
inline std::int32_t sample_token(std::vector<float> logits, const std::vector<std::int32_t>& context, const generate_options& o,
                                 rng& gen) {
    const std::size_t V = logits.size();
    if (o.repetition_penalty != 1.0)
        for (std::int32_t t : context) {
            if (t < 0 || std::size_t(t) >= V) continue;
            float& x = logits[std::size_t(t)];
            x = x > 0 ? float(x / o.repetition_penalty) : float(x * o.repetition_penalty);
        }
    if (o.temperature <= 0) return std::int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    for (auto& x : logits) x = float(x / o.temperature);
    std::vector<std::int32_t> idx(V);
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](std::int32_t a, std::int32_t b) { return logits[std::size_t(a)] > logits[std::size_t(b)]; });
    std::size_t keep = V;
    if (o.top_k > 0) keep = std::min(keep, std::size_t(o.top_k));
    const float mx = logits[std::size_t(idx[0])];
    std::vector<double> prob(keep);
    double total = 0;
    for (std::size_t i = 0; i < keep; ++i) total += prob[i] = std::exp(double(logits[std::size_t(idx[i])] - mx));
    if (o.top_p < 1.0) {  // smallest prefix whose probability reaches top_p (at least one token)
        double acc = 0;
        std::size_t n = 0;
        while (n < keep) {
            acc += prob[n] / total;
            ++n;
            if (acc >= o.top_p) break;
        }
        keep = n;
        total = 0;
        for (std::size_t i = 0; i < keep; ++i) total += prob[i];
    }
    double r = gen.uniform() * total;
    for (std::size_t i = 0; i < keep; ++i) {
        r -= prob[i];
        if (r < 0) return idx[i];
    }
    return idx[keep - 1];
}

namespace detail {
/// The decoding loop shared by text and multimodal prompts: `prefill` runs the prompt through
/// the runner and returns its logits; each step samples, streams and feeds one token back.
template <class T, class B, class Prefill>
std::vector<std::int32_t> decode(llama<T, B>& model, index_t prompt_tokens, std::vector<std::int32_t> context,
                                 const generate_options& o, const std::function<bool(std::int32_t)>& on_token, Prefill&& prefill) {
    kv_cache<T, B> cache(model.config, prompt_tokens + o.max_new_tokens);
    cached_runner<T, B> runner(model);
    rng gen(o.seed);
    std::vector<std::int32_t> out;
    tensor<std::int32_t, B> ids;
    for (int step = 0; step < o.max_new_tokens; ++step) {
        const auto& logits = step == 0 ? prefill(runner, cache) : runner.forward(ids, cache, true);
        const index_t V = logits.dim(-1), Tn = logits.dim(1);
        const auto all = logits.to_host();
        std::vector<float> last(all.begin() + std::ptrdiff_t((Tn - 1) * V), all.begin() + std::ptrdiff_t(Tn * V));
        const std::int32_t next = sample_token(std::move(last), context, o, gen);
        out.push_back(next);
        context.push_back(next);
        if (on_token && !on_token(next)) break;
        if (std::find(o.stop_tokens.begin(), o.stop_tokens.end(), next) != o.stop_tokens.end()) break;
        ids = tensor<std::int32_t, B>::from_host({1, 1}, {next});
    }
    return out;
}
}  // namespace detail

/// Generates up to max_new_tokens after `prompt` (batch 1). `on_token(id)` is called for each
/// new token as soon as it exists (streaming) and may return false to stop. Returns the new ids.
template <class T, class B>
std::vector<std::int32_t> generate(llama<T, B>& model, const std::vector<std::int32_t>& prompt, const generate_options& o,
                                   const std::function<bool(std::int32_t)>& on_token = nullptr) {
    if (prompt.empty()) throw error("vila::llm::generate: empty prompt");
    for (std::size_t i = 0; i < prompt.size(); ++i)
        if (prompt[i] < 0 || prompt[i] >= model.config.vocab_size)
            throw error("vila::llm::generate: prompt token " + std::to_string(prompt[i]) + " at position " + std::to_string(i) +
                        " is outside the vocabulary [0, " + std::to_string(model.config.vocab_size) + ")");
    const auto ids = tensor<std::int32_t, B>::from_host({1, index_t(prompt.size())}, prompt);
    return detail::decode(model, index_t(prompt.size()), prompt, o, on_token,
                          [&](cached_runner<T, B>& r, kv_cache<T, B>& c) -> const tensor<T, B>& { return r.forward(ids, c, true); });
}

/// Generates after a prompt given as input embeddings [1, T, D] (a VLM's spliced prompt).
/// `context` holds the prompt's text ids for the repetition penalty (image positions left out).
template <class T, class B>
std::vector<std::int32_t> generate_from_embeddings(llama<T, B>& model, const tensor<T, B>& embeds,
                                                   const std::vector<std::int32_t>& context, const generate_options& o,
                                                   const std::function<bool(std::int32_t)>& on_token = nullptr) {
    check_shape("vila::llm::generate", "input embeddings", embeds.shape(), {1, any, model.config.hidden_size});
    if (embeds.dim(1) == 0) throw error("vila::llm::generate: empty prompt");
    return detail::decode(model, embeds.dim(1), context, o, on_token,
                          [&](cached_runner<T, B>& r, kv_cache<T, B>& c) -> const tensor<T, B>& { return r.forward_embeddings(embeds, c, true); });
}

}  // namespace vila::llm
