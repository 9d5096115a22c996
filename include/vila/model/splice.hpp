// vila/model/splice.hpp — where image features go in a batch of token sequences.
//
// A sample's image tokens take its images in order. Two spellings are accepted per sample:
//   compact   one image token per image (VILA's -200 placeholder, a prompt's "<image>"): the
//             token is replaced by all F projected features of its image;
//   expanded  F image tokens per image (what transformers' LLaVA processor writes): each token
//             takes one feature.
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
    index_t batch = 0, length = 0, images = 0, features_per_image = 0;
    bool padded = false;
    std::vector<std::int32_t> token;             // [B*T] token id at text positions, -1 elsewhere
    std::vector<std::int32_t> feature;           // [B*T] feature row (image * F + f) at image positions, -1 elsewhere
    std::vector<std::int32_t> mask;              // [B*T] 1 for a real position, 0 for padding
    std::vector<std::int32_t> labels;            // [B*T]
    std::vector<std::int32_t> feature_position;  // [N*F] the position (b * T + t) of each feature row
    std::vector<index_t> lengths;                // [B]
};

/// Lays out `samples` with F = features_per_image; `images_given` must be the total image count.
inline splice_plan plan_splice(const std::vector<sample>& samples, std::int32_t image_token, index_t features_per_image,
                               index_t images_given, index_t vocab) {
    const index_t F = features_per_image;
    if (samples.empty()) throw error("vila::vlm: empty batch");
    splice_plan p;
    p.batch = index_t(samples.size());
    p.features_per_image = F;
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
        else if (F > 1 && k == n * F) expanded[b] = true;
        else
            throw error("vila::vlm: sample " + std::to_string(b) + " has " + std::to_string(k) + " image token" + (k == 1 ? "" : "s") +
                        " but " + std::to_string(n) + " image" + (n == 1 ? "" : "s") + (F > 1 ? " (expected one token per image, or " +
                        std::to_string(F) + " per image when expanded)" : ""));
        first_image[b] = p.images;
        p.images += n;
        const index_t len = expanded[b] ? index_t(s.ids.size()) : index_t(s.ids.size()) + k * (F - 1);
        p.lengths.push_back(len);
        p.length = std::max(p.length, len);
    }
    if (p.images != images_given)
        throw error("vila::vlm: the batch's image tokens call for " + std::to_string(p.images) + " image" + (p.images == 1 ? "" : "s") +
                    " but " + std::to_string(images_given) + " were given");
    const index_t T = p.length;
    p.token.assign(std::size_t(p.batch * T), -1);
    p.feature.assign(std::size_t(p.batch * T), -1);
    p.mask.assign(std::size_t(p.batch * T), 0);
    p.labels.assign(std::size_t(p.batch * T), nn::ignore_index);
    p.feature_position.assign(std::size_t(p.images * F), -1);
    for (std::size_t b = 0; b < samples.size(); ++b) {
        const auto& s = samples[b];
        index_t pos = index_t(b) * T, row = first_image[b] * F;
        for (std::size_t t = 0; t < s.ids.size(); ++t) {
            const bool image = s.ids[t] == image_token;
            const index_t width = image && !expanded[b] ? F : 1;
            for (index_t f = 0; f < width; ++f, ++pos) {
                p.mask[std::size_t(pos)] = 1;
                if (image) {
                    p.feature[std::size_t(pos)] = std::int32_t(row);
                    p.feature_position[std::size_t(row++)] = std::int32_t(pos);
                } else {
                    p.token[std::size_t(pos)] = s.ids[t];
                    p.labels[std::size_t(pos)] = s.labels.empty() ? s.ids[t] : s.labels[t];
                }
            }
        }
        if (p.lengths[b] < T) p.padded = true;
    }
    return p;
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
/// dfeatures[row, :] = dout[feature_position[row], :].
template <class T>
struct splice_feature_grad {
    const std::int32_t* position;
    const T* dout;
    T* dfeatures;
    index_t dim;
    VILA_HOST_DEVICE void operator()(index_t i) const { dfeatures[i] = dout[index_t(position[i / dim]) * dim + i % dim]; }
};
}  // namespace detail

}  // namespace vila::model
