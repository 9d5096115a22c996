// vila/tokenizer/bpe.hpp — the BPE model of tokenizer.json, with HF tokenizers' exact semantics.
//
// A word is split into characters (each looked up with continuing_subword_prefix /
// end_of_word_suffix as configured), characters missing from the vocabulary become byte tokens
// "<0xNN>" (byte_fallback) or the unknown token (consecutive ones fused with fuse_unk), then
// merges apply lowest rank first, leftmost first among equal ranks. With ignore_merges a word
// that is itself in the vocabulary is emitted whole.
#pragma once
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "unicode.hpp"

namespace vila::tokenizer {

using token_id = std::int32_t;

class bpe {
public:
    struct options {
        std::optional<std::string> unk_token;
        bool fuse_unk = false;
        bool byte_fallback = false;
        bool ignore_merges = false;
        std::string continuing_subword_prefix;  // "" = none
        std::string end_of_word_suffix;         // "" = none
    };
    /// Word -> ids memo; one per thread (encode_batch) or the model's locked shared one.
    using word_cache = std::unordered_map<std::string, std::vector<token_id>>;

    bpe() = default;
    /// `source` names the file in error messages.
    bpe(std::unordered_map<std::string, token_id> vocab, const std::vector<std::pair<std::string, std::string>>& merges,
        options opt, const std::string& source)
        : vocab_(std::move(vocab)), opt_(std::move(opt)) {
        token_id max_id = -1;
        for (const auto& [tok, id] : vocab_) {
            if (id < 0) throw format_error(source + ": model.vocab['" + tok + "']: negative id " + std::to_string(id));
            max_id = std::max(max_id, id);
        }
        // ids index a table: a sparse vocabulary ({"a": 400000000}) would allocate gigabytes from
        // a few bytes. Real vocabularies are dense (0..N-1); allow some holes, not more.
        if (max_id >= 0 && std::size_t(max_id) >= 2 * vocab_.size() + 1024)
            throw format_error(source + ": model.vocab: ids reach " + std::to_string(max_id) + " with only " +
                               std::to_string(vocab_.size()) + " tokens (ids must be dense: 0..N-1 with few holes)");
        id_to_token_.assign(std::size_t(max_id + 1), std::string());
        for (const auto& [tok, id] : vocab_) id_to_token_[std::size_t(id)] = tok;
        const std::size_t prefix_len = opt_.continuing_subword_prefix.size();
        for (std::size_t r = 0; r < merges.size(); ++r) {
            const auto& [a, b] = merges[r];
            const auto ia = vocab_.find(a), ib = vocab_.find(b);
            const std::string where = source + ": model.merges[" + std::to_string(r) + "]: ";
            if (ia == vocab_.end()) throw format_error(where + "token '" + a + "' is not in the vocabulary");
            if (ib == vocab_.end()) throw format_error(where + "token '" + b + "' is not in the vocabulary");
            const std::string merged = a + (b.size() >= prefix_len ? b.substr(prefix_len) : b);
            const auto im = vocab_.find(merged);
            if (im == vocab_.end()) throw format_error(where + "merged token '" + merged + "' is not in the vocabulary");
            merges_[key(ia->second, ib->second)] = {token_id(r), im->second};  // later duplicates win, as in HF
        }
        if (opt_.unk_token) {
            const auto it = vocab_.find(*opt_.unk_token);
            if (it == vocab_.end()) throw format_error(source + ": model.unk_token '" + *opt_.unk_token + "' is not in the vocabulary");
            unk_id_ = it->second;
        }
        for (int b = 0; b < 256; ++b) {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", b);
            const auto it = vocab_.find(name);
            byte_ids_[std::size_t(b)] = it == vocab_.end() ? -1 : it->second;
        }
    }

    /// Appends the ids of one pre-tokenized word.
    void encode_word(std::string_view word, std::vector<token_id>& out, word_cache* cache = nullptr) const {
        if (word.empty()) return;
        if (cache) {
            const auto it = cache->find(std::string(word));
            if (it != cache->end()) {
                out.insert(out.end(), it->second.begin(), it->second.end());
                return;
            }
        }
        const std::size_t mark = out.size();
        encode_uncached(word, out);
        if (cache && word.size() < 256) {
            if (cache->size() > 100000) cache->clear();  // bounded memory on long runs
            cache->emplace(std::string(word), std::vector<token_id>(out.begin() + std::ptrdiff_t(mark), out.end()));
        }
    }

