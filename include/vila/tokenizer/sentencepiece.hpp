// vila/tokenizer/sentencepiece.hpp — a SentencePiece `tokenizer.model` (LLaMA-1/2, Vicuna,
// VILA1.5-3b/13b/40b ship one and no tokenizer.json), encoded and decoded by the sentencepiece
// library itself: BPE and unigram models, the precompiled normalizers (nmt_nfkc, identity, ...),
// dummy prefix, whitespace folding, split digits, byte fallback, user-defined and control pieces.
//
// Optional: the library is used when VILA_WITH_SENTENCEPIECE is defined and libsentencepiece
// is linked (CMake's vila::vila target and meson's vila_dep do both when they find it; Debian:
// libsentencepiece-dev). Without it, loading a tokenizer.model throws vila::io_error saying so.
// docs/dependencies.md says why a library and not our own encoder.
//
//   auto sp = vila::tokenizer::sentencepiece_model::load("VILA1.5-3b/llm/tokenizer.model");
//   std::vector<int32_t> ids = sp->encode("Hello world");   // no BOS: tokenizer adds it
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#ifdef VILA_WITH_SENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

#include "../error.hpp"
#include "bpe.hpp"

namespace vila::tokenizer {

/// True when this build can read tokenizer.model files.
inline constexpr bool has_sentencepiece =
#ifdef VILA_WITH_SENTENCEPIECE
    true;
#else
    false;
#endif

class sentencepiece_model {
public:
    /// Loads a tokenizer.model; a missing, unreadable or malformed file throws naming it.
    static std::shared_ptr<const sentencepiece_model> load(const std::filesystem::path& file) {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (!fs::is_regular_file(file, ec)) throw io_error(file.string() + ": no SentencePiece model file");
#ifdef VILA_WITH_SENTENCEPIECE
        // protobufs are small (LLaMA's: 500 kB; with a precompiled normalizer ~1 MB): a huge file is not one
        const auto size = fs::file_size(file, ec);
        if (ec || size > (std::uintmax_t(1) << 30))
            throw format_error(file.string() + ": " + (ec ? "unreadable" : "over 1 GiB: not a SentencePiece model"));
        auto m = std::shared_ptr<sentencepiece_model>(new sentencepiece_model(file.string()));
        const auto status = m->sp_.Load(file.string());
        if (!status.ok())
            throw format_error(file.string() + ": not a valid SentencePiece model (" + status.ToString() + ")");
        if (m->sp_.GetPieceSize() <= 0) throw format_error(file.string() + ": a SentencePiece model without pieces");
        return m;
#else
        throw io_error(file.string() +
                       ": a SentencePiece tokenizer.model, and this build of vila has no SentencePiece support "
                       "(install libsentencepiece-dev and rebuild: CMake and meson enable it when they find the library, "
                       "or define VILA_WITH_SENTENCEPIECE and link -lsentencepiece)");
#endif
    }

#ifdef VILA_WITH_SENTENCEPIECE
    /// Ids of `text` as SentencePieceProcessor::Encode gives them (no BOS/EOS).
    std::vector<token_id> encode(std::string_view text) const {
        std::vector<int> ids;
        const auto status = sp_.Encode(text, &ids);
        if (!status.ok()) throw error(source_ + ": encode failed: " + status.ToString());
        return std::vector<token_id>(ids.begin(), ids.end());
    }
    /// Text of `ids` as SentencePieceProcessor::Decode gives it (control pieces drop out).
    std::string decode(const std::vector<token_id>& ids) const {
        for (token_id id : ids)
            if (id < 0 || id >= size())
                throw error("vila::tokenizer::decode: token id " + std::to_string(id) + " is not in the vocabulary of " + source_ +
                            " (size " + std::to_string(size()) + ")");
        std::string out;
        const auto status = sp_.Decode(std::vector<int>(ids.begin(), ids.end()), &out);
        if (!status.ok()) throw error(source_ + ": decode failed: " + status.ToString());
        return out;
    }
    token_id size() const { return token_id(sp_.GetPieceSize()); }
    std::optional<std::string> id_to_piece(token_id id) const {
        if (id < 0 || id >= size()) return std::nullopt;
        return sp_.IdToPiece(id);
    }
    /// The id of a piece; none for a string that is not one (the library answers unk for those).
    std::optional<token_id> piece_to_id(std::string_view piece) const {
        const int id = sp_.PieceToId(piece);
        if (id < 0 || sp_.IdToPiece(id) != piece) return std::nullopt;
        return token_id(id);
    }
    bool is_control(token_id id) const { return id >= 0 && id < size() && sp_.IsControl(id); }
    std::optional<token_id> bos_id() const { return optional_id(sp_.bos_id()); }
    std::optional<token_id> eos_id() const { return optional_id(sp_.eos_id()); }
#else
    std::vector<token_id> encode(std::string_view) const { return {}; }
    std::string decode(const std::vector<token_id>&) const { return {}; }
    token_id size() const { return 0; }
    std::optional<std::string> id_to_piece(token_id) const { return std::nullopt; }
    std::optional<token_id> piece_to_id(std::string_view) const { return std::nullopt; }
    bool is_control(token_id) const { return false; }
    std::optional<token_id> bos_id() const { return std::nullopt; }
    std::optional<token_id> eos_id() const { return std::nullopt; }
#endif
    const std::string& source() const noexcept { return source_; }

private:
    explicit sentencepiece_model(std::string source) : source_(std::move(source)) {}
#ifdef VILA_WITH_SENTENCEPIECE
    std::optional<token_id> optional_id(int id) const {
        return id >= 0 && id < sp_.GetPieceSize() ? std::optional<token_id>(id) : std::nullopt;
    }
    sentencepiece::SentencePieceProcessor sp_;
#endif
    std::string source_;
};

}  // namespace vila::tokenizer
