// vila/vision/dynamic_s2.hpp — NVILA's dynamic S2 ("scale then compress"): an image is cut into
// tiles of the tower's resolution at several scales, the tower sees every tile, and each image's
// features are put back together, resized to one grid and stacked along the channels.
//
//   scales s0 < s1 < ... < sL (config.json s2_scales "448,896,1344"; each a multiple of s0, the
//   tile side): every scale but the last is a square of (s/s0)^2 tiles of the image resized to
//   s x s; the last scale uses the grid of rows x cols tiles (rows * cols in [(sL/s0)^2, max_tiles])
//   whose aspect ratio is closest to the image's. Tiles run row by row, scale after scale.
//   Features: each scale's tiles are laid side by side into one feature map, each map is
//   area-resized (adaptive average pooling) to the grid of scale s2_resize_output_to_scale_idx
//   (-1: the last), and the maps are concatenated along the channels (C per scale) in scale
//   order; the result is cut back into tiles ("blocks") of the tower's grid for the projector.
//   An image given with others (or any image outside generate's single-image path) is one tile
//   at s0 whose features are repeated once per scale along the channels.
//
// This is VILA's dynamic_s2_preprocess (llava/mm_utils.py) and merge_features_for_dynamic_s2 /
// split_chessboard (llava/model/llava_arch.py) at b760c34, checked against that code
// (tests/fixtures/make_nvila.py). One difference by construction: where two grids with the same
// tile count are exactly as close to the image's aspect ratio, VILA's choice follows the
// iteration order of a Python set; here the grid with fewer columns comes first.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "decode.hpp"
#include "image.hpp"

namespace vila::vision {

/// NVILA's dynamic S2 settings; empty scales: off.
struct dynamic_s2 {
    std::vector<index_t> scales;    // ascending; scales[0] is the tile side
    index_t max_tiles = 12;         // most tiles of the last scale
    index_t resize_output_to = -1;  // the scale whose grid the features take; -1: the last

    bool enabled() const noexcept { return !scales.empty(); }
    index_t tile() const { return scales.front(); }
    index_t last() const { return index_t(scales.size()) - 1; }
    index_t output_scale() const { return resize_output_to < 0 ? index_t(scales.size()) + resize_output_to : resize_output_to; }
    /// Tiles a side at scale i < last (the last scale's grid depends on the image).
    index_t per_side(index_t i) const { return scales[std::size_t(i)] / scales.front(); }

