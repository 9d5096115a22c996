// vila/tokenizer/tokenizer.hpp — a Hugging Face tokenizer.json, encoded and decoded exactly as
// the `tokenizers` library does; or a SentencePiece tokenizer.model (folders without a
// tokenizer.json: LLaMA-2, VILA1.5), encoded by the sentencepiece library (sentencepiece.hpp).
//
// Pipeline (encode): added tokens are matched in the raw text first (leftmost, longest; with
// their lstrip / rstrip / single_word flags); each text segment between them is normalized,
// split again on added tokens flagged `normalized`, pre-tokenized into words, and each word is
// encoded by the BPE model; the post-processor adds special tokens when asked.
// Decode: ids -> token strings (optionally without special tokens) -> decoder chain -> text.
// SentencePiece: added tokens (tokenizer_config.json's added_tokens_decoder) are matched in the
// raw text first, as transformers does; each text segment is encoded by the SentencePiece model
// (its normalizer, dummy prefix and model); BOS/EOS follow add_bos_token / add_eos_token.
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
#include "sentencepiece.hpp"

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
    /// Loads a folder (tokenizer.json, else a SentencePiece tokenizer.model; plus
    /// tokenizer_config.json when present), a tokenizer.json or a tokenizer.model file.
    static tokenizer load(const std::filesystem::path& path) {
        namespace fs = std::filesystem;
        fs::path file = path;
        if (fs::is_directory(path)) {
            file = path / "tokenizer.json";
            if (!fs::exists(file) && fs::exists(path / "tokenizer.model")) file = path / "tokenizer.model";
        }
        if (!fs::exists(file)) throw io_error("vila::tokenizer: no tokenizer file at " + file.string() + " (nor a tokenizer.model)");
        tokenizer t = file.extension() == ".model" ? from_sentencepiece(file) : from_json(read_json(file), file.string());
        const fs::path cfg = file.parent_path() / "tokenizer_config.json";
        if (fs::exists(cfg)) t.read_config(read_json(cfg), cfg.string());
        const fs::path jinja = file.parent_path() / "chat_template.jinja";  // transformers >= 4.5x saves it apart
        if (fs::exists(jinja)) t.chat_template_ = io::read_text(jinja);
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

    /// Builds from a SentencePiece tokenizer.model, with LlamaTokenizer's defaults: BOS added
    /// (the model's bos piece), no EOS; tokenizer_config.json, when loaded after, may change both.
    static tokenizer from_sentencepiece(const std::filesystem::path& file) {
        tokenizer t;
        t.source_ = file.string();
        t.sp_ = sentencepiece_model::load(file);
        t.set_sentencepiece_wrapping(true, false);
        return t;
    }

    /// True when `dir` holds a tokenizer this class loads (tokenizer.json or tokenizer.model).
    static bool present(const std::filesystem::path& dir) {
        std::error_code ec;
        return std::filesystem::exists(dir / "tokenizer.json", ec) || std::filesystem::exists(dir / "tokenizer.model", ec);
    }

    /// True when the tokenizer is a SentencePiece model.
    bool is_sentencepiece() const noexcept { return bool(sp_); }

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
        if (sp_) return decode_sentencepiece(ids, skip_special_tokens);
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
        if (sp_) return sp_->piece_to_id(t);
        return model_.token_to_id(t);
    }
    std::optional<std::string> id_to_token(token_id id) const {
        const auto a = added_by_id_.find(id);
        if (a != added_by_id_.end()) return added_[a->second].content;
        if (sp_) return sp_->id_to_piece(id);
        if (const std::string* t = model_.id_to_token(id)) return *t;
        return std::nullopt;
    }
    /// Number of ids (model vocabulary plus added tokens outside it).
    std::size_t vocab_size() const { return std::size_t(next_id()); }
    bool is_special(token_id id) const {
        const auto a = added_by_id_.find(id);
        return (a != added_by_id_.end() && added_[a->second].special) || (sp_ && sp_->is_control(id));
    }
    const std::vector<added_token>& added_tokens() const noexcept { return added_; }
    /// The BPE model of a tokenizer.json (empty for a SentencePiece tokenizer).
    const bpe& model() const noexcept { return model_; }
    const std::string& source() const noexcept { return source_; }

    /// The ids the post-processor puts around a sequence when add_special_tokens is set.
    const std::vector<token_id>& special_prefix() const noexcept { return wrapping_.prefix; }
    const std::vector<token_id>& special_suffix() const noexcept { return wrapping_.suffix; }

    /// From tokenizer_config.json when present (e.g. "<s>", "</s>").
    std::optional<token_id> bos_id() const { return bos_; }
    std::optional<token_id> eos_id() const { return eos_; }

    /// The Jinja chat_template (tokenizer_config.json's, or chat_template.jinja beside it); empty
    /// when there is none. tokenizer/chat_template.hpp renders it ("auto").
    const std::string& chat_template() const noexcept { return chat_template_; }
    /// Replaces the chat template (a Jinja source), as assigning tokenizer.chat_template does.
    void set_chat_template(std::string source) { chat_template_ = std::move(source); }
    /// tokenizer_config.json's special token strings (bos_token, eos_token, unk_token, pad_token;
    /// null when absent), which transformers passes to the chat template.
    const nlohmann::json& special_token_strings() const noexcept { return special_strings_; }

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
        if (sp_) read_sentencepiece_config(root);
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
        for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
            special_strings_[key] = nullptr;
            if (!root.has(key)) continue;
            const auto f = root.at(key);
            special_strings_[key] = f.value.is_object() ? f.at("content").str() : f.str();
        }
        if (root.has("chat_template")) {  // a string, or [{"name", "template"}] (the "default" one is used)
            const auto ct = root.at("chat_template");
            if (ct.value.is_string()) {
                chat_template_ = ct.str();
            } else {
                for (std::size_t i = 0; i < ct.array().size(); ++i)
                    if (ct.item(i).at("name").str() == "default") chat_template_ = ct.item(i).at("template").str();
            }
        }
    }

    /// tokenizer_config.json of a SentencePiece tokenizer (transformers' LlamaTokenizer): the
    /// added tokens (ids past the model's pieces are new; the others name pieces, such as <s>,
    /// that transformers then matches in text), add_bos_token (default true), add_eos_token.
    void read_sentencepiece_config(const detail::field& root) {
        if (root.has("added_tokens_decoder")) {
            const auto list = root.at("added_tokens_decoder");
            for (const auto& [key, value] : list.object().items()) {
                const detail::field e{value, list.file, list.path + "['" + key + "']"};
                added_token a;
                std::size_t used = 0;
                long long id = -1;
                try {
                    id = std::stoll(key, &used);
                } catch (const std::exception&) {
                    used = 0;
                }
                if (used != key.size() || id < 0 || id > (1 << 24)) e.fail("the key must be a token id, got '" + key + "'");
                a.id = token_id(id);
                a.content = e.at("content").str();
                if (a.content.empty()) e.at("content").fail("empty added token");
                a.special = e.bool_or("special", false);
                a.lstrip = e.bool_or("lstrip", false);
                a.rstrip = e.bool_or("rstrip", false);
                a.single_word = e.bool_or("single_word", false);
                a.normalized = false;  // matched in the raw text: SentencePiece normalizes each segment itself
                if (a.id < sp_->size() && sp_->id_to_piece(a.id) != a.content)
                    e.fail("token " + std::to_string(a.id) + " is '" + a.content + "' here but '" + *sp_->id_to_piece(a.id) +
                           "' in the SentencePiece model");
                add(a);
            }
            if (next_id() > 2 * (sp_->size() + token_id(added_.size())) + 1024)
                list.fail("ids reach " + std::to_string(next_id() - 1) + ": ids must be dense");
        }
        set_sentencepiece_wrapping(root.bool_or("add_bos_token", true), root.bool_or("add_eos_token", false), root);
    }

    /// BOS / EOS around an encoding: the ids of tokenizer_config.json's bos_token / eos_token
    /// when it names them, else the model's own.
    void set_sentencepiece_wrapping(bool add_bos, bool add_eos, std::optional<detail::field> cfg = std::nullopt) {
        auto special = [&](const char* key, std::optional<token_id> fallback) -> std::optional<token_id> {
            if (!cfg || !cfg->has(key) || cfg->at(key).value.is_null()) return fallback;
            const auto f = cfg->at(key);
            const std::string s = f.value.is_object() ? f.at("content").str() : f.str();
            const auto id = token_to_id(s);
            if (!id) f.fail("token '" + s + "' is not in the tokenizer's vocabulary");
            return id;
        };
        const auto bos = special("bos_token", sp_->bos_id()), eos = special("eos_token", sp_->eos_id());
        wrapping_ = {};
        if (add_bos && bos) wrapping_.prefix = {*bos}, wrapping_.prefix_tokens = {*id_to_token(*bos)};
        if (add_eos && eos) wrapping_.suffix = {*eos}, wrapping_.suffix_tokens = {*id_to_token(*eos)};
        bos_ = bos;
        eos_ = eos;
    }

    /// Runs of model ids decoded by SentencePiece, added tokens as their text. SentencePiece
    /// drops the dummy-prefix space at the start of every run; transformers only at the start
    /// of the whole text ("<s>", "▁Hello" -> "<s> Hello"), so a run after text gets it back.
    std::string decode_sentencepiece(const std::vector<token_id>& ids, bool skip_special_tokens) const {
        std::string out;
        std::vector<token_id> run;
        auto flush = [&] {
            if (run.empty()) return;
            std::string text = sp_->decode(run);
            const auto first = sp_->id_to_piece(run.front());
            if (!out.empty() && first && first->rfind("\xE2\x96\x81", 0) == 0 && text.rfind(' ', 0) != 0) text.insert(0, " ");
            out += text;
            run.clear();
        };
        for (token_id id : ids) {
            const auto a = added_by_id_.find(id);
            if (a == added_by_id_.end()) {
                if (id < 0 || id >= sp_->size())
                    throw error("vila::tokenizer::decode: token id " + std::to_string(id) + " is not in the vocabulary of " + source_ +
                                " (size " + std::to_string(vocab_size()) + ")");
                run.push_back(id);
                continue;
            }
            flush();
            if (!(skip_special_tokens && added_[a->second].special)) out += added_[a->second].content;
        }
        flush();
        return out;
    }

    token_id next_id() const {
        token_id n = std::max(model_.id_end(), token_id(model_.vocab_size()));
        if (sp_) n = std::max(n, sp_->size());
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
            if (sp_) {
                const std::size_t mark = enc.ids.size();
                const auto ids = sp_->encode(text.substr(seg.begin, seg.end - seg.begin));
                enc.ids.insert(enc.ids.end(), ids.begin(), ids.end());
                if (with_tokens)
                    for (std::size_t k = mark; k < enc.ids.size(); ++k) enc.tokens.push_back(*sp_->id_to_piece(enc.ids[k]));
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
    std::string chat_template_;
    nlohmann::json special_strings_ = {{"bos_token", nullptr}, {"eos_token", nullptr}, {"unk_token", nullptr}, {"pad_token", nullptr}};
    std::shared_ptr<const sentencepiece_model> sp_;  // set: a SentencePiece tokenizer (immutable, shared by copies)
    std::unique_ptr<shared_state> shared_ = std::make_unique<shared_state>();
};

/// Loads a tokenizer folder or tokenizer.json (shorthand for tokenizer::load).
inline tokenizer load(const std::filesystem::path& path) { return tokenizer::load(path); }

}  // namespace vila::tokenizer
