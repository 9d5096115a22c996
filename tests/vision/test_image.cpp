// Images: decoding every format like PIL, HF's CLIP/SigLIP processors (PIL backends) on odd
// sizes, VILA's pad mode, and clear errors for broken files (tests/fixtures/images).
#include <cmath>
#include <cstring>
#include <fstream>

#include <doctest/doctest.h>
#include <vila/io/safetensors.hpp>
#include <vila/vision/image.hpp>

#include "../support/fixtures.hpp"

using namespace vila;

namespace {
std::filesystem::path img(const std::string& f) { return std::filesystem::path(VILA_TEST_DATA_DIR) / "images" / f; }
const io::safetensors_file& image_expected() {
    static const io::safetensors_file f(img("expected.safetensors"));
    return f;
}
/// Mean and max absolute difference.
std::pair<double, double> diff(const std::vector<float>& a, const std::vector<float>& b) {
    double sum = 0, mx = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double d = std::abs(double(a[i]) - double(b[i]));
        sum += d;
        mx = std::max(mx, d);
    }
    return {sum / double(a.size()), mx};
}
}  // namespace

TEST_CASE("images decode exactly like PIL's convert(\"RGB\") in every format and mode") {
    // make_images.py: JPEG through libjpeg-turbo as Pillow (subsamplings, progressive, grey,
    // Adobe CMYK), PNG modes (palette with tRNS, 1-bit, grey+alpha, 16-bit, Adam7), BMP, PGM, GIF
    for (const char* f : {"a.png", "b.png", "a.bmp", "a.gif", "a.ppm", "a.jpg", "c420.jpg", "c422.jpg", "c444.jpg",
                          "b_prog.jpg", "c_grey.jpg", "c_cmyk.jpg", "c_l.png", "c_la.png", "c_rgba.png", "c_p.png",
                          "c_1.png", "c_grey16.png", "c_rgb16.png", "c_adam7.png", "c_p8.bmp", "c_rgba.bmp", "c.pgm"}) {
        CAPTURE(f);
        const auto im = vision::load_image(img(f));
        const auto& info = image_expected().info(std::string("decoded.") + f);
        REQUIRE(info.shape == shape_t{im.height, im.width, 3});
        const unsigned char* ref = image_expected().bytes(info);
        std::size_t differ = 0;
        for (std::size_t i = 0; i < im.rgb.size(); ++i) differ += im.rgb[i] != ref[i];
        CHECK(differ == 0);
    }
}

TEST_CASE("CLIP and SigLIP processors and VILA's pad mode match HF's PIL processors") {
    vision::image_processor clip;  // CLIPImageProcessor defaults, at the fixture's size
    clip.shortest_edge = 32;
    clip.height = clip.width = 32;
    vision::image_processor siglip = vision::image_processor::from_json(
        {{"image_processor_type", "SiglipImageProcessor"}, {"size", {{"height", 32}, {"width", 32}}}}, "siglip.json");
    vision::image_processor clip_pad = clip, clip_resize = clip, siglip_resize = siglip;
    clip_pad.aspect_ratio = "pad";
    clip_resize.aspect_ratio = siglip_resize.aspect_ratio = "resize";
    for (const char* name : {"a", "b"}) {
        const auto im = vision::load_image(img(std::string(name) + ".png"));
        for (auto [proc, key] : {std::pair{&clip, "clip."}, std::pair{&siglip, "siglip."}, std::pair{&clip_pad, "clip_pad."},
                                 std::pair{&clip_resize, "clip_resize."}, std::pair{&siglip_resize, "siglip_resize."}}) {
            const std::string what = std::string(key) + name;
            CAPTURE(what);
            tensor<float> ref;
            image_expected().read(std::string(key) + name, ref);
            const auto got = proc->preprocess(im);
            REQUIRE(got.shape() == ref.shape());
            const auto [mean, mx] = diff(got.to_host(), ref.to_host());
            // the same 8-bit pixels as PIL; only the float rescale/normalize may round differently
            CHECK(mean <= 1e-7);
            CHECK(mx <= 1e-6);
        }
    }
}

