// vila/model/splice.hpp — where image features go in a batch of token sequences.
//
// A sample's image tokens take its images in order. Two spellings are accepted per sample:
//   compact   one image token per image (VILA's -200 placeholder, a prompt's "<image>"): the
//             token is replaced by all F projected features of its image;
//   expanded  F image tokens per image (what transformers' LLaVA processor writes): each token
//             takes one feature.
// Images may differ in their feature counts (NVILA's tiling) and may be framed by token ids
// (NVILA's "\n" after each image), both given by image_slots.
// Samples are right-padded to the longest. Image and padding positions get label -100.
// The plan is computed on the host (sizes are small); the gathers run on the backend.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../core/tensor.hpp"
#include "../data/sample.hpp"
#include "../nn/cross_entropy.hpp"

namespace vila::model {

/// A batch's sequence (data/sample.hpp); kept under this name for code written against 0.1.
using sample = data::sample;

struct splice_plan {
    index_t batch = 0, length = 0, images = 0, features_per_image = 0;  // features_per_image: 0 when they differ
    index_t feature_rows = 0;                    // all images' feature rows
    bool padded = false;
    std::vector<std::int32_t> token;             // [B*T] token id at text positions (and an image's start/end tokens), -1 elsewhere
    std::vector<std::int32_t> feature;           // [B*T] feature row at image positions, -1 elsewhere
    std::vector<std::int32_t> mask;              // [B*T] 1 for a real position, 0 for padding
    std::vector<std::int32_t> labels;            // [B*T]
    std::vector<std::int32_t> feature_position;  // [feature_rows] the position (b * T + t) of each feature row
    std::vector<index_t> lengths;                // [B]
};

/// How each image enters the sequence: its feature rows (in image order; rows are numbered
/// consecutively over the images) between token ids that frame every image (NVILA's image
/// encoder appends the embedding of "\n"; VILA 1.5 and LLaVA frame nothing).
struct image_slots {
    std::vector<index_t> features;             // per image
    std::vector<std::int32_t> start, end;      // token ids before / after each image's features
};

/// Lays out `samples`; `images_given` must be the total image count.
inline splice_plan plan_splice(const std::vector<sample>& samples, std::int32_t image_token, const image_slots& slots,
                               index_t images_given, index_t vocab) {
    if (samples.empty()) throw error("vila::vlm: empty batch");
    const index_t framing = index_t(slots.start.size() + slots.end.size());
    for (const auto* framing_ids : {&slots.start, &slots.end})
        for (auto t : *framing_ids)
            if (t < 0 || t >= vocab) throw error("vila::vlm: image framing token id " + std::to_string(t) + " outside the vocabulary of " + std::to_string(vocab));
    splice_plan p;
    p.batch = index_t(samples.size());
    // the expanded spelling (one token per feature) exists for uniform, unframed images only
    index_t F = slots.features.empty() ? 0 : slots.features[0];
    for (auto f : slots.features) if (f != F) F = 0;
    p.features_per_image = F;
    const bool expandable = F > 1 && framing == 0;
    std::vector<bool> expanded(samples.size());
    std::vector<index_t> first_image(samples.size());
    for (std::size_t b = 0; b < samples.size(); ++b) {
        const auto& s = samples[b];
        if (s.ids.empty()) throw error("vila::vlm: sample " + std::to_string(b) + " has no tokens");
        if (!s.labels.empty() && s.labels.size() != s.ids.size())
            throw shape_error("vila::vlm: sample " + std::to_string(b) + " has " + std::to_string(s.labels.size()) + " labels for " +
                              std::to_string(s.ids.size()) + " tokens");
        index_t k = 0;
        for (std::size_t t = 0; t < s.ids.size(); ++t) {
            if (s.ids[t] == image_token) ++k;
            else if (s.ids[t] < 0 || s.ids[t] >= vocab)
                throw error("vila::vlm: sample " + std::to_string(b) + ": token id " + std::to_string(s.ids[t]) + " at position " +
                            std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
        }
        const index_t n = s.images < 0 ? k : s.images;
        if (k == n) expanded[b] = false;
        else if (expandable && k == n * F) expanded[b] = true;
        else
            throw error("vila::vlm: sample " + std::to_string(b) + " has " + std::to_string(k) + " image token" + (k == 1 ? "" : "s") +
                        " but " + std::to_string(n) + " image" + (n == 1 ? "" : "s") + (expandable ? " (expected one token per image, or " +
                        std::to_string(F) + " per image when expanded)" : ""));
        first_image[b] = p.images;
        p.images += n;
    }
    if (p.images != images_given)
        throw error("vila::vlm: the batch's image tokens call for " + std::to_string(p.images) + " image" + (p.images == 1 ? "" : "s") +
                    " but " + std::to_string(images_given) + " were given");
    if (index_t(slots.features.size()) != images_given)
        throw error("vila::vlm: " + std::to_string(slots.features.size()) + " feature counts for " + std::to_string(images_given) + " images");
    for (std::size_t b = 0; b < samples.size(); ++b) {
        index_t len = index_t(samples[b].ids.size());
        const index_t end = b + 1 < samples.size() ? first_image[b + 1] : p.images;
        if (!expanded[b])
            for (index_t i = first_image[b]; i < end; ++i) len += framing + slots.features[std::size_t(i)] - 1;
        p.lengths.push_back(len);
        p.length = std::max(p.length, len);
    }
    std::vector<index_t> first_row(slots.features.size() + 1, 0);
    for (std::size_t i = 0; i < slots.features.size(); ++i) first_row[i + 1] = first_row[i] + slots.features[i];
    p.feature_rows = first_row.back();
    const index_t T = p.length;
    p.token.assign(std::size_t(p.batch * T), -1);
    p.feature.assign(std::size_t(p.batch * T), -1);
    p.mask.assign(std::size_t(p.batch * T), 0);
    p.labels.assign(std::size_t(p.batch * T), nn::ignore_index);
    p.feature_position.assign(std::size_t(p.feature_rows), -1);
    for (std::size_t b = 0; b < samples.size(); ++b) {
        const auto& s = samples[b];
        index_t pos = index_t(b) * T, image = first_image[b], row = first_row[std::size_t(image)];
        auto put_feature = [&] {
            p.mask[std::size_t(pos)] = 1;
            p.feature[std::size_t(pos)] = std::int32_t(row);
            p.feature_position[std::size_t(row++)] = std::int32_t(pos++);
        };
        auto put_token = [&](std::int32_t id, std::int32_t label) {
            p.mask[std::size_t(pos)] = 1;
            p.token[std::size_t(pos)] = id;
            p.labels[std::size_t(pos++)] = label;
        };
        for (std::size_t t = 0; t < s.ids.size(); ++t) {
            if (s.ids[t] != image_token) {
                put_token(s.ids[t], s.labels.empty() ? s.ids[t] : s.labels[t]);
            } else if (expanded[b]) {
                put_feature();
            } else {
                for (auto id : slots.start) put_token(id, nn::ignore_index);
                for (index_t f = 0; f < slots.features[std::size_t(image)]; ++f) put_feature();
                for (auto id : slots.end) put_token(id, nn::ignore_index);
                ++image;
            }
        }
        if (p.lengths[b] < T) p.padded = true;
    }
    return p;
}

/// Every image F features, unframed.
inline splice_plan plan_splice(const std::vector<sample>& samples, std::int32_t image_token, index_t features_per_image,
                               index_t images_given, index_t vocab) {
    image_slots slots;
    slots.features.assign(std::size_t(std::max<index_t>(images_given, 0)), features_per_image);
    return plan_splice(samples, image_token, slots, images_given, vocab);
}

namespace detail {
/// out[pos, :] = embed[token[pos], :] | features[feature[pos], :] | 0.
template <class T>
struct splice_gather {
    const std::int32_t* token;
    const std::int32_t* feature;
    const T* embed;
    const T* features;
    T* out;
    index_t dim;
    VILA_HOST_DEVICE void operator()(index_t i) const {
        const index_t pos = i / dim, d = i % dim;
        const std::int32_t t = token[pos], f = feature[pos];
        out[i] = t >= 0 ? embed[index_t(t) * dim + d] : f >= 0 ? features[index_t(f) * dim + d] : T(0);
    }
};
/// A row gather: out[r, :] = in[order[r], :], or (scatter) out[order[r], :] = in[r, :]. It also
/// takes the features' gradient from the spliced sequence's (order: each feature row's position).
template <class T>
struct row_gather {
    const std::int32_t* order;
    const T* in;
    T* out;
    index_t dim;
    bool scatter;
    VILA_HOST_DEVICE void operator()(index_t i) const {
        const index_t r = i / dim, d = i % dim, o = index_t(order[r]) * dim + d;
        if (!scatter) out[i] = in[o];
        else out[o] = in[i];
    }
};
}  // namespace detail

}  // namespace vila::model
