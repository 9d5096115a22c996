// vila/data/source.hpp — a dataset as random-access records: size() and get(i). A format is
// chosen at run time, so sources are small classes behind one interface (as the tokenizer's
// components are); samplers address record i and never hold a whole dataset in memory.
//
// json_rows indexes a JSONL file (one offset per non-blank line) or a JSON list (one offset per
// top-level element, found by a scanner that tracks strings and nesting) in one pass when it is
// opened; row(i) parses only that row. Every error names file:line.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "record.hpp"

namespace vila::data {

class source {
public:
    virtual ~source() = default;
    virtual std::size_t size() const = 0;
    /// Record i; throws vila::error (with file:line) when the record is bad.
    virtual record get(std::size_t i) const = 0;
    /// What the source reads ("llava:path/to/file.json"), for messages and metrics.
    virtual std::string describe() const = 0;
};

/// The rows of a JSONL file or a JSON list, indexed by byte offset.
class json_rows {
public:
    json_rows() = default;
    explicit json_rows(const std::filesystem::path& file) : file_(file) {
        std::ifstream in(file, std::ios::binary);
        if (!in) throw io_error("cannot open " + file.string());
        // One streaming pass in 1 MiB blocks: the file is never held whole.
        std::vector<char> buf(std::size_t(1) << 20);
        std::size_t have = 0, pos = 0, offset = 0;  // bytes in buf, cursor in buf, file offset of buf[0]
        auto peek = [&](char& c) {
            if (pos == have) {
                offset += have;
                in.read(buf.data(), std::streamsize(buf.size()));
                have = std::size_t(in.gcount());
                pos = 0;
                if (have == 0) return false;
            }
            c = buf[pos];
            return true;
        };
        auto at = [&] { return offset + pos; };
        std::size_t line = 1;
        char c = 0;
        auto skip_space = [&] {
            while (peek(c) && (c == ' ' || c == '\t' || c == '\r' || c == '\n')) {
                if (c == '\n') ++line;
                ++pos;
            }
        };
        skip_space();
        auto fail = [&](const std::string& why) { throw format_error(file.string() + ":" + std::to_string(line) + ": " + why); };
        if (peek(c) && c == '[') {  // a JSON list: one row per top-level element
            ++pos;
            int depth = 0;
            bool in_string = false, escaped = false, expect_row = true, closed = false;
            for (; peek(c); ++pos) {
                if (c == '\n') ++line;
                if (in_string) {
                    if (escaped) escaped = false;
                    else if (c == '\\') escaped = true;
                    else if (c == '"') in_string = false;
                    continue;
                }
                if (depth == 0 && expect_row && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
                    if (c == ']') {
                        closed = true;
                        break;
                    }
                    rows_.push_back({at(), 0, line});
                    expect_row = false;
                }
                if (c == '"') in_string = true;
                else if (c == '{' || c == '[') ++depth;
                else if (c == '}' || c == ']') {
                    if (depth == 0) {
                        closed = true;
                        break;
                    }
                    --depth;
                } else if (c == ',' && depth == 0) {
                    rows_.back().end = at();
                    expect_row = true;
                }
            }
            if (!closed) fail("the JSON list is not closed (truncated file?)");
            if (expect_row && !rows_.empty()) fail("a trailing comma in the JSON list");
            if (!rows_.empty()) rows_.back().end = at();
            ++pos;
            skip_space();
            if (peek(c)) fail("text after the JSON list");
        } else {  // JSONL: one row per non-blank line
            std::size_t start = at();
            bool blank = true;
            for (;; ++pos) {
                const bool more = peek(c);
                if (!more || c == '\n') {
                    if (!blank) rows_.push_back({start, at(), line});
                    if (!more) break;
                    start = at() + 1;
                    blank = true;
                    ++line;
                } else if (c != ' ' && c != '\t' && c != '\r') {
                    blank = false;
                }
            }
        }
    }

    std::size_t size() const noexcept { return rows_.size(); }
    const std::filesystem::path& file() const noexcept { return file_; }
    std::string where(std::size_t i) const { return file_.string() + ":" + std::to_string(rows_.at(i).line); }

    /// Row i parsed; format_error "file:line: invalid JSON" when it does not parse.
    nlohmann::json row(std::size_t i) const {
        const auto& r = rows_.at(i);
        std::ifstream in(file_, std::ios::binary);
        if (!in) throw io_error("cannot open " + file_.string());
        std::string text(r.end - r.begin, '\0');
        in.seekg(std::streamoff(r.begin));
        if (!in.read(text.data(), std::streamsize(text.size()))) throw format_error(where(i) + ": the file shrank since it was indexed");
        try {
            return nlohmann::json::parse(text);
        } catch (const nlohmann::json::exception& e) {
            throw format_error(where(i) + ": invalid JSON: " + e.what());
        }
    }

private:
    struct span {
        std::size_t begin, end, line;
    };
    std::filesystem::path file_;
    std::vector<span> rows_;
};

namespace detail {
/// A string field of a row; format_error naming the row and the key when absent or not a string.
inline std::string string_field(const nlohmann::json& row, const char* key, const std::string& where) {
    const auto it = row.find(key);
    if (it == row.end()) throw format_error(where + ": missing \"" + key + "\"");
    if (!it->is_string()) throw format_error(where + ": \"" + key + "\" should be a string, is " + it->type_name());
    return it->get<std::string>();
}
inline void require_object(const nlohmann::json& row, const std::string& where) {
    if (!row.is_object()) throw format_error(where + ": a row should be a JSON object, is " + std::string(row.type_name()));
}
}  // namespace detail

}  // namespace vila::data
