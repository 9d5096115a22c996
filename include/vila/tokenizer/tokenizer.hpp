// vila/tokenizer/tokenizer.hpp — a Hugging Face tokenizer.json, encoded and decoded exactly as
// the `tokenizers` library does.
//
// Pipeline (encode): added tokens are matched in the raw text first (leftmost, longest; with
// their lstrip / rstrip / single_word flags); each text segment between them is normalized,
// split again on added tokens flagged `normalized`, pre-tokenized into words, and each word is
// encoded by the BPE model; the post-processor adds special tokens when asked.
// Decode: ids -> token strings (optionally without special tokens) -> decoder chain -> text.
//
//   auto tok = vila::tokenizer::tokenizer::load("VILA1.5-3b/llm");   // folder or tokenizer.json
//   std::vector<int32_t> ids = tok.encode("<image>\nDescribe the picture.");
//   std::string text = tok.decode(ids, /*skip_special_tokens=*/true);
#pragma once
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "../io/json.hpp"
#include "bpe.hpp"
#include "decoders.hpp"
#include "json_fields.hpp"
#include "normalizers.hpp"
#include "post_processors.hpp"
#include "pre_tokenizers.hpp"

namespace vila::tokenizer {

/// An entry of tokenizer.json's "added_tokens" (or one added at run time).
struct added_token {
    token_id id = -1;
    std::string content;
    bool special = true, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

/// The result of encoding with token strings.
struct encoding {
    std::vector<token_id> ids;
    std::vector<std::string> tokens;
};

class tokenizer {
public:
    /// Loads a folder (tokenizer.json plus tokenizer_config.json when present) or a tokenizer.json file.
    static tokenizer load(const std::filesystem::path& path) {
        namespace fs = std::filesystem;
        fs::path file = path;
        if (fs::is_directory(path)) file = path / "tokenizer.json";
        if (!fs::exists(file)) throw io_error("vila::tokenizer: no tokenizer file at " + file.string());
        tokenizer t = from_json(read_json(file), file.string());
        const fs::path cfg = file.parent_path() / "tokenizer_config.json";
        if (fs::exists(cfg)) t.read_config(read_json(cfg), cfg.string());
        return t;
    }

    /// Builds from a parsed tokenizer.json; `source` names it in error messages.
    static tokenizer from_json(const nlohmann::json& j, const std::string& source) {
        tokenizer t;
        t.source_ = source;
        const detail::field root{j, source, ""};
        root.object();
        t.model_ = make_model(root.at("model"), source);
        if (root.has("normalizer")) t.normalizer_ = make_normalizer(root.at("normalizer"));
        if (root.has("pre_tokenizer")) t.pre_tokenizer_ = make_pre_tokenizer(root.at("pre_tokenizer"));
        if (root.has("post_processor")) t.wrapping_ = make_post_processor(root.at("post_processor"));
        if (root.has("decoder")) t.decoder_ = make_decoder(root.at("decoder"));
        if (root.has("added_tokens")) {
            const auto list = root.at("added_tokens");
            for (std::size_t i = 0; i < list.array().size(); ++i) {
                const auto e = list.item(i);
                added_token a;
                a.id = e.at("id").token();
                a.content = e.at("content").str();
                a.special = e.bool_or("special", false);
                a.lstrip = e.bool_or("lstrip", false);
                a.rstrip = e.bool_or("rstrip", false);
                a.single_word = e.bool_or("single_word", false);
                a.normalized = e.bool_or("normalized", !a.special);
                if (a.content.empty()) e.at("content").fail("empty added token");
                t.add(a);
            }
            // vocab_size() sizes embedding tables of models made for this tokenizer: dense ids only
            const std::size_t ids = t.model_.vocab().size() + t.added_.size();
            if (t.vocab_size() >= 2 * ids + 1024)
                list.fail("ids reach " + std::to_string(t.vocab_size() - 1) + " with only " + std::to_string(ids) +
                          " tokens in all (ids must be dense: 0..N-1 with few holes)");
        }
        return t;
    }

