// vila/tokenizer/bpe_trainer.hpp — train a byte-level BPE tokenizer and write its tokenizer.json.
//
// Texts are pre-tokenized like GPT-2 (the regex, then bytes as printable stand-ins), words are
// counted, and the most frequent adjacent pair is merged until the vocabulary reaches its size
// (ties: the lexicographically smallest pair, so training is deterministic). The vocabulary is
// the special tokens, the 256 byte stand-ins, then one token per merge. The result is a
// standard tokenizer.json (ByteLevel pre-tokenizer, post-processor and decoder) that HF
// `tokenizers` loads and encodes identically (tests/fixtures/check_trained_bpe.py).
#pragma once
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "byte_level.hpp"
#include "pre_tokenizers.hpp"
#include "tokenizer.hpp"

namespace vila::tokenizer {

struct bpe_trainer_options {
    std::size_t vocab_size = 1000;              // including special tokens and the 256 bytes
    std::uint64_t min_frequency = 2;            // a pair seen fewer times is never merged
    std::vector<std::string> special_tokens = {"<|endoftext|>"};
    /// Called every `progress_every` merges with (merges done, merges wanted); may be empty.
    std::function<void(std::size_t, std::size_t)> progress;
    std::size_t progress_every = 500;
};

class bpe_trainer {
public:
    explicit bpe_trainer(bpe_trainer_options opt = {}) : opt_(std::move(opt)), pre_(false, true) {
        if (opt_.vocab_size < 256 + opt_.special_tokens.size())
            throw config_error("bpe_trainer: vocab_size " + std::to_string(opt_.vocab_size) + " is below the " +
                               std::to_string(256 + opt_.special_tokens.size()) + " byte and special tokens");
    }

    /// Counts the words of one text.
    void feed(const std::string& text) {
        pieces_t pieces{text};
        pre_.split(pieces, true);
        for (auto& p : pieces) ++word_counts_[p];
    }
    /// Feeds every line of each file.
    void feed_files(const std::vector<std::filesystem::path>& files) {
        for (const auto& f : files) {
            std::ifstream in(f, std::ios::binary);
            if (!in) throw io_error("bpe_trainer: cannot open " + f.string());
            for (std::string line; std::getline(in, line);) feed(line);
        }
    }

