// vila/tokenizer/image_text.hpp — text with "<image>" marks to token ids with one image token
// per mark, as VILA's tokenizer_image_token does: the text is split at each "<image>", every
// piece is encoded on its own (so a SentencePiece-style prefix space applies to each piece),
// and the image token goes between them. When "<image>" is itself a vocabulary token with the
// model's image id (LLaVA-HF), the text is encoded whole, as transformers' processor does.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer.hpp"

namespace vila::tokenizer {

inline constexpr const char* image_placeholder = "<image>";

/// Ids of `text` without the tokenizer's special prefix/suffix, one `image_id` per "<image>".
inline std::vector<token_id> encode_with_images(const tokenizer& tok, std::string_view text, token_id image_id) {
    const auto known = tok.token_to_id(image_placeholder);
    if (known && *known == image_id) return tok.encode(text, false);
    const std::string_view mark = image_placeholder;
    std::vector<token_id> ids;
    for (std::size_t at = 0;;) {
        const std::size_t next = text.find(mark, at);
        const auto piece = tok.encode(text.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at), false);
        ids.insert(ids.end(), piece.begin(), piece.end());
        if (next == std::string_view::npos) return ids;
        ids.push_back(image_id);
        at = next + mark.size();
    }
}

/// The number of "<image>" marks in a text.
inline std::size_t count_image_marks(std::string_view text) {
    std::size_t n = 0;
    for (std::size_t p = 0; (p = text.find(image_placeholder, p)) != std::string_view::npos; p += 7) ++n;
    return n;
}

}  // namespace vila::tokenizer
