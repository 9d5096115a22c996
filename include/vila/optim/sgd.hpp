// vila/optim/sgd.hpp — SGD with momentum, step for step as torch.optim.SGD (dampening 0, not
// Nesterov; weight decay is L2, added to the gradient, as torch's SGD does):
//   g' = g + wd p;  buf = g' (first step) | momentum buf + g';  p -= lr buf
// State ("momentum_buffer") keyed by parameter name, as for AdamW.
#pragma once
#include <string>

#include "adamw.hpp"
#include "state.hpp"

namespace vila::optim {

struct sgd_options {
    double lr = 1e-2, momentum = 0.9, weight_decay = 0;
};

namespace detail {
template <class T>
struct sgd_update {
    T* p;
    const T* g;
    T* buf;  // null without momentum
    T lr, momentum, decay;
    bool first;
    VILA_HOST_DEVICE void operator()(index_t i) const {
        T d = g[i] + decay * p[i];
        if (buf) {
            buf[i] = first ? d : momentum * buf[i] + d;
            d = buf[i];
        }
        p[i] -= lr * d;
    }
};
}  // namespace detail

template <class T, class B = backend::cpu>
class sgd : public optimizer_state<T, B> {
    using optimizer_state<T, B>::state_;

public:
    static constexpr const char* kind = "sgd";
    explicit sgd(sgd_options o = {}) : optimizer_state<T, B>(kind, {"momentum_buffer"}), opt_(o) {}

    void update(const std::string& name, param<T, B>& p, double lr, double weight_decay) {
        detail::check_updatable(kind, name, p);
        auto& s = state_.of(name, p.value.shape());
        const bool first = s.step++ == 0;
        B::parallel_for(p.value.size(), detail::sgd_update<T>{p.value.data(), p.grad.data(), opt_.momentum != 0 ? s.buffers[0].data() : nullptr,
                                                              T(lr), T(opt_.momentum), T(weight_decay), first});
    }
    template <class Model>
    void step(Model& model, double lr = -1) {
        step_model(*this, model, lr < 0 ? opt_.lr : lr, opt_.weight_decay, std::function<bool(const std::string&)>());
    }
    const sgd_options& options() const noexcept { return opt_; }

private:
    sgd_options opt_;
};

}  // namespace vila::optim
