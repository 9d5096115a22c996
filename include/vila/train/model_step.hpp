// vila/train/model_step.hpp — how the trainer runs one micro-batch through a model.
//   forward_loss(model, batch)  forward + next-token cross-entropy (mean and count of labels)
//   image_token_of(model)       the id that stands for an image (none for a text LLM)
// The backward is the model's own backward_loss(scale). Overloads exist for llm::llama (the
// samples are right-padded into ids [B, T] with a mask and -100 labels at the padding) and for
// vila::vlm (samples and pixels go to vlm::forward). Another model type joins by overloading
// these two functions.
#pragma once
#include <cstdint>
#include <limits>
#include <vector>

#include "../data/batch.hpp"
#include "../llm/llama.hpp"
#include "../model/vlm.hpp"

namespace vila::train {

template <class T, class B>
std::int32_t image_token_of(const llm::llama<T, B>&) noexcept {
    return std::numeric_limits<std::int32_t>::min();
}
template <class V, template <class, class> class P, template <class, class> class L, class B, class T>
std::int32_t image_token_of(const vlm<V, P, L, B, T>& m) noexcept {
    return m.image_token_id;
}

template <class T, class B>
nn::cross_entropy_result<T> forward_loss(llm::llama<T, B>& m, const data::batch& b) {
    if (b.samples.empty()) throw error("vila::train: empty batch");
    if (b.images() > 0) throw error("vila::train: a text LLM cannot train on a batch with images");
    std::size_t len = 0;
    for (const auto& s : b.samples) len = std::max(len, s.ids.size());
    const std::size_t n = b.samples.size();
    std::vector<std::int32_t> ids(n * len, 0), labels(n * len, nn::ignore_index), mask(n * len, 0);
    bool padded = false;
    for (std::size_t i = 0; i < n; ++i) {
        const auto& s = b.samples[i];
        if (!s.labels.empty() && s.labels.size() != s.ids.size())
            throw shape_error("vila::train: sample " + std::to_string(i) + " has " + std::to_string(s.labels.size()) + " labels for " +
                              std::to_string(s.ids.size()) + " tokens");
        for (std::size_t t = 0; t < s.ids.size(); ++t) {
            ids[i * len + t] = s.ids[t];
            labels[i * len + t] = s.labels.empty() ? s.ids[t] : s.labels[t];
            mask[i * len + t] = 1;
        }
        padded = padded || s.ids.size() < len;
    }
    const shape_t shape{index_t(n), index_t(len)};
    const auto ids_t = tensor<std::int32_t, B>::from_host(shape, ids);
    const auto labels_t = tensor<std::int32_t, B>::from_host(shape, labels);
    if (padded) {
        const auto mask_t = tensor<std::int32_t, B>::from_host(shape, mask);
        m.forward(ids_t, &mask_t);
    } else {
        m.forward(ids_t);
    }
    return m.loss(labels_t);
}

template <class V, template <class, class> class P, template <class, class> class L, class B, class T>
nn::cross_entropy_result<T> forward_loss(vlm<V, P, L, B, T>& m, const data::batch& b) {
    if (b.images() == 0) {
        m.forward(b.samples);
    } else if constexpr (std::is_same<B, backend::cpu>::value && std::is_same<T, float>::value) {
        m.forward(b.samples, &b.pixels);
    } else {
        const auto px = tensor_cast<T, B>(b.pixels);
        m.forward(b.samples, &px);
    }
    return m.loss();
}

}  // namespace vila::train
