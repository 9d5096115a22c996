// Finite-difference gradient checks of every kernel's backward pass (double), on every backend.
#include <doctest/doctest.h>

#include "../support/backends.hpp"
#include "../support/gradcheck.hpp"
#include "../support/kernel_cases.hpp"

using namespace vila;
using namespace vila::test;

TEST_CASE_TEMPLATE("every kernel's backward matches central differences", B, VILA_TEST_BACKENDS) {
    for (const auto& j : kernel_fixture_cases()) {
        const auto base = case_from_json<double, B>(j);
        CAPTURE(base.name);
        dmap<B> inputs;
        for (const auto& [k, v] : base.in) inputs.emplace(k, tensor_cast<double, B>(v));
        auto with = [&](const dmap<B>& in) {
            kernel_case<double, B> c = base;
            c.in = in;
            return c;
        };
        check_gradients<B>(
            base.name, inputs, [&](const dmap<B>& in) { return run_case(with(in)); },
            [&](const dmap<B>& in, const tensor<double, B>& dy) {
                const auto c = with(in);
                auto g = zero_grads(c);
                run_case(c, &dy, &g);
                return g;
            });
    }
}

TEST_CASE_TEMPLATE("backward accumulates into existing gradients", B, VILA_TEST_BACKENDS) {
    // The contract: backward adds (+=); running it twice gives twice the gradient.
    for (const auto& j : kernel_fixture_cases()) {
        const auto c = case_from_json<double, B>(j);
        CAPTURE(c.name);
        const auto dy = tensor_from_json<double, B>(j.at("dy"));
        auto once = zero_grads(c), twice = zero_grads(c);
        run_case(c, &dy, &once);
        run_case(c, &dy, &twice);
        run_case(c, &dy, &twice);
        for (auto& [k, g] : once) {
            auto h = g.to_host();
            for (auto& v : h) v *= 2;
            require_close(twice.at(k), tensor<double, backend::cpu>::from_host(g.shape(), h), 1e-12, 1e-12, k);
        }
    }
}
