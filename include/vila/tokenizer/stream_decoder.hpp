// vila/tokenizer/stream_decoder.hpp — text of a growing id sequence, piece by piece (streaming).
//
// Decoding each new id alone breaks byte-level BPE characters split over several tokens, and
// SentencePiece-style decoders strip a leading space only at the start. So the whole output is
// decoded each time and the new suffix returned, holding back while the text ends in an
// incomplete UTF-8 character (decoded as U+FFFD).
#pragma once
#include <string>
#include <vector>

#include "tokenizer.hpp"

namespace vila::tokenizer {

class stream_decoder {
public:
    explicit stream_decoder(const tokenizer& tok, bool skip_special_tokens = true) : tok_(tok), skip_(skip_special_tokens) {}

    /// Appends one id; returns the text it completes (possibly empty).
    std::string push(token_id id) {
        ids_.push_back(id);
        const std::string text = tok_.decode(ids_, skip_);
        if (text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0) return {};
        return advance(text);
    }
    /// At the end: whatever was held back (an incomplete character, shown as U+FFFD).
    std::string finish() { return advance(tok_.decode(ids_, skip_)); }
    const std::vector<token_id>& ids() const noexcept { return ids_; }
    const std::string& text() const noexcept { return shown_; }

private:
    /// The part of `text` not shown yet (nothing if earlier text changed), and remember it shown.
    std::string advance(const std::string& text) {
        std::string piece = text.compare(0, shown_.size(), shown_) == 0 ? text.substr(shown_.size()) : std::string();
        shown_ = text;
        return piece;
    }

    const tokenizer& tok_;
    bool skip_;
    std::vector<token_id> ids_;
    std::string shown_;
};

}  // namespace vila::tokenizer
