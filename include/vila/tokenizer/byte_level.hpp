// vila/tokenizer/byte_level.hpp — GPT-2's reversible byte <-> printable character map.
//
// Byte-level BPE works on bytes shown as characters: the printable bytes 33-126, 161-172 and
// 174-255 stand for themselves, the other 68 bytes map to U+0100 onwards in order. So every
// byte sequence, valid UTF-8 or not, has a printable spelling (space is 'Ġ' = U+0120).
#pragma once
#include <array>
#include <string>
#include <string_view>
#include <unordered_map>

#include "unicode.hpp"

namespace vila::tokenizer::byte_level {

/// byte -> code point of its printable stand-in.
inline const std::array<unicode::codepoint, 256>& byte_to_char() {
    static const auto table = [] {
        std::array<unicode::codepoint, 256> t{};
        unicode::codepoint next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            t[std::size_t(b)] = printable ? unicode::codepoint(b) : next++;
        }
        return t;
    }();
    return table;
}

/// byte -> UTF-8 of its stand-in (precomputed for the encoder's hot loop).
inline const std::array<std::string, 256>& byte_to_utf8() {
    static const auto table = [] {
        std::array<std::string, 256> t;
        for (int b = 0; b < 256; ++b) t[std::size_t(b)] = unicode::to_utf8(byte_to_char()[std::size_t(b)]);
        return t;
    }();
    return table;
}

/// Stand-in code point -> byte, or -1 when the code point stands for no byte.
inline int char_to_byte(unicode::codepoint c) {
    static const auto table = [] {
        std::unordered_map<unicode::codepoint, int> m;
        for (int b = 0; b < 256; ++b) m[byte_to_char()[std::size_t(b)]] = b;
        return m;
    }();
    const auto it = table.find(c);
    return it == table.end() ? -1 : it->second;
}

/// Spells every byte of s with its stand-in.
inline std::string encode(std::string_view s) {
    std::string out;
    out.reserve(s.size() * 2);
    for (unsigned char b : s) out += byte_to_utf8()[b];
    return out;
}

/// GPT-2's built-in pre-tokenization pattern (ByteLevel with use_regex = true).
inline constexpr const char* gpt2_pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

}  // namespace vila::tokenizer::byte_level
