// vila/vision/decode.hpp — image files to 8-bit RGB pixels, as PIL's Image.open(f).convert("RGB").
//
// Files come from the internet (MMC4, COYO, LLaVA sets), so every decoder treats them as hostile:
//   JPEG  libjpeg-turbo (the library Pillow decodes with: same IDCT and upsampling, so the same
//         pixels); CMYK/YCCK converted as Pillow does
//   PNG   libpng (maintained, fuzzed); palette, grey, alpha and 16-bit converted as Pillow does
//   GIF   giflib, the first frame
//   BMP, PNM (P5/P6)  small strict readers here: every size is checked against the bytes present
// Limits (docs/vision.md, "Limits"): the pixel count from the header must not exceed
// `max_pixels` (default PIL's decompression-bomb threshold, 89,478,485) before anything is
// allocated; truncated files are errors (as in PIL); a progressive JPEG may have at most
// 1,000 scans (libjpeg-turbo's advice against scan bombs). Output buffers grow with the rows
// actually decoded, so a tiny file that declares a large image fails before it costs memory.
//
// libjpeg and libpng report errors by longjmp. The functions that call setjmp hold only
// trivially destructible locals, so no C++ destructor is skipped; the callers own the buffers.
#pragma once
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gif_lib.h>
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "../core/shape.hpp"
#include "../error.hpp"

