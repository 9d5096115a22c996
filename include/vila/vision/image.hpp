// vila/vision/image.hpp — images: decoding (JPEG, PNG, BMP, GIF first frame, PNM) and the HF
// image processors (CLIPImageProcessor, SiglipImageProcessor) with VILA's aspect-ratio modes.
//
// Decoding uses stb_image (Debian libstb-dev), compiled into the including translation unit as
// static functions, so the library stays header-only. Images above `max_pixels` (default
// 89,478,485, PIL's decompression-bomb threshold) are refused from their header, before any
// pixel is decoded. Resizing reproduces PIL's bicubic resampling (8-bit, a = -0.5,
// antialiasing support, 22-bit fixed-point coefficients, horizontal pass then vertical), which
// is what HF's PIL-backed processors call. Pillow 13 sometimes runs the vertical pass first
// (its rule is not documented); then a few pixels differ by one 8-bit rounding step.
// Output of preprocess: float pixel values [3, H, W] (CHW), rescaled and normalized.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/tensor.hpp"
#include "../error.hpp"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#endif
#ifndef VILA_NO_STB_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#endif
#if __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>
#else
#include <stb_image.h>
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace vila::vision {

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC).
struct image {
    index_t width = 0, height = 0;
    std::vector<std::uint8_t> rgb;  // width * height * 3
    std::uint8_t at(index_t y, index_t x, int c) const { return rgb[std::size_t((y * width + x) * 3 + c)]; }
};

inline constexpr std::uint64_t default_max_pixels = 89478485;  // PIL.Image.MAX_IMAGE_PIXELS

/// Decodes an encoded image held in memory (a tar member, a base64 field) to RGB; `name` says
/// where it came from in errors. Grey and alpha are converted, as PIL's convert("RGB").
inline image decode_image(const unsigned char* data, std::size_t size, const std::string& name,
                          std::uint64_t max_pixels = default_max_pixels) {
    if (size == 0) throw format_error(name + ": empty image file");
    if (size > std::size_t(INT32_MAX)) throw format_error(name + ": image file too large");
    int w = 0, h = 0, n = 0;
    if (!stbi_info_from_memory(data, int(size), &w, &h, &n))
        throw format_error(name + ": not a decodable image (" + stbi_failure_reason() + ")");
    if (w <= 0 || h <= 0) throw format_error(name + ": zero-sized image " + std::to_string(w) + "x" + std::to_string(h));
    if (std::uint64_t(w) * std::uint64_t(h) > max_pixels)
        throw format_error(name + ": " + std::to_string(w) + "x" + std::to_string(h) + " pixels exceed the limit of " +
                           std::to_string(max_pixels) + " (a decompression bomb?)");
    unsigned char* px = stbi_load_from_memory(data, int(size), &w, &h, &n, 3);
    if (!px) throw format_error(name + ": corrupt or truncated image (" + stbi_failure_reason() + ")");
    image im;
    im.width = w;
    im.height = h;
    im.rgb.assign(px, px + std::size_t(w) * std::size_t(h) * 3);
    stbi_image_free(px);
    return im;
}

/// Decodes an image file to RGB.
inline image load_image(const std::filesystem::path& path, std::uint64_t max_pixels = default_max_pixels) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error("cannot open image " + path.string());
    const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), {});
    return decode_image(bytes.data(), bytes.size(), path.string(), max_pixels);
}

