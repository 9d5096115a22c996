// vila/io/tar.hpp — tar archives (POSIX ustar, GNU long names, pax path records) read in place:
// webdataset shards are indexed once when opened (name, offset, size of every member) and a
// member is read by seeking to it, with no extraction to disk. Nothing is sized from a header
// before it is checked against the file: a member that declares more bytes than the file holds
// is indexed as truncated and reading it throws format_error naming "shard:member".
//
// write_tar() writes a reproducible archive: members in the given order, mode 0644, mtime, uid
// and gid 0, empty owner names (the synthetic world and the tests compare files byte for byte).
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "atomic_file.hpp"

namespace vila::io {

struct tar_member {
    std::string name;
    std::uint64_t offset = 0;  // of the data, from the start of the archive
    std::uint64_t size = 0;    // as declared by the header
    bool truncated = false;    // the archive ends inside the data
};

namespace detail {
inline constexpr std::size_t tar_block = 512;

/// A numeric header field: octal digits (NUL/space padded) or GNU base-256 (high bit set).
inline std::uint64_t tar_number(const unsigned char* f, std::size_t n, const std::string& where, const char* field) {
    std::uint64_t v = 0;
    if (f[0] & 0x80) {  // base-256, big endian; the first byte's high bit is the marker
        if (f[0] & 0x40) throw format_error(where + ": negative " + field + " in a tar header");
        v = f[0] & 0x3f;
        for (std::size_t i = 1; i < n; ++i) {
            if (v >> 56) throw format_error(where + ": " + field + " in a tar header does not fit 64 bits");
            v = (v << 8) | f[i];
        }
        return v;
    }
    std::size_t i = 0;
    while (i < n && f[i] == ' ') ++i;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; ++i) {
        if (v >> 60) throw format_error(where + ": " + field + " in a tar header does not fit 64 bits");
        v = v * 8 + std::uint64_t(f[i] - '0');
    }
    for (; i < n; ++i)
        if (f[i] != ' ' && f[i] != '\0') throw format_error(where + ": " + field + " in a tar header is not an octal number");
    return v;
}

inline std::string tar_string(const unsigned char* f, std::size_t n) {
    std::size_t len = 0;
    while (len < n && f[len] != '\0') ++len;
    return std::string(reinterpret_cast<const char*>(f), len);
}

/// The "path" record of a pax extended header ("LEN key=value\n" records), or "".
inline std::string pax_path(const std::string& body, const std::string& where) {
    std::size_t at = 0;
    std::string path;
    while (at < body.size()) {
        const std::size_t sp = body.find(' ', at);
        if (sp == std::string::npos) break;
        std::uint64_t len = 0;
        for (std::size_t i = at; i < sp; ++i) {
            if (body[i] < '0' || body[i] > '9' || len > body.size()) throw format_error(where + ": malformed pax record length");
            len = len * 10 + std::uint64_t(body[i] - '0');
        }
        if (len <= sp - at + 1 || at + len > body.size() || body[at + len - 1] != '\n') throw format_error(where + ": malformed pax record");
        const std::string rec = body.substr(sp + 1, std::size_t(at + len - 1 - (sp + 1)));
        if (rec.rfind("path=", 0) == 0) path = rec.substr(5);
        at += std::size_t(len);
    }
    return path;
}
}  // namespace detail