namespace vila::vision {

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (HWC).
struct image {
    index_t width = 0, height = 0;
    std::vector<std::uint8_t> rgb;  // width * height * 3
    std::uint8_t at(index_t y, index_t x, int c) const { return rgb[std::size_t((y * width + x) * 3 + c)]; }
};

inline constexpr std::uint64_t default_max_pixels = 89478485;  // PIL.Image.MAX_IMAGE_PIXELS
inline constexpr int max_jpeg_scans = 1000;

namespace detail {

inline void check_pixels(std::uint64_t w, std::uint64_t h, std::uint64_t max_pixels, const std::string& name) {
    if (w == 0 || h == 0) throw format_error(name + ": corrupt or truncated image (zero-sized, " + std::to_string(w) + "x" + std::to_string(h) + ")");
    if (w > std::uint64_t(INT32_MAX) || h > std::uint64_t(INT32_MAX) || w * h > max_pixels)
        throw format_error(name + ": " + std::to_string(w) + "x" + std::to_string(h) + " pixels exceed the limit of " +
                           std::to_string(max_pixels) + " (a decompression bomb?)");
}

/// Appends one decoded row of `channels`-channel 8-bit pixels as RGB: grey is replicated, a
/// fourth channel (alpha) or a grey image's second (alpha) is dropped, as convert("RGB").
inline void append_rgb(std::vector<std::uint8_t>& out, const std::uint8_t* row, std::size_t width, int channels) {
    const std::size_t at = out.size();
    out.resize(at + width * 3);
    std::uint8_t* o = out.data() + at;
    for (std::size_t x = 0; x < width; ++x, o += 3) {
        const std::uint8_t* p = row + x * std::size_t(channels);
        if (channels <= 2) o[0] = o[1] = o[2] = p[0];
        else o[0] = p[0], o[1] = p[1], o[2] = p[2];
    }
}

/// Pillow's MULDIV255 and cmyk2rgb (Convert.c): R = (255 - C)(255 - K) / 255, rounded.
inline std::uint8_t muldiv255(unsigned a, unsigned b) {
    const unsigned t = a * b + 128;
    return std::uint8_t(((t >> 8) + t) >> 8);
}

// --- JPEG (libjpeg-turbo) -------------------------------------------------------------------
struct jpeg_state {
    jpeg_decompress_struct cinfo{};
    jpeg_error_mgr err{};
    jpeg_progress_mgr progress{};
    std::jmp_buf jump{};
    char message[JMSG_LENGTH_MAX] = {};
    bool created = false;
    ~jpeg_state() {
        if (created) jpeg_destroy_decompress(&cinfo);
    }
};

inline jpeg_state* jpeg_owner(j_common_ptr c) {
    // `err` is the first member libjpeg points at; recover the enclosing state from it
    return reinterpret_cast<jpeg_state*>(reinterpret_cast<char*>(c->err) - offsetof(jpeg_state, err));
}
extern "C" inline void vila_jpeg_error_exit(j_common_ptr c) {
    jpeg_state* s = jpeg_owner(c);
    c->err->format_message(c, s->message);
    std::longjmp(s->jump, 1);
}
extern "C" inline void vila_jpeg_emit_message(j_common_ptr c, int level) {
    // Pillow ignores libjpeg's warnings except running out of data: a truncated file is an error
    if (level == -1 && c->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_state* s = jpeg_owner(c);
        std::snprintf(s->message, sizeof s->message, "truncated file (premature end of JPEG data)");
        std::longjmp(s->jump, 1);
    }
}
extern "C" inline void vila_jpeg_progress(j_common_ptr c) {
    if (!c->is_decompressor) return;
    const auto* d = reinterpret_cast<j_decompress_ptr>(c);
    if (d->inputctl && d->input_scan_number > max_jpeg_scans) {
        jpeg_state* s = jpeg_owner(c);
        std::snprintf(s->message, sizeof s->message, "more than %d progressive scans (a scan bomb?)", max_jpeg_scans);
        std::longjmp(s->jump, 1);
    }
}

/// Reads the header; returns false (message set) on error. Only trivial locals: see the top.
inline bool jpeg_read_header_guarded(jpeg_state* s, const unsigned char* data, std::size_t size) {
    if (setjmp(s->jump)) return false;
    s->cinfo.err = jpeg_std_error(&s->err);
    s->err.error_exit = vila_jpeg_error_exit;
    s->err.emit_message = vila_jpeg_emit_message;
    jpeg_create_decompress(&s->cinfo);
    s->created = true;
    s->progress.progress_monitor = vila_jpeg_progress;
    s->cinfo.progress = &s->progress;
    jpeg_mem_src(&s->cinfo, data, static_cast<unsigned long>(size));
    jpeg_read_header(&s->cinfo, TRUE);
    return true;
}

/// Decodes every row into `out` as RGB. `row` holds one scanline of the output colour space.
inline bool jpeg_decode_guarded(jpeg_state* s, std::vector<std::uint8_t>* out, std::vector<std::uint8_t>* row) {
    if (setjmp(s->jump)) return false;
    jpeg_decompress_struct& c = s->cinfo;
    const bool cmyk = c.jpeg_color_space == JCS_CMYK || c.jpeg_color_space == JCS_YCCK;
    c.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;  // grey and YCbCr to RGB as Pillow (ISLOW, fancy upsampling)
    c.dct_method = JDCT_ISLOW;
    c.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&c);
    row->resize(std::size_t(c.output_width) * std::size_t(c.output_components));
    while (c.output_scanline < c.output_height) {
        JSAMPROW r = row->data();
        jpeg_read_scanlines(&c, &r, 1);
        if (!cmyk) {
            append_rgb(*out, row->data(), c.output_width, c.output_components);
            continue;
        }
        // Adobe files store CMYK inverted (Pillow's "CMYK;I"); then Pillow's cmyk2rgb
        const bool inverted = c.saw_Adobe_marker;
        const std::size_t at = out->size();
        out->resize(at + std::size_t(c.output_width) * 3);
        for (std::size_t x = 0; x < c.output_width; ++x) {
            unsigned v[4];
            for (int k = 0; k < 4; ++k) v[k] = inverted ? 255u - (*row)[x * 4 + std::size_t(k)] : (*row)[x * 4 + std::size_t(k)];
            for (int k = 0; k < 3; ++k) (*out)[at + x * 3 + std::size_t(k)] = muldiv255(255u - v[k], 255u - v[3]);
        }
    }
    jpeg_finish_decompress(&c);
    return true;
}

inline image decode_jpeg(const unsigned char* data, std::size_t size, const std::string& name, std::uint64_t max_pixels) {
    jpeg_state s;
    if (!jpeg_read_header_guarded(&s, data, size)) throw format_error(name + ": corrupt or truncated image (JPEG: " + s.message + ")");
    check_pixels(s.cinfo.image_width, s.cinfo.image_height, max_pixels, name);
    image im;
    im.width = index_t(s.cinfo.image_width);
    im.height = index_t(s.cinfo.image_height);
    std::vector<std::uint8_t> row;
    if (!jpeg_decode_guarded(&s, &im.rgb, &row)) throw format_error(name + ": corrupt or truncated image (JPEG: " + s.message + ")");
    return im;
}

// --- PNG (libpng) ----------------------------------------------------------------------------
struct png_state {
    png_structp png = nullptr;
    png_infop info = nullptr;
    const unsigned char* data = nullptr;
    std::size_t size = 0, pos = 0;
    char message[256] = {};
    ~png_state() {
        if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    }
};

extern "C" inline void vila_png_error(png_structp p, png_const_charp msg) {
    auto* s = static_cast<png_state*>(png_get_error_ptr(p));
    std::snprintf(s->message, sizeof s->message, "%s", msg ? msg : "error");
    png_longjmp(p, 1);
}
extern "C" inline void vila_png_warning(png_structp, png_const_charp) {}
extern "C" inline void vila_png_read(png_structp p, png_bytep out, png_size_t n) {
    auto* s = static_cast<png_state*>(png_get_io_ptr(p));
    if (n > s->size - s->pos) png_error(p, "truncated file");
    std::memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

struct png_header {
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0, channels = 0;
    std::size_t rowbytes = 0;
};

/// Reads the header and sets up Pillow's conversions; false (message set) on error.
inline bool png_read_header_guarded(png_state* s, png_header* h) {
    if (setjmp(png_jmpbuf(s->png))) return false;
    png_set_read_fn(s->png, s, vila_png_read);
    png_set_user_limits(s->png, 0x7fffffffu, 0x7fffffffu);  // our pixel limit decides
    png_set_chunk_malloc_max(s->png, 64u << 20);              // ancillary chunks (iCCP, zTXt) stay small
    png_read_info(s->png, s->info);
    h->width = png_get_image_width(s->png, s->info);
    h->height = png_get_image_height(s->png, s->info);
    h->bit_depth = png_get_bit_depth(s->png, s->info);
    h->color_type = png_get_color_type(s->png, s->info);
    h->interlace = png_get_interlace_type(s->png, s->info);
    if (h->color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(s->png);  // Pillow: P -> RGB ignores tRNS
    if (h->color_type == PNG_COLOR_TYPE_GRAY && h->bit_depth < 8) png_set_expand_gray_1_2_4_to_8(s->png);
    // 16 bits: Pillow keeps the high byte ("RGB;16B", "LA;16B"), except 16-bit grey: mode I;16,
    // whose conversion to RGB clamps the value at 255. Read that one as 16-bit and clamp below.
    if (h->bit_depth == 16 && h->color_type != PNG_COLOR_TYPE_GRAY) png_set_strip_16(s->png);
    if (h->bit_depth == 16 && h->color_type == PNG_COLOR_TYPE_GRAY) png_set_swap(s->png);  // host order (little endian)
    if (h->interlace != PNG_INTERLACE_NONE) png_set_interlace_handling(s->png);
    png_read_update_info(s->png, s->info);
    h->channels = png_get_channels(s->png, s->info);
    h->rowbytes = png_get_rowbytes(s->png, s->info);
    return true;
}

/// Reads rows into `raw` (interlaced: the whole image; else one row at a time, converted as
/// they arrive). False (message set) on error.
inline bool png_decode_guarded(png_state* s, const png_header* h, std::vector<std::uint8_t>* raw,
                               std::vector<png_bytep>* rows, std::vector<std::uint8_t>* out) {
    if (setjmp(png_jmpbuf(s->png))) return false;
    const bool grey16 = h->bit_depth == 16 && h->color_type == PNG_COLOR_TYPE_GRAY;
    const auto emit = [](const png_header* hh, bool g16, const std::uint8_t* r, std::vector<std::uint8_t>* o) {
        if (!g16) return append_rgb(*o, r, hh->width, hh->channels);
        const std::size_t at = o->size();
        o->resize(at + std::size_t(hh->width) * 3);
        for (std::size_t x = 0; x < hh->width; ++x) {
            std::uint16_t v;
            std::memcpy(&v, r + 2 * x, 2);
            (*o)[at + 3 * x] = (*o)[at + 3 * x + 1] = (*o)[at + 3 * x + 2] = std::uint8_t(v > 255 ? 255 : v);
        }
    };
    if (h->interlace == PNG_INTERLACE_NONE) {
        raw->resize(h->rowbytes);
        for (png_uint_32 y = 0; y < h->height; ++y) {
            png_read_row(s->png, raw->data(), nullptr);
            emit(h, grey16, raw->data(), out);
        }
        return true;
    }
    raw->resize(h->rowbytes * h->height);  // Adam7 needs the whole image; bounded by the pixel limit
    rows->resize(h->height);
    for (png_uint_32 y = 0; y < h->height; ++y) (*rows)[y] = raw->data() + std::size_t(y) * h->rowbytes;
    png_read_image(s->png, rows->data());
    for (png_uint_32 y = 0; y < h->height; ++y) emit(h, grey16, (*rows)[y], out);
    return true;
}

inline image decode_png(const unsigned char* data, std::size_t size, const std::string& name, std::uint64_t max_pixels) {
    png_state s;
    s.data = data;
    s.size = size;
    s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s, vila_png_error, vila_png_warning);
    if (!s.png) throw error(name + ": libpng could not start");
    s.info = png_create_info_struct(s.png);
    if (!s.info) throw error(name + ": libpng could not start");
    png_header h;
    if (!png_read_header_guarded(&s, &h)) throw format_error(name + ": corrupt or truncated image (PNG: " + s.message + ")");
    check_pixels(h.width, h.height, max_pixels, name);
    image im;
    im.width = index_t(h.width);
    im.height = index_t(h.height);
    std::vector<std::uint8_t> raw;
    std::vector<png_bytep> rows;
    if (!png_decode_guarded(&s, &h, &raw, &rows, &im.rgb))
        throw format_error(name + ": corrupt or truncated image (PNG: " + s.message + ")");
    return im;
}

// --- GIF (giflib): the first frame, as Pillow's convert("RGB") of frame 0 -------------------
struct gif_source {
    const unsigned char* data;
    std::size_t size, pos;
};
extern "C" inline int vila_gif_read(GifFileType* g, GifByteType* out, int n) {
    auto* s = static_cast<gif_source*>(g->UserData);
    const std::size_t k = std::min<std::size_t>(std::size_t(n < 0 ? 0 : n), s->size - s->pos);
    std::memcpy(out, s->data + s->pos, k);
    s->pos += k;
    return int(k);
}

inline image decode_gif(const unsigned char* data, std::size_t size, const std::string& name, std::uint64_t max_pixels) {
    gif_source src{data, size, 0};
    int err = 0;
    struct closer {
        GifFileType* g;
        ~closer() {
            if (g) DGifCloseFile(g, nullptr);
        }
    } gif{DGifOpen(&src, vila_gif_read, &err)};
    const auto fail = [&](const char* what) {
        const int code = gif.g ? gif.g->Error : err;
        const char* why = GifErrorString(code);
        throw format_error(name + ": corrupt or truncated image (GIF " + what + (why ? std::string(": ") + why : std::string()) + ")");
    };
    if (!gif.g) fail("header");
    GifFileType* g = gif.g;
    check_pixels(std::uint64_t(std::max(g->SWidth, 0)), std::uint64_t(std::max(g->SHeight, 0)), max_pixels, name);
    for (;;) {  // skip extensions up to the first image
        GifRecordType rec;
        if (DGifGetRecordType(g, &rec) == GIF_ERROR) fail("record");
        if (rec == TERMINATE_RECORD_TYPE) throw format_error(name + ": corrupt or truncated image (GIF without a frame)");
        if (rec == EXTENSION_RECORD_TYPE) {
            int code = 0;
            GifByteType* ext = nullptr;
            if (DGifGetExtension(g, &code, &ext) == GIF_ERROR) fail("extension");
            while (ext)
                if (DGifGetExtensionNext(g, &ext) == GIF_ERROR) fail("extension");
            continue;
        }
        if (rec != IMAGE_DESC_RECORD_TYPE) continue;
        if (DGifGetImageDesc(g) == GIF_ERROR) fail("image descriptor");
        const GifImageDesc& d = g->Image;
        const ColorMapObject* map = d.ColorMap ? d.ColorMap : g->SColorMap;
        if (d.Width <= 0 || d.Height <= 0 || d.Left < 0 || d.Top < 0 || d.Left + d.Width > g->SWidth || d.Top + d.Height > g->SHeight)
            throw format_error(name + ": corrupt or truncated image (GIF frame " + std::to_string(d.Width) + "x" + std::to_string(d.Height) + " at (" +
                               std::to_string(d.Left) + ", " + std::to_string(d.Top) + ") outside the " + std::to_string(g->SWidth) +
                               "x" + std::to_string(g->SHeight) + " screen)");
        // Decode the frame's indices (interlaced frames arrive in four passes), then paint it
        // on a screen of the background colour's index.
        std::vector<GifPixelType> idx(std::size_t(g->SWidth) * std::size_t(g->SHeight), GifPixelType(g->SBackGroundColor));
        std::vector<GifPixelType> line(std::size_t(d.Width));
        auto put = [&](int y) {
            if (DGifGetLine(g, line.data(), d.Width) == GIF_ERROR) fail("pixels");
            std::copy(line.begin(), line.end(), idx.begin() + std::ptrdiff_t((std::size_t(d.Top + y) * std::size_t(g->SWidth)) + std::size_t(d.Left)));
        };
        if (d.Interlace) {
            const int start[4] = {0, 4, 2, 1}, step[4] = {8, 8, 4, 2};
            for (int p = 0; p < 4; ++p)
                for (int y = start[p]; y < d.Height; y += step[p]) put(y);
        } else {
            for (int y = 0; y < d.Height; ++y) put(y);
        }
        image im;
        im.width = g->SWidth;
        im.height = g->SHeight;
        im.rgb.resize(idx.size() * 3);
        for (std::size_t i = 0; i < idx.size(); ++i) {
            const int k = idx[i];
            if (map && k < map->ColorCount) {
                im.rgb[3 * i] = map->Colors[k].Red, im.rgb[3 * i + 1] = map->Colors[k].Green, im.rgb[3 * i + 2] = map->Colors[k].Blue;
            } else if (!map) {  // no palette: Pillow reads the indices as grey
                im.rgb[3 * i] = im.rgb[3 * i + 1] = im.rgb[3 * i + 2] = std::uint8_t(k);
            }  // an index past the palette is black, as Pillow's zero-padded palette
        }
        return im;
    }
}

// --- BMP and PNM: small strict readers -------------------------------------------------------
inline std::uint32_t le32(const unsigned char* p) { return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24; }
inline std::uint16_t le16(const unsigned char* p) { return std::uint16_t(p[0] | p[1] << 8); }

/// Uncompressed BMP (BITMAPINFOHEADER and its V4/V5 extensions): 1/4/8-bit palette, 24-bit,
/// 32-bit (the fourth byte ignored, as Pillow's BGRX). RLE and bit-field layouts are refused.
inline image decode_bmp(const unsigned char* data, std::size_t size, const std::string& name, std::uint64_t max_pixels) {
    const auto bad = [&](const std::string& why) { return format_error(name + ": corrupt or truncated image (BMP: " + why + ")"); };
    const auto unsupported = [&](const std::string& why) { return format_error(name + ": not a decodable image (BMP: " + why + ")"); };
    if (size < 14 + 40) throw bad("truncated BMP header");
    const std::uint32_t offset = le32(data + 10), hsize = le32(data + 14);
    if (hsize < 40 || hsize > 124 || 14 + std::size_t(hsize) > size) throw unsupported("header size " + std::to_string(hsize) + " (BITMAPINFOHEADER and its V4/V5 forms are read)");
    const auto w = std::int32_t(le32(data + 18)), hraw = std::int32_t(le32(data + 22));
    const int bpp = le16(data + 28);
    const std::uint32_t compression = le32(data + 30), colors_used = le32(data + 46);
    if (w <= 0 || hraw == 0 || hraw == INT32_MIN) throw bad("size " + std::to_string(w) + "x" + std::to_string(hraw));
    const bool top_down = hraw < 0;
    const std::uint64_t h = std::uint64_t(top_down ? -std::int64_t(hraw) : std::int64_t(hraw));
    check_pixels(std::uint64_t(w), h, max_pixels, name);
    if (compression != 0 && !(compression == 3 && bpp == 32 && hsize >= 52 && le32(data + 54) == 0xff0000u &&
                              le32(data + 58) == 0xff00u && le32(data + 62) == 0xffu))
        throw unsupported("compression " + std::to_string(compression) + " is not supported (uncompressed only)");
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 24 && bpp != 32) throw unsupported(std::to_string(bpp) + " bits per pixel are not supported");
    const std::size_t stride = ((std::size_t(w) * std::size_t(bpp) + 31) / 32) * 4;
    if (offset > size || stride * h > size - offset) throw bad("pixel data past the end of the " + std::to_string(size) + "-byte file");
    std::vector<std::uint8_t> palette;  // RGB triples
    if (bpp <= 8) {
        const std::size_t n = colors_used ? colors_used : (std::size_t(1) << bpp);
        const std::size_t at = 14 + hsize;
        if (n > 256 || at + 4 * n > offset) throw bad("a palette of " + std::to_string(n) + " colours does not fit before the pixels");
        for (std::size_t i = 0; i < n; ++i) palette.insert(palette.end(), {data[at + 4 * i + 2], data[at + 4 * i + 1], data[at + 4 * i]});
    }
    image im;
    im.width = w;
    im.height = index_t(h);
    im.rgb.resize(std::size_t(w) * h * 3);
    for (std::uint64_t y = 0; y < h; ++y) {
        const unsigned char* row = data + offset + stride * (top_down ? y : h - 1 - y);
        std::uint8_t* o = im.rgb.data() + y * std::size_t(w) * 3;
        for (std::size_t x = 0; x < std::size_t(w); ++x, o += 3) {
            if (bpp >= 24) {
                const unsigned char* p = row + x * std::size_t(bpp / 8);
                o[0] = p[2], o[1] = p[1], o[2] = p[0];
                continue;
            }
            const std::size_t bit = x * std::size_t(bpp);
            const unsigned k = (row[bit / 8] >> (8 - bpp - int(bit % 8))) & ((1u << bpp) - 1);
            if (3 * std::size_t(k) + 2 < palette.size()) o[0] = palette[3 * k], o[1] = palette[3 * k + 1], o[2] = palette[3 * k + 2];
            else o[0] = o[1] = o[2] = 0;
        }
    }
    return im;
}

/// Binary PNM: P5 (grey) and P6 (RGB), maxval 255.
inline image decode_pnm(const unsigned char* data, std::size_t size, const std::string& name, std::uint64_t max_pixels) {
    std::size_t pos = 2;
    const auto number = [&](const char* what) {
        for (;;) {  // whitespace and comments
            while (pos < size && std::strchr(" \t\r\n", data[pos]) && data[pos]) ++pos;
            if (pos < size && data[pos] == '#')
                while (pos < size && data[pos] != '\n') ++pos;
            else break;
        }
        std::uint64_t v = 0;
        std::size_t digits = 0;
        while (pos < size && data[pos] >= '0' && data[pos] <= '9') {
            if (++digits > 9) throw format_error(name + ": corrupt or truncated image (PNM " + what + " too large)");
            v = v * 10 + std::uint64_t(data[pos++] - '0');
        }
        if (digits == 0) throw format_error(name + ": corrupt or truncated image (PNM " + what + " missing)");
        return v;
    };
    const char kind = char(data[1]);
    if (kind != '5' && kind != '6') throw format_error(name + ": not a decodable image (PNM P" + std::string(1, kind) + " is not supported: binary P5, P6)");
    const std::uint64_t w = number("width"), h = number("height"), maxval = number("maxval");
    if (maxval != 255) throw format_error(name + ": not a decodable image (PNM maxval " + std::to_string(maxval) + " is not supported: 255)");
    check_pixels(w, h, max_pixels, name);
    ++pos;  // one whitespace byte ends the header
    const int channels = kind == '6' ? 3 : 1;
    if (pos > size || (size - pos) / std::size_t(channels) / w < h) throw format_error(name + ": corrupt or truncated image (PNM pixel data past the end of the file)");
    image im;
    im.width = index_t(w);
    im.height = index_t(h);
    for (std::uint64_t y = 0; y < h; ++y) append_rgb(im.rgb, data + pos + y * w * std::size_t(channels), w, channels);
    return im;
}

}  // namespace detail

