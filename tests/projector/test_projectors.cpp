// VILA's projectors against a PyTorch transcription of VILA's definitions
// (tests/fixtures/projectors.safetensors, make_projectors.py): output, input and weight gradients.
#include <algorithm>
#include <cmath>
#include <doctest/doctest.h>
#include <vila/io/safetensors.hpp>
#include <vila/projector/projectors.hpp>

#include "../support/fixtures.hpp"

using namespace vila;

namespace {
template <class P>
void check_projector(const std::string& kind) {
    CAPTURE(kind);
    const io::safetensors_file fx(test::fixture_path("projectors.safetensors"));
    P proj({12, 20, P::type_name});
    std::size_t loaded = 0;
    proj.for_each_parameter([&](const std::string& name, param<float>& p) {
        fx.read(kind + "." + name, p.value);  // VILA's names: layers.*
        ++loaded;
    });
    CHECK(loaded >= 2);
    tensor<float> x, dy, y_ref, dx_ref;
    fx.read(kind + ".x", x);
    fx.read(kind + ".dy", dy);
    fx.read(kind + ".y", y_ref);
    fx.read(kind + ".grad.x", dx_ref);
    typename P::cache c;
    tensor<float> y;
    proj.forward(x, y, c);
    CHECK(y.dim(1) == P::output_tokens(x.dim(1)));
    test::require_close(y, y_ref, 1e-5, 1e-4, kind + " output");
    tensor<float> dx(x.shape());
    proj.backward(c, dy, &dx);
    test::require_close(dx, dx_ref, 1e-5, 1e-4, kind + " dx");
    proj.for_each_parameter([&](const std::string& name, param<float>& p) {
        tensor<float> g;
        fx.read(kind + ".grad." + name, g);
        // Weight gradients are long float32 sums over every token; deep chains reach |g| ~ 40, where
        // summation order alone (SIMD width, FMA) moves elements by ~1e-4. The absolute tolerance
        // therefore scales with the tensor's largest reference element.
        double scale = 1;
        for (float v : g.to_host()) scale = std::max(scale, double(std::abs(v)));
        test::require_close(p.grad, g, 2e-5 * scale, 1e-4, kind + " d" + name);
    });
}
}  // namespace

TEST_CASE("projectors match VILA's PyTorch definitions: linear, mlp2x_gelu, mlp_downsample") {
    check_projector<projector::linear<float>>("linear");
    check_projector<projector::mlp2x_gelu<float>>("mlp2x_gelu");
    check_projector<projector::mlp_downsample<float>>("mlp_downsample");       // 5 x 5 grid: zero padding
    check_projector<projector::mlp_downsample<float>>("mlp_downsample_even");  // 4 x 4 grid
    CHECK(projector::mlp_downsample<float>::output_tokens(729) == 196);        // SigLIP 27 x 27 -> 14 x 14
    CHECK_THROWS_AS(projector::mlp_downsample<float>::output_tokens(10), shape_error);
}

TEST_CASE("NVILA's projectors match VILA's own MultimodalProjector: 2x2_fix, 3x3_fix, 3x3_s2, 3x3_s2_new") {
    check_projector<projector::mlp_downsample_2x2_fix<float>>("mlp_downsample_2x2_fix");       // 5 x 5: padded, row-major
    check_projector<projector::mlp_downsample_2x2_fix<float>>("mlp_downsample_2x2_fix.even");  // 4 x 4
    check_projector<projector::mlp_downsample_3x3_fix<float>>("mlp_downsample_3x3_fix");       // 5 x 5 -> 6 x 6 -> 2 x 2
    check_projector<projector::mlp_downsample_3x3_fix<float>>("mlp_downsample_3x3_fix.even");  // 6 x 6
    check_projector<projector::mlp_downsample_3x3_fix<float>>("mlp_downsample_3x3_fix.seven"); // 7 x 7 -> 9 x 9 -> 3 x 3
    check_projector<projector::mlp_downsample_3x3_s2<float>>("mlp_downsample_3x3_s2");
    check_projector<projector::mlp_downsample_3x3_s2_new<float>>("mlp_downsample_3x3_s2_new");
    CHECK(projector::mlp_downsample_3x3_fix<float>::output_tokens(1024) == 121);  // NVILA: SigLIP 448/14, 32 x 32 -> 11 x 11
    CHECK(projector::mlp_downsample_2x2_fix<float>::output_tokens(729) == 196);
    // C / 3 must not be empty
    CHECK_THROWS_AS(projector::mlp_downsample_3x3_s2<float>({2, 8, "mlp_downsample_3x3_s2"}), config_error);
}