    /// Checks the settings (file: where they came from, for the message).
    void validate(const std::string& file) const {
        auto fail = [&](const std::string& why) { throw config_error(file + ": dynamic S2: " + why); };
        if (scales.empty()) fail("s2_scales is empty");
        for (std::size_t i = 0; i < scales.size(); ++i) {
            if (scales[i] <= 0 || scales[i] > 65536) fail("scale " + std::to_string(scales[i]) + " outside [1, 65536]");
            if (scales[i] % scales[0]) fail("scale " + std::to_string(scales[i]) + " is not a multiple of the first, " + std::to_string(scales[0]));
            if (i && scales[i] <= scales[i - 1]) fail("s2_scales must ascend");
        }
        const index_t min_tiles = per_side(last()) * per_side(last());
        if (max_tiles < min_tiles || max_tiles > 1024)
            fail("max_tiles " + std::to_string(max_tiles) + " must lie in [" + std::to_string(min_tiles) + " (the last scale's), 1024]");
        if (resize_output_to < -index_t(scales.size()) || resize_output_to >= index_t(scales.size()))
            fail("s2_resize_output_to_scale_idx " + std::to_string(resize_output_to) + " names no scale");
    }
};

/// How an image was tiled: rows x cols tiles at the last scale, or 0 x 0 for an untiled image.
struct tile_grid {
    index_t rows = 0, cols = 0;
    bool tiled() const noexcept { return rows > 0; }
};

/// VILA's find_closest_aspect_ratio over the grids of min..max tiles: {cols, rows}.
inline std::pair<index_t, index_t> closest_grid(index_t width, index_t height, index_t min_num, index_t max_num, index_t tile) {
    std::vector<std::pair<index_t, index_t>> ratios;  // (cols, rows), by tile count
    for (index_t n = min_num; n <= max_num; ++n)
        for (index_t i = 1; i <= n; ++i)
            if (n % i == 0) ratios.emplace_back(i, n / i);
    const double aspect = double(width) / double(height), area = double(width) * double(height);
    double best_diff = std::numeric_limits<double>::infinity();
    std::pair<index_t, index_t> best{1, 1};
    for (const auto& r : ratios) {
        const double diff = std::abs(aspect - double(r.first) / double(r.second));
        if (diff < best_diff) best_diff = diff, best = r;
        else if (diff == best_diff && area > 0.5 * double(tile) * double(tile) * double(r.first * r.second)) best = r;
    }
    return best;
}

namespace detail {
inline image crop(const image& in, index_t left, index_t top, index_t width, index_t height) {
    image out;
    out.width = width, out.height = height;
    out.rgb.resize(std::size_t(width * height * 3));
    for (index_t y = 0; y < height; ++y)
        std::copy(in.rgb.begin() + std::ptrdiff_t(((top + y) * in.width + left) * 3),
                  in.rgb.begin() + std::ptrdiff_t(((top + y) * in.width + left + width) * 3),
                  out.rgb.begin() + std::ptrdiff_t(y * width * 3));
    return out;
}
/// Appends the cols x rows tiles of `im` resized to (cols * t) x (rows * t), row by row.
inline void cut(const image& im, index_t cols, index_t rows, index_t t, std::uint64_t max_pixels, std::vector<image>& out) {
    const image resized = resize_bicubic(im, cols * t, rows * t, max_pixels);
    for (index_t i = 0; i < rows * cols; ++i) out.push_back(crop(resized, (i % cols) * t, (i / cols) * t, t, t));
}
}  // namespace detail

struct tiles {
    std::vector<image> images;
    tile_grid grid;
};

/// VILA's dynamic_s2_preprocess: every scale's tiles (PIL's bicubic resize, then crops).
inline tiles tile_image(const image& im, const dynamic_s2& s, std::uint64_t max_pixels = default_max_pixels) {
    if (im.width <= 0 || im.height <= 0) throw shape_error("vila::vision::tile_image: empty image");
    tiles out;
    const index_t t = s.tile();
    for (index_t i = 0; i < s.last(); ++i) detail::cut(im, s.per_side(i), s.per_side(i), t, max_pixels, out.images);
    const index_t min_num = s.per_side(s.last()) * s.per_side(s.last());
    const auto [cols, rows] = closest_grid(im.width, im.height, min_num, s.max_tiles, t);
    detail::cut(im, cols, rows, t, max_pixels, out.images);
    out.grid = {rows, cols};
    return out;
}

/// Tiles an image contributes to the tower's batch.
inline index_t tile_count(const tile_grid& g, const dynamic_s2& s) {
    if (!g.tiled()) return 1;
    index_t n = g.rows * g.cols;
    for (index_t i = 0; i < s.last(); ++i) n += s.per_side(i) * s.per_side(i);
    return n;
}

/// Blocks (tiles of merged features) an image gives the projector: rows x cols.
inline tile_grid block_grid(const tile_grid& g, const dynamic_s2& s) {
    if (!g.tiled()) return {1, 1};
    if (s.output_scale() == s.last()) return g;
    return {s.per_side(s.output_scale()), s.per_side(s.output_scale())};
}

/// VILA's merge_features_for_dynamic_s2 + split_chessboard on host arrays.
/// Forward (src = tower features [tiles, g*g, C], dst = blocks [blocks, g*g, S*C]): each output
/// value is the average of its adaptive-pooling window (summed in float, then / kh / kw, as
/// PyTorch). Backward (src = d blocks, dst = d features, accumulated): the transpose.
template <class T>
void scale_merge(const std::vector<tile_grid>& grids, const dynamic_s2& s, index_t g, index_t C, index_t tiles_given, const T* src,
                 T* dst, bool backward) {
    const index_t S = index_t(s.scales.size()), width = S * C;
    index_t tile0 = 0, block0 = 0;
    for (const auto& grid : grids) {
        const index_t need = tile_count(grid, s);
        if (tile0 + need > tiles_given)
            throw shape_error("vila::vlm: the images' tile grids need more than the " + std::to_string(tiles_given) + " tiles given");
        const tile_grid out_blocks = block_grid(grid, s);
        const index_t OH = g * out_blocks.rows, OW = g * out_blocks.cols;
        index_t first = tile0;
        for (index_t sc = 0; sc < S; ++sc) {
            // this scale's feature map: mh x mw tiles (an untiled image: its one tile at every scale)
            const index_t mh = !grid.tiled() ? 1 : sc < s.last() ? s.per_side(sc) : grid.rows;
            const index_t mw = !grid.tiled() ? 1 : sc < s.last() ? s.per_side(sc) : grid.cols;
            const index_t IH = g * mh, IW = g * mw;
            auto in_at = [&](index_t y, index_t x) { return ((first + (y / g) * mw + x / g) * g * g + (y % g) * g + x % g) * C; };
            for (index_t oy = 0; oy < OH; ++oy) {
                const index_t hs = (oy * IH) / OH, he = ((oy + 1) * IH + OH - 1) / OH;  // adaptive pooling's window
                for (index_t ox = 0; ox < OW; ++ox) {
                    const index_t ws = (ox * IW) / OW, we = ((ox + 1) * IW + OW - 1) / OW;
                    const T kh = T(he - hs), kw = T(we - ws);
                    const index_t out = ((block0 + (oy / g) * out_blocks.cols + ox / g) * g * g + (oy % g) * g + ox % g) * width + sc * C;
                    for (index_t c = 0; c < C; ++c) {
                        if (!backward) {
                            T sum = T(0);
                            for (index_t y = hs; y < he; ++y)
                                for (index_t x = ws; x < we; ++x) sum += src[in_at(y, x) + c];
                            dst[out + c] = sum / kh / kw;
                        } else {
                            const T d = src[out + c] / kh / kw;
                            for (index_t y = hs; y < he; ++y)
                                for (index_t x = ws; x < we; ++x) dst[in_at(y, x) + c] += d;
                        }
                    }
                }
            }
            if (grid.tiled()) first += mh * mw;
        }
        tile0 += need;
        block0 += out_blocks.rows * out_blocks.cols;
    }
    if (tile0 != tiles_given)
        throw shape_error("vila::vlm: the images' tile grids account for " + std::to_string(tile0) + " tiles but " +
                          std::to_string(tiles_given) + " were given");
}

/// Blocks all images give the projector.
inline index_t block_count(const std::vector<tile_grid>& grids, const dynamic_s2& s) {
    index_t n = 0;
    for (const auto& g : grids) {
        const tile_grid b = block_grid(g, s);
        n += b.rows * b.cols;
    }
    return n;
}

}  // namespace vila::vision