    /// Token ids of `text`; with add_special_tokens the post-processor's tokens (e.g. BOS) too.
    std::vector<token_id> encode(std::string_view text, bool add_special_tokens = true) const {
        return encode_full(text, add_special_tokens, nullptr, false).ids;
    }
    /// Ids and token strings.
    encoding encode_with_tokens(std::string_view text, bool add_special_tokens = true) const {
        return encode_full(text, add_special_tokens, nullptr, true);
    }
    /// Encodes many texts on `threads` threads (0 = hardware concurrency); order is kept.
    std::vector<std::vector<token_id>> encode_batch(const std::vector<std::string>& texts, bool add_special_tokens = true,
                                                    unsigned threads = 0) const {
        std::vector<std::vector<token_id>> out(texts.size());
        if (!threads) threads = std::max(1u, std::thread::hardware_concurrency());
        threads = unsigned(std::min<std::size_t>(threads, std::max<std::size_t>(texts.size(), 1)));
        std::vector<std::thread> pool;
        std::vector<std::exception_ptr> errors(threads);
        for (unsigned w = 0; w < threads; ++w)
            pool.emplace_back([&, w] {
                try {
                    bpe::word_cache cache;  // per thread: no locking on the hot path
                    for (std::size_t i = w; i < texts.size(); i += threads)
                        out[i] = encode_full(texts[i], add_special_tokens, &cache, false).ids;
                } catch (...) {
                    errors[w] = std::current_exception();
                }
            });
        for (auto& th : pool) th.join();
        for (auto& e : errors)
            if (e) std::rethrow_exception(e);
        return out;
    }

    /// Text of `ids`; skip_special_tokens drops added tokens marked special.
    std::string decode(const std::vector<token_id>& ids, bool skip_special_tokens = false) const {
        token_strings toks;
        toks.reserve(ids.size());
        for (token_id id : ids) {
            const auto a = added_by_id_.find(id);
            if (a != added_by_id_.end()) {
                if (!(skip_special_tokens && added_[a->second].special)) toks.push_back(added_[a->second].content);
                continue;
            }
            const std::string* t = model_.id_to_token(id);
            if (!t)
                throw error("vila::tokenizer::decode: token id " + std::to_string(id) + " is not in the vocabulary of " + source_ +
                            " (size " + std::to_string(vocab_size()) + ")");
            toks.push_back(*t);
        }
        if (!decoder_) {
            std::string s;
            for (std::size_t i = 0; i < toks.size(); ++i) s += (i ? " " : "") + toks[i];
            return s;
        }
        std::string s;
        for (const auto& piece : decoder_->decode_chain(std::move(toks))) s += piece;
        return s;
    }

    /// Adds special tokens at run time (e.g. "<image>"); existing ones keep their id. Returns the ids.
    std::vector<token_id> add_special_tokens(const std::vector<std::string>& contents) {
        std::vector<token_id> ids;
        for (const auto& c : contents) {
            if (const auto id = token_to_id(c)) {
                ids.push_back(*id);
                if (!added_by_content_.count(c)) add({*id, c, true, false, false, false, false});
                continue;
            }
            added_token a{next_id(), c, true, false, false, false, false};
            add(a);
            ids.push_back(a.id);
        }
        return ids;
    }

    std::optional<token_id> token_to_id(std::string_view t) const {
        const auto a = added_by_content_.find(std::string(t));
        if (a != added_by_content_.end()) return added_[a->second].id;
        return model_.token_to_id(t);
    }
    std::optional<std::string> id_to_token(token_id id) const {
        const auto a = added_by_id_.find(id);
        if (a != added_by_id_.end()) return added_[a->second].content;
        if (const std::string* t = model_.id_to_token(id)) return *t;
        return std::nullopt;
    }
    /// Number of ids (model vocabulary plus added tokens outside it).
    std::size_t vocab_size() const { return std::size_t(next_id()); }
    bool is_special(token_id id) const {
        const auto a = added_by_id_.find(id);
        return a != added_by_id_.end() && added_[a->second].special;
    }
    const std::vector<added_token>& added_tokens() const noexcept { return added_; }
    const bpe& model() const noexcept { return model_; }
    const std::string& source() const noexcept { return source_; }

    /// The ids the post-processor puts around a sequence when add_special_tokens is set.
    const std::vector<token_id>& special_prefix() const noexcept { return wrapping_.prefix; }
    const std::vector<token_id>& special_suffix() const noexcept { return wrapping_.suffix; }

    /// From tokenizer_config.json when present (e.g. "<s>", "</s>").
    std::optional<token_id> bos_id() const { return bos_; }
    std::optional<token_id> eos_id() const { return eos_; }

private:
    static nlohmann::json read_json(const std::filesystem::path& file) { return io::read_json(file); }

