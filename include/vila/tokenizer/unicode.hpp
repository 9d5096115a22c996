// vila/tokenizer/unicode.hpp — UTF-8, code point properties and normalization forms.
//
// Everything the tokenizers need from Unicode, from tables generated out of the Unicode
// Character Database (unicode_tables.hpp, cmake/gen_unicode_tables.py):
//   utf8 decode/encode (invalid bytes decode to U+FFFD, one per maximal invalid subsequence,
//   as Rust's String::from_utf8_lossy does), general category, White_Space, simple case
//   folding, full lowercase, and NFC / NFD / NFKC / NFKD (UAX #15, Hangul algorithmic).
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "unicode_tables.hpp"

namespace vila::tokenizer::unicode {

using codepoint = char32_t;
using unicode_data::general_category;
inline constexpr codepoint replacement_char = 0xFFFD;

/// Appends the UTF-8 encoding of cp (surrogates and out-of-range values become U+FFFD).
inline void append_utf8(std::string& out, codepoint cp) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = replacement_char;
    if (cp < 0x80) {
        out += char(cp);
    } else if (cp < 0x800) {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += char(0xE0 | (cp >> 12));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    } else {
        out += char(0xF0 | (cp >> 18));
        out += char(0x80 | ((cp >> 12) & 0x3F));
        out += char(0x80 | ((cp >> 6) & 0x3F));
        out += char(0x80 | (cp & 0x3F));
    }
}

inline std::string to_utf8(codepoint cp) {
    std::string s;
    append_utf8(s, cp);
    return s;
}

/// Decodes the code point at s[i], advancing i. Returns U+FFFD for an invalid sequence and
/// consumes its maximal invalid prefix (WHATWG / Rust from_utf8_lossy convention); `ok` says
/// whether the sequence was valid.
inline codepoint next_codepoint(std::string_view s, std::size_t& i, bool* ok = nullptr) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (ok) *ok = true;
    if (c < 0x80) {
        ++i;
        return c;
    }
    int need;
    codepoint cp;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2, cp = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3, cp = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        ++i;
        if (ok) *ok = false;
        return replacement_char;
    }
    std::size_t j = i + 1;
    for (int k = 0; k < need; ++k, ++j) {
        if (j >= s.size() || b(j) < lo || b(j) > hi) {
            i = j;  // the maximal invalid prefix
            if (ok) *ok = false;
            return replacement_char;
        }
        cp = (cp << 6) | (b(j) & 0x3F);
        lo = 0x80, hi = 0xBF;
    }
    i = j;
    return cp;
}

inline std::vector<codepoint> decode_utf8(std::string_view s) {
    std::vector<codepoint> out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) out.push_back(next_codepoint(s, i));
    return out;
}

inline std::string encode_utf8(const std::vector<codepoint>& cps) {
    std::string s;
    s.reserve(cps.size());
    for (codepoint c : cps) append_utf8(s, c);
    return s;
}

/// Rust's String::from_utf8_lossy: valid text unchanged, each maximal invalid subsequence -> U+FFFD.
inline std::string utf8_lossy(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t start = i;
        bool ok;
        const codepoint cp = next_codepoint(s, i, &ok);
        if (ok) out.append(s.substr(start, i - start));
        else append_utf8(out, cp);
    }
    return out;
}

inline bool is_valid_utf8(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        bool ok;
        next_codepoint(s, i, &ok);
        if (!ok) return false;
    }
    return true;
}

// --- properties ----------------------------------------------------------------------------

inline general_category category(codepoint cp) {
    const auto& runs = unicode_data::category_runs;
    const auto* it = std::upper_bound(std::begin(runs), std::end(runs), std::uint32_t(cp),
                                      [](std::uint32_t v, const unicode_data::category_run& r) { return v < r.first; });
    return static_cast<general_category>((it - 1)->category);
}

inline bool is_letter(codepoint cp) {  // \p{L}
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    const auto c = category(cp);
    return c >= general_category::Lu && c <= general_category::Lo;
}
inline bool is_mark(codepoint cp) {  // \p{M}
    const auto c = category(cp);
    return c >= general_category::Mn && c <= general_category::Me;
}
inline bool is_number(codepoint cp) {  // \p{N}
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    const auto c = category(cp);
    return c >= general_category::Nd && c <= general_category::No;
}
inline bool is_white_space(codepoint cp) {  // \s: the White_Space property
    if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20;
    for (const auto& r : unicode_data::white_space)
        if (cp >= r.first && cp <= r.last) return true;
    return false;
}

/// Simple case folding (CaseFolding.txt, statuses C and S).
inline codepoint simple_fold(codepoint cp) {
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    const auto& t = unicode_data::simple_case_fold;
    const auto* it = std::lower_bound(std::begin(t), std::end(t), std::uint32_t(cp),
                                      [](const unicode_data::fold_entry& e, std::uint32_t v) { return e.cp < v; });
    return (it != std::end(t) && it->cp == cp) ? codepoint(it->folded) : cp;
}

namespace detail {
template <std::size_t N>
const unicode_data::mapping_entry* find_mapping(const unicode_data::mapping_entry (&t)[N], codepoint cp) {
    const auto* it = std::lower_bound(std::begin(t), std::end(t), std::uint32_t(cp),
                                      [](const unicode_data::mapping_entry& e, std::uint32_t v) { return e.cp < v; });
    return (it != std::end(t) && it->cp == cp) ? it : nullptr;
}
}  // namespace detail

