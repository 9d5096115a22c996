// vila/data/llava.hpp — LLaVA / VILA conversation data: a JSON list or JSONL of rows
//   {"id": ..., "image": "a.jpg" | ["a.jpg", "b.jpg"] (absent: text-only),
//    "conversations": [{"from": "human", "value": "<image>\nWhat is ..."}, {"from": "gpt", "value": "..."}]}
// Image paths are relative to `image_folder` (default: the file's own folder, then images/
// beside it). VILA's preprocess_multimodal is applied to rows with images: "<image>\n" is
// prepended to the first turn when no turn has a mark, and in each turn with marks the text is
// split at the marks, each piece stripped, and the pieces joined with "<image>\n" (a piece that
// precedes a mark gets a trailing space; the whole is stripped). The marks must then number
// the images.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "source.hpp"

namespace vila::data {

struct llava_options {
    std::filesystem::path image_folder;  // "" = the file's folder, then images/ beside it
};

namespace detail {
inline std::string strip(const std::string& s) {
    const char* ws = " \t\n\r\f\v";
    const std::size_t b = s.find_first_not_of(ws);
    if (b == std::string::npos) return "";
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

/// VILA's preprocess_multimodal on one conversation that has images.
inline void vila_image_marks(tokenizer::conversation& turns) {
    const std::string mark = tokenizer::image_placeholder;
    bool any = false;
    for (const auto& t : turns) any = any || t.value.find(mark) != std::string::npos;
    for (std::size_t k = 0; k < turns.size(); ++k) {
        std::string& v = turns[k].value;
        if (k == 0 && !any) v = mark + "\n" + v;
        if (v.find(mark) == std::string::npos) continue;
        std::vector<std::string> pieces;
        for (std::size_t at = 0;;) {
            const std::size_t next = v.find(mark, at);
            pieces.push_back(strip(v.substr(at, next == std::string::npos ? std::string::npos : next - at)));
            if (next == std::string::npos) break;
            at = next + mark.size();
        }
        std::string joined;
        for (std::size_t p = 0; p < pieces.size(); ++p) {
            if (p > 0) joined += mark + "\n";
            joined += pieces[p];
            if (p + 1 < pieces.size() && (pieces[p].empty() || pieces[p].back() != '\n')) joined += ' ';
        }
        v = strip(joined);
    }
}

/// Roles and order: non-empty, human first, alternating; errors name the row.
inline void check_turns(const tokenizer::conversation& turns, const std::string& where) {
    if (turns.empty()) throw format_error(where + ": empty conversation");
    for (std::size_t k = 0; k < turns.size(); ++k) {
        const auto& f = turns[k].from;
        const bool human = f == "human" || f == "user";
        if (!human && f != "gpt" && f != "assistant")
            throw format_error(where + ": turn " + std::to_string(k) + " has unknown role '" + f + "' (human/user or gpt/assistant)");
        if (human != (k % 2 == 0))
            throw format_error(where + ": turn " + std::to_string(k) + " should be from the " + (k % 2 == 0 ? "human" : "assistant") +
                               " (turns alternate, human first)");
    }
}
}  // namespace detail

/// An image path as LLaVA-style files give it: absolute, under `image_folder` when one is given,
/// else beside the file (`base`), then in images/ beside it. io_error naming `where` if absent.
inline std::filesystem::path resolve_image(const std::string& name, const std::filesystem::path& base, const std::filesystem::path& image_folder,
                                           const std::string& where) {
    namespace fs = std::filesystem;
    const fs::path p(name);
    if (p.is_absolute() || !image_folder.empty()) {
        const fs::path full = p.is_absolute() ? p : image_folder / p;
        if (!fs::exists(full)) throw io_error(where + ": missing image " + name + " (looked in " + full.parent_path().string() + ")");
        return full;
    }
    if (fs::exists(base / p)) return base / p;
    if (fs::exists(base / "images" / p)) return base / "images" / p;
    throw io_error(where + ": missing image " + name + " (looked in " + base.string() + " and " + (base / "images").string() + ")");
}

class llava_source : public source {
public:
    explicit llava_source(const std::filesystem::path& file, llava_options o = {}) : rows_(file), opt_(std::move(o)) {
        base_ = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
    }
    std::size_t size() const override { return rows_.size(); }
    std::string describe() const override { return "llava:" + rows_.file().string(); }

    record get(std::size_t i) const override {
        const std::string where = rows_.where(i);
        const nlohmann::json row = rows_.row(i);
        detail::require_object(row, where);
        record r;
        r.type = record::kind::conversation;
        r.where = where;
        const auto conv = row.find("conversations");
        if (conv == row.end() || !conv->is_array()) throw format_error(where + ": missing \"conversations\" list");
        for (const auto& t : *conv) {
            if (!t.is_object()) throw format_error(where + ": a turn should be an object {\"from\", \"value\"}");
            r.turns.push_back({detail::string_field(t, "from", where), detail::string_field(t, "value", where)});
        }
        detail::check_turns(r.turns, where);
        std::vector<std::string> files;
        if (const auto im = row.find("image"); im != row.end() && !im->is_null()) {
            if (im->is_string()) files.push_back(im->get<std::string>());
            else if (im->is_array())
                for (const auto& f : *im) {
                    if (!f.is_string()) throw format_error(where + ": \"image\" entries should be strings");
                    files.push_back(f.get<std::string>());
                }
            else throw format_error(where + ": \"image\" should be a path or a list of paths");
        }
        if (!files.empty()) detail::vila_image_marks(r.turns);
        std::size_t marks = 0;
        for (const auto& t : r.turns) marks += tokenizer::count_image_marks(t.value);
        if (marks != files.size())
            throw format_error(where + ": " + std::to_string(marks) + " <image> mark" + (marks == 1 ? "" : "s") + " but " +
                               std::to_string(files.size()) + " image" + (files.size() == 1 ? "" : "s"));
        for (const auto& f : files) r.images.push_back({resolve(f, where), "", 0, 0, false});
        return r;
    }

private:
    std::filesystem::path resolve(const std::string& name, const std::string& where) const {
        return resolve_image(name, base_, opt_.image_folder, where);
    }

    json_rows rows_;
    llava_options opt_;
    std::filesystem::path base_;
};

}  // namespace vila::data
