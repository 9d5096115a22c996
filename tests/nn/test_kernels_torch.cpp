// Every kernel against PyTorch (forward output and input gradients), on every backend, fp32.
// Tolerances: |ours - torch| <= 1e-5 + 1e-4 |torch| (docs/testing.md says why).
#include <set>

#include <doctest/doctest.h>

#include "../support/backends.hpp"
#include "../support/kernel_cases.hpp"

using namespace vila;
using namespace vila::test;

TEST_CASE_TEMPLATE("every kernel matches PyTorch forward and backward", B, VILA_TEST_BACKENDS) {
    const auto& cases = kernel_fixture_cases();
    REQUIRE(cases.size() >= 20);
    std::set<std::string> ops;
    for (const auto& j : cases) {
        auto c = case_from_json<float, B>(j);
        ops.insert(c.op);
        CAPTURE(c.name);
        const auto expected = tensor_from_json<float, backend::cpu>(j.at("out"));
        const auto dy = tensor_from_json<float, B>(j.at("dy"));
        auto grads = zero_grads(c);
        const tensor<float, B> out = run_case(c, &dy, &grads);
        require_close(out, expected, 1e-5, 1e-4, c.name + " forward");
        for (const auto& [k, g] : j.at("grads").items())
            require_close(grads.at(k), tensor_from_json<float, backend::cpu>(g), 1e-5, 1e-4, c.name + " d" + k);
    }
    // The list of kernels: each has at least one PyTorch case.
    for (const char* op : {"linear", "embedding", "layer_norm", "rms_norm", "gelu_erf", "gelu_tanh", "quick_gelu",
                           "silu", "swiglu", "softmax", "rope", "attention", "cross_entropy", "residual"})
        CHECK_MESSAGE(ops.count(op) == 1, "no PyTorch case for ", op);
}

#if defined(VILA_USE_THRUST)
TEST_CASE("CPU and Thrust backends agree to 1e-5 relative on every kernel") {
    for (const auto& j : kernel_fixture_cases()) {
        auto c_cpu = case_from_json<float, backend::cpu>(j);
        auto c_thr = case_from_json<float, backend::thrust>(j);
        CAPTURE(c_cpu.name);
        const auto dy_cpu = tensor_from_json<float, backend::cpu>(j.at("dy"));
        const auto dy_thr = tensor_from_json<float, backend::thrust>(j.at("dy"));
        auto g_cpu = zero_grads(c_cpu);
        auto g_thr = zero_grads(c_thr);
        const auto out_cpu = run_case(c_cpu, &dy_cpu, &g_cpu);
        const auto out_thr = run_case(c_thr, &dy_thr, &g_thr);
        require_close(out_thr, out_cpu, 1e-6, 1e-5, c_cpu.name + " forward");
        for (auto& [k, g] : g_cpu) require_close(g_thr.at(k), g, 1e-6, 1e-5, c_cpu.name + " d" + k);
    }
}
#endif
