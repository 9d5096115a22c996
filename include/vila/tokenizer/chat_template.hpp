// vila/tokenizer/chat_template.hpp — conversation templates as policy classes: LLaVA-style
// conversations rendered into token ids plus training labels.
//
// A template renders a conversation into parts {text, trained}; render_conversation() encodes
// the whole text once and finds where each trained run starts and ends by encoding the text
// before that point: that encoding must be a prefix of the whole one. When it is not (a merge across a part boundary),
// it throws vila::error naming the template, the turn and the text at the boundary, instead of
// silently zeroing the loss as the reference trainers' "tokenization mismatch" does.
// Labels: the ids of trained parts (assistant answers and their end token), -100 elsewhere.
//
// Templates (VILA's llava/conversation.py strings):
//   vicuna_v1  "<s>{system} USER: {q} ASSISTANT: {a}</s>USER: ..."   (VILA1.5-3b, -13b)
//   llama_3    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>"
//              "<|start_header_id|>user<|end_header_id|>\n\n{q}<|eot_id|>"
//              "<|start_header_id|>assistant<|end_header_id|>\n\n{a}<|eot_id|>..." (VILA1.5-8b);
//              the last assistant turn ends with <|end_of_text|>
//   hermes_2   "<|im_start|>system\nAnswer the questions.<|im_end|><|im_start|>user\n{q}<|im_end|>"
//              "<|im_start|>assistant\n{a}<|im_end|>..." (VILA1.5-40b; "hermes-2")
//   plain      "<s><image>{caption}\n" — stage-1 alignment: the human turn is replaced by its
//              images and only the caption (and "\n") is trained
//   auto       the tokenizer's own Jinja chat_template (tokenizer_config.json), rendered as
//              transformers' apply_chat_template does (tokenizer/jinja.hpp); VILA's "auto" mode
// Write a new template as a struct with `name`, `add_special_tokens` and
// `render(conversation) -> std::vector<template_part>` (see vicuna_v1 below).
#pragma once
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "image_text.hpp"
#include "jinja.hpp"
#include "tokenizer.hpp"

