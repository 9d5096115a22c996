// NVILA (issue 12, item 4; tests/fixtures/nvila, make_nvila.py): an NVILA-8B-shaped folder
// (dynamic S2 at 448/896/1344 on SigLIP 448/14, mlp_downsample_3x3_fix, Qwen2, the image
// encoder's "\n" after each image) against VILA's own code: prompt ids, the tiles' pixels, the
// tile grid and the logits, for one wide image, one tall image (both tiled) and two images.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <vila/model/assistant.hpp>
#include <vila/vision/dynamic_s2.hpp>

#include "../support/fixtures.hpp"

using namespace vila;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
fs::path nvila_dir() { return fs::path(VILA_TEST_DATA_DIR) / "nvila"; }

/// A copy of the NVILA folder whose config.json is edited by `edit`.
void copy_nvila_with(const fs::path& to, const std::function<void(json&)>& edit) {
    fs::copy(nvila_dir() / "nvila_8b", to, fs::copy_options::recursive);
    json j = io::read_json(to / "config.json");
    edit(j);
    std::ofstream(to / "config.json") << j.dump(2);
}
}  // namespace

TEST_CASE("an NVILA folder's config: dynamic S2, the 3x3 projector, the image encoder's newline") {
    const auto L = model::read_layout(nvila_dir() / "nvila_8b");
    CHECK(L.projector_type == "mlp_downsample_3x3_fix");
    CHECK(L.s2.scales == std::vector<index_t>{448, 896, 1344});
    CHECK(L.s2.max_tiles == 12);
    CHECK(L.s2.output_scale() == 2);
    CHECK(L.image_end == "\n");
    CHECK(L.mm_hidden_size == 96);  // 3 scales x 32
    CHECK(L.vision.image_size == 448);
    CHECK(L.vision.patch_size == 14);
    CHECK(L.llm.architecture == "Qwen2ForCausalLM");
    const auto p = model::load_image_processor(L);
    CHECK(p.height == 448);
    CHECK(p.aspect_ratio == "none");  // the tiles are cut before the processor runs
}

