// vila/eval/tasks.hpp — evaluation tasks on a model: a text LLM (llm::llama) or a VLM
// (vila::vlm), through the same forward_loss the trainer uses (train/model_step.hpp).
//   choice      the option with the highest log-likelihood as a continuation (multiple choice
//               MMLU-style, k-shot in-context episodes): the sum over the option's tokens
//   perplexity  exp of the mean next-token loss over the samples' labeled tokens
//   vqa         greedy generation after a chat-template prompt, scored by vqa_score()
//   caption     greedy captions scored with BLEU-4 and CIDEr-D against the references
//   exact       the strict test: greedy generation (argmax over the whole vocabulary) after a
//               choice item's prompt (trailing whitespace moved into the generation), cut at
//               the first "." or newline after its leading whitespace, equal to the answer
//               (forgetting shows first as format drift, which log-likelihood choice misses)
// Each returns a plain result struct (the accuracy or perplexity, counts, per-item predictions).
#pragma once
#include <cctype>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "../data/images.hpp"
#include "../data/render.hpp"
#include "../llm/generate.hpp"
#include "../tokenizer/stream_decoder.hpp"
#include "../train/model_step.hpp"
#include "metrics.hpp"

namespace vila::eval {

/// Summed negative log-likelihood of a sample's labeled tokens (after the next-token shift)
/// and their count, with the sample's images (pixels [N, 3, H, W], N = 0 for none).
template <class Model>
std::pair<double, index_t> sample_nll(Model& m, const data::sample& s, const tensor<float>& pixels) {
    data::batch b;
    b.samples = {s};
    if (pixels.rank() == 4 && pixels.dim(0) > 0) b.pixels = pixels;
    const auto r = train::forward_loss(m, b);
    return {double(r.loss) * double(r.count), r.count};
}

/// A sample whose labels are the tokens of `continuation` after `prefix` (BOS first when the
/// tokenizer adds one); "<image>" marks become `image_token`. The prefix's tokens must be a
/// prefix of the whole text's (a continuation starting with a space keeps it so).
inline data::sample continuation_sample(const tokenizer::tokenizer& tok, const std::string& prefix, const std::string& continuation,
                                        std::int32_t image_token, bool add_special_tokens = true) {
    const auto head = tokenizer::encode_with_images(tok, prefix, image_token);
    const auto all = tokenizer::encode_with_images(tok, prefix + continuation, image_token);
    std::size_t keep = 0;
    while (keep < head.size() && keep < all.size() && head[keep] == all[keep]) ++keep;
    if (keep == all.size()) throw error("vila::eval: the continuation '" + continuation + "' adds no token to its prompt");
    data::sample s;
    if (add_special_tokens) s.ids = tok.special_prefix();
    const std::size_t bos = s.ids.size();
    s.ids.insert(s.ids.end(), all.begin(), all.end());
    s.labels.assign(s.ids.size(), nn::ignore_index);
    for (std::size_t t = bos + keep; t < s.ids.size(); ++t) s.labels[t] = s.ids[t];
    std::size_t images = 0;
    for (auto id : s.ids) images += id == image_token;
    s.images = index_t(images);
    return s;
}

/// Pixels [N, 3, H, W] of image references (N = 0: an empty tensor).
inline tensor<float> load_pixels(const std::vector<data::image_ref>& refs, const vision::image_processor* processor) {
    if (refs.empty()) return {};
    if (!processor) throw config_error("vila::eval: items have images but no image processor was given");
    std::vector<float> all;
    shape_t one;
    for (const auto& r : refs) {
        const auto px = data::load_pixels(r, *processor);
        if (!one.empty() && px.shape() != one) throw shape_error(r.where() + ": preprocessed to another size than the item's first image");
        one = px.shape();
        const auto h = px.to_host();
        all.insert(all.end(), h.begin(), h.end());
    }
    return tensor<float>::from_host({index_t(refs.size()), one[0], one[1], one[2]}, all);
}

/// One multiple-choice or in-context item: a prompt (with "<image>" marks and its images) and
/// continuations, one of them right.
struct choice_item {
    std::string id;
    std::string prompt;
    std::vector<std::string> choices;  // the continuations, as they follow the prompt (" blick.")
    std::size_t answer = 0;
    std::vector<data::image_ref> images;
    bool add_special_tokens = true;  // the tokenizer's BOS first (false: the prompt writes its own, llama_3)
    std::string answer_text;         // the right choice as the file writes it (for exact())
};
struct choice_result {
    double accuracy = 0;
    std::size_t items = 0, correct = 0;
    std::vector<std::size_t> predictions;
    std::vector<std::vector<double>> log_likelihoods;  // per item, per choice
};

/// Picks, for each item, the continuation with the highest log-likelihood (summed over its tokens).
template <class Model>
choice_result choice(Model& m, const tokenizer::tokenizer& tok, const std::vector<choice_item>& items, std::int32_t image_token,
                     const vision::image_processor* processor = nullptr, const std::function<void(std::size_t)>& progress = nullptr) {
    choice_result r;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& it = items[i];
        if (it.choices.empty() || it.answer >= it.choices.size())
            throw error("vila::eval::choice: item " + it.id + " has no choices or an answer out of range");
        const tensor<float> pixels = load_pixels(it.images, processor);
        std::vector<double> ll;
        for (const auto& c : it.choices) ll.push_back(-sample_nll(m, continuation_sample(tok, it.prompt, c, image_token, it.add_special_tokens), pixels).first);
        std::size_t best = 0;
        for (std::size_t k = 1; k < ll.size(); ++k)
            if (ll[k] > ll[best]) best = k;
        r.predictions.push_back(best);
        r.log_likelihoods.push_back(std::move(ll));
        r.correct += best == it.answer;
        ++r.items;
        if (progress) progress(i + 1);
    }
    r.accuracy = r.items ? double(r.correct) / double(r.items) : 0;
    return r;
}

