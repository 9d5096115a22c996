// vila/io/safetensors.hpp — the safetensors format: memory-mapped reading, atomic writing,
// sharded checkpoints (model.safetensors.index.json).
//
// Layout: u64 little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ..., "__metadata__": {...}}
// then the data; offsets are relative to the data start.
// Validation is overflow-safe and complete: header length within the file, valid JSON, known
// dtypes, non-negative shapes, numel * dtype size == end - begin without overflow, offsets
// inside the data, no overlapping or duplicate tensors. Every failure throws
// vila::format_error naming the file and the tensor.
// F32, F16 and BF16 tensors convert to float or double on load.
#pragma once
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "../core/tensor.hpp"
#include "../error.hpp"
#include "atomic_file.hpp"
#include "json.hpp"

namespace vila::io {

enum class dtype { f32, f16, bf16, f64, i64, i32, i16, i8, u8, boolean };

inline std::size_t dtype_size(dtype d) {
    switch (d) {
        case dtype::f64: case dtype::i64: return 8;
        case dtype::f32: case dtype::i32: return 4;
        case dtype::f16: case dtype::bf16: case dtype::i16: return 2;
        default: return 1;
    }
}
inline const char* dtype_name(dtype d) {
    switch (d) {
        case dtype::f32: return "F32";
        case dtype::f16: return "F16";
        case dtype::bf16: return "BF16";
        case dtype::f64: return "F64";
        case dtype::i64: return "I64";
        case dtype::i32: return "I32";
        case dtype::i16: return "I16";
        case dtype::i8: return "I8";
        case dtype::u8: return "U8";
        case dtype::boolean: return "BOOL";
    }
    return "?";
}
inline bool parse_dtype(const std::string& s, dtype& d) {
    static const std::pair<const char*, dtype> names[] = {{"F32", dtype::f32}, {"F16", dtype::f16}, {"BF16", dtype::bf16},
                                                          {"F64", dtype::f64}, {"I64", dtype::i64}, {"I32", dtype::i32},
                                                          {"I16", dtype::i16}, {"I8", dtype::i8},   {"U8", dtype::u8},
                                                          {"BOOL", dtype::boolean}};
    for (const auto& [n, v] : names)
        if (s == n) return d = v, true;
    return false;
}

/// IEEE half -> float (exact).
inline float half_to_float(std::uint16_t h) {
    const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
    std::uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FFu, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else {  // subnormal: normalise
            int e = -1;
            do {
                ++e;
                mant <<= 1;
            } while (!(mant & 0x400u));
            bits = sign | (std::uint32_t(127 - 15 - e) << 23) | ((mant & 0x3FFu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}
inline float bf16_to_float(std::uint16_t b) {
    const std::uint32_t bits = std::uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}
/// float -> bfloat16, round to nearest even (NaN stays NaN).
inline std::uint16_t float_to_bf16(float f) {
    std::uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if ((bits & 0x7F800000u) == 0x7F800000u && (bits & 0x7FFFFFu)) return std::uint16_t((bits >> 16) | 0x40);
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    return std::uint16_t(bits >> 16);
}

/// One tensor's entry in a file.
struct tensor_info {
    std::string name;
    dtype type = dtype::f32;
    shape_t shape;
    std::uint64_t begin = 0, end = 0;  // relative to the data section
};

/// A read-only, memory-mapped safetensors file with a validated header.
class safetensors_file {
public:
    explicit safetensors_file(const std::filesystem::path& path) : path_(path.string()) {
        const int fd = ::open(path_.c_str(), O_RDONLY);
        if (fd < 0) throw io_error("cannot open " + path_ + ": " + std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            ::close(fd);
            throw io_error("cannot stat " + path_ + ": " + std::strerror(errno));
        }
        size_ = std::uint64_t(st.st_size);
        if (size_ > 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                ::close(fd);
                throw io_error("cannot map " + path_ + ": " + std::strerror(errno));
            }
            map_ = static_cast<const unsigned char*>(p);
        }
        ::close(fd);
        try {
            parse_header();
        } catch (...) {
            unmap();
            throw;
        }
    }
    ~safetensors_file() { unmap(); }
    safetensors_file(const safetensors_file&) = delete;
    safetensors_file& operator=(const safetensors_file&) = delete;

    const std::string& path() const noexcept { return path_; }
    const std::map<std::string, tensor_info>& tensors() const noexcept { return tensors_; }
    const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
    bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
    const tensor_info& info(const std::string& name) const {
        const auto it = tensors_.find(name);
        if (it == tensors_.end()) throw format_error(path_ + ": no tensor '" + name + "'");
        return it->second;
    }
    /// Raw bytes of a tensor (inside the mapping).
    const unsigned char* bytes(const tensor_info& t) const { return map_ + data_start_ + t.begin; }

    /// Converts a tensor into `out` (resized to its shape): floating dtypes into a floating T,
    /// integer dtypes (I8..I64, U8) into an integral T such as int32 (token ids of a fixture).
    template <class T, class B>
    void read(const std::string& name, tensor<T, B>& out) const {
        const tensor_info& t = info(name);
        std::vector<T> host(static_cast<std::size_t>(numel(t.shape)));
        const unsigned char* p = bytes(t);
        auto convert = [&](auto sample) {
            using S = decltype(sample);
            for (std::size_t i = 0; i < host.size(); ++i) {
                S v;
                std::memcpy(&v, p + sizeof(S) * i, sizeof(S));
                host[i] = T(v);
            }
        };
        if constexpr (std::is_integral<T>::value) {
            switch (t.type) {
                case dtype::i64: convert(std::int64_t()); break;
                case dtype::i32: convert(std::int32_t()); break;
                case dtype::i16: convert(std::int16_t()); break;
                case dtype::i8: convert(std::int8_t()); break;
                case dtype::u8: convert(std::uint8_t()); break;
                default:
                    throw format_error(path_ + ": tensor '" + name + "' has dtype " + dtype_name(t.type) +
                                       ", expected an integer type (I8, I16, I32, I64, U8)");
            }
        } else {
            switch (t.type) {
                case dtype::f32: convert(float()); break;
                case dtype::f64: convert(double()); break;
                case dtype::f16: case dtype::bf16:
                    for (std::size_t i = 0; i < host.size(); ++i) {
                        std::uint16_t v;
                        std::memcpy(&v, p + 2 * i, 2);
                        host[i] = T(t.type == dtype::f16 ? half_to_float(v) : bf16_to_float(v));
                    }
                    break;
                default:
                    throw format_error(path_ + ": tensor '" + name + "' has dtype " + dtype_name(t.type) +
                                       ", expected a floating type (F32, F16, BF16, F64)");
            }
        }
        out = tensor<T, B>::from_host(t.shape, host);
    }

private:
    void unmap() {
        if (map_) ::munmap(const_cast<unsigned char*>(map_), size_);
        map_ = nullptr;
    }
    [[noreturn]] void fail(const std::string& why) const { throw format_error(path_ + ": " + why); }

    void parse_header() {
        if (size_ < 8) fail("file is " + std::to_string(size_) + " bytes, too short for a safetensors header");
        std::uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | map_[i];
        if (n > size_ - 8) fail("header length " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size_) + " bytes)");
        data_start_ = 8 + n;
        const std::uint64_t data_size = size_ - data_start_;
        const char* h = reinterpret_cast<const char*>(map_ + 8);
        nlohmann::json j;
        std::set<std::string> seen;
        bool duplicate = false;
        std::string dup_name;
        try {
            j = nlohmann::json::parse(h, h + n, [&](int depth, nlohmann::json::parse_event_t ev, nlohmann::json& v) {
                if (depth == 1 && ev == nlohmann::json::parse_event_t::key && !seen.insert(v.get<std::string>()).second) {
                    duplicate = true;
                    dup_name = v.get<std::string>();
                }
                return true;
            });
        } catch (const nlohmann::json::exception& e) {
            fail(std::string("invalid JSON header: ") + e.what());
        }
        if (duplicate) fail("tensor '" + dup_name + "' appears twice in the header");
        if (!j.is_object()) fail("header is not a JSON object");
        std::vector<const tensor_info*> by_offset;
        for (const auto& [name, v] : j.items()) {
            if (name == "__metadata__") {
                if (!v.is_object()) fail("__metadata__ is not an object");
                for (const auto& [k, s] : v.items()) {
                    if (!s.is_string()) fail("__metadata__['" + k + "'] is not a string");
                    metadata_[k] = s.get<std::string>();
                }
                continue;
            }
            const std::string where = "tensor '" + name + "'";
            if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
                fail(where + ": expected {\"dtype\", \"shape\", \"data_offsets\"}");
            tensor_info t;
            t.name = name;
            if (!v["dtype"].is_string() || !parse_dtype(v["dtype"].get<std::string>(), t.type))
                fail(where + ": unknown dtype " + v["dtype"].dump());
            if (!v["shape"].is_array()) fail(where + ": shape is not an array");
            std::uint64_t count = 1;
            bool overflow = false;
            for (const auto& e : v["shape"]) {
                if (!e.is_number_unsigned() && !(e.is_number_integer() && e.get<long long>() >= 0))
                    fail(where + ": shape " + v["shape"].dump() + " has a negative or non-integer extent");
                const std::uint64_t x = e.get<std::uint64_t>();
                if (x && count > std::numeric_limits<std::uint64_t>::max() / x) overflow = true;
                count *= x;
                t.shape.push_back(index_t(x));
            }
            const std::uint64_t esz = dtype_size(t.type);
            if (overflow || count > std::numeric_limits<std::uint64_t>::max() / esz) fail(where + ": shape " + v["shape"].dump() + " overflows");
            const auto& off = v["data_offsets"];
            if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
                fail(where + ": data_offsets must be two non-negative integers");
            t.begin = off[0].get<std::uint64_t>();
            t.end = off[1].get<std::uint64_t>();
            if (t.begin > t.end) fail(where + ": data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] are reversed");
            if (t.end > data_size)
                fail(where + ": data [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + ") is not within the file's " +
                     std::to_string(data_size) + " data bytes (truncated or corrupted)");
            if (t.end - t.begin != count * esz)
                fail(where + ": shape " + v["shape"].dump() + " of " + dtype_name(t.type) + " needs " + std::to_string(count * esz) +
                     " bytes, data_offsets give " + std::to_string(t.end - t.begin));
            by_offset.push_back(&tensors_.emplace(name, std::move(t)).first->second);
        }
        std::sort(by_offset.begin(), by_offset.end(), [](const tensor_info* a, const tensor_info* b) { return a->begin < b->begin; });
        for (std::size_t i = 1; i < by_offset.size(); ++i)
            if (by_offset[i]->begin < by_offset[i - 1]->end && by_offset[i]->end > by_offset[i]->begin)
                fail("tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name + "' overlap");
    }

    std::string path_;
    const unsigned char* map_ = nullptr;
    std::uint64_t size_ = 0, data_start_ = 0;
    std::map<std::string, tensor_info> tensors_;
    std::map<std::string, std::string> metadata_;
};

/// A checkpoint of one file or several shards (model.safetensors.index.json).
class safetensors_checkpoint {
public:
    /// `path`: a .safetensors file, an index .json, or a folder holding either.
    explicit safetensors_checkpoint(const std::filesystem::path& path) {
        namespace fs = std::filesystem;
        fs::path p = path;
        if (fs::is_directory(p)) {
            if (fs::exists(p / "model.safetensors.index.json")) p = p / "model.safetensors.index.json";
            else if (fs::exists(p / "model.safetensors")) p = p / "model.safetensors";
            else throw io_error("no model.safetensors or model.safetensors.index.json in " + path.string());
        }
        if (p.extension() == ".json") {
            const nlohmann::json idx = read_json(p);
            if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
                throw format_error(p.string() + ": no \"weight_map\" object");
            std::map<std::string, std::size_t> shard_index;
            for (const auto& [name, file] : idx["weight_map"].items()) {
                if (!file.is_string()) throw format_error(p.string() + ": weight_map['" + name + "'] is not a file name");
                const std::string f = file.get<std::string>();
                if (!shard_index.count(f)) {
                    shard_index[f] = files_.size();
                    files_.push_back(std::make_unique<safetensors_file>(p.parent_path() / f));
                }
                const auto& shard = *files_[shard_index[f]];
                if (!shard.contains(name))
                    throw format_error(p.string() + ": weight_map puts '" + name + "' in " + f + ", which does not hold it");
                where_[name] = shard_index[f];
            }
        } else {
            files_.push_back(std::make_unique<safetensors_file>(p));
            for (const auto& [name, t] : files_[0]->tensors()) where_[name] = 0;
        }
    }
    bool contains(const std::string& name) const { return where_.count(name) != 0; }
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& [n, i] : where_) out.push_back(n);
        return out;
    }
    const safetensors_file& file_of(const std::string& name) const {
        const auto it = where_.find(name);
        if (it == where_.end())
            throw format_error((files_.empty() ? std::string("checkpoint") : files_[0]->path()) + ": missing tensor '" + name + "'");
        return *files_[it->second];
    }
    const tensor_info& info(const std::string& name) const { return file_of(name).info(name); }
    template <class T, class B>
    void read(const std::string& name, tensor<T, B>& out) const { file_of(name).read(name, out); }
    std::size_t shard_count() const noexcept { return files_.size(); }

private:
    std::vector<std::unique_ptr<safetensors_file>> files_;
    std::map<std::string, std::size_t> where_;
};

