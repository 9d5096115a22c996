// vila/tokenizer/post_processors.hpp — tokenizer.json "post_processor": special tokens around a
// single sequence when add_special_tokens is set.
//
// Supported: TemplateProcessing (the "single" template), ByteLevel (offsets only: no effect on
// ids), BertProcessing / RobertaProcessing ([cls] A [sep]), Sequence.
#pragma once
#include <string>
#include <vector>

#include "bpe.hpp"
#include "json_fields.hpp"

namespace vila::tokenizer {

/// The ids to put before and after a single encoded sequence.
struct special_wrapping {
    std::vector<token_id> prefix, suffix;
    std::vector<std::string> prefix_tokens, suffix_tokens;
};

namespace detail {
inline void add_processor(const field& f, special_wrapping& w) {
    if (f.value.is_null()) return;
    const std::string t = f.type();
    if (t == "Sequence") {
        const auto list = f.at("processors");
        for (std::size_t i = 0; i < list.array().size(); ++i) add_processor(list.item(i), w);
    } else if (t == "ByteLevel") {
        // trim_offsets / add_prefix_space only change offsets
    } else if (t == "TemplateProcessing") {
        const auto single = f.at("single");
        const auto specials = f.at("special_tokens");
        bool seen_sequence = false;
        for (std::size_t i = 0; i < single.array().size(); ++i) {
            const auto item = single.item(i);
            if (item.has("Sequence")) {
                seen_sequence = true;
                continue;
            }
            const std::string name = item.at("SpecialToken").at("id").str();
            if (!specials.has(name.c_str())) specials.fail("no entry for special token '" + name + "'");
            const auto spec = specials.at(name.c_str());
            const auto ids = spec.at("ids");
            const auto toks = spec.at("tokens");
            for (std::size_t k = 0; k < ids.array().size(); ++k) {
                (seen_sequence ? w.suffix : w.prefix).push_back(ids.item(k).token());
                (seen_sequence ? w.suffix_tokens : w.prefix_tokens).push_back(k < toks.array().size() ? toks.item(k).str() : name);
            }
        }
    } else if (t == "BertProcessing" || t == "RobertaProcessing") {
        const auto cls = f.at("cls"), sep = f.at("sep");
        w.prefix.push_back(cls.item(1).token());
        w.prefix_tokens.push_back(cls.item(0).str());
        w.suffix.push_back(sep.item(1).token());
        w.suffix_tokens.push_back(sep.item(0).str());
    } else {
        f.at("type").fail("unknown post_processor type '" + t + "'");
    }
}
}  // namespace detail

inline special_wrapping make_post_processor(const detail::field& f) {
    special_wrapping w;
    detail::add_processor(f, w);
    return w;
}

}  // namespace vila::tokenizer