struct perplexity_result {
    double perplexity = 0, mean_nll = 0;
    index_t tokens = 0;
};
/// Perplexity over rendered samples (their labeled tokens) with their images.
template <class Model>
perplexity_result perplexity(Model& m, const std::vector<data::rendered>& samples, const vision::image_processor* processor = nullptr) {
    perplexity_result r;
    double nll = 0;
    for (const auto& s : samples) {
        const auto [sum, n] = sample_nll(m, s.s, load_pixels(s.images, processor));
        nll += sum;
        r.tokens += n;
    }
    if (r.tokens == 0) throw error("vila::eval::perplexity: no labeled token");
    r.mean_nll = nll / double(r.tokens);
    r.perplexity = std::exp(r.mean_nll);
    return r;
}

/// Greedy continuation of prompt ids (with image tokens) and their images: the new token ids.
template <class T, class B>
std::vector<std::int32_t> generate_ids(llm::llama<T, B>& m, const std::vector<std::int32_t>& ids, const tensor<float>&,
                                       const llm::generate_options& o) {
    return llm::generate(m, ids, o);
}
template <class V, template <class, class> class P, template <class, class> class L, class B, class T>
std::vector<std::int32_t> generate_ids(vlm<V, P, L, B, T>& m, const std::vector<std::int32_t>& ids, const tensor<float>& pixels,
                                       const llm::generate_options& o) {
    const index_t n = pixels.rank() == 4 ? pixels.dim(0) : 0;
    const auto& embeds = m.embed({{ids, {}, n}}, n ? &pixels : nullptr);
    std::vector<std::int32_t> context;
    for (auto t : ids)
        if (t != m.image_token_id) context.push_back(t);
    return llm::generate_from_embeddings(m.llm, embeds, context, o);
}

struct vqa_item {
    std::string id, question;              // the question with its "<image>" marks
    std::vector<std::string> answers;      // one, or the annotators' (VQAv2: 10)
    std::vector<data::image_ref> images;
};
struct vqa_result {
    double accuracy = 0;  // mean vqa_score, in [0, 1]
    std::size_t items = 0;
    std::vector<std::string> predictions;
};

/// The greedy continuation of `text` (with "<image>" marks, after the tokenizer's special prefix
/// when `add_special_tokens`), decoded, without its EOS.
template <class Model>
std::string greedy_text(Model& m, const tokenizer::tokenizer& tok, const std::string& text, bool add_special_tokens, const tensor<float>& pixels,
                        std::int32_t image_token, int max_new_tokens) {
    llm::generate_options o;
    o.max_new_tokens = max_new_tokens;
    if (tok.eos_id()) o.stop_tokens.push_back(*tok.eos_id());
    std::vector<std::int32_t> ids;
    if (add_special_tokens) ids = tok.special_prefix();
    const auto body = tokenizer::encode_with_images(tok, text, image_token);
    ids.insert(ids.end(), body.begin(), body.end());
    auto out = generate_ids(m, ids, pixels, o);
    if (!out.empty() && tok.eos_id() && out.back() == *tok.eos_id()) out.pop_back();
    return tok.decode(out, true);
}