TEST_CASE("bicubic resize equals PIL's in both pass orders (Pillow 13), odd sizes both ways") {
    for (auto [name, w, h] : {std::tuple{"a", 30, 9}, std::tuple{"a", 36, 10}, std::tuple{"a", 50, 15}, std::tuple{"a", 20, 11},
                              std::tuple{"a", 37, 40}, std::tuple{"b", 8, 31}, std::tuple{"b", 7, 30}, std::tuple{"b", 22, 30},
                              std::tuple{"b", 11, 29}, std::tuple{"b", 40, 100}, std::tuple{"b", 23, 20}}) {
        const std::string key = std::string("resize.") + name + "." + std::to_string(w) + "x" + std::to_string(h);
        CAPTURE(key);
        const auto out = vision::resize_bicubic(vision::load_image(img(std::string(name) + ".png")), w, h);
        const auto& info = image_expected().info(key);
        REQUIRE(info.shape == shape_t{out.height, out.width, 3});
        CHECK(std::memcmp(out.rgb.data(), image_expected().bytes(info), out.rgb.size()) == 0);
    }
}

TEST_CASE("broken images: clear errors, no decoding of bombs") {
    CHECK_THROWS_WITH_AS(vision::load_image(img("truncated.png")), doctest::Contains("corrupt or truncated"), format_error);
    CHECK_THROWS_WITH_AS(vision::load_image(img("truncated.jpg")), doctest::Contains("truncated"), format_error);
    CHECK_THROWS_WITH_AS(vision::load_image(img("empty.png")), doctest::Contains("empty image file"), format_error);
    CHECK_THROWS_WITH_AS(vision::load_image(img("bomb.png")), doctest::Contains("exceed the limit"), format_error);
    CHECK_THROWS_WITH_AS(vision::load_image(img("expected.safetensors")), doctest::Contains("not a decodable image"), format_error);
    CHECK_THROWS_AS(vision::load_image(img("missing.png")), io_error);
    CHECK_THROWS_WITH_AS(vision::load_image(img("a.png"), 100), doctest::Contains("exceed the limit of 100"), format_error);
    CHECK_THROWS_AS(vision::image_processor::from_json({{"image_processor_type", "ViTImageProcessor"}}, "p.json"), config_error);
}

namespace {
vision::image decode(const std::string& bytes, const std::string& name = "mem") {
    return vision::decode_image(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), name);
}
std::string le32(std::uint32_t v) { return {char(v), char(v >> 8), char(v >> 16), char(v >> 24)}; }
/// A BMP header (BITMAPINFOHEADER) followed by `payload` pixel bytes.
std::string bmp(std::int32_t w, std::int32_t h, int bpp, std::uint32_t compression, const std::string& payload) {
    std::string info = le32(40) + le32(std::uint32_t(w)) + le32(std::uint32_t(h)) + std::string{1, 0, char(bpp), 0} +
                       le32(compression) + le32(0) + le32(0) + le32(0) + le32(0) + le32(0);
    return "BM" + le32(std::uint32_t(54 + payload.size())) + le32(0) + le32(54) + info + payload;
}
}  // namespace

