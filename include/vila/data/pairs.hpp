// vila/data/pairs.hpp — image-text pairs as webdataset tar shards in img2dataset's layout
// (KEY.jpg | KEY.png | ..., KEY.txt and/or KEY.json with "caption" or "text"), read in place.
// VILA packs COYO pairs `pack` at a time (default 4) into one sample, each pair the segment
// "<image>" + caption followed by EOS, so that a sample's token count comes near an MMC4
// document's; the last incomplete group is dropped. A literal "<image>" in a caption is escaped
// to "<IMAGE>". Errors name shard:key.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mmc4.hpp"
#include "shards.hpp"
#include "source.hpp"

namespace vila::data {

struct pairs_options {
    std::size_t pack = 4;
};

class webdataset_pairs_source : public source {
public:
    webdataset_pairs_source(const std::vector<std::filesystem::path>& shards, pairs_options o = {}) : opt_(o) {
        if (opt_.pack == 0) throw config_error("webdataset pairs: pack must be at least 1");
        if (shards.empty()) throw config_error("webdataset pairs: no shards");
        for (const auto& s : shards) {
            const io::tar_archive tar(s);
            std::map<std::string, std::size_t> at;  // key -> index in pairs_ (this shard)
            for (const auto& m : tar.members()) {
                std::string ext;
                const std::string key = webdataset_key(m.name, &ext);
                for (auto& c : ext) c = char(std::tolower(static_cast<unsigned char>(c)));
                const bool image = ext == "jpg" || ext == "jpeg" || ext == "png" || ext == "bmp" || ext == "gif" || ext == "ppm";
                if (!image && ext != "txt" && ext != "json") continue;
                auto it = at.find(key);
                if (it == at.end()) {
                    it = at.emplace(key, pairs_.size()).first;
                    pairs_.push_back({s, key, {}, {}, {}});
                }
                pair& p = pairs_[it->second];
                const image_ref ref{s, m.name, m.offset, m.size, m.truncated};
                if (image) p.image = ref;
                else if (ext == "txt") p.txt = ref;
                else p.json = ref;
            }
        }
        describe_ = "webdataset:" + shards.front().string() + (shards.size() > 1 ? " (+" + std::to_string(shards.size() - 1) + " shards)" : "");
    }
    std::size_t size() const override { return pairs_.size() / opt_.pack; }
    std::size_t pair_count() const noexcept { return pairs_.size(); }
    std::string describe() const override { return describe_; }

    record get(std::size_t i) const override {
        if (i >= size()) throw error("webdataset pairs: record " + std::to_string(i) + " of " + std::to_string(size()));
        record r;
        r.type = record::kind::text;
        for (std::size_t k = i * opt_.pack; k < (i + 1) * opt_.pack; ++k) {
            const pair& p = pairs_[k];
            const std::string where = p.shard.string() + ":" + p.key;
            if (r.where.empty()) r.where = where;
            if (p.image.member.empty()) throw format_error(where + ": no image member (jpg, png, ...)");
            if (p.image.truncated) throw format_error(p.image.where() + ": truncated tar member");
            r.segments.push_back(tokenizer::image_placeholder + detail::replace_all(caption(p, where), tokenizer::image_placeholder, "<IMAGE>"));
            r.images.push_back(p.image);
        }
        return r;
    }

private:
    struct pair {
        std::filesystem::path shard;
        std::string key;
        image_ref image, txt, json;
    };

    static std::string caption(const pair& p, const std::string& where) {
        if (!p.txt.member.empty()) {
            const auto b = io::tar_archive::read_member(p.shard, {p.txt.member, p.txt.offset, p.txt.size, p.txt.truncated});
            return std::string(b.begin(), b.end());
        }
        if (!p.json.member.empty()) {
            const auto b = io::tar_archive::read_member(p.shard, {p.json.member, p.json.offset, p.json.size, p.json.truncated});
            nlohmann::json j;
            try {
                j = nlohmann::json::parse(b.begin(), b.end());
            } catch (const nlohmann::json::exception& e) {
                throw format_error(where + ".json: invalid JSON: " + e.what());
            }
            for (const char* key : {"caption", "text"})
                if (j.is_object() && j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
        }
        throw format_error(where + ": no caption (KEY.txt, or KEY.json with \"caption\" or \"text\")");
    }

    pairs_options opt_;
    std::vector<pair> pairs_;
    std::string describe_;
};

}  // namespace vila::data