    std::optional<token_id> token_to_id(std::string_view t) const {
        const auto it = vocab_.find(std::string(t));
        if (it == vocab_.end()) return std::nullopt;
        return it->second;
    }
    /// The token string of an id, or nullopt when the id has none.
    const std::string* id_to_token(token_id id) const {
        if (id < 0 || std::size_t(id) >= id_to_token_.size() || id_to_token_[std::size_t(id)].empty()) return nullptr;
        return &id_to_token_[std::size_t(id)];
    }
    std::size_t vocab_size() const noexcept { return vocab_.size(); }
    /// One past the largest model id.
    token_id id_end() const noexcept { return token_id(id_to_token_.size()); }
    const std::unordered_map<std::string, token_id>& vocab() const noexcept { return vocab_; }
    const options& config() const noexcept { return opt_; }

private:
    static std::uint64_t key(token_id a, token_id b) { return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b); }

    struct symbol {
        token_id id;
        int prev, next;
        bool alive;
    };
    struct merge_candidate {
        token_id rank;
        int pos;
        token_id new_id;
        bool operator<(const merge_candidate& o) const {  // priority_queue pops the largest: invert
            return rank != o.rank ? rank > o.rank : pos > o.pos;
        }
    };

    void encode_uncached(std::string_view word, std::vector<token_id>& out) const {
        if (opt_.ignore_merges) {
            const auto it = vocab_.find(std::string(word));
            if (it != vocab_.end()) {
                out.push_back(it->second);
                return;
            }
        }
        std::vector<token_id> ids;
        std::optional<token_id> pending_unk;  // HF keeps an unknown run open until a known char arrives
        std::string s;
        for (std::size_t i = 0; i < word.size();) {
            const std::size_t start = i;
            unicode::next_codepoint(word, i);
            s.assign(word.substr(start, i - start));
            if (start > 0 && !opt_.continuing_subword_prefix.empty()) s.insert(0, opt_.continuing_subword_prefix);
            if (i >= word.size() && !opt_.end_of_word_suffix.empty()) s += opt_.end_of_word_suffix;
            const auto it = vocab_.find(s);
            if (it != vocab_.end()) {
                if (pending_unk) ids.push_back(*pending_unk), pending_unk.reset();
                ids.push_back(it->second);
                continue;
            }
            if (opt_.byte_fallback) {
                bool all = true;
                for (unsigned char b : s) all = all && byte_ids_[b] >= 0;
                if (all) {
                    for (unsigned char b : s) ids.push_back(byte_ids_[b]);
                    continue;
                }
            }
            if (unk_id_) {
                if (pending_unk && !opt_.fuse_unk) ids.push_back(*pending_unk);
                pending_unk = *unk_id_;
            }
        }
        if (pending_unk) ids.push_back(*pending_unk);
        apply_merges(ids);
        out.insert(out.end(), ids.begin(), ids.end());
    }

    void apply_merges(std::vector<token_id>& ids) const {
        if (ids.size() < 2 || merges_.empty()) return;
        std::vector<symbol> sym(ids.size());
        for (std::size_t k = 0; k < ids.size(); ++k) sym[k] = {ids[k], int(k) - 1, k + 1 < ids.size() ? int(k + 1) : -1, true};
        std::priority_queue<merge_candidate> queue;
        auto push = [&](int pos) {
            const int nx = sym[std::size_t(pos)].next;
            if (nx < 0) return;
            const auto it = merges_.find(key(sym[std::size_t(pos)].id, sym[std::size_t(nx)].id));
            if (it != merges_.end()) queue.push({it->second.first, pos, it->second.second});
        };
        for (int k = 0; k + 1 < int(ids.size()); ++k) push(k);
        while (!queue.empty()) {
            const merge_candidate top = queue.top();
            queue.pop();
            symbol& cur = sym[std::size_t(top.pos)];
            if (!cur.alive || cur.next < 0) continue;
            symbol& right = sym[std::size_t(cur.next)];
            const auto it = merges_.find(key(cur.id, right.id));
            if (it == merges_.end() || it->second.second != top.new_id) continue;  // stale entry
            cur.id = top.new_id;
            right.alive = false;
            cur.next = right.next;
            if (cur.next >= 0) sym[std::size_t(cur.next)].prev = top.pos;
            if (cur.prev >= 0) push(cur.prev);
            push(top.pos);
        }
        ids.clear();
        for (int k = 0; k >= 0; k = sym[std::size_t(k)].next) ids.push_back(sym[std::size_t(k)].id);
    }

    std::unordered_map<std::string, token_id> vocab_;
    std::vector<std::string> id_to_token_;
    std::unordered_map<std::uint64_t, std::pair<token_id, token_id>> merges_;  // (a, b) -> (rank, merged id)
    options opt_;
    std::optional<token_id> unk_id_;
    token_id byte_ids_[256] = {};
};

}  // namespace vila::tokenizer