/// Full lowercase mapping of one code point (char::to_lowercase: may give several).
inline void append_lowercase(std::vector<codepoint>& out, codepoint cp) {
    if (cp < 0x80) {
        out.push_back((cp >= 'A' && cp <= 'Z') ? cp + 32 : cp);
        return;
    }
    if (const auto* e = detail::find_mapping(unicode_data::lowercase, cp)) {
        for (std::uint32_t k = 0; k < e->length; ++k) out.push_back(unicode_data::lowercase_pool[e->offset + k]);
    } else {
        out.push_back(cp);
    }
}

inline std::uint8_t combining_class(codepoint cp) {
    if (cp < 0x300) return 0;
    const auto& t = unicode_data::combining_classes;
    const auto* it = std::upper_bound(std::begin(t), std::end(t), std::uint32_t(cp),
                                      [](std::uint32_t v, const unicode_data::class_run& r) { return v < r.first; });
    if (it == std::begin(t)) return 0;
    --it;
    return cp <= it->last ? it->ccc : 0;
}

// --- normalization forms (UAX #15) -----------------------------------------------------------

enum class normal_form { nfc, nfd, nfkc, nfkd };

namespace detail {
constexpr codepoint hangul_s = 0xAC00, hangul_l = 0x1100, hangul_v = 0x1161, hangul_t = 0x11A7;
constexpr codepoint hangul_lcount = 19, hangul_vcount = 21, hangul_tcount = 28;
constexpr codepoint hangul_ncount = hangul_vcount * hangul_tcount, hangul_scount = hangul_lcount * hangul_ncount;

inline void decompose(codepoint cp, bool compat, std::vector<codepoint>& out) {
    if (cp >= hangul_s && cp < hangul_s + hangul_scount) {
        const codepoint s = cp - hangul_s;
        out.push_back(hangul_l + s / hangul_ncount);
        out.push_back(hangul_v + (s % hangul_ncount) / hangul_tcount);
        if (s % hangul_tcount) out.push_back(hangul_t + s % hangul_tcount);
        return;
    }
    if (cp < 0xA0) {
        out.push_back(cp);
        return;
    }
    const unicode_data::mapping_entry* e = nullptr;
    const std::uint32_t* pool = nullptr;
    if (compat && (e = find_mapping(unicode_data::compatibility_decomposition, cp)))
        pool = unicode_data::compatibility_decomposition_pool;
    else if ((e = find_mapping(unicode_data::canonical_decomposition, cp)))
        pool = unicode_data::canonical_decomposition_pool;
    if (!e) {
        out.push_back(cp);
        return;
    }
    for (std::uint32_t k = 0; k < e->length; ++k) out.push_back(pool[e->offset + k]);
}

inline codepoint compose_pair(codepoint a, codepoint b) {
    if (a >= hangul_l && a < hangul_l + hangul_lcount && b >= hangul_v && b < hangul_v + hangul_vcount)
        return hangul_s + ((a - hangul_l) * hangul_vcount + (b - hangul_v)) * hangul_tcount;
    if (a >= hangul_s && a < hangul_s + hangul_scount && (a - hangul_s) % hangul_tcount == 0 && b > hangul_t &&
        b < hangul_t + hangul_tcount)
        return a + (b - hangul_t);
    const auto& t = unicode_data::composition_pairs;
    const auto* it = std::lower_bound(std::begin(t), std::end(t), std::make_pair(std::uint32_t(a), std::uint32_t(b)),
                                      [](const unicode_data::pair_entry& e, const std::pair<std::uint32_t, std::uint32_t>& v) {
                                          return e.first < v.first || (e.first == v.first && e.second < v.second);
                                      });
    return (it != std::end(t) && it->first == a && it->second == b) ? codepoint(it->composite) : 0;
}
}  // namespace detail

/// Normalizes code points to the given form.
inline std::vector<codepoint> normalize(const std::vector<codepoint>& in, normal_form form) {
    const bool compat = form == normal_form::nfkc || form == normal_form::nfkd;
    std::vector<codepoint> d;
    d.reserve(in.size());
    for (codepoint c : in) detail::decompose(c, compat, d);
    // canonical ordering: stable sort of each run of non-starters by combining class
    for (std::size_t i = 0; i < d.size();) {
        if (combining_class(d[i]) == 0) {
            ++i;
            continue;
        }
        std::size_t j = i;
        while (j < d.size() && combining_class(d[j]) != 0) ++j;
        std::stable_sort(d.begin() + std::ptrdiff_t(i), d.begin() + std::ptrdiff_t(j),
                         [](codepoint a, codepoint b) { return combining_class(a) < combining_class(b); });
        i = j;
    }
    if (form == normal_form::nfd || form == normal_form::nfkd) return d;
    // canonical composition
    std::vector<codepoint> out;
    out.reserve(d.size());
    std::ptrdiff_t starter = -1;
    int last_class = -1;  // class of the last character appended after the starter
    for (codepoint c : d) {
        const int cc = combining_class(c);
        bool composed = false;
        if (starter >= 0) {
            // blocked when a character between the starter and c has class 0 or >= c's class
            const bool blocked = last_class != -1 && (last_class == 0 || last_class >= cc);
            if (!blocked) {
                if (const codepoint comp = detail::compose_pair(out[std::size_t(starter)], c)) {
                    out[std::size_t(starter)] = comp;
                    composed = true;
                }
            }
        }
        if (composed) continue;
        if (cc == 0) {
            starter = std::ptrdiff_t(out.size());
            last_class = -1;
        } else {
            last_class = cc;
        }
        out.push_back(c);
    }
    return out;
}

inline std::string normalize(std::string_view s, normal_form form) {
    // Fast path: ASCII is invariant under every form.
    if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; }))
        return std::string(s);
    return encode_utf8(normalize(decode_utf8(s), form));
}

}  // namespace vila::tokenizer::unicode