/// Decodes an encoded image held in memory (a tar member, a base64 field) to RGB; `name` says
/// where it came from in errors. The format is recognised from the first bytes, not the name.
inline image decode_image(const unsigned char* data, std::size_t size, const std::string& name,
                          std::uint64_t max_pixels = default_max_pixels) {
    if (size == 0) throw format_error(name + ": empty image file");
    const auto starts = [&](const char* magic, std::size_t n) { return size >= n && std::memcmp(data, magic, n) == 0; };
    if (starts("\xFF\xD8\xFF", 3)) return detail::decode_jpeg(data, size, name, max_pixels);
    if (starts("\x89PNG\r\n\x1a\n", 8)) return detail::decode_png(data, size, name, max_pixels);
    if (starts("GIF87a", 6) || starts("GIF89a", 6)) return detail::decode_gif(data, size, name, max_pixels);
    if (starts("BM", 2)) return detail::decode_bmp(data, size, name, max_pixels);
    if (size >= 2 && data[0] == 'P' && data[1] >= '1' && data[1] <= '7') return detail::decode_pnm(data, size, name, max_pixels);
    if (size >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0)
        throw format_error(name + ": not a decodable image (WebP is not supported: JPEG, PNG, GIF, BMP, PNM)");
    throw format_error(name + ": not a decodable image (JPEG, PNG, GIF, BMP or PNM expected)");
}

/// Decodes an image file to RGB.
inline image load_image(const std::filesystem::path& path, std::uint64_t max_pixels = default_max_pixels) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error("cannot open image " + path.string());
    const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), {});
    if (in.bad()) throw io_error("cannot read image " + path.string());
    return decode_image(bytes.data(), bytes.size(), path.string(), max_pixels);
}

}  // namespace vila::vision