    static bpe make_model(const detail::field& m, const std::string& source) {
        m.object();
        const std::string type = m.has("type") ? m.at("type").str() : std::string("BPE");
        if (type != "BPE") m.at("type").fail("unsupported model type '" + type + "' (vila supports BPE)");
        std::unordered_map<std::string, token_id> vocab;
        const auto v = m.at("vocab");
        for (const auto& [tok, id] : v.object().items()) {
            vocab.emplace(tok, detail::field{id, source, "model.vocab['" + tok + "']"}.token());
        }
        std::vector<std::pair<std::string, std::string>> merges;
        const auto ml = m.at("merges");
        merges.reserve(ml.array().size());
        for (std::size_t i = 0; i < ml.array().size(); ++i) {
            const auto e = ml.item(i);
            if (e.value.is_string()) {
                const std::string s = e.str();
                const auto sp = s.find(' ');
                if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
                    e.fail("expected \"a b\" (two tokens separated by one space)");
                merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
            } else if (e.value.is_array() && e.value.size() == 2) {
                merges.emplace_back(e.item(0).str(), e.item(1).str());
            } else {
                e.fail("expected \"a b\" or [\"a\", \"b\"]");
            }
        }
        bpe::options opt;
        if (m.has("unk_token")) opt.unk_token = m.at("unk_token").str();
        opt.fuse_unk = m.bool_or("fuse_unk", false);
        opt.byte_fallback = m.bool_or("byte_fallback", false);
        opt.ignore_merges = m.bool_or("ignore_merges", false);
        opt.continuing_subword_prefix = m.str_or("continuing_subword_prefix", "");
        opt.end_of_word_suffix = m.str_or("end_of_word_suffix", "");
        return bpe(std::move(vocab), merges, std::move(opt), source);
    }

    void read_config(const nlohmann::json& j, const std::string& file) {
        const detail::field root{j, file, ""};
        auto token_of = [&](const char* key) -> std::optional<token_id> {
            if (!root.has(key)) return std::nullopt;
            const auto f = root.at(key);
            const std::string s = f.value.is_object() ? f.at("content").str() : f.str();
            const auto id = token_to_id(s);
            if (!id) f.fail("token '" + s + "' is not in the tokenizer's vocabulary");
            return id;
        };
        bos_ = token_of("bos_token");
        eos_ = token_of("eos_token");
    }

    token_id next_id() const {
        token_id n = std::max(model_.id_end(), token_id(model_.vocab_size()));
        for (const auto& a : added_) n = std::max(n, a.id + 1);
        return n;
    }

    void add(const added_token& a) {
        if (added_by_content_.count(a.content)) return;
        added_by_content_[a.content] = added_.size();
        added_by_id_[a.id] = added_.size();
        added_.push_back(a);
        auto& list = (a.normalized ? normalized_first_byte_ : raw_first_byte_)[static_cast<unsigned char>(a.content[0])];
        list.push_back(added_.size() - 1);
        std::stable_sort(list.begin(), list.end(),  // longest first: leftmost-longest matching
                         [&](std::size_t x, std::size_t y) { return added_[x].content.size() > added_[y].content.size(); });
    }

    struct segment {
        std::size_t begin, end;
        long added = -1;  // index into added_, or -1 for text
    };

    static bool is_word_char(unicode::codepoint c) { return unicode::is_letter(c) || unicode::is_number(c) || c == '_'; }

