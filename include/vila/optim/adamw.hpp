// vila/optim/adamw.hpp — AdamW with decoupled weight decay, step for step as torch.optim.AdamW:
//   p *= 1 - lr * wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// with t counted per parameter (torch's state["step"]). State is keyed by parameter name
// (optim/state.hpp): no pointer into the model is kept, frozen parameters cost nothing.
//
//   optim::adamw<float> opt({1e-3});
//   ... backward ...;  opt.step(model);            // every trainable parameter, options' lr
//   opt.update(name, param, lr, weight_decay);     // one parameter (the trainer's groups)
#pragma once
#include <cmath>
#include <functional>
#include <string>
#include <type_traits>

#include <Eigen/Core>

#include "../backend/cpu.hpp"
#include "../core/param.hpp"
#include "state.hpp"

namespace vila::optim {

struct adamw_options {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
    /// Which parameters step() decays (default: all, as torch). HF's Trainer excludes biases and
    /// norm weights: the trainer's groups do that (train/groups.hpp).
    std::function<bool(const std::string&)> decay = nullptr;
};

namespace detail {
template <class T>
struct adamw_update {
    T* p;
    const T* g;
    T* m;
    T* v;
    T lr, b1, b2, eps, decay, c1, c2;  // c1 = 1 - b1^t, c2 = sqrt(1 - b2^t)
    VILA_HOST_DEVICE void operator()(index_t i) const {
        const T gi = g[i];
        p[i] *= T(1) - lr * decay;
        m[i] = b1 * m[i] + (T(1) - b1) * gi;
        v[i] = b2 * v[i] + (T(1) - b2) * gi * gi;
        p[i] -= (lr / c1) * m[i] / (std::sqrt(v[i]) / c2 + eps);
    }
};

/// The same update on elements [b, e) as Eigen arrays (the CPU backend's form): the per-index
/// functor does not vectorise (p, m and v might alias), and the update is 5% of a training step;
/// vectorised, it runs near memory bandwidth. Same operations in the same order.
template <class T>
void adamw_update_range(const adamw_update<T>& u, index_t b, index_t e) {
    using array = Eigen::Array<T, Eigen::Dynamic, 1>;
    Eigen::Map<array> p(u.p + b, e - b), m(u.m + b, e - b), v(u.v + b, e - b);
    const Eigen::Map<const array> g(u.g + b, e - b);
    m = u.b1 * m + (T(1) - u.b1) * g;
    v = u.b2 * v + (T(1) - u.b2) * g * g;
    p = p * (T(1) - u.lr * u.decay) - (u.lr / u.c1) * m / (v.sqrt() / u.c2 + u.eps);
}

/// Throws unless p can be updated (trainable, gradient shaped like the value).
template <class T, class B>
void check_updatable(const char* who, const std::string& name, const param<T, B>& p) {
    if (!p.trainable || p.grad.shape() != p.value.shape())
        throw error(std::string("vila::optim::") + who + ": parameter '" + name + "' is frozen or has no gradient buffer");
}
}  // namespace detail

template <class T, class B = backend::cpu>
class adamw : public optimizer_state<T, B> {
    using optimizer_state<T, B>::state_;

public:
    static constexpr const char* kind = "adamw";
    explicit adamw(adamw_options o = {}) : optimizer_state<T, B>(kind, {"exp_avg", "exp_avg_sq"}), opt_(std::move(o)) {}

    /// One AdamW update of parameter `name` from its current gradient.
    void update(const std::string& name, param<T, B>& p, double lr, double weight_decay) {
        detail::check_updatable(kind, name, p);
        auto& s = state_.of(name, p.value.shape());
        const long long t = ++s.step;
        const T c1 = T(1 - std::pow(opt_.beta1, double(t)));
        const T c2 = T(std::sqrt(1 - std::pow(opt_.beta2, double(t))));
        const detail::adamw_update<T> u{p.value.data(), p.grad.data(), s.buffers[0].data(), s.buffers[1].data(),
                                        T(lr), T(opt_.beta1), T(opt_.beta2), T(opt_.eps), T(weight_decay), c1, c2};
        const index_t n = p.value.size();
        if constexpr (std::is_same<B, backend::cpu>::value)
            B::parallel_chunks(n, [&](index_t b, index_t e) { detail::adamw_update_range(u, b, e); });
        else
            B::parallel_for(n, u);
    }
    /// Updates every trainable parameter of `model` at rate lr (< 0: options().lr) with the
    /// options' weight decay where options().decay allows.
    template <class Model>
    void step(Model& model, double lr = -1) {
        step_model(*this, model, lr < 0 ? opt_.lr : lr, opt_.weight_decay, opt_.decay);
    }
    const adamw_options& options() const noexcept { return opt_; }

private:
    adamw_options opt_;
};

}  // namespace vila::optim