TEST_CASE("NVILA: prompt ids, tiles, tile grids and logits equal VILA's own pipeline") {
    auto a = assistant::load(nvila_dir() / "nvila_8b");
    CHECK(a.tokens_per_image() == 121 + 1);  // an untiled image: 11 x 11 features and "\n"
    CHECK(a.image_separator().empty());
    const io::safetensors_file fx(nvila_dir() / "expected.safetensors");
    const json cases = io::read_json(nvila_dir() / "cases.json");
    for (std::size_t k = 0; k < cases.size(); ++k) {
        const auto& c = cases[k];
        CAPTURE(k);
        std::vector<std::string> files;
        for (const auto& n : c["images"]) files.push_back(fs::path(VILA_TEST_DATA_DIR) / "images" / n.get<std::string>());
        // ids: VILA's chat template and tokenizer, its <image> token standing for the features
        const auto ids = a.encode_prompt(c["prompt"].get<std::string>(), "auto");
        tensor<std::int32_t> want_ids;
        fx.read("ids" + std::to_string(k), want_ids);
        auto want = want_ids.to_host();
        for (auto& t : want)
            if (t == c["image_token_id"].get<int>()) t = a.image_token_id();
        CHECK(ids == want);
        // tiles: dynamic_s2_preprocess + SiglipImageProcessor: sampled pixels, and exact checksums of
        // every pixel's grey level u = 127.5 (pixel + 1)
        const auto im = a.load_images(files);
        tensor<float> samples;
        tensor<std::int64_t> checksums;
        fx.read("tile_samples" + std::to_string(k), samples);
        fx.read("tile_checksums" + std::to_string(k), checksums);
        REQUIRE(im.pixels.rank() == 4);
        CHECK(im.pixels.dim(0) == c["tiles"].get<index_t>());
        const index_t n = im.pixels.dim(0), side = im.pixels.dim(2), step = 16, ss = (side + step - 1) / step;
        REQUIRE(samples.shape() == shape_t{n, 3, ss, ss});
        const auto px = im.pixels.to_host();
        std::vector<float> got_samples;
        std::vector<std::int64_t> got_checksums;
        for (index_t t = 0; t < n * 3; ++t) {
            const float* plane = px.data() + t * side * side;
            std::int64_t sum = 0, weighted = 0;
            for (index_t i = 0; i < side * side; ++i) {
                const auto u = static_cast<std::int64_t>(std::lround((double(plane[i]) + 1) * 127.5));
                sum += u;
                weighted += u * (i + 1);
            }
            got_checksums.push_back(sum);
            got_checksums.push_back(weighted);
            for (index_t r = 0; r < side; r += step)
                for (index_t q = 0; q < side; q += step) got_samples.push_back(plane[r * side + q]);
        }
        test::require_close(tensor<float>::from_host(samples.shape(), got_samples), samples, 1e-6, 0.0, "tile pixels");
        CHECK(got_checksums == checksums.to_host());
        REQUIRE(im.grids.size() == files.size());
        if (c["block"].is_null()) {
            for (const auto& g : im.grids) CHECK(!g.tiled());
        } else {
            CHECK(im.grids[0].rows == c["block"][0].get<index_t>());
            CHECK(im.grids[0].cols == c["block"][1].get<index_t>());
        }
        // logits of the spliced sequence, at the sampled rows. PyTorch's own float32 run of this
        // pipeline is up to 3e-4 from its float64 run (make_nvila.py, NVILA_F64_CHECK=1): the
        // 1519-token sequences and the 3 x 1024-token tiles sum long; hence 1e-3.
        const auto logits = a.logits(ids, im);
        CHECK(logits.dim(0) == c["sequence"].get<index_t>());
        tensor<float> want_logits;
        tensor<std::int32_t> rows;
        fx.read("logits" + std::to_string(k), want_logits);
        fx.read("logit_rows" + std::to_string(k), rows);
        const index_t V = logits.dim(1);
        REQUIRE(want_logits.shape() == shape_t{rows.size(), V});
        const auto all = logits.to_host();
        std::vector<float> picked;
        for (auto r : rows.to_host()) {
            REQUIRE(r < logits.dim(0));
            picked.insert(picked.end(), all.begin() + r * V, all.begin() + (r + 1) * V);
        }
        test::require_close(tensor<float>::from_host(want_logits.shape(), picked), want_logits, 1e-3, 1e-4, "logits");
    }
}

TEST_CASE("dynamic S2's feature merge: its backward is the transpose of its forward") {
    vision::dynamic_s2 s;
    s.scales = {4, 8, 12};
    s.max_tiles = 12;
    const index_t g = 3, C = 2;  // a 3 x 3 feature grid per tile
    for (index_t out : {-1, 0, 1}) {
        CAPTURE(out);
        s.resize_output_to = out;
        const std::vector<vision::tile_grid> grids = {{3, 4}, {}, {2, 5}};
        index_t tiles = 0;
        for (const auto& gr : grids) tiles += vision::tile_count(gr, s);
        CHECK(tiles == (1 + 4 + 12) + 1 + (1 + 4 + 10));
        const index_t blocks = vision::block_count(grids, s);
        std::mt19937 rng(7);
        std::normal_distribution<double> n01;
        std::vector<double> x(std::size_t(tiles * g * g * C)), y(std::size_t(blocks * g * g * 3 * C)), mx(y.size(), 0.0), mty(x.size(), 0.0);
        for (auto& v : x) v = n01(rng);
        for (auto& v : y) v = n01(rng);
        vision::scale_merge(grids, s, g, C, tiles, x.data(), mx.data(), false);
        vision::scale_merge(grids, s, g, C, tiles, y.data(), mty.data(), true);
        double lhs = 0, rhs = 0;
        for (std::size_t i = 0; i < y.size(); ++i) lhs += mx[i] * y[i];
        for (std::size_t i = 0; i < x.size(); ++i) rhs += x[i] * mty[i];
        CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
        CHECK_THROWS_AS(vision::scale_merge(grids, s, g, C, tiles - 1, x.data(), mx.data(), false), shape_error);
    }
    // VILA's find_closest_aspect_ratio: (cols, rows)
    CHECK(vision::closest_grid(37, 23, 9, 12, 448) == std::pair<index_t, index_t>{4, 3});
    CHECK(vision::closest_grid(23, 61, 9, 12, 448) == std::pair<index_t, index_t>{2, 5});
    CHECK(vision::closest_grid(100, 100, 9, 12, 448) == std::pair<index_t, index_t>{3, 3});
}

