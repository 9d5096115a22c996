// vila/tokenizer/decoders.hpp — tokenizer.json "decoder" components.
//
// A decoder maps the list of token strings to a list of strings that are then concatenated
// (HF's decode_chain). Supported types: ByteLevel, Metaspace, Replace, ByteFallback, Fuse,
// Strip, BPEDecoder, Sequence. Invalid UTF-8 follows the reference: ByteLevel decodes with
// from_utf8_lossy (one U+FFFD per maximal invalid subsequence); ByteFallback turns every byte of
// an invalid run of <0xNN> tokens into its own U+FFFD.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "byte_level.hpp"
#include "json_fields.hpp"
#include "normalizers.hpp"
#include "unicode.hpp"

namespace vila::tokenizer {

using token_strings = std::vector<std::string>;

class decoder {
public:
    virtual ~decoder() = default;
    virtual token_strings decode_chain(token_strings tokens) const = 0;
};

namespace decoders {

class byte_level_dec final : public decoder {
public:
    token_strings decode_chain(token_strings tokens) const override {
        std::string bytes;
        for (const auto& t : tokens) {
            std::string tb;
            bool all = true;
            for (std::size_t i = 0; i < t.size() && all;) {
                const int b = byte_level::char_to_byte(unicode::next_codepoint(t, i));
                if (b < 0) all = false;
                else tb += char(b);
            }
            bytes += all ? tb : t;  // a token with a non-byte character keeps its own UTF-8
        }
        return {unicode::utf8_lossy(bytes)};
    }
};

class metaspace_dec final : public decoder {
public:
    metaspace_dec(std::string replacement, bool strip_first) : replacement_(std::move(replacement)), strip_first_(strip_first) {}
    token_strings decode_chain(token_strings tokens) const override {
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            std::string out;
            const std::string& t = tokens[i];
            for (std::size_t k = 0; k < t.size();) {
                if (t.compare(k, replacement_.size(), replacement_) == 0) out += ' ', k += replacement_.size();
                else out += t[k++];
            }
            if (i == 0 && strip_first_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
            tokens[i] = out;
        }
        return tokens;
    }

private:
    std::string replacement_;
    bool strip_first_;
};

class replace_dec final : public decoder {
public:
    explicit replace_dec(std::unique_ptr<normalizers::replace> r) : r_(std::move(r)) {}
    token_strings decode_chain(token_strings tokens) const override {
        for (auto& t : tokens) t = r_->apply(t);
        return tokens;
    }

private:
    std::unique_ptr<normalizers::replace> r_;
};

class byte_fallback_dec final : public decoder {
public:
    token_strings decode_chain(token_strings tokens) const override {
        token_strings out;
        std::string run;
        std::size_t run_len = 0;
        auto flush = [&] {
            if (!run_len) return;
            if (unicode::is_valid_utf8(run)) out.push_back(run);
            else
                for (std::size_t k = 0; k < run_len; ++k) out.push_back(unicode::to_utf8(unicode::replacement_char));
            run.clear();
            run_len = 0;
        };
        for (auto& t : tokens) {
            int b = -1;
            if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
                b = hex(t[3]) * 16 + hex(t[4]);
                if (hex(t[3]) < 0 || hex(t[4]) < 0) b = -1;
            }
            if (b >= 0) {
                run += char(b);
                ++run_len;
            } else {
                flush();
                out.push_back(std::move(t));
            }
        }
        flush();
        return out;
    }

private:
    static int hex(char c) {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    }
};

class fuse_dec final : public decoder {
public:
    token_strings decode_chain(token_strings tokens) const override {
        std::string all;
        for (const auto& t : tokens) all += t;
        return {all};
    }
};

/// Removes up to `start` leading and `stop` trailing copies of `content` from each token.
class strip_dec final : public decoder {
public:
    strip_dec(std::string content, std::size_t start, std::size_t stop) : content_(unicode::decode_utf8(content)), start_(start), stop_(stop) {}
    token_strings decode_chain(token_strings tokens) const override {
        if (content_.size() != 1) return tokens;
        const unicode::codepoint c = content_[0];
        for (auto& t : tokens) {
            auto cps = unicode::decode_utf8(t);
            std::size_t a = 0, b = cps.size();
            for (std::size_t k = 0; k < start_ && a < b && cps[a] == c; ++k) ++a;
            for (std::size_t k = 0; k < stop_ && b > a && cps[b - 1] == c; ++k) --b;
            t = unicode::encode_utf8(std::vector<unicode::codepoint>(cps.begin() + std::ptrdiff_t(a), cps.begin() + std::ptrdiff_t(b)));
        }
        return tokens;
    }

private:
    std::vector<unicode::codepoint> content_;
    std::size_t start_, stop_;
};

/// Original BPE end-of-word suffix decoder: the suffix becomes a space (none after the last).
class bpe_dec final : public decoder {
public:
    explicit bpe_dec(std::string suffix) : suffix_(std::move(suffix)) {}
    token_strings decode_chain(token_strings tokens) const override {
        for (std::size_t i = 0; i < tokens.size(); ++i) {
            std::string& t = tokens[i];
            const std::string rep = i + 1 == tokens.size() ? "" : " ";
            for (std::size_t k; !suffix_.empty() && (k = t.find(suffix_)) != std::string::npos;) t.replace(k, suffix_.size(), rep);
        }
        return tokens;
    }

private:
    std::string suffix_;
};

class sequence_dec final : public decoder {
public:
    explicit sequence_dec(std::vector<std::unique_ptr<decoder>> parts) : parts_(std::move(parts)) {}
    token_strings decode_chain(token_strings tokens) const override {
        for (const auto& p : parts_) tokens = p->decode_chain(std::move(tokens));
        return tokens;
    }

private:
    std::vector<std::unique_ptr<decoder>> parts_;
};

}  // namespace decoders

inline std::unique_ptr<decoder> make_decoder(const detail::field& f) {
    using namespace decoders;
    if (f.value.is_null()) return nullptr;
    const std::string t = f.type();
    if (t == "Sequence") {
        std::vector<std::unique_ptr<decoder>> parts;
        const auto list = f.at("decoders");
        for (std::size_t i = 0; i < list.array().size(); ++i) parts.push_back(make_decoder(list.item(i)));
        return std::make_unique<sequence_dec>(std::move(parts));
    }
    if (t == "ByteLevel") return std::make_unique<byte_level_dec>();
    if (t == "Metaspace") {
        bool strip = true;
        if (f.has("prepend_scheme")) strip = f.at("prepend_scheme").str() != "never";
        else if (f.has("add_prefix_space")) strip = f.at("add_prefix_space").boolean();
        return std::make_unique<metaspace_dec>(f.str_or("replacement", "\u2581"), strip);
    }
    if (t == "Replace") {
        auto pat = detail::parse_pattern(f.at("pattern"));
        return std::make_unique<replace_dec>(
            std::make_unique<normalizers::replace>(std::move(pat.first), std::move(pat.second), f.at("content").str()));
    }
    if (t == "ByteFallback") return std::make_unique<byte_fallback_dec>();
    if (t == "Fuse") return std::make_unique<fuse_dec>();
    if (t == "Strip")
        return std::make_unique<strip_dec>(f.at("content").str(), std::size_t(f.at("start").integer_in(0, INT32_MAX)),
                                           std::size_t(f.at("stop").integer_in(0, INT32_MAX)));
    if (t == "BPEDecoder") return std::make_unique<bpe_dec>(f.str_or("suffix", "</w>"));
    f.at("type").fail("unknown decoder type '" + t + "'");
}

}  // namespace vila::tokenizer
