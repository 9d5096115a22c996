// vila/data/text.hpp — plain-text pre-training data: JSONL rows {"text": "..."} tokenized,
// each followed by EOS, joined into one stream and cut into seq_len chunks (HF's group_texts:
// the last partial chunk is dropped). Each chunk is one sample whose labels are its ids.
// Errors name file:line.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "../tokenizer/tokenizer.hpp"
#include "sample.hpp"

namespace vila::data {

struct text_chunks_info {
    std::size_t rows = 0, tokens = 0, dropped_tokens = 0;
};

inline std::vector<sample> text_jsonl_chunks(const std::filesystem::path& file, const tokenizer::tokenizer& tok, index_t seq_len,
                                             std::int32_t eos, text_chunks_info* info = nullptr) {
    if (seq_len < 2) throw config_error("vila::data::text_jsonl: seq_len must be at least 2");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw io_error("cannot open " + file.string());
    std::vector<std::int32_t> stream;
    std::string line;
    std::size_t lineno = 0, rows = 0;
    while (std::getline(in, line)) {
        ++lineno;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = file.string() + ":" + std::to_string(lineno);
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(line);
        } catch (const nlohmann::json::exception& e) {
            throw format_error(where + ": invalid JSON: " + e.what());
        }
        if (!j.is_object() || !j.contains("text") || !j["text"].is_string())
            throw format_error(where + ": a row needs a string \"text\" field");
        const auto ids = tok.encode(j["text"].get<std::string>(), false);
        stream.insert(stream.end(), ids.begin(), ids.end());
        stream.push_back(eos);
        ++rows;
    }
    const std::size_t n = stream.size() / std::size_t(seq_len);
    if (n == 0)
        throw config_error(file.string() + ": " + std::to_string(stream.size()) + " tokens in " + std::to_string(rows) +
                           " rows make no chunk of " + std::to_string(seq_len) + " tokens");
    std::vector<sample> out(n);
    for (std::size_t i = 0; i < n; ++i)
        out[i].ids.assign(stream.begin() + std::ptrdiff_t(i * std::size_t(seq_len)), stream.begin() + std::ptrdiff_t((i + 1) * std::size_t(seq_len)));
    if (info) *info = {rows, stream.size(), stream.size() - n * std::size_t(seq_len)};
    return out;
}

}  // namespace vila::data