TEST_CASE("hostile images (issue 14, rows 1 and 2): refused from their headers, no large buffers") {
    // A 341-byte 1 x 65535 PNG: pad mode would make a 65535^2 square (12.9 GB), a CLIP 336
    // short-side resize 336 x 22 million pixels (22 GB). Both refused before allocating.
    const auto tall = vision::load_image(img("tall.png"));
    CHECK(tall.width == 1);
    CHECK(tall.height == 65535);
    vision::image_processor clip336;
    clip336.shortest_edge = clip336.height = clip336.width = 336;
    CHECK_THROWS_WITH_AS(clip336.preprocess(tall), doctest::Contains("above the limit of 89478485"), shape_error);
    vision::image_processor pad = clip336;
    pad.aspect_ratio = "pad";
    CHECK_THROWS_WITH_AS(pad.preprocess(tall), doctest::Contains("65535x65535 intermediate image exceeds the limit"), shape_error);
    vision::image_processor siglip = vision::image_processor::from_json({{"image_processor_type", "SiglipImageProcessor"}}, "s.json");
    CHECK(siglip.preprocess(tall).shape() == shape_t{3, 224, 224});  // a fixed-size resize is fine
    const std::uint8_t grey[3] = {1, 2, 3};
    CHECK_THROWS_AS(vision::expand_to_square(tall, grey, 1000), shape_error);
    CHECK_THROWS_AS(vision::resize_bicubic(tall, 100000, 100000), shape_error);

    // A 179-byte BMP declaring 11,730,951 x 5 pixels: stb_image decoded it; PIL refuses it
    const std::string truncated_bmp = bmp(11730951, 5, 24, 0, std::string(125, '\x7f'));
    CHECK(truncated_bmp.size() == 179);
    CHECK_THROWS_WITH_AS(decode(truncated_bmp), doctest::Contains("BMP: pixel data past the end of the 179-byte file"), format_error);
    // A well-formed tiny BMP decodes (bottom-up rows, BGR, rows padded to 4 bytes)
    const auto two = decode(bmp(1, 2, 24, 0, std::string("\x01\x02\x03\0\x04\x05\x06\0", 8)));
    CHECK(two.rgb == std::vector<std::uint8_t>{6, 5, 4, 3, 2, 1});
    CHECK_THROWS_WITH_AS(decode(bmp(4, 4, 8, 1, std::string(64, 0))), doctest::Contains("compression 1 is not supported"), format_error);
    CHECK_THROWS_WITH_AS(decode(bmp(70000, 70000, 24, 0, "")), doctest::Contains("exceed the limit"), format_error);
    CHECK_THROWS_AS(decode(bmp(-5, 5, 24, 0, "")), format_error);
    CHECK_THROWS_AS(decode(bmp(5, INT32_MIN, 24, 0, "")), format_error);

    // PNM headers whose numbers overflow an int (stb_image's was signed overflow)
    CHECK_THROWS_WITH_AS(decode("P6\n99999999999 1\n255\n"), doctest::Contains("PNM width too large"), format_error);
    CHECK_THROWS_WITH_AS(decode("P6\n3 3\n255\nab"), doctest::Contains("corrupt or truncated image (PNM pixel data"), format_error);
    CHECK_THROWS_WITH_AS(decode("P6\n60000 60000\n255\n"), doctest::Contains("exceed the limit"), format_error);
    CHECK_THROWS_WITH_AS(decode("P3\n1 1\n255\n1 2 3\n"), doctest::Contains("not supported"), format_error);
    CHECK(decode("P5\n# a comment\n2 1\n255\n\x10\x20").rgb == std::vector<std::uint8_t>{16, 16, 16, 32, 32, 32});

    // JPEG / PNG / GIF headers alone, and other formats
    CHECK_THROWS_WITH_AS(decode("\xFF\xD8\xFF\xE0", "x.jpg"), doctest::Contains("x.jpg: corrupt or truncated image (JPEG"), format_error);
    CHECK_THROWS_WITH_AS(decode(std::string("\x89PNG\r\n\x1a\n", 8), "x.png"), doctest::Contains("corrupt or truncated image (PNG"), format_error);
    CHECK_THROWS_WITH_AS(decode("GIF89a\x01\x00"), doctest::Contains("corrupt or truncated image (GIF"), format_error);
    CHECK_THROWS_WITH_AS(decode(std::string("RIFF\0\0\0\0WEBPVP8 ", 16)), doctest::Contains("not a decodable image (WebP is not supported"), format_error);
    // Every prefix of every fixture image is a clean error or a decode (never a crash)
    for (const char* f : {"c420.jpg", "b_prog.jpg", "c_adam7.png", "c_p.png", "a.gif", "c_p8.bmp", "c.pgm"}) {
        std::ifstream in(img(f), std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), {});
        for (std::size_t n = 0; n < bytes.size(); n += 7) {
            CAPTURE(f);
            CAPTURE(n);
            try {
                (void)decode(bytes.substr(0, n));
            } catch (const format_error&) {
            }
        }
    }
}