namespace detail {
constexpr int precision_bits = 32 - 8 - 2;  // PIL's 8-bit resampling precision

inline double bicubic(double x) {
    const double a = -0.5;
    x = std::abs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

struct resample_coeffs {
    std::vector<int> first, count;
    std::vector<std::vector<std::int32_t>> k;
};

/// PIL's precompute_coeffs + normalize_coeffs_8bpc for a full-image box.
inline resample_coeffs coefficients(index_t in_size, index_t out_size) {
    const double scale = double(in_size) / double(out_size);
    const double filterscale = std::max(scale, 1.0);
    const double support = 2.0 * filterscale;
    resample_coeffs r;
    for (index_t xx = 0; xx < out_size; ++xx) {
        const double center = (double(xx) + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int xmin = int(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = int(center + support + 0.5);
        if (xmax > in_size) xmax = int(in_size);
        xmax -= xmin;
        std::vector<double> w(std::size_t(std::max(xmax, 0)));
        double total = 0;
        for (int x = 0; x < xmax; ++x) total += w[std::size_t(x)] = bicubic((x + xmin - center + 0.5) * ss);
        std::vector<std::int32_t> kk(w.size());
        for (std::size_t x = 0; x < w.size(); ++x) {
            const double v = total != 0 ? w[x] / total : w[x];
            kk[x] = v < 0 ? std::int32_t(-0.5 + v * (1 << precision_bits)) : std::int32_t(0.5 + v * (1 << precision_bits));
        }
        r.first.push_back(xmin);
        r.count.push_back(xmax);
        r.k.push_back(std::move(kk));
    }
    return r;
}
inline std::uint8_t clip8(std::int64_t v) {
    if (v >= (std::int64_t(1) << precision_bits) * 256) return 255;
    if (v <= 0) return 0;
    return std::uint8_t(v >> precision_bits);
}
}  // namespace detail

/// PIL Image.resize((width, height), Image.BICUBIC) for 8-bit RGB.
inline image resize_bicubic(const image& in, index_t width, index_t height) {
    if (width <= 0 || height <= 0) throw shape_error("vila::vision::resize_bicubic: target " + std::to_string(width) + "x" + std::to_string(height));
    image cur = in;
    if (width != in.width) {  // horizontal pass
        const auto c = detail::coefficients(in.width, width);
        image out{width, in.height, std::vector<std::uint8_t>(std::size_t(width * in.height * 3))};
        for (index_t y = 0; y < in.height; ++y)
            for (index_t x = 0; x < width; ++x)
                for (int ch = 0; ch < 3; ++ch) {
                    std::int64_t ss = std::int64_t(1) << (detail::precision_bits - 1);
                    for (int t = 0; t < c.count[std::size_t(x)]; ++t)
                        ss += std::int64_t(cur.at(y, c.first[std::size_t(x)] + t, ch)) * c.k[std::size_t(x)][std::size_t(t)];
                    out.rgb[std::size_t((y * width + x) * 3 + ch)] = detail::clip8(ss);
                }
        cur = std::move(out);
    }
    if (height != in.height) {  // vertical pass
        const auto c = detail::coefficients(in.height, height);
        image out{cur.width, height, std::vector<std::uint8_t>(std::size_t(cur.width * height * 3))};
        for (index_t y = 0; y < height; ++y)
            for (index_t x = 0; x < cur.width; ++x)
                for (int ch = 0; ch < 3; ++ch) {
                    std::int64_t ss = std::int64_t(1) << (detail::precision_bits - 1);
                    for (int t = 0; t < c.count[std::size_t(y)]; ++t)
                        ss += std::int64_t(cur.at(c.first[std::size_t(y)] + t, x, ch)) * c.k[std::size_t(y)][std::size_t(t)];
                    out.rgb[std::size_t((y * cur.width + x) * 3 + ch)] = detail::clip8(ss);
                }
        cur = std::move(out);
    }
    return cur;
}

/// VILA's "pad": paste on a square of the processor's mean colour, centred (expand2square).
inline image expand_to_square(const image& in, const std::uint8_t background[3]) {
    if (in.width == in.height) return in;
    const index_t side = std::max(in.width, in.height);
    image out{side, side, std::vector<std::uint8_t>(std::size_t(side * side * 3))};
    for (index_t i = 0; i < side * side; ++i)
        for (int c = 0; c < 3; ++c) out.rgb[std::size_t(i * 3 + c)] = background[c];
    const index_t ox = (side - in.width) / 2, oy = (side - in.height) / 2;
    for (index_t y = 0; y < in.height; ++y)
        std::copy(in.rgb.begin() + std::ptrdiff_t(y * in.width * 3), in.rgb.begin() + std::ptrdiff_t((y + 1) * in.width * 3),
                  out.rgb.begin() + std::ptrdiff_t(((y + oy) * side + ox) * 3));
    return out;
}

/// HF image processor settings (preprocessor_config.json) plus VILA's image_aspect_ratio.
struct image_processor {
    enum class kind { clip, siglip } type = kind::clip;
    index_t shortest_edge = 224;              // clip: resize the short side to this
    index_t height = 224, width = 224;        // siglip: resize to; clip: crop to
    bool do_resize = true, do_center_crop = true, do_rescale = true, do_normalize = true;
    double rescale_factor = 1.0 / 255.0;
    double mean[3] = {0.48145466, 0.4578275, 0.40821073}, stddev[3] = {0.26862954, 0.26130258, 0.27577711};
    std::string aspect_ratio = "resize";      // VILA: "pad" (square on the mean colour) or "resize"

    static image_processor from_json(const nlohmann::json& j, const std::string& file) {
        auto fail = [&](const std::string& key, const std::string& why) { throw config_error(file + ": " + key + ": " + why); };
        image_processor p;
        const std::string t = j.value("image_processor_type", j.value("feature_extractor_type", std::string()));
        if (t.rfind("CLIP", 0) == 0) p.type = kind::clip;
        else if (t.rfind("Siglip", 0) == 0) p.type = kind::siglip;
        else fail("image_processor_type", "'" + t + "' is not supported (CLIPImageProcessor, SiglipImageProcessor)");
        if (j.contains("resample") && j["resample"] != 3) fail("resample", "only bicubic (3) is supported");
        p.do_resize = j.value("do_resize", true);
        p.do_rescale = j.value("do_rescale", true);
        p.do_normalize = j.value("do_normalize", true);
        p.rescale_factor = j.value("rescale_factor", 1.0 / 255.0);
        if (p.type == kind::siglip) {
            p.do_center_crop = false;
            for (int c = 0; c < 3; ++c) p.mean[c] = p.stddev[c] = 0.5;
            if (j.contains("size")) p.height = j["size"].value("height", 224), p.width = j["size"].value("width", 224);
        } else {
            p.do_center_crop = j.value("do_center_crop", true);
            if (j.contains("size")) {
                if (j["size"].is_number()) p.shortest_edge = j["size"].get<index_t>();
                else p.shortest_edge = j["size"].value("shortest_edge", index_t(224));
            }
            if (j.contains("crop_size")) {
                if (j["crop_size"].is_number()) p.height = p.width = j["crop_size"].get<index_t>();
                else p.height = j["crop_size"].value("height", index_t(224)), p.width = j["crop_size"].value("width", index_t(224));
            }
        }
        for (const char* key : {"image_mean", "image_std"})
            if (j.contains(key)) {
                if (!j[key].is_array() || j[key].size() != 3) fail(key, "expected three numbers");
                for (int c = 0; c < 3; ++c) (std::string(key) == "image_mean" ? p.mean : p.stddev)[c] = j[key][c].get<double>();
            }
        return p;
    }

    /// Pixel values [3, H, W].
    tensor<float> preprocess(const image& im) const {
        if (im.width <= 0 || im.height <= 0) throw shape_error("vila::vision::image_processor: empty image");
        image cur = im;
        if (aspect_ratio == "pad") {  // VILA: background = int(mean * 255)
            const std::uint8_t bg[3] = {std::uint8_t(int(mean[0] * 255)), std::uint8_t(int(mean[1] * 255)), std::uint8_t(int(mean[2] * 255))};
            cur = expand_to_square(cur, bg);
        } else if (aspect_ratio != "resize") {
            throw config_error("image_aspect_ratio '" + aspect_ratio + "' is not supported (pad, resize)");
        }
        if (do_resize) {
            if (type == kind::siglip) {
                cur = resize_bicubic(cur, width, height);
            } else {  // the short side becomes shortest_edge; the long side int(S * long / short)
                const bool w_short = cur.width <= cur.height;
                const index_t s = w_short ? cur.width : cur.height, l = w_short ? cur.height : cur.width;
                const index_t new_l = index_t(double(shortest_edge) * double(l) / double(s));
                cur = w_short ? resize_bicubic(cur, shortest_edge, new_l) : resize_bicubic(cur, new_l, shortest_edge);
            }
        }
        index_t top = 0, left = 0, oh = cur.height, ow = cur.width;
        if (do_center_crop) {
            if (height > cur.height || width > cur.width)
                throw shape_error("vila::vision::image_processor: crop " + std::to_string(width) + "x" + std::to_string(height) +
                                  " is larger than the resized image " + std::to_string(cur.width) + "x" + std::to_string(cur.height));
            top = (cur.height - height) / 2;
            left = (cur.width - width) / 2;
            oh = height;
            ow = width;
        }
        std::vector<float> out(std::size_t(3 * oh * ow));
        for (int c = 0; c < 3; ++c)
            for (index_t y = 0; y < oh; ++y)
                for (index_t x = 0; x < ow; ++x) {
                    double v = cur.at(top + y, left + x, c);
                    if (do_rescale) v *= rescale_factor;
                    if (do_normalize) v = (v - mean[c]) / stddev[c];
                    out[std::size_t((c * oh + y) * ow + x)] = float(v);
                }
        return tensor<float>::from_host({3, oh, ow}, out);
    }
};

}  // namespace vila::vision
