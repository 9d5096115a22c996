// vila/core/shape.hpp — shapes, and the checks that turn a wrong shape into vila::shape_error.
//
// A shape is a list of extents, outermost first (row-major, like PyTorch). An expected shape may
// contain `any` (-1) for an extent the check does not constrain.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "../error.hpp"

namespace vila {

using index_t = std::int64_t;
using shape_t = std::vector<index_t>;

/// Wildcard extent in an expected shape.
inline constexpr index_t any = -1;

/// "[2, 3, 4]"; wildcards print as "*".
inline std::string to_string(const shape_t& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (i) out += ", ";
        out += s[i] == any ? std::string("*") : std::to_string(s[i]);
    }
    return out + "]";
}

/// Number of elements (1 for a rank-0 shape).
inline index_t numel(const shape_t& s) {
    index_t n = 1;
    for (index_t e : s) n *= e;
    return n;
}

/// True when `actual` has the rank of `expected` and matches every non-wildcard extent.
inline bool shape_matches(const shape_t& actual, const shape_t& expected) {
    if (actual.size() != expected.size()) return false;
    for (std::size_t i = 0; i < actual.size(); ++i)
        if (expected[i] != any && expected[i] != actual[i]) return false;
    return true;
}

/// Throws shape_error "<where>: <what> has shape [..], expected [..]" unless the shapes match.
inline void check_shape(const char* where, const char* what, const shape_t& actual,
                        const shape_t& expected) {
    if (!shape_matches(actual, expected))
        throw shape_error(std::string(where) + ": " + what + " has shape " + to_string(actual) +
                          ", expected " + to_string(expected));
}

/// Throws shape_error naming both tensors and shapes when `cond` is false.
inline void check_shapes(bool cond, const char* where, const char* what_a, const shape_t& a,
                         const char* what_b, const shape_t& b, const char* why) {
    if (!cond)
        throw shape_error(std::string(where) + ": " + what_a + " " + to_string(a) + " and " +
                          what_b + " " + to_string(b) + " " + why);
}

/// Throws shape_error unless `s` has at least rank `r`.
inline void check_rank_at_least(const char* where, const char* what, const shape_t& s, std::size_t r) {
    if (s.size() < r)
        throw shape_error(std::string(where) + ": " + what + " has shape " + to_string(s) +
                          ", expected rank >= " + std::to_string(r));
}

/// The shape with its last extent replaced (e.g. [B, T, in] -> [B, T, out]).
inline shape_t with_last(shape_t s, index_t last) {
    if (s.empty()) s.push_back(last);
    else s.back() = last;
    return s;
}

}  // namespace vila
