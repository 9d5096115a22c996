// vila/vision/image.hpp — the HF image processors (CLIPImageProcessor, SiglipImageProcessor)
// with VILA's aspect-ratio modes; decoding is vision/decode.hpp.
//
// Every intermediate image (the padded square, the resized image) is checked against the
// processor's `max_pixels` (PIL's decompression-bomb threshold by default) before it is
// allocated: an extreme aspect ratio cannot turn a small image into gigabytes. Resizing
// reproduces PIL's bicubic resampling (8-bit, a = -0.5, antialiasing support, 22-bit
// fixed-point coefficients, the two passes in Pillow 13's order), which is what HF's
// PIL-backed processors call: pixel values equal to theirs.
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
#include "../io/json.hpp"

#include "decode.hpp"

namespace vila::vision {

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

/// Refuses an intermediate image of `w` x `h` above the pixel limit, before it is allocated.
inline void check_intermediate(const char* step, index_t w, index_t h, std::uint64_t max_pixels) {
    if (w <= 0 || h <= 0) throw shape_error(std::string("vila::vision::") + step + ": target " + std::to_string(w) + "x" + std::to_string(h));
    if (std::uint64_t(w) > max_pixels || std::uint64_t(h) > max_pixels || std::uint64_t(w) * std::uint64_t(h) > max_pixels)
        throw shape_error(std::string("vila::vision::") + step + ": the " + std::to_string(w) + "x" + std::to_string(h) +
                          " intermediate image exceeds the limit of " + std::to_string(max_pixels) +
                          " pixels (an extreme aspect ratio? raise image_processor::max_pixels if it is wanted)");
}

namespace detail {
/// One PIL resampling pass along x (horizontal) or y (vertical) to `size`.
inline image resample_pass(const image& in, index_t size, bool horizontal) {
    const auto c = coefficients(horizontal ? in.width : in.height, size);
    image out{horizontal ? size : in.width, horizontal ? in.height : size, {}};
    out.rgb.resize(std::size_t(out.width * out.height * 3));
    for (index_t y = 0; y < out.height; ++y)
        for (index_t x = 0; x < out.width; ++x) {
            const std::size_t i = std::size_t(horizontal ? x : y);
            for (int ch = 0; ch < 3; ++ch) {
                std::int64_t ss = std::int64_t(1) << (precision_bits - 1);
                for (int t = 0; t < c.count[i]; ++t)
                    ss += std::int64_t(horizontal ? in.at(y, c.first[i] + t, ch) : in.at(c.first[i] + t, x, ch)) * c.k[i][std::size_t(t)];
                out.rgb[std::size_t((y * out.width + x) * 3 + ch)] = clip8(ss);
            }
        }
    return out;
}
}  // namespace detail

/// PIL Image.resize((width, height), Image.BICUBIC) for 8-bit RGB. Pillow 13 runs the two passes
/// horizontal first, except when the height shrinks by more than twice what the width shrinks
/// (measured on 587 random sizes with Pillow 13.0, tests/fixtures/make_images.py keeps cases).
inline image resize_bicubic(const image& in, index_t width, index_t height, std::uint64_t max_pixels = default_max_pixels) {
    check_intermediate("resize_bicubic", width, height, max_pixels);
    const bool both = width != in.width && height != in.height;
    const bool vertical_first = both && height < in.height && (in.height - height) > 2 * (in.width - width);
    if (both) check_intermediate("resize_bicubic", vertical_first ? in.width : width, vertical_first ? height : in.height, max_pixels);
    if (vertical_first) return detail::resample_pass(detail::resample_pass(in, height, false), width, true);
    image cur = width != in.width ? detail::resample_pass(in, width, true) : in;
    return height != in.height ? detail::resample_pass(cur, height, false) : cur;
}

/// VILA's "pad": paste on a square of the processor's mean colour, centred (expand2square).
inline image expand_to_square(const image& in, const std::uint8_t background[3], std::uint64_t max_pixels = default_max_pixels) {
    if (in.width == in.height) return in;
    const index_t side = std::max(in.width, in.height);
    check_intermediate("expand_to_square", side, side, max_pixels);
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
    // VILA's image_aspect_ratio, applied before the processor: "pad" (expand2square on the mean
    // colour), "resize" (stretch to the crop size, VILA 1.0/1.5), or "none" (the processor
    // alone, as transformers' LLaVA)
    std::string aspect_ratio = "none";
    std::uint64_t max_pixels = default_max_pixels;  // largest intermediate image (pad, resize)

    static image_processor from_json(const nlohmann::json& j, const std::string& file) {
        const io::config_fields f(j, file);
        image_processor p;
        const std::string t = f.str("image_processor_type", f.str("feature_extractor_type", ""));
        if (t.rfind("CLIP", 0) == 0) p.type = kind::clip;
        else if (t.rfind("Siglip", 0) == 0) p.type = kind::siglip;
        else f.fail("image_processor_type", "'" + t + "' is not supported (CLIPImageProcessor, SiglipImageProcessor)");
        if (f.integer("resample", 3, INT32_MIN, INT32_MAX) != 3) f.fail("resample", "only bicubic (3) is supported");
        p.do_resize = f.boolean("do_resize", true);
        p.do_rescale = f.boolean("do_rescale", true);
        p.do_normalize = f.boolean("do_normalize", true);
        p.rescale_factor = f.number("rescale_factor", 1.0 / 255.0);
        // sizes: positive and at most 65,536 pixels a side (the pixel limit bounds their product)
        const auto side = [&](const io::config_fields& g, const char* key, index_t def) { return index_t(g.integer(key, def, 1, 65536)); };
        if (p.type == kind::siglip) {
            p.do_center_crop = false;
            for (int c = 0; c < 3; ++c) p.mean[c] = p.stddev[c] = 0.5;
            if (f.has("size")) {
                const auto s = f.object("size");
                p.height = side(s, "height", 224), p.width = side(s, "width", 224);
            }
        } else {
            p.do_center_crop = f.boolean("do_center_crop", true);
            if (f.has("size")) {
                if (f.raw("size").is_number()) p.shortest_edge = side(f, "size", 224);
                else p.shortest_edge = side(f.object("size"), "shortest_edge", 224);
            }
            if (f.has("crop_size")) {
                if (f.raw("crop_size").is_number()) p.height = p.width = side(f, "crop_size", 224);
                else {
                    const auto c = f.object("crop_size");
                    p.height = side(c, "height", 224), p.width = side(c, "width", 224);
                }
            }
        }
        for (const char* key : {"image_mean", "image_std"})
            if (f.has(key)) {
                const auto& v = f.raw(key);
                if (!v.is_array() || v.size() != 3) f.fail(key, "expected three numbers");
                for (std::size_t c = 0; c < 3; ++c) {
                    if (!v[c].is_number() || !std::isfinite(v[c].get<double>())) f.fail(key, "expected three finite numbers, got " + v.dump());
                    (std::string(key) == "image_mean" ? p.mean : p.stddev)[c] = v[c].get<double>();
                }
                if (std::string(key) == "image_std" && (p.stddev[0] == 0 || p.stddev[1] == 0 || p.stddev[2] == 0))
                    f.fail(key, "a standard deviation of 0");
            }
        return p;
    }

    /// Pixel values [3, H, W].
    tensor<float> preprocess(const image& im) const {
        if (im.width <= 0 || im.height <= 0) throw shape_error("vila::vision::image_processor: empty image");
        image cur = im;
        if (aspect_ratio == "pad") {  // VILA: background = int(mean * 255)
            const std::uint8_t bg[3] = {std::uint8_t(int(mean[0] * 255)), std::uint8_t(int(mean[1] * 255)), std::uint8_t(int(mean[2] * 255))};
            cur = expand_to_square(cur, bg, max_pixels);
        } else if (aspect_ratio == "resize") {
            // VILA: image.resize((crop_size["height"], crop_size["width"])), PIL's (width, height)
            // order with the names swapped, as VILA writes it; the same for square crops
            cur = resize_bicubic(cur, height, width, max_pixels);
        } else if (aspect_ratio != "none") {
            throw config_error("image_aspect_ratio '" + aspect_ratio + "' is not supported (pad, resize, none)");
        }
        if (do_resize) {
            if (type == kind::siglip) {
                cur = resize_bicubic(cur, width, height, max_pixels);
            } else {  // the short side becomes shortest_edge; the long side int(S * long / short)
                const bool w_short = cur.width <= cur.height;
                const index_t s = w_short ? cur.width : cur.height, l = w_short ? cur.height : cur.width;
                const double new_l = double(shortest_edge) * double(l) / double(s);
                if (new_l * double(shortest_edge) > double(max_pixels))
                    throw shape_error("vila::vision::image_processor: resizing " + std::to_string(cur.width) + "x" +
                                      std::to_string(cur.height) + " to a short side of " + std::to_string(shortest_edge) +
                                      " makes " + std::to_string(std::uint64_t(new_l) * std::uint64_t(shortest_edge)) +
                                      " pixels, above the limit of " + std::to_string(max_pixels) +
                                      " (an extreme aspect ratio? raise image_processor::max_pixels if it is wanted)");
                cur = w_short ? resize_bicubic(cur, shortest_edge, index_t(new_l), max_pixels)
                              : resize_bicubic(cur, index_t(new_l), shortest_edge, max_pixels);
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
