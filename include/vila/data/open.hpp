// vila/data/open.hpp — sources by name or path, as a user names them on the command line.
//
// A mixture is written VILA's way, "a+b+c": each part is a name from a registry JSON
//   {"llava_sft": {"format": "llava", "path": "llava/rows.json", "image_folder": "llava/images",
//                  "weight": 1.0}, "coyo": {"format": "webdataset", "path": "coyo/", "pack": 4}, ...}
// (relative paths from the registry's folder), or a path. A path's format is detected: a .tar
// file or a folder of .tar shards is webdataset pairs; a JSON/JSONL file is read by the keys of
// its first row (conversations: llava; text_list: mmc4; question or inputs: instructions;
// text: text). Formats: llava, mmc4, mmc4-pairs, webdataset, instructions, text.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "../io/json.hpp"
#include "instruct.hpp"
#include "llava.hpp"
#include "mixture.hpp"
#include "mmc4.hpp"
#include "pairs.hpp"

namespace vila::data {

struct source_spec {
    std::string name;                   // in metrics and the sampler's state
    std::string format = "auto";
    std::filesystem::path path;
    std::filesystem::path image_folder;  // llava, mmc4 (default: beside the file)
    std::filesystem::path image_shards;  // mmc4: a .tar or a folder of shards holding the images
    double weight = 1.0;
    std::size_t pack = 4;               // webdataset pairs per sample
    double min_similarity = 0.0;        // mmc4
    std::size_t max_images = 6;         // mmc4
};

inline const char* const known_formats = "llava, mmc4, mmc4-pairs, webdataset, instructions, text";

/// The format of a path by its shape and first row.
inline std::string detect_format(const std::filesystem::path& p) {
    namespace fs = std::filesystem;
    if (!fs::exists(p)) throw io_error("no such file or folder: " + p.string());
    if (fs::is_directory(p) || p.extension() == ".tar") return "webdataset";
    const json_rows rows(p);
    if (rows.size() == 0) throw format_error(p.string() + ": no rows");
    const nlohmann::json r = rows.row(0);
    if (r.is_object()) {
        if (r.contains("conversations")) return "llava";
        if (r.contains("text_list")) return "mmc4";
        if (r.contains("question") || r.contains("inputs")) return "instructions";
        if (r.contains("text")) return "text";
    }
    throw format_error(rows.where(0) + ": cannot tell the format from the first row (expected \"conversations\", \"text_list\", "
                       "\"question\"/\"inputs\" or \"text\"); name it in a registry");
}

inline std::shared_ptr<const source> open_source(const source_spec& s) {
    const std::string f = s.format == "auto" ? detect_format(s.path) : s.format;
    if (f == "llava") return std::make_shared<llava_source>(s.path, llava_options{s.image_folder});
    if (f == "mmc4" || f == "mmc4-pairs") {
        mmc4_options o;
        o.image_folder = s.image_folder;
        if (!s.image_shards.empty()) o.shards = list_shards(s.image_shards);
        o.min_similarity = s.min_similarity;
        o.max_images = s.max_images;
        o.pairs = f == "mmc4-pairs";
        return std::make_shared<mmc4_source>(s.path, o);
    }
    if (f == "webdataset") return std::make_shared<webdataset_pairs_source>(list_shards(s.path), pairs_options{s.pack});
    if (f == "instructions") return std::make_shared<instruction_source>(s.path);
    if (f == "text") return std::make_shared<text_source>(s.path);
    throw config_error(s.path.string() + ": unknown data format '" + f + "' (known: " + known_formats + ")");
}

/// "a+b+c": registry names or paths, in order; names are unique (a path's is its file name).
/// "a:0.1+b:0.9" sets weights (mix::weighted), over any the registry gives.
inline std::vector<source_spec> parse_mixture(const std::string& text, const std::filesystem::path& registry = {}) {
    namespace fs = std::filesystem;
    nlohmann::json reg = nlohmann::json::object();
    if (!registry.empty()) {
        reg = io::read_json(registry);
        if (!reg.is_object()) throw config_error(registry.string() + ": a data registry is a JSON object {name: {format, path, ...}}");
    }
    const fs::path base = registry.has_parent_path() ? registry.parent_path() : fs::path(".");
    std::vector<source_spec> out;
    for (std::size_t at = 0; at <= text.size();) {
        std::size_t plus = text.find('+', at);
        if (plus == std::string::npos) plus = text.size();
        std::string part = text.substr(at, plus - at);
        at = plus + 1;
        if (part.empty()) throw config_error("data mixture '" + text + "': an empty name between '+'");
        // "name:w" gives a weight (for mix::weighted) when w is a positive number
        double weight = 0;
        if (const auto colon = part.rfind(':'); colon != std::string::npos && colon > 0 && colon + 1 < part.size()) {
            const std::string w = part.substr(colon + 1);
            char* end = nullptr;
            const double x = std::strtod(w.c_str(), &end);
            if (end && *end == 0) {
                if (!(x > 0) || !std::isfinite(x)) throw config_error("data mixture '" + text + "': weight '" + w + "' is not a positive number");
                weight = x;
                part.resize(colon);
            }
        }
        source_spec s;
        if (reg.contains(part)) {
            const auto& e = reg[part];
            const std::string where = registry.string() + ": " + part;
            if (!e.is_object()) throw config_error(where + ": should be an object {format, path, ...}");
            // every field through io::config_fields: a wrong type or an out-of-range number is a
            // config_error naming the registry file and "name.key"
            const io::config_fields f(e, registry.string(), part + ".");
            static const char* const known[] = {"format", "path", "image_folder", "image_shards", "weight", "pack", "min_similarity", "max_images"};
            for (const auto& item : e.items())
                if (std::find_if(std::begin(known), std::end(known), [&](const char* k) { return item.key() == k; }) == std::end(known))
                    f.fail(item.key(), "unknown key (known: format, path, image_folder, image_shards, weight, pack, min_similarity, max_images)");
            auto relative = [&](const char* k) { return f.has(k) ? base / f.str(k, "") : fs::path(); };
            s.format = f.str("format", s.format);
            s.path = relative("path");
            s.image_folder = relative("image_folder");
            s.image_shards = relative("image_shards");
            s.weight = f.number("weight", s.weight);
            if (!(s.weight >= 0)) f.fail("weight", "must be >= 0");
            s.pack = std::size_t(f.integer("pack", std::int64_t(s.pack), 1, 1 << 16));
            s.min_similarity = f.number("min_similarity", s.min_similarity);
            s.max_images = std::size_t(f.integer("max_images", std::int64_t(s.max_images), 0, 1 << 16));
            if (s.path.empty()) throw config_error(where + ": no \"path\"");
            s.name = part;
        } else if (fs::exists(part)) {
            s.path = part;
            s.name = fs::path(part).filename().string();
            if (s.name.empty()) s.name = fs::path(part).parent_path().filename().string();
        } else {
            throw config_error("data '" + part + "' is neither a name in " + (registry.empty() ? std::string("a registry (none given)") : registry.string()) +
                               " nor an existing file or folder");
        }
        if (weight > 0) s.weight = weight;
        for (const auto& o : out)
            if (o.name == s.name) s.name += "#" + std::to_string(out.size());
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace vila::data
