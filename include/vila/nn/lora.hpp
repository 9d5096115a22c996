// vila/nn/lora.hpp — LoRA (Hu et al. 2021) as PEFT defines it: an adapter on a linear layer,
//   y = x W^T + b + s (x A^T) B^T,   A [r, in], B [out, r],  s = alpha / r  (rsLoRA: alpha / sqrt r)
// with PEFT's initialisation (A: kaiming-uniform, a = sqrt 5, i.e. U(-1/sqrt(in), 1/sqrt(in));
// B: zeros, so a fresh adapter changes nothing) and PEFT's parameter names
// ("<layer>.lora_A.weight", "<layer>.lora_B.weight").
//
// The adapter lives inside nn::linear (an optional member), so every model's one forward path
// (training, prefill, cached decoding) runs it with no second copy of any layer. merge() folds
// s B A into W (inference at base speed), unmerge() takes it out again.
// Backward with u = x A^T saved:  dB += s dy^T u;  du = s dy B;  dA += du^T x;  dx += du A.
// Dropout on the adapter's input (PEFT's lora_dropout) is an inference no-op and not applied in
// training yet (docs/training.md).
#pragma once
#include <cmath>
#include <string>

#include "../core/param.hpp"
#include "../core/rng.hpp"

namespace vila::nn {

struct lora_options {
    index_t r = 8;
    double alpha = 8;
    bool rslora = false;
    double dropout = 0;
    double scaling() const { return rslora ? alpha / std::sqrt(double(r)) : alpha / double(r); }
};

template <class T, class B>
struct lora_adapter {
    param<T, B> A, Bm;  // lora_A.weight [r, in], lora_B.weight [out, r]
    lora_options options;
    bool merged = false;
    T scaling() const { return T(options.scaling()); }
};

/// True for the names of adapter parameters (they are not part of a base checkpoint).
inline bool is_lora_name(const std::string& name) {
    return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

}  // namespace vila::nn
