// vila/data/mmc4.hpp — MMC4 interleaved documents (JSONL): rows
//   {"url", "text_list": [sentences], "image_info": [{"image_name", "matched_text_index",
//    "matched_sim", ...}], "similarity_matrix": [[...]]}
// with images in a folder or in tar shards (found by image_name). VILA's conventions: a
// literal "<image>" in a sentence is escaped to "<IMAGE>"; images below `min_similarity` are
// dropped; the first `max_images` (6) are kept, then ordered by matched sentence (stable);
// "<image>\n" goes before each image's matched sentence; sentences are joined with a space,
// then "<image> " and " <image>" lose their space; EOS is appended by the renderer.
// `pairs` is the MMC4-pairs ablation: each kept image with only its matched sentence, each pair
// a segment ending in EOS. A document left with no image is a bad record.
#pragma once
#include <algorithm>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "shards.hpp"
#include "source.hpp"

namespace vila::data {

struct mmc4_options {
    std::filesystem::path image_folder;         // images by name here, or
    std::vector<std::filesystem::path> shards;  // in these tar shards
    double min_similarity = 0.0;                // VILA's loader keeps all (its 0.24 filter is off)
    std::size_t max_images = 6;
    bool pairs = false;                         // MMC4-pairs: image + matched sentence only
};

namespace detail {
inline std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    std::string out;
    for (std::size_t at = 0;;) {
        const std::size_t next = s.find(from, at);
        out.append(s, at, next == std::string::npos ? std::string::npos : next - at);
        if (next == std::string::npos) return out;
        out += to;
        at = next + from.size();
    }
}
}  // namespace detail

class mmc4_source : public source {
public:
    mmc4_source(const std::filesystem::path& file, mmc4_options o) : rows_(file), opt_(std::move(o)) {
        if (!opt_.shards.empty()) shards_ = shard_set(opt_.shards);
        else if (opt_.image_folder.empty()) opt_.image_folder = file.has_parent_path() ? file.parent_path() : ".";
        if (opt_.max_images == 0) throw config_error("mmc4: max_images must be at least 1");
    }
    std::size_t size() const override { return rows_.size(); }
    std::string describe() const override { return std::string(opt_.pairs ? "mmc4-pairs:" : "mmc4:") + rows_.file().string(); }

    record get(std::size_t i) const override {
        const std::string where = rows_.where(i);
        const nlohmann::json row = rows_.row(i);
        detail::require_object(row, where);
        const auto tl = row.find("text_list");
        if (tl == row.end() || !tl->is_array()) throw format_error(where + ": missing \"text_list\" list");
        std::vector<std::string> sentences;
        for (const auto& s : *tl) {
            if (!s.is_string()) throw format_error(where + ": \"text_list\" entries should be strings");
            sentences.push_back(detail::replace_all(s.get<std::string>(), tokenizer::image_placeholder, "<IMAGE>"));
        }
        const auto info = row.find("image_info");
        if (info == row.end() || !info->is_array()) throw format_error(where + ": missing \"image_info\" list");
        struct kept {
            std::string name;
            std::size_t sentence;
        };
        std::vector<kept> images;
        for (const auto& im : *info) {
            if (!im.is_object()) throw format_error(where + ": \"image_info\" entries should be objects");
            const std::string name = detail::string_field(im, "image_name", where);
            const auto ix = im.find("matched_text_index");
            if (ix == im.end() || !ix->is_number_integer() || ix->get<long long>() < 0 || ix->get<long long>() >= (long long)sentences.size())
                throw format_error(where + ": image " + name + ": \"matched_text_index\" should be an index into text_list (" +
                                   std::to_string(sentences.size()) + " sentences)");
            if (opt_.min_similarity > 0) {
                const auto sim = im.find("matched_sim");
                if (sim == im.end() || !sim->is_number()) throw format_error(where + ": image " + name + ": no numeric \"matched_sim\"");
                if (sim->get<double>() < opt_.min_similarity) continue;
            }
            images.push_back({name, std::size_t(ix->get<long long>())});
        }
        if (images.empty())
            throw format_error(where + ": no image left" + (opt_.min_similarity > 0 ? " above the similarity threshold" : std::string()) +
                               " (" + std::to_string(info->size()) + " in image_info)");
        if (images.size() > opt_.max_images) images.resize(opt_.max_images);
        std::stable_sort(images.begin(), images.end(), [](const kept& a, const kept& b) { return a.sentence < b.sentence; });

        record r;
        r.type = record::kind::text;
        r.where = where;
        const std::string mark = std::string(tokenizer::image_placeholder) + "\n";
        if (opt_.pairs) {
            for (const auto& im : images) r.segments.push_back(mark + sentences[im.sentence]);
        } else {
            for (const auto& im : images) sentences[im.sentence] = mark + sentences[im.sentence];
            std::string text;
            for (std::size_t k = 0; k < sentences.size(); ++k) text += (k ? " " : "") + sentences[k];
            text = detail::replace_all(text, "<image> ", "<image>");
            text = detail::replace_all(text, " <image>", "<image>");
            r.segments.push_back(text);
        }
        for (const auto& im : images) r.images.push_back(image(im.name, where));
        return r;
    }

private:
    image_ref image(const std::string& name, const std::string& where) const {
        if (!shards_.empty()) {
            if (const image_ref* ref = shards_.find(name)) return *ref;
            throw io_error(where + ": image " + name + " is in none of the " + std::to_string(shards_.archives().size()) + " shards");
        }
        return {opt_.image_folder / name, "", 0, 0, false};
    }

    json_rows rows_;
    mmc4_options opt_;
    shard_set shards_;
};

}  // namespace vila::data
