// vila/data/instruct.hpp — text-only data. Instruction rows (FLAN-style JSONL or JSON list:
// {"question", "answer"} as VILA stores FLAN, or {"inputs", "targets"} as FLAN ships) become a
// one-round conversation rendered by the run's chat template (loss on the answer); plain-text
// rows {"text": ...} become a pre-training text (loss on all of it, EOS appended). A record
// without images is tokenized as plain text, so a literal "<image>" here stays text (as in VILA).
#pragma once
#include <filesystem>
#include <string>

#include "source.hpp"

namespace vila::data {

class instruction_source : public source {
public:
    explicit instruction_source(const std::filesystem::path& file) : rows_(file) {}
    std::size_t size() const override { return rows_.size(); }
    std::string describe() const override { return "instructions:" + rows_.file().string(); }
    record get(std::size_t i) const override {
        const std::string where = rows_.where(i);
        const nlohmann::json row = rows_.row(i);
        detail::require_object(row, where);
        const bool qa = row.contains("question") || row.contains("answer");
        if (!qa && !(row.contains("inputs") || row.contains("targets")))
            throw format_error(where + ": an instruction row needs \"question\" and \"answer\" (or \"inputs\" and \"targets\")");
        record r;
        r.type = record::kind::conversation;
        r.where = where;
        const std::string q = detail::string_field(row, qa ? "question" : "inputs", where);
        const std::string a = detail::string_field(row, qa ? "answer" : "targets", where);
        r.turns = {{"human", q}, {"gpt", a}};
        return r;
    }

private:
    json_rows rows_;
};

class text_source : public source {
public:
    explicit text_source(const std::filesystem::path& file) : rows_(file) {}
    std::size_t size() const override { return rows_.size(); }
    std::string describe() const override { return "text:" + rows_.file().string(); }
    record get(std::size_t i) const override {
        const std::string where = rows_.where(i);
        const nlohmann::json row = rows_.row(i);
        detail::require_object(row, where);
        record r;
        r.type = record::kind::text;
        r.where = where;
        r.segments = {detail::string_field(row, "text", where)};
        return r;
    }

private:
    json_rows rows_;
};

}  // namespace vila::data
