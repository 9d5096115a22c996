// The generic finite-difference gradient checker (run over every kernel, in double precision).
//
// For a function out = f(inputs) and a fixed random projection r, the scalar L = sum(out * r)
// has analytic gradients backward(r). Each input element is perturbed by +-h and
//   numeric = (L(x + h) - L(x - h)) / (2h)       (central differences, error O(h^2))
// Tolerance (documented in docs/testing.md): |analytic - numeric| <= tol * max(1, |numeric|),
// h = 1e-6 and tol = 1e-6 in double: truncation ~h^2 = 1e-12, rounding ~1e-16 / h = 1e-10.
#pragma once
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <vila/vila.hpp>

namespace vila::test {

struct gradcheck_options {
    double h = 1e-6;
    double tol = 1e-6;
};

template <class B>
using dmap = std::map<std::string, tensor<double, B>>;

/// forward(inputs) -> out;  backward(inputs, dy) -> gradients for every key of `inputs`.
template <class B>
void check_gradients(const std::string& name, dmap<B>& inputs,
                     const std::function<tensor<double, B>(const dmap<B>&)>& forward,
                     const std::function<dmap<B>(const dmap<B>&, const tensor<double, B>&)>& backward,
                     gradcheck_options opt = {}) {
    const tensor<double, B> out0 = forward(inputs);
    tensor<double, B> r(out0.shape());
    rng gen(1234);
    gen.fill_normal(r);
    const std::vector<double> rh = r.to_host();
    auto loss = [&](const dmap<B>& in) {
        const std::vector<double> o = forward(in).to_host();
        double s = 0;
        for (std::size_t i = 0; i < o.size(); ++i) s += o[i] * rh[i];
        return s;
    };
    const dmap<B> analytic = backward(inputs, r);
    for (auto& entry : inputs) {
        const std::string key = entry.first;  // named copy: clang 14 cannot capture bindings in INFO
        tensor<double, B>& t = entry.second;
        std::vector<double> x = t.to_host();
        const std::vector<double> a = analytic.at(key).to_host();
        REQUIRE(a.size() == x.size());
        double worst = 0;
        std::size_t worst_at = 0;
        double worst_a = 0, worst_n = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            const double orig = x[i];
            x[i] = orig + opt.h;
            B::upload(t.data(), x.data(), t.size());
            const double lp = loss(inputs);
            x[i] = orig - opt.h;
            B::upload(t.data(), x.data(), t.size());
            const double lm = loss(inputs);
            x[i] = orig;
            B::upload(t.data(), x.data(), t.size());
            const double numeric = (lp - lm) / (2 * opt.h);
            const double err = std::abs(a[i] - numeric) / std::max(1.0, std::abs(numeric));
            if (err > worst) worst = err, worst_at = i, worst_a = a[i], worst_n = numeric;
        }
        INFO(name << ": d/d" << key << " worst relative error " << worst << " at " << worst_at << " (analytic "
                  << worst_a << ", numeric " << worst_n << ")");
        CHECK(worst <= opt.tol);
    }
}

}  // namespace vila::test
