// vila/tokenizer/normalizers.hpp — tokenizer.json "normalizer" components.
//
// Supported types: Sequence, Prepend, Replace (String or Regex pattern), NFC, NFD, NFKC, NFKD,
// Lowercase, Strip. A normalizer rewrites each text segment between added tokens.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "json_fields.hpp"
#include "regex.hpp"
#include "unicode.hpp"

namespace vila::tokenizer {

class normalizer {
public:
    virtual ~normalizer() = default;
    virtual void normalize(std::string& s) const = 0;
};

namespace normalizers {

class sequence final : public normalizer {
public:
    explicit sequence(std::vector<std::unique_ptr<normalizer>> parts) : parts_(std::move(parts)) {}
    void normalize(std::string& s) const override {
        for (const auto& p : parts_) p->normalize(s);
    }

private:
    std::vector<std::unique_ptr<normalizer>> parts_;
};

/// Prepends a string to non-empty text (SentencePiece's leading "▁").
class prepend final : public normalizer {
public:
    explicit prepend(std::string p) : prefix_(std::move(p)) {}
    void normalize(std::string& s) const override {
        if (!s.empty()) s.insert(0, prefix_);
    }

private:
    std::string prefix_;
};

/// Replaces every match of a literal string or a regex.
class replace final : public normalizer {
public:
    replace(std::string literal, std::unique_ptr<regex> re, std::string content)
        : literal_(std::move(literal)), re_(std::move(re)), content_(std::move(content)) {}
    void normalize(std::string& s) const override { s = apply(s); }
    std::string apply(const std::string& s) const {
        if (!re_) {
            if (literal_.empty()) return s;
            std::string out;
            out.reserve(s.size());
            std::size_t pos = 0;
            for (std::size_t hit; (hit = s.find(literal_, pos)) != std::string::npos; pos = hit + literal_.size())
                out.append(s, pos, hit - pos).append(content_);
            return out.append(s, pos, std::string::npos);
        }
        const auto cps = unicode::decode_utf8(s);
        std::vector<unicode::codepoint> out;
        std::size_t pos = 0;
        for (const auto& [a, b] : re_->find_all(cps)) {
            out.insert(out.end(), cps.begin() + std::ptrdiff_t(pos), cps.begin() + std::ptrdiff_t(a));
            const auto rep = unicode::decode_utf8(content_);
            out.insert(out.end(), rep.begin(), rep.end());
            pos = b;
        }
        out.insert(out.end(), cps.begin() + std::ptrdiff_t(pos), cps.end());
        return unicode::encode_utf8(out);
    }

private:
    std::string literal_;
    std::unique_ptr<regex> re_;
    std::string content_;
};

class unicode_form final : public normalizer {
public:
    explicit unicode_form(unicode::normal_form f) : form_(f) {}
    void normalize(std::string& s) const override { s = unicode::normalize(s, form_); }

private:
    unicode::normal_form form_;
};

class lowercase final : public normalizer {
public:
    void normalize(std::string& s) const override {
        std::vector<unicode::codepoint> out;
        for (auto c : unicode::decode_utf8(s)) unicode::append_lowercase(out, c);
        s = unicode::encode_utf8(out);
    }
};

/// Strips White_Space from the left and/or right.
class strip final : public normalizer {
public:
    strip(bool left, bool right) : left_(left), right_(right) {}
    void normalize(std::string& s) const override {
        auto cps = unicode::decode_utf8(s);
        std::size_t a = 0, b = cps.size();
        if (left_)
            while (a < b && unicode::is_white_space(cps[a])) ++a;
        if (right_)
            while (b > a && unicode::is_white_space(cps[b - 1])) --b;
        s = unicode::encode_utf8(std::vector<unicode::codepoint>(cps.begin() + std::ptrdiff_t(a), cps.begin() + std::ptrdiff_t(b)));
    }

private:
    bool left_, right_;
};

}  // namespace normalizers

namespace detail {
/// The {"String": s} | {"Regex": r} pattern objects of Replace and Split.
inline std::pair<std::string, std::unique_ptr<regex>> parse_pattern(const field& f) {
    if (f.has("String")) return {f.at("String").str(), nullptr};
    if (f.has("Regex")) {
        try {
            return {std::string(), std::make_unique<regex>(f.at("Regex").str())};
        } catch (const format_error& e) {
            f.fail(e.what());
        }
    }
    f.fail("expected {\"String\": ...} or {\"Regex\": ...}");
}
}  // namespace detail

/// Builds a normalizer from its tokenizer.json object; null JSON gives nullptr.
inline std::unique_ptr<normalizer> make_normalizer(const detail::field& f) {
    using namespace normalizers;
    if (f.value.is_null()) return nullptr;
    const std::string t = f.type();
    if (t == "Sequence") {
        std::vector<std::unique_ptr<normalizer>> parts;
        const auto list = f.at("normalizers");
        for (std::size_t i = 0; i < list.array().size(); ++i) parts.push_back(make_normalizer(list.item(i)));
        return std::make_unique<sequence>(std::move(parts));
    }
    if (t == "Prepend") return std::make_unique<prepend>(f.at("prepend").str());
    if (t == "Replace") {
        auto pat = detail::parse_pattern(f.at("pattern"));
        return std::make_unique<replace>(std::move(pat.first), std::move(pat.second), f.at("content").str());
    }
    if (t == "NFC") return std::make_unique<unicode_form>(unicode::normal_form::nfc);
    if (t == "NFD") return std::make_unique<unicode_form>(unicode::normal_form::nfd);
    if (t == "NFKC") return std::make_unique<unicode_form>(unicode::normal_form::nfkc);
    if (t == "NFKD") return std::make_unique<unicode_form>(unicode::normal_form::nfkd);
    if (t == "Lowercase") return std::make_unique<lowercase>();
    if (t == "Strip") return std::make_unique<strip>(f.bool_or("strip_left", true), f.bool_or("strip_right", true));
    f.at("type").fail("unknown normalizer type '" + t + "'");
}

}  // namespace vila::tokenizer
