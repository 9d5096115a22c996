// CLIP and SigLIP vision towers against transformers (tests/fixtures/vit, make_vit.py): the
// selected hidden states (VILA: layer -2) and every parameter gradient.
#include <cmath>

#include <doctest/doctest.h>
#include <vila/vision/vit.hpp>

#include "../support/fixtures.hpp"

using namespace vila;

namespace {
template <class Flavor>
void check_tower(const std::string& name, const std::string& select_feature) {
    CAPTURE(name);
    const auto dir = std::filesystem::path(VILA_TEST_DATA_DIR) / "vit" / name;
    auto cfg = vision::vit_config::load(dir);
    cfg.select_layer = -2;
    cfg.select_feature = select_feature;
    vision::vit<Flavor> m(cfg);
    m.load_weights(io::safetensors_checkpoint(dir), dir.string());
    const io::safetensors_file ex(dir / "expected.safetensors");
    tensor<float> pixels, ref, dy;
    ex.read("pixels", pixels);
    ex.read("features", ref);
    ex.read("dy", dy);
    const auto& f = m.forward(pixels);
    test::require_close(f, ref, 1e-4, 0, name + " features");
    m.for_each_parameter([](const std::string&, param<float>& p) { p.zero_grad(); });
    m.backward(dy);
    std::size_t checked = 0;
    m.for_each_parameter([&](const std::string& n, param<float>& p) {
        std::string key = "grad." + n;
        if (!ex.contains(key)) key = "grad." + n.substr(std::string("vision_model.").size());  // transformers 5 names
        if (!ex.contains(key)) return;  // post_layernorm and unused layers have no gradient
        tensor<float> g;
        ex.read(key, g);
        const auto a = p.grad.to_host(), b = g.to_host();
        double num = 0, den = 0;
        for (std::size_t i = 0; i < a.size(); ++i) num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]), den += double(b[i]) * b[i];
        // A key bias has an exactly zero gradient (softmax ignores a shift shared by a query's
        // scores): both sides hold rounding noise there, hence the absolute floor.
        const double diff = std::sqrt(num), ref_norm = std::sqrt(den);
        CHECK_MESSAGE(diff <= 1e-3 * ref_norm + 1e-5, n, " gradient |diff| ", diff, " vs |ref| ", ref_norm);
        ++checked;
    });
    CHECK(checked >= 10);
}
}  // namespace

TEST_CASE("CLIP vision tower matches transformers (hidden_states[-2], patch features)") {
    check_tower<vision::clip>("clip", "patch");
}
TEST_CASE("SigLIP vision tower matches transformers (hidden_states[-2], all tokens)") {
    check_tower<vision::siglip>("siglip", "cls_patch");
}
TEST_CASE("vision tower configs and checkpoints: clear errors") {
    const auto dir = std::filesystem::path(VILA_TEST_DATA_DIR) / "vit" / "clip";
    CHECK_THROWS_WITH_AS(vision::vit<vision::siglip>(vision::vit_config::load(dir)), doctest::Contains("siglip_vision_model"),
                         config_error);
    nlohmann::json j = {{"model_type", "dino"}};
    CHECK_THROWS_WITH_AS(vision::vit_config::from_json(j, "x.json"), doctest::Contains("'dino' is not a supported"), config_error);
}