    /// Splits text at added tokens from `table` (leftmost, then longest).
    std::vector<segment> split_added(std::string_view s,
                                     const std::unordered_map<unsigned char, std::vector<std::size_t>>& table) const {
        std::vector<segment> out;
        if (table.empty()) {
            out.push_back({0, s.size()});
            return out;
        }
        std::size_t text_start = 0;
        for (std::size_t i = 0; i < s.size();) {
            const auto it = table.find(static_cast<unsigned char>(s[i]));
            long hit = -1;
            if (it != table.end())
                for (std::size_t idx : it->second) {
                    const auto& a = added_[idx];
                    if (s.compare(i, a.content.size(), a.content) != 0) continue;
                    if (a.single_word) {
                        std::size_t before = i, after = i + a.content.size();
                        bool ok = true;
                        if (before > 0) {
                            std::size_t k = before - 1;
                            while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
                            std::size_t kk = k;
                            ok = !is_word_char(unicode::next_codepoint(s, kk));
                        }
                        if (ok && after < s.size()) {
                            std::size_t kk = after;
                            ok = !is_word_char(unicode::next_codepoint(s, kk));
                        }
                        if (!ok) continue;
                    }
                    hit = long(idx);
                    break;
                }
            if (hit < 0) {
                ++i;
                continue;
            }
            const auto& a = added_[std::size_t(hit)];
            std::size_t b = i, e = i + a.content.size();
            if (a.lstrip)
                while (b > text_start && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\n' || s[b - 1] == '\r')) --b;
            if (a.rstrip)
                while (e < s.size() && (s[e] == ' ' || s[e] == '\t' || s[e] == '\n' || s[e] == '\r')) ++e;
            if (b > text_start) out.push_back({text_start, b});
            out.push_back({b, e, hit});
            text_start = i = e;
        }
        if (text_start < s.size()) out.push_back({text_start, s.size()});
        return out;
    }

    void push_added(std::size_t idx, encoding& enc, bool with_tokens) const {
        enc.ids.push_back(added_[idx].id);
        if (with_tokens) enc.tokens.push_back(added_[idx].content);
    }

    encoding encode_full(std::string_view text, bool add_special, bpe::word_cache* cache, bool with_tokens) const {
        encoding enc;
        std::unique_lock<std::mutex> lock;
        if (!cache) {
            lock = std::unique_lock<std::mutex>(shared_->mutex);
            cache = &shared_->cache;
        }
        for (const auto& seg : split_added(text, raw_first_byte_)) {
            if (seg.added >= 0) {
                push_added(std::size_t(seg.added), enc, with_tokens);
                continue;
            }
            std::string s(text.substr(seg.begin, seg.end - seg.begin));
            if (normalizer_) normalizer_->normalize(s);
            for (const auto& sub : split_added(s, normalized_first_byte_)) {
                if (sub.added >= 0) {
                    push_added(std::size_t(sub.added), enc, with_tokens);
                    continue;
                }
                pieces_t pieces{s.substr(sub.begin, sub.end - sub.begin)};
                if (pre_tokenizer_) pre_tokenizer_->split(pieces, seg.begin == 0 && sub.begin == 0);
                for (const auto& p : pieces) {
                    const std::size_t mark = enc.ids.size();
                    model_.encode_word(p, enc.ids, cache);
                    if (with_tokens)
                        for (std::size_t k = mark; k < enc.ids.size(); ++k) enc.tokens.push_back(*model_.id_to_token(enc.ids[k]));
                }
            }
        }
        if (add_special && (!wrapping_.prefix.empty() || !wrapping_.suffix.empty())) {
            enc.ids.insert(enc.ids.begin(), wrapping_.prefix.begin(), wrapping_.prefix.end());
            enc.ids.insert(enc.ids.end(), wrapping_.suffix.begin(), wrapping_.suffix.end());
            if (with_tokens) {
                enc.tokens.insert(enc.tokens.begin(), wrapping_.prefix_tokens.begin(), wrapping_.prefix_tokens.end());
                enc.tokens.insert(enc.tokens.end(), wrapping_.suffix_tokens.begin(), wrapping_.suffix_tokens.end());
            }
        }
        return enc;
    }

    struct shared_state {  // the cache used by encode(); copied tokenizers share nothing else
        std::mutex mutex;
        bpe::word_cache cache;
    };

    std::string source_;
    bpe model_;
    std::unique_ptr<normalizer> normalizer_;
    std::unique_ptr<pre_tokenizer> pre_tokenizer_;
    std::unique_ptr<decoder> decoder_;
    special_wrapping wrapping_;
    std::vector<added_token> added_;
    std::unordered_map<std::string, std::size_t> added_by_content_;
    std::unordered_map<token_id, std::size_t> added_by_id_;
    std::unordered_map<unsigned char, std::vector<std::size_t>> raw_first_byte_, normalized_first_byte_;
    std::optional<token_id> bos_, eos_;
    std::unique_ptr<shared_state> shared_ = std::make_unique<shared_state>();
};

/// Loads a tokenizer folder or tokenizer.json (shorthand for tokenizer::load).
inline tokenizer load(const std::filesystem::path& path) { return tokenizer::load(path); }

}  // namespace vila::tokenizer
