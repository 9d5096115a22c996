// vila/data/batch.hpp — what a sampler yields: the samples of one micro-batch, their images as
// one pixel tensor in sample order, and where each sample came from (per-source counts in the
// metrics). label_count() is the number of targets a batch contributes to the loss after the
// next-token shift: gradient accumulation divides by the total over its micro-batches.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "../core/tensor.hpp"
#include "../nn/cross_entropy.hpp"
#include "sample.hpp"

namespace vila::data {

struct batch {
    std::vector<sample> samples;
    tensor<float> pixels;              // [N, C, H, W] (N = 0: text only)
    std::vector<std::string> sources;  // per sample (may be empty)
    index_t images() const { return pixels.rank() == 4 ? pixels.dim(0) : 0; }
};

/// Targets that count in the loss: positions t >= 1 whose label is not -100 and whose token is
/// not an image token (image features never carry a label).
inline index_t label_count(const batch& b, std::int32_t image_token = std::numeric_limits<std::int32_t>::min()) {
    index_t n = 0;
    for (const auto& s : b.samples) {
        const auto& labels = s.labels.empty() ? s.ids : s.labels;
        for (std::size_t t = 1; t < s.ids.size() && t < labels.size(); ++t)
            if (labels[t] != nn::ignore_index && s.ids[t] != image_token) ++n;
    }
    return n;
}

}  // namespace vila::data