    /// Runs the merges; returns the tokenizer.json document.
    nlohmann::json train() {
        std::vector<std::string> id_to_tok;
        std::unordered_map<std::string, token_id> vocab;
        auto add_token = [&](const std::string& t) {
            vocab.emplace(t, token_id(id_to_tok.size()));
            id_to_tok.push_back(t);
        };
        for (const auto& s : opt_.special_tokens) add_token(s);
        std::vector<token_id> byte_id(256);
        {  // the 256 byte stand-ins, in byte order
            for (int b = 0; b < 256; ++b) {
                byte_id[std::size_t(b)] = token_id(id_to_tok.size());
                add_token(byte_level::byte_to_utf8()[std::size_t(b)]);
            }
        }
        // words as symbol sequences
        std::vector<std::vector<token_id>> words;
        std::vector<std::uint64_t> counts;
        for (const auto& [w, c] : word_counts_) {
            std::vector<token_id> syms;
            for (std::size_t i = 0; i < w.size();) {
                const int b = byte_level::char_to_byte(unicode::next_codepoint(w, i));
                syms.push_back(byte_id[std::size_t(b)]);
            }
            words.push_back(std::move(syms));
            counts.push_back(c);
        }
        auto key = [](token_id a, token_id b) { return (std::uint64_t(std::uint32_t(a)) << 32) | std::uint32_t(b); };
        std::unordered_map<std::uint64_t, std::int64_t> pair_count;
        std::unordered_map<std::uint64_t, std::unordered_set<std::size_t>> where;
        for (std::size_t w = 0; w < words.size(); ++w)
            for (std::size_t i = 0; i + 1 < words[w].size(); ++i) {
                const auto k = key(words[w][i], words[w][i + 1]);
                pair_count[k] += std::int64_t(counts[w]);
                where[k].insert(w);
            }
        // max-heap on (count, then smallest pair by token strings); entries are checked lazily
        struct entry {
            std::int64_t count;
            std::uint64_t pair;
        };
        auto pair_strings = [&](std::uint64_t k) {
            return std::make_pair(id_to_tok[std::size_t(k >> 32)], id_to_tok[std::size_t(k & 0xFFFFFFFFu)]);
        };
        auto worse = [&](const entry& a, const entry& b) {
            if (a.count != b.count) return a.count < b.count;
            return pair_strings(a.pair) > pair_strings(b.pair);
        };
        std::priority_queue<entry, std::vector<entry>, decltype(worse)> heap(worse);
        for (const auto& [k, c] : pair_count) heap.push({c, k});

        nlohmann::json merges = nlohmann::json::array();
        const std::size_t wanted = opt_.vocab_size - id_to_tok.size();
        while (id_to_tok.size() < opt_.vocab_size && !heap.empty()) {
            const entry top = heap.top();
            heap.pop();
            const auto it = pair_count.find(top.pair);
            if (it == pair_count.end() || it->second != top.count) continue;  // stale
            if (top.count < std::int64_t(opt_.min_frequency)) break;
            const token_id a = token_id(top.pair >> 32), b = token_id(top.pair & 0xFFFFFFFFu);
            const std::string merged = id_to_tok[std::size_t(a)] + id_to_tok[std::size_t(b)];
            if (vocab.count(merged)) {  // same string from another pair: record the merge, no new token
                pair_count.erase(it);
                continue;
            }
            const token_id m = token_id(id_to_tok.size());
            add_token(merged);
            merges.push_back({id_to_tok[std::size_t(a)], id_to_tok[std::size_t(b)]});
            std::unordered_map<std::uint64_t, std::int64_t> delta;
            const auto affected = where[top.pair];
            for (std::size_t w : affected) {
                auto& s = words[w];
                const std::int64_t c = std::int64_t(counts[w]);
                std::vector<token_id> out;
                out.reserve(s.size());
                for (std::size_t i = 0; i < s.size(); ++i) {
                    if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
                        if (!out.empty()) {
                            delta[key(out.back(), a)] -= c;
                            delta[key(out.back(), m)] += c;
                        }
                        if (i + 2 < s.size()) {
                            delta[key(b, s[i + 2])] -= c;
                            delta[key(m, s[i + 2])] += c;
                        }
                        delta[key(a, b)] -= c;
                        out.push_back(m);
                        ++i;
                    } else {
                        out.push_back(s[i]);
                    }
                }
                s.swap(out);
                for (std::size_t i = 0; i + 1 < s.size(); ++i)
                    if (s[i] == m || s[i + 1] == m) where[key(s[i], s[i + 1])].insert(w);
            }
            for (const auto& [k, d] : delta) {
                auto& c = pair_count[k];
                c += d;
                if (c <= 0) pair_count.erase(k);
                else if (d > 0 || k != top.pair) heap.push({c, k});
            }
            pair_count.erase(top.pair);
            where.erase(top.pair);
            const std::size_t done = merges.size();
            if (opt_.progress && (done % opt_.progress_every == 0)) opt_.progress(done, wanted);
        }
        if (opt_.progress) opt_.progress(merges.size(), wanted);
        return to_json(id_to_tok, merges);
    }

    /// Trains and writes `dir/tokenizer.json` atomically (io::write_json: temporary, fsync, rename).
    void train_and_save(const std::filesystem::path& dir) {
        io::write_json(dir / "tokenizer.json", train());
    }

    std::size_t distinct_words() const noexcept { return word_counts_.size(); }

private:
    nlohmann::json to_json(const std::vector<std::string>& id_to_tok, const nlohmann::json& merges) const {
        nlohmann::json vocab = nlohmann::json::object();
        for (std::size_t i = 0; i < id_to_tok.size(); ++i) vocab[id_to_tok[i]] = i;
        nlohmann::json added = nlohmann::json::array();
        for (std::size_t i = 0; i < opt_.special_tokens.size(); ++i)
            added.push_back({{"id", i}, {"content", opt_.special_tokens[i]}, {"single_word", false}, {"lstrip", false},
                             {"rstrip", false}, {"normalized", false}, {"special", true}});
        const nlohmann::json byte_level_cfg = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
        return {{"version", "1.0"},
                {"truncation", nullptr},
                {"padding", nullptr},
                {"added_tokens", added},
                {"normalizer", nullptr},
                {"pre_tokenizer", byte_level_cfg},
                {"post_processor", byte_level_cfg},
                {"decoder", byte_level_cfg},
                {"model",
                 {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", nullptr},
                  {"continuing_subword_prefix", nullptr},
                  {"end_of_word_suffix", nullptr},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"ignore_merges", false},
                  {"vocab", vocab},
                  {"merges", merges}}}};
    }

    bpe_trainer_options opt_;
    pre_tokenizers::byte_level_pre pre_;
    std::map<std::string, std::uint64_t> word_counts_;  // ordered: deterministic word order
};

}  // namespace vila::tokenizer