/// Greedy answers to items' questions after the chat template's prompt (`conv`).
template <class Model>
std::vector<std::string> answer_all(Model& m, const tokenizer::tokenizer& tok, const std::vector<vqa_item>& items, std::int32_t image_token,
                                    const std::string& conv, const vision::image_processor* processor, int max_new_tokens,
                                    const std::function<void(std::size_t)>& progress) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto p = tokenizer::render_prompt(conv, items[i].question, &tok);
        out.push_back(greedy_text(m, tok, p.text, p.add_special_tokens, load_pixels(items[i].images, processor), image_token, max_new_tokens));
        if (progress) progress(i + 1);
    }
    return out;
}

/// Answers each question by greedy generation after the chat template's prompt (`conv`: none,
/// vicuna_v1, llama_3, plain) and scores it with vqa_score().
template <class Model>
vqa_result vqa(Model& m, const tokenizer::tokenizer& tok, const std::vector<vqa_item>& items, std::int32_t image_token,
               const std::string& conv, const vision::image_processor* processor = nullptr, int max_new_tokens = 16,
               const std::function<void(std::size_t)>& progress = nullptr) {
    vqa_result r;
    r.predictions = answer_all(m, tok, items, image_token, conv, processor, max_new_tokens, progress);
    double sum = 0;
    for (std::size_t i = 0; i < items.size(); ++i) sum += vqa_score(r.predictions[i], items[i].answers);
    r.items = items.size();
    r.accuracy = r.items ? sum / double(r.items) : 0;
    return r;
}

/// Lower-case words without punctuation: the pre-tokenization captions get before BLEU and
/// CIDEr (pycocoevalcap runs the PTB tokenizer, which also drops punctuation).
inline std::string caption_words(const std::string& s) {
    std::string out;
    bool space = true;
    for (char c : s) {
        const unsigned char u = static_cast<unsigned char>(c);
        if (std::isalnum(u) || u >= 0x80 || c == '\'') {
            out += char(std::tolower(u));
            space = false;
        } else if (!space) {
            out += ' ';
            space = true;
        }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

struct caption_result {
    double bleu4 = 0, cider = 0;
    std::size_t items = 0;
    std::vector<std::string> predictions;
};
/// Greedy captions (the items' questions are the captioning prompts, the answers the reference
/// captions) scored with BLEU-4 and CIDEr-D after caption_words().
template <class Model>
caption_result caption(Model& m, const tokenizer::tokenizer& tok, const std::vector<vqa_item>& items, std::int32_t image_token,
                       const std::string& conv, const vision::image_processor* processor = nullptr, int max_new_tokens = 32,
                       const std::function<void(std::size_t)>& progress = nullptr) {
    caption_result r;
    r.predictions = answer_all(m, tok, items, image_token, conv, processor, max_new_tokens, progress);
    std::vector<std::string> hyps;
    std::vector<std::vector<std::string>> refs;
    for (std::size_t i = 0; i < items.size(); ++i) {
        hyps.push_back(caption_words(r.predictions[i]));
        refs.emplace_back();
        for (const auto& a : items[i].answers) refs.back().push_back(caption_words(a));
    }
    r.items = items.size();
    if (r.items) {
        r.bleu4 = bleu(hyps, refs, 4)[3];
        r.cider = eval::cider(hyps, refs).score;
    }
    return r;
}

struct exact_result {
    double accuracy = 0;
    std::size_t items = 0, correct = 0;
    std::vector<std::string> predictions;
};
/// The strict metric: the greedy continuation of each choice item's prompt, cut at its first
/// "." or newline and trimmed, must equal the item's answer_text.
template <class Model>
exact_result exact(Model& m, const tokenizer::tokenizer& tok, const std::vector<choice_item>& items, std::int32_t image_token,
                   const vision::image_processor* processor = nullptr, int max_new_tokens = 8,
                   const std::function<void(std::size_t)>& progress = nullptr) {
    exact_result r;
    for (std::size_t i = 0; i < items.size(); ++i) {
        const auto& it = items[i];
        // the prompt's trailing whitespace moves into the generation (a tokenizer may join it with
        // the next word: " blick"), and the generation's leading whitespace is dropped
        std::string prompt = it.prompt;
        while (!prompt.empty() && std::isspace(static_cast<unsigned char>(prompt.back()))) prompt.pop_back();
        std::string out = greedy_text(m, tok, prompt, it.add_special_tokens, load_pixels(it.images, processor), image_token, max_new_tokens);
        const auto b = out.find_first_not_of(" \n\t\r");
        out = b == std::string::npos ? std::string() : out.substr(b);
        out = out.substr(0, out.find_first_of(".\n"));
        while (!out.empty() && out.back() == ' ') out.pop_back();
        r.correct += out == it.answer_text;
        r.predictions.push_back(std::move(out));
        ++r.items;
        if (progress) progress(i + 1);
    }
    r.accuracy = r.items ? double(r.correct) / double(r.items) : 0;
    return r;
}

}  // namespace vila::eval