TEST_CASE("NVILA folders that cannot run as VILA would are refused, naming the key") {
    const test::scratch_folder dir("vila_nvila_bad");
    int n = 0;
    auto refused = [&](const std::function<void(json&)>& edit, const std::string& needle) {
        const fs::path d = dir.path / std::to_string(n++);
        copy_nvila_with(d, edit);
        CHECK_THROWS_WITH_AS(model::read_layout(d), doctest::Contains(needle.c_str()), config_error);
    };
    refused([](json& j) { j["s2_scales"] = "448,900"; }, "not a multiple");
    refused([](json& j) { j["s2_scales"] = "448;896"; }, "s2_scales");
    refused([](json& j) { j["s2_scales"] = "448, ,896"; }, "comma-separated");
    refused([](json& j) { j["s2_scales"] = "448,8 96"; }, "comma-separated");
    refused([](json& j) { j["s2_scales"] = "224,448,672"; }, "image_size");
    refused([](json& j) { j["max_tiles"] = 4; }, "max_tiles");
    refused([](json& j) { j["dynamic_s2"] = false; }, "dynamic_s2");
    refused([](json& j) { j["s2"] = true; }, "static S2");
    refused([](json& j) { j["mm_hidden_size"] = 32; }, "3 scales");
    refused([](json& j) { j["image_encoder"] = R"({"_target_": "llava.model.encoders.TSPImageEncoder"})"; }, "_target_");
    refused([](json& j) { j["s2_resize_output_to_scale_idx"] = 5; }, "names no scale");
    // spaces around the sizes are fine
    const fs::path spaced = dir.path / "spaced";
    copy_nvila_with(spaced, [](json& j) { j["s2_scales"] = " 448 , 896,1344 "; });
    CHECK(model::read_layout(spaced).s2.scales.size() == 3);
    // an explicit image encoder without end tokens frames nothing
    const fs::path d = dir.path / "no_end";
    copy_nvila_with(d, [](json& j) { j["image_encoder"] = R"({"_target_": "llava.model.encoders.BasicImageEncoder", "end_tokens": null})"; });
    CHECK(model::read_layout(d).image_end.empty());
}

TEST_CASE("an NVILA model saves and loads back its dynamic S2 and image framing") {
    using model_t = vlm<vision::siglip, projector::mlp_downsample_3x3_fix>;
    auto m = model_t::load(nvila_dir() / "nvila_8b");
    CHECK(m.image_end_ids.size() == 1);
    const test::scratch_folder dir("vila_nvila_save");
    m.save(dir.path / "out");
    fs::copy(nvila_dir() / "nvila_8b" / "llm" / "tokenizer.json", dir.path / "out" / "llm" / "tokenizer.json");
    fs::copy(nvila_dir() / "nvila_8b" / "llm" / "tokenizer_config.json", dir.path / "out" / "llm" / "tokenizer_config.json");
    const auto L = model::read_layout(dir.path / "out");
    CHECK(L.s2.scales == m.s2.scales);
    CHECK(L.image_end == "\n");
    auto back = model_t::load(L);
    CHECK(back.image_end_ids == m.image_end_ids);
    CHECK(back.tokens_per_image() == m.tokens_per_image());
}
