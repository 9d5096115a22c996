// vila/core/param.hpp — a named, trainable parameter: value, gradient and freeze flag.
//
// `name` is the Hugging Face weight name ("model.layers.0.self_attn.q_proj.weight"), so
// checkpoint I/O, freezing, optimizers and LoRA all address parameters the same way.
// A frozen parameter (trainable == false) holds no gradient buffer and gets no gradient work.
#pragma once
#include <string>
#include <utility>

#include "tensor.hpp"

namespace vila {

template <class T, class Backend = backend::cpu>
struct param {
    std::string name;
    tensor<T, Backend> value;
    tensor<T, Backend> grad;  // same shape as value when trainable, empty when frozen
    bool trainable = true;

    param() = default;
    param(std::string n, shape_t shape, bool train = true)
        : name(std::move(n)), value(shape), trainable(train) {
        if (trainable) grad.resize(std::move(shape));
    }

    /// Freezes or unfreezes; unfreezing allocates a zero gradient.
    void set_trainable(bool on) {
        trainable = on;
        if (on) grad.ensure_shape(value.shape());
        else grad.resize({0});
    }
    /// Gradient pointer for backward passes: nullptr when frozen, so no weight gradient is computed.
    tensor<T, Backend>* grad_if_trainable() noexcept { return trainable ? &grad : nullptr; }
    void zero_grad() {
        if (trainable) grad.zero();
    }
};

}  // namespace vila
