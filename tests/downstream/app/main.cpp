// A downstream program: one transformer MLP block forward and backward through vila.
#include <cmath>
#include <cstdio>

#include <vila/vila.hpp>

int main() {
    using namespace vila;
    try {
        rng gen(1);
        nn::linear<float> up({8, 16, true}, "mlp.up"), down({16, 8, true}, "mlp.down");
        gen.fill_normal(up.weight.value, 0, 0.2);
        gen.fill_normal(down.weight.value, 0, 0.2);
        tensor<float> x({4, 8}), h, a, y;
        gen.fill_normal(x);
        nn::linear<float>::cache c1, c2;
        up.forward(x, h, &c1);
        nn::activation_forward<nn::gelu_erf>(h, a);
        down.forward(a, y, &c2);
        tensor<float> dy({4, 8}, 1.0f), da(a.shape()), dh(h.shape()), dx(x.shape());
        down.backward(c2, dy, &da);
        nn::activation_backward<nn::gelu_erf>(h, da, dh);
        up.backward(c1, dh, &dx);
        double norm = 0;
        for (float g : up.weight.grad.to_host()) norm += double(g) * g;
        std::printf("vila %s downstream: |dW_up| = %.6f\n", vila::version(), std::sqrt(norm));
        return norm > 0 ? 0 : 1;
    } catch (const vila::error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