/// The members of a tar file, indexed in one pass over its headers.
class tar_archive {
public:
    tar_archive() = default;
    explicit tar_archive(const std::filesystem::path& file) : file_(file) {
        std::error_code ec;
        const std::uint64_t total = std::filesystem::file_size(file, ec);
        if (ec) throw io_error("cannot open " + file.string() + ": " + ec.message());
        std::ifstream in(file, std::ios::binary);
        if (!in) throw io_error("cannot open " + file.string());
        const std::string shard = file.string();
        std::uint64_t at = 0;
        std::string long_name;  // from a GNU 'L' or pax 'x' header, for the next member
        unsigned char h[detail::tar_block];
        while (at + detail::tar_block <= total) {
            in.seekg(std::streamoff(at));
            if (!in.read(reinterpret_cast<char*>(h), detail::tar_block)) throw io_error(shard + ": read failed at offset " + std::to_string(at));
            bool zero = true;
            for (unsigned char c : h) zero = zero && c == 0;
            if (zero) return;  // end-of-archive marker
            const std::string where = shard + " (header at offset " + std::to_string(at) + ")";
            std::uint64_t sum = 0;
            for (std::size_t i = 0; i < detail::tar_block; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
            bool sum_ok = false;
            try {
                sum_ok = detail::tar_number(h + 148, 8, where, "checksum") == sum;
            } catch (const format_error&) {
            }
            if (!sum_ok) throw format_error(where + ": bad header checksum (not a tar file, or corrupt)");
            const std::uint64_t size = detail::tar_number(h + 124, 12, where, "size");
            const char type = char(h[156]);
            std::string name = detail::tar_string(h, 100);
            if (std::memcmp(h + 257, "ustar", 5) == 0) {
                const std::string prefix = detail::tar_string(h + 345, 155);
                if (!prefix.empty()) name = prefix + "/" + name;
            }
            const std::uint64_t data = at + detail::tar_block;
            const bool truncated = size > total - data;
            if (!long_name.empty()) name = std::move(long_name), long_name.clear();
            if (type == 'L' || type == 'x') {  // metadata for the next member, read now
                if (truncated) throw format_error(where + ": truncated extended header");
                if (size > (1u << 20)) throw format_error(where + ": extended header of " + std::to_string(size) + " bytes");
                std::string body(std::size_t(size), '\0');
                in.seekg(std::streamoff(data));
                in.read(body.data(), std::streamsize(size));
                long_name = type == 'L' ? std::string(body.c_str()) : detail::pax_path(body, where);
            } else if (type == '0' || type == '\0' || type == '7') {
                members_.push_back({name, data, size, truncated});
            }  // directories, links, global pax headers: nothing to index
            if (truncated) return;
            at = data + (size + detail::tar_block - 1) / detail::tar_block * detail::tar_block;
        }
    }

    const std::filesystem::path& file() const noexcept { return file_; }
    const std::vector<tar_member>& members() const noexcept { return members_; }

    /// The bytes of member i; format_error "shard:member" when the archive ends inside it.
    std::vector<unsigned char> read(std::size_t i) const { return read(members_.at(i)); }
    std::vector<unsigned char> read(const tar_member& m) const { return read_member(file_, m); }

    static std::vector<unsigned char> read_member(const std::filesystem::path& file, const tar_member& m) {
        if (m.truncated) throw format_error(file.string() + ":" + m.name + ": truncated tar member (declares " + std::to_string(m.size) + " bytes)");
        std::ifstream in(file, std::ios::binary);
        if (!in) throw io_error("cannot open " + file.string());
        std::vector<unsigned char> out(std::size_t(m.size));
        in.seekg(std::streamoff(m.offset));
        if (!in.read(reinterpret_cast<char*>(out.data()), std::streamsize(m.size)))
            throw format_error(file.string() + ":" + m.name + ": truncated tar member (the file shrank since it was indexed)");
        return out;
    }

private:
    std::filesystem::path file_;
    std::vector<tar_member> members_;
};

/// Writes members {name, bytes} as a reproducible ustar archive, atomically.
inline void write_tar(const std::filesystem::path& file, const std::vector<std::pair<std::string, std::string>>& members) {
    write_atomically(file, [&](std::FILE* f) {
        for (const auto& [name, bytes] : members) {
            unsigned char h[detail::tar_block] = {};
            std::string base = name, prefix;
            if (base.size() > 100) {  // ustar splits a long path at a '/' into prefix + name
                const std::size_t cut = name.rfind('/', 155);
                if (cut == std::string::npos || name.size() - cut - 1 > 100 || cut == 0)
                    throw config_error(file.string() + ": member name '" + name + "' is too long for ustar");
                prefix = name.substr(0, cut);
                base = name.substr(cut + 1);
            }
            std::memcpy(h, base.data(), base.size());
            std::memcpy(h + 345, prefix.data(), prefix.size());
            std::snprintf(reinterpret_cast<char*>(h + 100), 8, "%07o", 0644u);
            std::snprintf(reinterpret_cast<char*>(h + 108), 8, "%07o", 0u);
            std::snprintf(reinterpret_cast<char*>(h + 116), 8, "%07o", 0u);
            if (bytes.size() > 077777777777ull) throw config_error(file.string() + ": member '" + name + "' is too large for ustar");
            std::snprintf(reinterpret_cast<char*>(h + 124), 12, "%011llo", static_cast<unsigned long long>(bytes.size()));
            std::snprintf(reinterpret_cast<char*>(h + 136), 12, "%011o", 0u);
            h[156] = '0';
            std::memcpy(h + 257, "ustar", 6);
            std::memcpy(h + 263, "00", 2);
            std::memset(h + 148, ' ', 8);
            unsigned sum = 0;
            for (unsigned char c : h) sum += c;
            std::snprintf(reinterpret_cast<char*>(h + 148), 8, "%06o", sum);  // six digits, NUL, space
            h[155] = ' ';
            write_all(f, h, sizeof h, file);
            write_all(f, bytes.data(), bytes.size(), file);
            static const unsigned char pad[detail::tar_block] = {};
            const std::size_t rest = (detail::tar_block - bytes.size() % detail::tar_block) % detail::tar_block;
            write_all(f, pad, rest, file);
        }
        static const unsigned char end[2 * detail::tar_block] = {};
        write_all(f, end, sizeof end, file);
    });
}

}  // namespace vila::io
