// vila/train/schedule.hpp — learning-rate schedules as value types, equal to transformers'
// get_*_schedule_with_warmup: the rate of update `step` (0-based: the first update is step 0,
// as LambdaLR counts) is base_lr * factor(step). Every part's rate (its group's base) is scaled
// by the same factor, as HF's LambdaLR scales each param group.
//   constant                 1
//   constant_warmup          step / warmup during warmup, then 1
//   linear_warmup            warmup, then linear decay to 0 at `total`
//   cosine_warmup            warmup, then half a cosine to 0 at `total` (VILA's schedule)
// warmup_steps(total, ratio) is HF's ceil(total * warmup_ratio).
#pragma once
#include <algorithm>
#include <cmath>
#include <string>

#include "../error.hpp"

namespace vila::train {

inline long long warmup_steps(long long total, double ratio) { return ratio > 0 ? (long long)std::ceil(double(total) * ratio) : 0; }

namespace detail {
inline double warmup_factor(long long step, long long warmup) { return double(step) / double(std::max(1LL, warmup)); }
}  // namespace detail

struct constant {
    static constexpr const char* name = "constant";
    double factor(long long) const noexcept { return 1.0; }
};

struct constant_warmup {
    static constexpr const char* name = "constant_with_warmup";
    long long warmup = 0;
    double factor(long long step) const noexcept { return step < warmup ? detail::warmup_factor(step, warmup) : 1.0; }
};

struct linear_warmup {
    static constexpr const char* name = "linear";
    long long warmup = 0, total = 1;
    double factor(long long step) const noexcept {
        if (step < warmup) return detail::warmup_factor(step, warmup);
        return std::max(0.0, double(total - step) / double(std::max(1LL, total - warmup)));
    }
};

struct cosine_warmup {
    static constexpr const char* name = "cosine";
    long long warmup = 0, total = 1;
    double cycles = 0.5;
    double factor(long long step) const noexcept {
        if (step < warmup) return detail::warmup_factor(step, warmup);
        const double progress = double(step - warmup) / double(std::max(1LL, total - warmup));
        return std::max(0.0, 0.5 * (1.0 + std::cos(3.14159265358979323846 * cycles * 2.0 * progress)));
    }
};

/// A schedule chosen at run time (the command line's --schedule): one of the four above.
struct any_schedule {
    std::string kind = "cosine";
    long long warmup = 0, total = 1;
    double factor(long long step) const {
        if (kind == "cosine") return cosine_warmup{warmup, total}.factor(step);
        if (kind == "linear") return linear_warmup{warmup, total}.factor(step);
        if (kind == "constant_with_warmup") return constant_warmup{warmup}.factor(step);
        if (kind == "constant") return 1.0;
        throw config_error("unknown schedule '" + kind + "' (cosine, linear, constant_with_warmup, constant)");
    }
};

}  // namespace vila::train
