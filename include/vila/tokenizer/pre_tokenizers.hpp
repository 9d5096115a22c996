// vila/tokenizer/pre_tokenizers.hpp — tokenizer.json "pre_tokenizer" components.
//
// A pre-tokenizer cuts a normalized segment into pieces ("words") that BPE encodes one by one.
// Supported types: Split (String or Regex, all five behaviours, invert), ByteLevel (with GPT-2's
// regex when use_regex), Metaspace (prepend_scheme always | first | never, split), Digits,
// Whitespace, WhitespaceSplit, Sequence.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "byte_level.hpp"
#include "json_fields.hpp"
#include "normalizers.hpp"
#include "regex.hpp"
#include "unicode.hpp"

namespace vila::tokenizer {

using pieces_t = std::vector<std::string>;

class pre_tokenizer {
public:
    virtual ~pre_tokenizer() = default;
    /// `first_segment`: the pieces come from the first text segment of the input (Metaspace "first").
    virtual void split(pieces_t& pieces, bool first_segment) const = 0;
};

namespace pre_tokenizers {

enum class split_behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

/// Applies a behaviour to a piece given its (sorted, disjoint) delimiter spans in code points.
inline void apply_behavior(const std::vector<unicode::codepoint>& cps,
                           const std::vector<std::pair<std::size_t, std::size_t>>& spans, bool invert,
                           split_behavior behavior, pieces_t& out) {
    // (start, end, is_delimiter) runs covering the whole piece
    struct run {
        std::size_t a, b;
        bool delim;
    };
    std::vector<run> runs;
    std::size_t pos = 0;
    for (const auto& [a, b] : spans) {
        if (a > pos) runs.push_back({pos, a, invert});
        runs.push_back({a, b, !invert});
        pos = b;
    }
    if (pos < cps.size()) runs.push_back({pos, cps.size(), invert});
    auto text = [&](std::size_t a, std::size_t b) {
        return unicode::encode_utf8(std::vector<unicode::codepoint>(cps.begin() + std::ptrdiff_t(a), cps.begin() + std::ptrdiff_t(b)));
    };
    std::vector<std::pair<std::size_t, std::size_t>> result;
    switch (behavior) {
        case split_behavior::removed:
            for (const auto& r : runs)
                if (!r.delim) result.emplace_back(r.a, r.b);
            break;
        case split_behavior::isolated:
            for (const auto& r : runs) result.emplace_back(r.a, r.b);
            break;
        case split_behavior::contiguous:  // adjacent delimiters form one piece
            for (std::size_t k = 0; k < runs.size(); ++k) {
                if (k > 0 && runs[k].delim && runs[k - 1].delim) result.back().second = runs[k].b;
                else result.emplace_back(runs[k].a, runs[k].b);
            }
            break;
        case split_behavior::merged_with_previous:
            for (const auto& r : runs) {
                if (r.delim && !result.empty()) result.back().second = r.b;
                else result.emplace_back(r.a, r.b);
            }
            break;
        case split_behavior::merged_with_next: {
            bool pending = false;
            for (const auto& r : runs) {
                if (pending) {
                    result.back().second = r.b;
                    pending = r.delim;
                    continue;
                }
                result.emplace_back(r.a, r.b);
                pending = r.delim;
            }
            break;
        }
    }
    for (const auto& [a, b] : result)
        if (b > a) out.push_back(text(a, b));
}

inline split_behavior parse_behavior(const detail::field& f) {
    const std::string b = f.str();
    if (b == "Removed") return split_behavior::removed;
    if (b == "Isolated") return split_behavior::isolated;
    if (b == "MergedWithPrevious") return split_behavior::merged_with_previous;
    if (b == "MergedWithNext") return split_behavior::merged_with_next;
    if (b == "Contiguous") return split_behavior::contiguous;
    f.fail("unknown split behavior '" + b + "'");
}

/// Split on a literal string or a regex.
class split_pattern final : public pre_tokenizer {
public:
    split_pattern(std::string literal, std::unique_ptr<regex> re, split_behavior behavior, bool invert)
        : literal_(unicode::decode_utf8(literal)), re_(std::move(re)), behavior_(behavior), invert_(invert) {}
    void split_one(const std::string& piece, pieces_t& out) const {
        const auto cps = unicode::decode_utf8(piece);
        std::vector<std::pair<std::size_t, std::size_t>> spans;
        if (re_) {
            spans = re_->find_all(cps);
        } else if (!literal_.empty()) {
            for (std::size_t i = 0; i + literal_.size() <= cps.size();) {
                if (std::equal(literal_.begin(), literal_.end(), cps.begin() + std::ptrdiff_t(i))) {
                    spans.emplace_back(i, i + literal_.size());
                    i += literal_.size();
                } else {
                    ++i;
                }
            }
        }
        apply_behavior(cps, spans, invert_, behavior_, out);
    }
    void split(pieces_t& pieces, bool) const override {
        pieces_t out;
        for (const auto& p : pieces) split_one(p, out);
        pieces.swap(out);
    }

private:
    std::vector<unicode::codepoint> literal_;
    std::unique_ptr<regex> re_;
    split_behavior behavior_;
    bool invert_;
};

/// Byte-level: optional leading space, optional GPT-2 regex split, then bytes -> stand-ins.
class byte_level_pre final : public pre_tokenizer {
public:
    byte_level_pre(bool add_prefix_space, bool use_regex)
        : add_prefix_space_(add_prefix_space),
          splitter_(use_regex ? std::make_unique<split_pattern>(std::string(), std::make_unique<regex>(byte_level::gpt2_pattern),
                                                              split_behavior::isolated, false)
                              : nullptr) {}
    void split(pieces_t& pieces, bool) const override {
        pieces_t out;
        for (auto& p : pieces) {
            if (add_prefix_space_ && (p.empty() || p[0] != ' ')) p.insert(0, " ");
            if (splitter_) splitter_->split_one(p, out);
            else out.push_back(p);
        }
        for (auto& p : out) p = byte_level::encode(p);
        pieces.swap(out);
    }

private:
    bool add_prefix_space_;
    std::unique_ptr<split_pattern> splitter_;
};

/// SentencePiece-style: spaces become the replacement character (default "▁").
class metaspace final : public pre_tokenizer {
public:
    enum class prepend_scheme { always, first, never };
    metaspace(std::string replacement, prepend_scheme scheme, bool split_words)
        : replacement_(std::move(replacement)), scheme_(scheme), split_(split_words) {}
    void split(pieces_t& pieces, bool first_segment) const override {
        pieces_t out;
        for (std::size_t i = 0; i < pieces.size(); ++i) {
            std::string p;
            for (char c : pieces[i]) {
                if (c == ' ') p += replacement_;
                else p += c;
            }
            const bool prepend = scheme_ == prepend_scheme::always || (scheme_ == prepend_scheme::first && first_segment && i == 0);
            if (prepend && p.compare(0, replacement_.size(), replacement_) != 0) p.insert(0, replacement_);
            if (!split_) {
                out.push_back(p);
                continue;
            }
            std::size_t start = 0;  // MergedWithNext on the replacement
            for (std::size_t k = replacement_.size(); k <= p.size(); ++k) {
                if (k == p.size() || p.compare(k, replacement_.size(), replacement_) == 0) {
                    if (k > start) out.push_back(p.substr(start, k - start));
                    start = k;
                    if (k == p.size()) break;
                }
            }
        }
        pieces.swap(out);
    }

private:
    std::string replacement_;
    prepend_scheme scheme_;
    bool split_;
};

/// Regex-driven pre-tokenizers with fixed patterns (Digits, Whitespace, WhitespaceSplit).
inline std::unique_ptr<pre_tokenizer> fixed_split(const char* pattern, split_behavior b, bool invert) {
    return std::make_unique<split_pattern>(std::string(), std::make_unique<regex>(pattern), b, invert);
}

class sequence final : public pre_tokenizer {
public:
    explicit sequence(std::vector<std::unique_ptr<pre_tokenizer>> parts) : parts_(std::move(parts)) {}
    void split(pieces_t& pieces, bool first_segment) const override {
        for (const auto& p : parts_) p->split(pieces, first_segment);
    }

private:
    std::vector<std::unique_ptr<pre_tokenizer>> parts_;
};

}  // namespace pre_tokenizers

inline std::unique_ptr<pre_tokenizer> make_pre_tokenizer(const detail::field& f) {
    using namespace pre_tokenizers;
    if (f.value.is_null()) return nullptr;
    const std::string t = f.type();
    if (t == "Sequence") {
        std::vector<std::unique_ptr<pre_tokenizer>> parts;
        const auto list = f.at("pretokenizers");
        for (std::size_t i = 0; i < list.array().size(); ++i) parts.push_back(make_pre_tokenizer(list.item(i)));
        return std::make_unique<sequence>(std::move(parts));
    }
    if (t == "Split") {
        auto pat = detail::parse_pattern(f.at("pattern"));
        return std::make_unique<split_pattern>(std::move(pat.first), std::move(pat.second), parse_behavior(f.at("behavior")),
                                       f.bool_or("invert", false));
    }
    if (t == "ByteLevel") return std::make_unique<byte_level_pre>(f.bool_or("add_prefix_space", true), f.bool_or("use_regex", true));
    if (t == "Metaspace") {
        auto scheme = metaspace::prepend_scheme::always;
        if (f.has("prepend_scheme")) {
            const std::string s = f.at("prepend_scheme").str();
            if (s == "first") scheme = metaspace::prepend_scheme::first;
            else if (s == "never") scheme = metaspace::prepend_scheme::never;
            else if (s != "always") f.at("prepend_scheme").fail("unknown prepend_scheme '" + s + "'");
        } else if (f.has("add_prefix_space") && !f.at("add_prefix_space").boolean()) {
            scheme = metaspace::prepend_scheme::never;  // older files
        }
        return std::make_unique<metaspace>(f.str_or("replacement", "\u2581"), scheme, f.bool_or("split", true));
    }
    if (t == "Digits")
        return fixed_split(R"(\p{N})", f.bool_or("individual_digits", false) ? split_behavior::isolated : split_behavior::contiguous,
                           false);
    if (t == "Whitespace") return fixed_split(R"(\w+|[^\w\s]+)", split_behavior::removed, true);
    if (t == "WhitespaceSplit") return fixed_split(R"(\s+)", split_behavior::removed, false);
    f.at("type").fail("unknown pre_tokenizer type '" + t + "'");
}

}  // namespace vila::tokenizer
