// vila/tokenizer/json_fields.hpp — typed access to tokenizer.json fields with errors that name
// the file and the field ("tokenizer.json: model.merges[3]: expected a string").
#pragma once
#include <climits>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "../error.hpp"
#include "../io/json.hpp"

namespace vila::tokenizer::detail {

using json = nlohmann::json;

/// A JSON value plus where it came from, for error messages.
struct field {
    const json& value;
    std::string file, path;

    [[noreturn]] void fail(const std::string& why) const {
        throw format_error(file + ": " + (path.empty() ? std::string("(top level)") : path) + ": " + why);
    }
    bool has(const char* key) const { return value.is_object() && value.contains(key) && !value.at(key).is_null(); }
    field at(const char* key) const {
        if (!value.is_object()) fail("expected an object");
        if (!value.contains(key)) field{value, file, path + (path.empty() ? "" : ".") + key}.fail("missing");
        return {value.at(key), file, path + (path.empty() ? "" : ".") + key};
    }
    field item(std::size_t i) const { return {value.at(i), file, path + "[" + std::to_string(i) + "]"}; }
    std::string str() const {
        if (!value.is_string()) fail("expected a string, got " + std::string(value.type_name()));
        return value.get<std::string>();
    }
    bool boolean() const {
        if (!value.is_boolean()) fail("expected true or false, got " + std::string(value.type_name()));
        return value.get<bool>();
    }
    long long integer() const {
        if (!value.is_number_integer()) fail("expected an integer, got " + std::string(value.type_name()));
        return value.get<long long>();
    }
    /// An integer in [lo, hi]: range-checked before any narrowing.
    long long integer_in(long long lo, long long hi) const {
        const long long v = integer();
        if (!io::integer_within(value, lo, hi))
            fail("out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]: " + value.dump());
        return v;
    }
    /// A token id: within int32, one below its maximum so that `id + 1` (a vocabulary size) fits.
    std::int32_t token() const { return std::int32_t(integer_in(0, INT32_MAX - 1)); }
    const json& array() const {
        if (!value.is_array()) fail("expected an array, got " + std::string(value.type_name()));
        return value;
    }
    const json& object() const {
        if (!value.is_object()) fail("expected an object, got " + std::string(value.type_name()));
        return value;
    }
    std::string str_or(const char* key, const std::string& fallback) const { return has(key) ? at(key).str() : fallback; }
    bool bool_or(const char* key, bool fallback) const { return has(key) ? at(key).boolean() : fallback; }
    std::string type() const { return at("type").str(); }
};

}  // namespace vila::tokenizer::detail
