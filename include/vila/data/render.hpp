// vila/data/render.hpp — a record to a training sample: token ids with one image token per
// image, labels, and the images' references.
//   conversation: the chat template (tokenizer/chat_template.hpp) renders it; loss on the
//     assistant's turns; a tokenization mismatch is an error, never a silently unlabeled sample.
//   text: the tokenizer's special prefix (BOS), then each segment followed by EOS; loss on all
//     text (VILA's MMC4 and COYO samples).
// Labels are -100 at image tokens. A record without images is tokenized as plain text (a
// literal "<image>" stays text, unless "<image>" is the model's image token in the vocabulary,
// as in LLaVA-HF: then the record is refused, as its image count does not match). With max_length, the sequence after splicing (an image counts
// tokens_per_image) is cut at the end, never inside an image's tokens: images past the cut are
// dropped (counted); a sample left with nothing to train on is an error.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../nn/cross_entropy.hpp"
#include "../tokenizer/chat_template.hpp"
#include "record.hpp"
#include "sample.hpp"

namespace vila::data {

struct render_options {
    std::string conv_template = "vicuna_v1";  // for conversations: vicuna_v1, llama_3, hermes-2, plain
    std::int32_t image_token = -200;          // the model's image token id (VILA: -200)
    index_t tokens_per_image = 1;             // features per image after the projector
    index_t max_length = 0;                   // 0: no limit
};

struct rendered {
    sample s;
    std::vector<image_ref> images;
    index_t dropped_images = 0;  // cut off by max_length
    bool truncated = false;
};

inline rendered render(const record& r, const tokenizer::tokenizer& tok, const render_options& o) {
    rendered out;
    sample& s = out.s;
    const bool with_images = !r.images.empty();
    try {
        if (r.type == record::kind::conversation) {
            auto l = tokenizer::render_conversation(o.conv_template, tok, r.turns,
                                                    with_images ? std::optional<tokenizer::token_id>(o.image_token) : std::nullopt);
            s.ids = std::move(l.ids);
            s.labels = std::move(l.labels);
        } else {
            const auto eos = tok.eos_id();
            if (!eos) throw config_error("the tokenizer has no EOS token, which pre-training text needs");
            s.ids = tok.special_prefix();
            for (const auto& seg : r.segments) {
                const auto piece = with_images ? tokenizer::encode_with_images(tok, seg, o.image_token) : tok.encode(seg, false);
                s.ids.insert(s.ids.end(), piece.begin(), piece.end());
                s.ids.push_back(*eos);
            }
            s.labels = s.ids;
        }
    } catch (const config_error&) {
        throw;
    } catch (const error& e) {
        throw format_error(r.where + ": " + e.what());
    }
    std::size_t image_tokens = 0;
    for (std::size_t t = 0; t < s.ids.size(); ++t)
        if (s.ids[t] == o.image_token) {  // also a vocabulary "<image>" (LLaVA-HF) in a text without images
            ++image_tokens;
            s.labels[t] = nn::ignore_index;
        }
    if (image_tokens != r.images.size())
        throw format_error(r.where + ": " + std::to_string(image_tokens) + " image tokens after tokenization but " +
                           std::to_string(r.images.size()) + " images");
    out.images = r.images;
    if (o.max_length > 0) {
        index_t length = 0;
        std::size_t cut = s.ids.size(), images = 0;
        for (std::size_t t = 0; t < s.ids.size(); ++t) {
            const bool image = s.ids[t] == o.image_token;
            const index_t cost = image ? o.tokens_per_image : 1;
            if (length + cost > o.max_length) {
                cut = t;
                break;
            }
            length += cost;
            images += image;
        }
        if (cut < s.ids.size()) {
            out.truncated = true;
            out.dropped_images = index_t(out.images.size() - images);
            s.ids.resize(cut);
            s.labels.resize(cut);
            out.images.resize(images);
        }
    }
    bool trains = false;
    for (std::size_t t = 1; t < s.labels.size() && !trains; ++t) trains = s.labels[t] != nn::ignore_index;
    if (!trains)
        throw format_error(r.where + (out.truncated ? ": nothing left to train on after truncation to " + std::to_string(o.max_length) + " tokens"
                                                    : ": nothing to train on (no labeled token)"));
    s.images = index_t(out.images.size());
    return out;
}

}  // namespace vila::data
