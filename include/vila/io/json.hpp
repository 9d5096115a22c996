// vila/io/json.hpp — the one way vila reads and writes JSON files.
//
// read_json: io_error when the file cannot be opened, format_error "<file>: invalid JSON: ..."
// when it does not parse. write_json: pretty-printed, written atomically (io/atomic_file.hpp).
// Readers of config.json, tokenizer.json, preprocessor configs, run state and optimizer
// metadata all go through here, so a broken file gets the same kind of error everywhere.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "atomic_file.hpp"

namespace vila::io {

inline nlohmann::json read_json(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw io_error("cannot open " + file.string());
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
        throw format_error(file.string() + ": invalid JSON: " + e.what());
    }
}

/// Writes `j` (indented, newline-terminated) atomically.
inline void write_json(const std::filesystem::path& file, const nlohmann::json& j) {
    const std::string s = j.dump(2) + "\n";
    write_atomically(file, [&](std::FILE* f) { write_all(f, s.data(), s.size(), file); });
}

}  // namespace vila::io
