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
//   plain      "<s><image>{caption}\n" — stage-1 alignment: the human turn is replaced by its
//              images and only the caption (and "\n") is trained
// Write a new template as a struct with `name`, `add_special_tokens` and
// `render(conversation) -> std::vector<template_part>` (see vicuna_v1 below).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "../error.hpp"
#include "image_text.hpp"
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

/// Encodes a conversation with a template policy; labels mark what trains. With an image id,
/// each "<image>" becomes that id (encode_with_images); without, "<image>" is plain text.
template <class Template>
labeled_ids render_conversation(const tokenizer& tok, const conversation& conv, std::optional<token_id> image_id = std::nullopt) {
    const std::vector<template_part> parts = Template::render(conv);
    auto encode = [&](const std::string& text) { return image_id ? encode_with_images(tok, text, *image_id) : tok.encode(text, false); };
    std::string full;
    for (const auto& p : parts) full += p.text;
    const std::vector<token_id> body = encode(full);
    labeled_ids out;
    const auto& pre = Template::add_special_tokens ? tok.special_prefix() : std::vector<token_id>{};
    const auto& suf = Template::add_special_tokens ? tok.special_suffix() : std::vector<token_id>{};
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
            throw error(std::string("conversation template ") + Template::name + ": tokenization mismatch at the end of turn " +
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

/// Runtime choice of a template by name ("vicuna_v1", "v1", "llama_3", "plain").
inline labeled_ids render_conversation(const std::string& template_name, const tokenizer& tok, const conversation& conv,
                                       std::optional<token_id> image_id = std::nullopt) {
    if (template_name == "vicuna_v1" || template_name == "v1") return render_conversation<templates::vicuna_v1>(tok, conv, image_id);
    if (template_name == "llama_3") return render_conversation<templates::llama_3>(tok, conv, image_id);
    if (template_name == "plain") return render_conversation<templates::plain>(tok, conv, image_id);
    throw config_error("unknown conversation template '" + template_name + "' (known: vicuna_v1, llama_3, plain)");
}

/// A generation prompt: the conversation's text with the assistant's turn left open, and
/// whether the tokenizer's special tokens (BOS) go around it. Template "none": the text as is.
struct prompt_text {
    std::string text;
    bool add_special_tokens = true;
};
inline prompt_text render_prompt(const std::string& template_name, const std::string& user_text) {
    const conversation c{{"human", user_text}};
    auto join = [](const std::vector<template_part>& parts) {
        std::string s;
        for (const auto& p : parts) s += p.text;
        return s;
    };
    if (template_name == "none" || template_name.empty()) return {user_text, true};
    if (template_name == "vicuna_v1" || template_name == "v1") return {join(templates::vicuna_v1::render(c)), true};
    if (template_name == "llama_3") return {join(templates::llama_3::render(c)), false};
    if (template_name == "plain") {  // the images; the caption is what comes next
        std::string images = join(templates::plain::render({c[0], {"gpt", ""}}));
        images.pop_back();  // the empty caption's "\n"
        return {images, true};
    }
    throw config_error("unknown conversation template '" + template_name + "' (known: none, vicuna_v1, llama_3, plain)");
}

}  // namespace vila::tokenizer
