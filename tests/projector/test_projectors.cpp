// VILA's projectors against a PyTorch transcription of VILA's definitions
// (tests/fixtures/projectors.safetensors, make_projectors.py): output, input and weight gradients.
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
    P proj({12, 20});
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
        test::require_close(p.grad, g, 1e-5, 1e-4, kind + " d" + name);
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
