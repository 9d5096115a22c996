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
// Dropout on the adapter's input (PEFT's lora_dropout) applies in training only (`training`
// set, as the trainer does): element i of forward number `step` is kept when a hash of
// (seed, step, i) clears p, and scaled by 1 / (1 - p). The mask is a pure function of those
// numbers, so it needs no state in checkpoints, backward recomputes it, and a resumed run draws
// the same masks (the seed comes from the layer's name).
#pragma once
#include <cmath>
#include <cstdint>
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
    bool training = false;          // dropout applies only while training
    std::uint64_t dropout_seed = 0;  // from the layer's name (stable across processes)
    std::uint64_t dropout_step = 0;  // which forward this is (the trainer counts micro-batches)
    T scaling() const { return T(options.scaling()); }
    bool drops() const noexcept { return training && options.dropout > 0; }
};

namespace detail {
/// The dropout mask as a pure function: keep element i of forward `step` when its hash's
/// uniform clears p; out = in * keep / (1 - p) (in place allowed).
template <class T>
struct lora_dropout {
    const T* in;
    T* out;
    std::uint64_t seed, step;
    double p;
    bool accumulate;  // out += instead of out =
    VILA_HOST_DEVICE void operator()(index_t i) const {
        std::uint64_t z = seed ^ (step * 0x9E3779B97F4A7C15ull) ^ (std::uint64_t(i) * 0xD1B54A32D192ED03ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        const double u = double(z >> 11) * 0x1.0p-53;
        const T v = u >= p ? in[i] * T(1.0 / (1.0 - p)) : T(0);
        if (accumulate) out[i] += v;
        else out[i] = v;
    }
};
/// FNV-1a of a name: the dropout seed of a layer.
inline std::uint64_t name_seed(const std::string& s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}
}  // namespace detail

/// True for the names of adapter parameters (they are not part of a base checkpoint).
inline bool is_lora_name(const std::string& name) {
    return name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
}

}  // namespace vila::nn
