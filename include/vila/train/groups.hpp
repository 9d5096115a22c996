// vila/train/groups.hpp — optimizer parameter groups: a learning rate and a weight decay per
// parameter, decided from its part and name.
//   lr            the LLM's base rate (and every part's unless set below)
//   projector_lr  VILA's mm_projector_lr;  vision_lr  VILA's vision_tower_lr  (0: lr)
//   weight_decay  applied except to biases and norm weights when exclude_bias_and_norm
//                 (HF Trainer's rule; see train::is_bias_or_norm)
// The schedule's factor multiplies every group's base rate, as HF's LambdaLR does.
#pragma once
#include <string>

#include "part.hpp"

namespace vila::train {

struct param_groups {
    double lr = 1e-4;
    double projector_lr = 0, vision_lr = 0;
    double weight_decay = 0;
    bool exclude_bias_and_norm = true;

    double lr_of(const parameter_part& p) const noexcept {
        if (p.module == part::projector && projector_lr > 0) return projector_lr;
        if (p.module == part::vision && vision_lr > 0) return vision_lr;
        return lr;
    }
    template <class Param>
    double weight_decay_of(const std::string& name, const Param& p) const {
        return exclude_bias_and_norm && is_bias_or_norm(name, p) ? 0.0 : weight_decay;
    }
};

}  // namespace vila::train