/// Tensors to write: name -> (values as float/double host data, shape). Written as F32 or BF16.
struct tensor_to_write {
    shape_t shape;
    std::vector<float> values;
};

/// Writes a safetensors file atomically. Names are sorted; the header is padded to 8 bytes.
inline void save_safetensors(const std::filesystem::path& path, const std::map<std::string, tensor_to_write>& tensors,
                             const std::map<std::string, std::string>& metadata = {}, dtype type = dtype::f32) {
    if (type != dtype::f32 && type != dtype::bf16) throw error("save_safetensors: only F32 and BF16 are written");
    nlohmann::json header = nlohmann::json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    std::uint64_t offset = 0;
    const std::uint64_t esz = dtype_size(type);
    for (const auto& [name, t] : tensors) {
        if (std::uint64_t(numel(t.shape)) != t.values.size())
            throw shape_error("save_safetensors: tensor '" + name + "' has shape " + to_string(t.shape) + " but " +
                              std::to_string(t.values.size()) + " values");
        const std::uint64_t bytes = t.values.size() * esz;
        header[name] = {{"dtype", dtype_name(type)}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string h = header.dump();
    while ((8 + h.size()) % 8) h += ' ';
    write_atomically(path, [&](std::FILE* f) {
        unsigned char len[8];
        for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>((std::uint64_t(h.size()) >> (8 * i)) & 0xFF);
        write_all(f, len, 8, path);
        write_all(f, h.data(), h.size(), path);
        for (const auto& [name, t] : tensors) {
            if (type == dtype::f32) {
                write_all(f, t.values.data(), t.values.size() * 4, path);
            } else {
                std::vector<std::uint16_t> b(t.values.size());
                for (std::size_t i = 0; i < b.size(); ++i) b[i] = float_to_bf16(t.values[i]);
                write_all(f, b.data(), b.size() * 2, path);
            }
        }
    });
}

}  // namespace vila::io
