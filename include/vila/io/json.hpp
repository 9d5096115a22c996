// vila/io/json.hpp — the one way vila reads and writes JSON files.
//
// read_json: io_error when the file cannot be opened, format_error "<file>: invalid JSON: ..."
// when it does not parse. write_json: pretty-printed, written atomically (io/atomic_file.hpp).
// Readers of config.json, tokenizer.json, preprocessor configs, run state and optimizer
// metadata all go through here, so a broken file gets the same kind of error everywhere.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

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

/// A small text file (a chat template): io_error when it cannot be read or exceeds `limit` bytes.
inline std::string read_text(const std::filesystem::path& file, std::uintmax_t limit = std::uintmax_t(1) << 24) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec) throw io_error("cannot read " + file.string() + ": " + ec.message());
    if (size > limit) throw io_error(file.string() + ": " + std::to_string(size) + " bytes, over the limit of " + std::to_string(limit));
    std::ifstream in(file, std::ios::binary);
    if (!in) throw io_error("cannot open " + file.string());
    std::string s(std::size_t(size), '\0');
    in.read(s.data(), std::streamsize(size));
    if (std::size_t(in.gcount()) != s.size()) throw io_error("cannot read " + file.string());
    return s;
}

/// Whether the JSON integer `v` lies in [lo, hi], compared before any conversion: an unsigned
/// value may exceed int64 (2^64 - 1 must not wrap to -1). The one range check of every reader.
inline bool integer_within(const nlohmann::json& v, std::int64_t lo, std::int64_t hi) {
    if (v.is_number_unsigned()) {
        const std::uint64_t u = v.get<std::uint64_t>();
        return hi >= 0 && u <= std::uint64_t(hi) && (lo <= 0 || u >= std::uint64_t(lo));
    }
    return v.is_number_integer() && v.get<std::int64_t>() >= lo && v.get<std::int64_t>() <= hi;
}

/// Typed reads of a config object's keys (config.json, preprocessor_config.json, ...): a wrong
/// type, a non-finite number or an out-of-range integer is a config_error naming the file and
/// the key, never nlohmann's type_error or a narrowing (1e300 read as an int). A key that is
/// absent or null takes the default.
class config_fields {
public:
    config_fields(const nlohmann::json& j, std::string file, std::string prefix = {})
        : j_(j), file_(std::move(file)), prefix_(std::move(prefix)) {
        if (!j_.is_object()) throw config_error(file_ + ": " + (prefix_.empty() ? "(top level)" : prefix_) + ": expected an object");
    }
    [[noreturn]] void fail(const std::string& key, const std::string& why) const {
        throw config_error(file_ + ": " + prefix_ + key + ": " + why);
    }
    bool has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }
    const nlohmann::json& raw(const char* key) const { return j_.at(key); }
    std::string str(const char* key, const std::string& fallback) const {
        if (!has(key)) return fallback;
        if (!j_.at(key).is_string()) fail(key, "expected a string, got " + j_.at(key).dump());
        return j_.at(key).get<std::string>();
    }
    bool boolean(const char* key, bool fallback) const {
        if (!has(key)) return fallback;
        if (!j_.at(key).is_boolean()) fail(key, "expected true or false, got " + j_.at(key).dump());
        return j_.at(key).get<bool>();
    }
    double number(const char* key, double fallback) const {
        if (!has(key)) return fallback;
        const auto& v = j_.at(key);
        if (!v.is_number() || !std::isfinite(v.get<double>())) fail(key, "expected a finite number, got " + v.dump());
        return v.get<double>();
    }
    std::int64_t integer(const char* key, std::int64_t fallback, std::int64_t lo, std::int64_t hi) const {
        return has(key) ? integer_value(key, j_.at(key), lo, hi) : fallback;
    }
    /// An integer in [lo, hi], checked before any conversion.
    std::int64_t integer_value(const std::string& key, const nlohmann::json& v, std::int64_t lo, std::int64_t hi) const {
        if (!v.is_number_integer()) fail(key, "expected an integer, got " + v.dump());
        if (!integer_within(v, lo, hi)) fail(key, v.dump() + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        return v.get<std::int64_t>();
    }
    /// A nested object, read with the same rules ("size.height" in errors).
    config_fields object(const char* key) const {
        if (!has(key) || !j_.at(key).is_object()) fail(key, "expected an object");
        return config_fields(j_.at(key), file_, prefix_ + key + ".");
    }
    const std::string& file() const noexcept { return file_; }

private:
    const nlohmann::json& j_;
    std::string file_, prefix_;
};

/// Writes `j` (indented, newline-terminated) atomically.
inline void write_json(const std::filesystem::path& file, const nlohmann::json& j) {
    const std::string s = j.dump(2) + "\n";
    write_atomically(file, [&](std::FILE* f) { write_all(f, s.data(), s.size(), file); });
}

}  // namespace vila::io
