// vila/train/adamw.hpp — AdamW with decoupled weight decay, step for step as torch.optim.AdamW:
//   p *= 1 - lr * wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// State (m, v) exists only for trainable parameters; frozen ones cost nothing.
// Use: adamw<T, B> opt(opts); model.for_each_parameter(opt.collector()); ... opt.step();
#pragma once
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "../core/param.hpp"

namespace vila::optim {

struct adamw_options {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
    /// Which parameters get weight decay (default: all, as torch). HF's Trainer excludes biases
    /// and norm weights: pass [](const std::string& n) { return n.find("norm") == npos && ... }.
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
}  // namespace detail

template <class T, class B = backend::cpu>
class adamw {
public:
    explicit adamw(adamw_options o = {}) : opt_(std::move(o)) {}

    /// Registers a parameter (only trainable ones get state).
    void add(const std::string& name, param<T, B>& p) {
        if (!p.trainable) return;
        slots_.push_back({&p, tensor<T, B>(p.value.shape()), tensor<T, B>(p.value.shape()),
                          !opt_.decay || opt_.decay(name)});
    }
    /// A callable for model.for_each_parameter(...).
    auto collector() {
        return [this](const std::string& name, param<T, B>& p) { add(name, p); };
    }

    /// One update with the current gradients; lr < 0 uses the configured rate (schedules pass theirs).
    void step(double lr = -1) {
        ++t_;
        if (lr < 0) lr = opt_.lr;
        const T c1 = T(1 - std::pow(opt_.beta1, double(t_)));
        const T c2 = T(std::sqrt(1 - std::pow(opt_.beta2, double(t_))));
        for (auto& s : slots_) {
            const T wd = s.decay ? T(opt_.weight_decay) : T(0);
            B::parallel_for(s.p->value.size(),
                            detail::adamw_update<T>{s.p->value.data(), s.p->grad.data(), s.m.data(), s.v.data(), T(lr), T(opt_.beta1),
                                                    T(opt_.beta2), T(opt_.eps), wd, c1, c2});
        }
    }
    long long steps() const noexcept { return t_; }
    std::size_t state_bytes() const {
        std::size_t n = 0;
        for (const auto& s : slots_) n += 2 * std::size_t(s.m.size()) * sizeof(T);
        return n;
    }
    const adamw_options& options() const noexcept { return opt_; }

private:
    struct slot {
        param<T, B>* p;
        tensor<T, B> m, v;
        bool decay;
    };
    adamw_options opt_;
    std::vector<slot> slots_;
    long long t_ = 0;
};

}  // namespace vila::optim