namespace vila::tokenizer {

/// One turn: from = "human" | "gpt" (also "user" | "assistant"), value = text with <image> kept.
struct message {
    std::string from, value;
};
using conversation = std::vector<message>;

struct template_part {
    std::string text;
    bool trained = false;
    int turn = -1;  // index of the message it renders, for error messages
};

struct labeled_ids {
    std::vector<token_id> ids;
    std::vector<token_id> labels;  // -100 where not trained
};

inline constexpr token_id ignore_label = -100;

namespace detail {
inline bool is_human(const message& m, std::size_t i, const char* tmpl) {
    if (m.from == "human" || m.from == "user") return true;
    if (m.from == "gpt" || m.from == "assistant") return false;
    throw error(std::string("conversation template ") + tmpl + ": turn " + std::to_string(i) + " has unknown role '" +
                m.from + "' (expected human/user or gpt/assistant)");
}
inline void check_alternation(const conversation& c, const char* tmpl) {
    if (c.empty()) throw error(std::string("conversation template ") + tmpl + ": empty conversation");
    for (std::size_t i = 0; i < c.size(); ++i)
        if (is_human(c[i], i, tmpl) != (i % 2 == 0))
            throw error(std::string("conversation template ") + tmpl + ": turn " + std::to_string(i) +
                        " should be from the " + (i % 2 == 0 ? "human" : "assistant") + " (turns alternate, human first)");
}
}  // namespace detail

namespace templates {

/// Vicuna v1 (VILA1.5-3b / 13b): system, then "USER: q ASSISTANT: a</s>" rounds.
struct vicuna_v1 {
    static constexpr const char* name = "vicuna_v1";
    static constexpr bool add_special_tokens = true;  // BOS from the tokenizer's post-processor
    static constexpr const char* system =
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions.";
    static std::vector<template_part> render(const conversation& c) {
        detail::check_alternation(c, name);
        std::vector<template_part> parts{{std::string(system) + " ", false, -1}};
        for (std::size_t i = 0; i < c.size(); ++i) {
            if (i % 2 == 0) {
                parts.push_back({"USER: " + c[i].value + " ASSISTANT:", false, int(i)});
            } else {
                parts.push_back({" " + c[i].value + "</s>", true, int(i)});
            }
        }
        return parts;
    }
};

/// Llama-3 chat (VILA1.5-8b).
struct llama_3 {
    static constexpr const char* name = "llama_3";
    static constexpr bool add_special_tokens = false;  // the template writes <|begin_of_text|> itself
    static constexpr const char* system =
        "You are a helpful language and vision assistant. You are able to understand the visual content that the user "
        "provides, and assist the user with a variety of tasks using natural language.";
    static std::vector<template_part> render(const conversation& c) {
        detail::check_alternation(c, name);
        std::vector<template_part> parts{
            {std::string("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n") + system + "<|eot_id|>", false, -1}};
        for (std::size_t i = 0; i < c.size(); ++i) {
            const bool last = i + 1 == c.size();  // a final answer ends the text
            if (i % 2 == 0) {
                parts.push_back({"<|start_header_id|>user<|end_header_id|>\n\n" + c[i].value + "<|eot_id|>", false, int(i)});
                parts.push_back({"<|start_header_id|>assistant<|end_header_id|>\n\n", false, int(i) + 1});
            } else {
                parts.push_back({c[i].value + (last ? "<|end_of_text|>" : "<|eot_id|>"), true, int(i)});
            }
        }
        return parts;
    }
};

/// Hermes-2 / ChatML (VILA1.5-40b): MPT separators, no newline after <|im_end|>. Trained: the
/// answer and its <|im_end|> (VILA masks the answer plus the separator's first token).
struct hermes_2 {
    static constexpr const char* name = "hermes-2";
    static constexpr bool add_special_tokens = true;  // whatever the tokenizer's post-processor adds
    static std::vector<template_part> render(const conversation& c) {
        detail::check_alternation(c, name);
        std::vector<template_part> parts{{"<|im_start|>system\nAnswer the questions.<|im_end|>", false, -1}};
        for (std::size_t i = 0; i < c.size(); ++i) {
            if (i % 2 == 0) {
                parts.push_back({"<|im_start|>user\n" + c[i].value + "<|im_end|><|im_start|>assistant\n", false, int(i)});
            } else {
                parts.push_back({c[i].value + "<|im_end|>", true, int(i)});
            }
        }
        return parts;
    }
};

/// Plain (stage-1 alignment, LLaVA-CC3M captions): "<image>...<image>" + caption + "\n".
struct plain {
    static constexpr const char* name = "plain";
    static constexpr bool add_special_tokens = true;
    static std::vector<template_part> render(const conversation& c) {
        if (c.size() != 2)
            throw error(std::string("conversation template plain: expects one human and one gpt turn, got ") +
                        std::to_string(c.size()) + " turns");
        detail::check_alternation(c, name);
        std::string images;  // the human text is dropped; its images stay
        for (std::size_t p = 0; (p = c[0].value.find(image_placeholder, p)) != std::string::npos; p += 7) images += image_placeholder;
        if (images.empty()) images = image_placeholder;
        return {{images, false, 0}, {c[1].value + "\n", true, 1}};
    }
};

}  // namespace templates

namespace detail {
/// The parsed template of a tokenizer's chat_template, cached per thread (parsing Qwen3's
/// 4 kB template costs more than rendering it).
inline const jinja::template_source& parsed_chat_template(const tokenizer& tok) {
    if (tok.chat_template().empty())
        throw config_error("conversation template auto: " + tok.source() + " has no chat_template (tokenizer_config.json or chat_template.jinja)");
    thread_local std::vector<std::pair<std::string, std::shared_ptr<const jinja::template_source>>> cache;
    for (const auto& [src, t] : cache)
        if (src == tok.chat_template()) return *t;
    if (cache.size() >= 8) cache.erase(cache.begin());
    cache.emplace_back(tok.chat_template(), std::make_shared<jinja::template_source>(tok.chat_template(), tok.source() + " chat_template"));
    return *cache.back().second;
}

/// What transformers' apply_chat_template passes a template: messages (role, content), no tools
/// or documents, the generation flag and the tokenizer's special token strings.
inline jinja::json chat_context(const tokenizer& tok, const conversation& c, bool add_generation_prompt,
                                const std::string* answer_override = nullptr) {
    jinja::json messages = jinja::json::array();
    for (std::size_t i = 0; i < c.size(); ++i) {
        const auto& m = c[i];
        std::string role = m.from == "system" ? "system" : is_human(m, i, "auto") ? "user" : "assistant";
        // VILA's tokenize_conversation strips every message before rendering
        const std::size_t b = m.value.find_first_not_of(" \t\r\n"), e = m.value.find_last_not_of(" \t\r\n");
        std::string content = b == std::string::npos ? std::string() : m.value.substr(b, e - b + 1);
        if (answer_override && role == "assistant") content = *answer_override;
        messages.push_back({{"role", role}, {"content", content}});
    }
    jinja::json ctx = {{"messages", messages}, {"tools", nullptr}, {"documents", nullptr}, {"add_generation_prompt", add_generation_prompt}};
    for (const auto& [k, v] : tok.special_token_strings().items()) ctx[k] = v;
    return ctx;
}
}  // namespace detail

namespace templates {
/// The tokenizer's Jinja chat_template ("auto", as VILA names it). Trained text: the output of
/// {% generation %} blocks when the template has them (transformers' assistant mask); otherwise
/// VILA's sentinel rule: each answer as the template writes it, plus the special token that
/// directly follows it (its end-of-turn token). An answer the template rewrites (so that it does
/// not appear as given) cannot be aligned and is an error naming the turn.
struct chat_template {
    static constexpr const char* name = "auto";
    static constexpr bool add_special_tokens = false;  // apply_chat_template: the template writes them
    static std::vector<template_part> render(const tokenizer& tok, const conversation& c, bool add_generation_prompt = false) {
        if (c.empty()) throw error("conversation template auto: empty conversation");
        const auto& t = detail::parsed_chat_template(tok);
        const jinja::rendered r = t.render(detail::chat_context(tok, c, add_generation_prompt));
        std::vector<template_part> parts;
        if (!r.generation.empty()) {
            std::size_t at = 0;
            for (const auto& [b, e] : r.generation) {
                if (b < at) continue;  // nested blocks: the outer one already covers them
                if (b > at) parts.push_back({r.text.substr(at, b - at), false, -1});
                if (e > b) parts.push_back({r.text.substr(b, e - b), true, -1});
                at = e;
            }
            if (at < r.text.size()) parts.push_back({r.text.substr(at), false, -1});
            return parts;
        }
        static const std::string sentinel = "\x1e<vila answer>\x1e";
        const std::string marked = t.render(detail::chat_context(tok, c, add_generation_prompt, &sentinel)).text;
        std::vector<std::string> pieces;
        for (std::size_t at = 0;;) {
            const std::size_t p = marked.find(sentinel, at);
            pieces.push_back(marked.substr(at, p == std::string::npos ? std::string::npos : p - at));
            if (p == std::string::npos) break;
            at = p + sentinel.size();
        }
        const std::string& text = r.text;
        auto misaligned = [&](std::size_t answer) {
            return error("conversation template auto: answer " + std::to_string(answer) +
                         " does not appear in the rendered text as given (the chat template rewrites it); "
                         "add {% generation %} blocks to the template, or use another template");
        };
        if (text.compare(0, pieces[0].size(), pieces[0]) != 0) throw misaligned(1);
        std::size_t pos = pieces[0].size();
        std::size_t untrained_from = 0;
        for (std::size_t i = 1; i < pieces.size(); ++i) {
            const std::string& after = pieces[i];
            std::size_t end;
            if (i + 1 == pieces.size()) {
                if (text.size() < pos + after.size() || text.compare(text.size() - after.size(), after.size(), after) != 0) throw misaligned(i);
                end = text.size() - after.size();
            } else {
                if (after.empty()) throw misaligned(i);
                end = text.find(after, pos);
                if (end == std::string::npos) throw misaligned(i);
            }
            std::size_t sep = 0;  // the special token right after the answer trains too
            for (const auto& a : tok.added_tokens())
                if (a.special && a.content.size() > sep && text.compare(end, a.content.size(), a.content) == 0) sep = a.content.size();
            parts.push_back({text.substr(untrained_from, pos - untrained_from), false, -1});
            parts.push_back({text.substr(pos, end + sep - pos), true, -1});
            untrained_from = end + sep;
            pos = end + after.size();
        }
        parts.push_back({text.substr(untrained_from), false, -1});
        parts.erase(std::remove_if(parts.begin(), parts.end(), [](const template_part& p) { return p.text.empty(); }), parts.end());
        return parts;
    }
};
}  // namespace templates

namespace detail {
/// Encodes rendered parts; labels mark what trains. With an image id, each "<image>" becomes
/// that id (encode_with_images); without, "<image>" is plain text.
inline labeled_ids encode_parts(const tokenizer& tok, const std::vector<template_part>& parts, bool add_special_tokens,
                                const char* template_name, std::optional<token_id> image_id) {
    auto encode = [&](const std::string& text) { return image_id ? encode_with_images(tok, text, *image_id) : tok.encode(text, false); };
    std::string full;
    for (const auto& p : parts) full += p.text;
    const std::vector<token_id> body = encode(full);
    labeled_ids out;
    const auto& pre = add_special_tokens ? tok.special_prefix() : std::vector<token_id>{};
    const auto& suf = add_special_tokens ? tok.special_suffix() : std::vector<token_id>{};
    out.ids = pre;
    out.ids.insert(out.ids.end(), body.begin(), body.end());
    out.ids.insert(out.ids.end(), suf.begin(), suf.end());
    out.labels.assign(out.ids.size(), ignore_label);

    std::string prefix;
    std::size_t start = 0;  // first body token of the current run of parts
    for (std::size_t k = 0; k < parts.size(); ++k) {
        prefix += parts[k].text;
        // Only where trained and untrained text meet must the tokens split cleanly.
        if (k + 1 < parts.size() && parts[k + 1].trained == parts[k].trained) continue;
        const std::vector<token_id> upto = encode(prefix);
        const bool consistent =
            upto.size() <= body.size() && std::equal(upto.begin(), upto.end(), body.begin());
        if (!consistent) {
            const std::string tail = prefix.size() > 40 ? "..." + prefix.substr(prefix.size() - 40) : prefix;
            throw error(std::string("conversation template ") + template_name + ": tokenization mismatch at the end of turn " +
                        std::to_string(parts[k].turn) + " (text ending \"" + tail +
                        "\"): its tokens merge with the next part, so labels cannot be aligned. Check the turn's "
                        "leading/trailing spaces");
        }
        if (parts[k].trained)
            for (std::size_t t = start; t < upto.size(); ++t) out.labels[pre.size() + t] = body[t];
        start = upto.size();
    }
    return out;
}
}  // namespace detail

/// Encodes a conversation with a template policy; labels mark what trains. With an image id,
/// each "<image>" becomes that id (encode_with_images); without, "<image>" is plain text.
template <class Template>
labeled_ids render_conversation(const tokenizer& tok, const conversation& conv, std::optional<token_id> image_id = std::nullopt) {
    if constexpr (std::is_same_v<Template, templates::chat_template>)
        return detail::encode_parts(tok, Template::render(tok, conv), Template::add_special_tokens, Template::name, image_id);
    else
        return detail::encode_parts(tok, Template::render(conv), Template::add_special_tokens, Template::name, image_id);
}

/// Runtime choice of a template by name ("vicuna_v1", "v1", "llama_3", "hermes-2", "plain").
inline labeled_ids render_conversation(const std::string& template_name, const tokenizer& tok, const conversation& conv,
                                       std::optional<token_id> image_id = std::nullopt) {
    if (template_name == "vicuna_v1" || template_name == "v1") return render_conversation<templates::vicuna_v1>(tok, conv, image_id);
    if (template_name == "llama_3") return render_conversation<templates::llama_3>(tok, conv, image_id);
    if (template_name == "hermes-2" || template_name == "hermes_2") return render_conversation<templates::hermes_2>(tok, conv, image_id);
    if (template_name == "plain") return render_conversation<templates::plain>(tok, conv, image_id);
    if (template_name == "auto") return render_conversation<templates::chat_template>(tok, conv, image_id);
    throw config_error("unknown conversation template '" + template_name + "' (known: vicuna_v1, llama_3, hermes-2, plain, auto)");
}

/// A generation prompt: the conversation's text with the assistant's turn left open, and
/// whether the tokenizer's special tokens (BOS) go around it. Template "none": the text as is.
struct prompt_text {
    std::string text;
    bool add_special_tokens = true;
};
/// `tok` is needed by "auto" only (the tokenizer's chat_template).
inline prompt_text render_prompt(const std::string& template_name, const std::string& user_text, const tokenizer* tok = nullptr) {
    const conversation c{{"human", user_text}};
    auto join = [](const std::vector<template_part>& parts) {
        std::string s;
        for (const auto& p : parts) s += p.text;
        return s;
    };
    if (template_name == "none" || template_name.empty()) return {user_text, true};
    if (template_name == "auto") {
        if (!tok) throw config_error("conversation template auto needs the tokenizer (its chat_template)");
        return {join(templates::chat_template::render(*tok, c, /*add_generation_prompt=*/true)), false};
    }
    if (template_name == "vicuna_v1" || template_name == "v1") return {join(templates::vicuna_v1::render(c)), true};
    if (template_name == "llama_3") return {join(templates::llama_3::render(c)), false};
    if (template_name == "hermes-2" || template_name == "hermes_2") return {join(templates::hermes_2::render(c)), true};
    if (template_name == "plain") {  // the images; the caption is what comes next
        std::string images = join(templates::plain::render({c[0], {"gpt", ""}}));
        images.pop_back();  // the empty caption's "\n"
        return {images, true};
    }
    throw config_error("unknown conversation template '" + template_name + "' (known: none, vicuna_v1, llama_3, hermes-2, plain, auto)");
}

}  // namespace vila::tokenizer
