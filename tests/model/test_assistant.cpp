// vila::assistant, the embedding facade: prompt encoding with images (VILA's placeholder split
// and LLaVA's <image> token), conversation templates, image-count checks, streaming answers.
#include <filesystem>

#include <doctest/doctest.h>
#include <vila/model/assistant.hpp>

using namespace vila;
namespace fs = std::filesystem;

namespace {
fs::path assistant_vlm_dir(const char* name) { return fs::path(VILA_TEST_DATA_DIR) / "vlm" / name; }
fs::path image(const char* name) { return fs::path(VILA_TEST_DATA_DIR) / "images" / name; }
}  // namespace

TEST_CASE("assistant: prompts put one image token per <image>") {
    auto vila_m = assistant::load(assistant_vlm_dir("vila"));
    const auto ids = vila_m.encode_prompt("<image> and <image>: which is red?", "vicuna_v1");
    CHECK(ids.front() == 1);  // BOS
    CHECK(std::count(ids.begin(), ids.end(), model::image_placeholder) == 2);
    const auto& tok = vila_m.tokenizer();
    std::string text;  // the text around the placeholders decodes back to the template
    for (auto t : ids) text += t == model::image_placeholder ? std::string("<image>") : tok.decode({t}, true);
    CHECK(text.find("USER: <image> and <image>: which is red? ASSISTANT:") != std::string::npos);

    auto llava_m = assistant::load(assistant_vlm_dir("llava"));
    const auto l = llava_m.encode_prompt("USER: <image>\nHi ASSISTANT:");
    CHECK(std::count(l.begin(), l.end(), 299) == 1);
    CHECK(llava_m.tokens_per_image() == 16);
    CHECK(llava_m.summary().find("projector: mlp2x_gelu") != std::string::npos);
    CHECK_THROWS_WITH_AS(llava_m.encode_prompt("hi", "chatml"), doctest::Contains("unknown conversation template 'chatml'"), config_error);
}

TEST_CASE("assistant: ask streams the answer, and image counts must match the prompt") {
    auto a = assistant::load(assistant_vlm_dir("llava"));
    ask_options o;
    o.max_new_tokens = 5;
    std::string streamed;
    const std::string answer = a.ask({image("a.png").string()}, "Describe the picture.", o, [&](const std::string& piece) {
        streamed += piece;
        return true;
    });
    CHECK(answer == streamed);
    CHECK_THROWS_WITH_AS(a.ask({image("a.png").string(), image("b.png").string()}, "<image> hi", o),
                         doctest::Contains("the prompt has 1 <image> mark but 2 images were given"), error);
    CHECK_THROWS_WITH_AS(a.ask({image("truncated.png").string()}, "hi", o), doctest::Contains("truncated.png"), error);
    // the images are preprocessed as the tower expects
    const auto im = a.load_images({image("a.png").string(), image("b.png").string()});
    CHECK(im.pixels.shape() == shape_t{2, 3, 32, 32});
    CHECK(im.grids.size() == 2);
    CHECK(!im.grids[0].tiled());
}
