// vila/eval/sets.hpp — evaluation sets from files (the synthetic world's eval/ folder, or your
// own in the same shapes; image paths as LLaVA files give them, data/llava.hpp):
//   VQA       LLaVA-style rows {"image", "conversations": [human question, gpt answer], "answer":
//             "..." | ["...", x10]}: the question is the first human turn (VILA's <image> marks
//             applied), the references "answer" or else the first gpt turn
//   choice    JSONL {"prompt" or "question", "choices": [...], "answer": index | text,
//             "image": [...]?}: continuations "<separator><choice><suffix>" (separator " " and
//             suffix "." unless the row says otherwise: an episode whose prompt ends in "\n"
//             gives separator ""); a "question" is put in the chat template's prompt, a "prompt" is
//             used as it is (in-context episodes are pre-training text)
//   text      any data source (data/open.hpp) rendered for perplexity
#pragma once
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "../data/llava.hpp"
#include "tasks.hpp"

namespace vila::eval {

inline std::vector<vqa_item> read_vqa(const std::filesystem::path& file, const std::filesystem::path& image_folder = {}) {
    const data::llava_source src(file, {image_folder});
    const data::json_rows rows(file);
    std::vector<vqa_item> out;
    for (std::size_t i = 0; i < src.size(); ++i) {
        const data::record r = src.get(i);
        const nlohmann::json row = rows.row(i);
        vqa_item it;
        it.id = row.contains("id") ? (row["id"].is_string() ? row["id"].get<std::string>() : row["id"].dump()) : std::to_string(i);
        it.question = r.turns.at(0).value;
        if (const auto a = row.find("answer"); a != row.end()) {
            if (a->is_string()) it.answers = {a->get<std::string>()};
            else if (a->is_array())
                for (const auto& x : *a) {
                    if (!x.is_string()) throw format_error(r.where + ": \"answer\" entries should be strings");
                    it.answers.push_back(x.get<std::string>());
                }
            else throw format_error(r.where + ": \"answer\" should be a string or a list of strings");
        } else if (r.turns.size() >= 2) {
            it.answers = {r.turns[1].value};
        }
        if (it.answers.empty()) throw format_error(r.where + ": no answer (an \"answer\" field or a gpt turn)");
        it.images = r.images;
        out.push_back(std::move(it));
    }
    return out;
}

/// `conv` renders "question" rows (none, vicuna_v1, llama_3, hermes-2, plain).
inline std::vector<choice_item> read_choices(const std::filesystem::path& file, const std::string& conv,
                                             const std::filesystem::path& image_folder = {}) {
    const data::json_rows rows(file);
    const std::filesystem::path base = file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
    std::vector<choice_item> out;
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const std::string where = rows.where(i);
        const nlohmann::json row = rows.row(i);
        if (!row.is_object()) throw format_error(where + ": a row should be an object");
        choice_item it;
        it.id = row.contains("id") ? (row["id"].is_string() ? row["id"].get<std::string>() : row["id"].dump()) : std::to_string(i);
        std::string suffix, separator;
        try {
            suffix = row.value("suffix", std::string("."));
            separator = row.value("separator", std::string(" "));
        } catch (const nlohmann::json::exception&) {
            throw format_error(where + ": \"suffix\" and \"separator\" should be strings");
        }
        const auto ch = row.find("choices");
        if (ch == row.end() || !ch->is_array() || ch->empty()) throw format_error(where + ": a row needs a non-empty \"choices\" list");
        std::vector<std::string> names;
        for (const auto& c : *ch) {
            if (!c.is_string()) throw format_error(where + ": \"choices\" should be strings");
            names.push_back(c.get<std::string>());
            it.choices.push_back(separator + names.back() + suffix);
        }
        const auto a = row.find("answer");
        if (a == row.end()) throw format_error(where + ": no \"answer\"");
        if (a->is_number_unsigned()) it.answer = a->get<std::size_t>();
        else if (a->is_string()) it.answer = std::size_t(std::find(names.begin(), names.end(), a->get<std::string>()) - names.begin());
        else throw format_error(where + ": \"answer\" should be a choice's index or text");
        if (it.answer >= names.size()) throw format_error(where + ": the answer is not one of the choices");
        it.answer_text = names[it.answer];
        if (row.contains("prompt")) {
            it.prompt = data::detail::string_field(row, "prompt", where);
        } else {
            const auto p = tokenizer::render_prompt(conv, data::detail::string_field(row, "question", where));
            it.prompt = p.text;
            it.add_special_tokens = p.add_special_tokens;
        }
        if (const auto im = row.find("image"); im != row.end() && !im->is_null()) {
            const auto files = im->is_array() ? *im : nlohmann::json::array({*im});
            for (const auto& f : files) {
                if (!f.is_string()) throw format_error(where + ": \"image\" entries should be strings");
                it.images.push_back({data::resolve_image(f.get<std::string>(), base, image_folder, where), "", 0, 0, false});
            }
        }
        if (tokenizer::count_image_marks(it.prompt) != it.images.size())
            throw format_error(where + ": " + std::to_string(tokenizer::count_image_marks(it.prompt)) + " <image> marks but " +
                               std::to_string(it.images.size()) + " images");
        out.push_back(std::move(it));
    }
    return out;
}

}  // namespace vila::eval
