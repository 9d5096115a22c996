// vila/io/atomic_file.hpp — write a file so that a crash never leaves it half-written.
//
// Bytes go to "<name>.tmp-<pid>" in the same folder, are flushed and fsync'ed, and the file is
// renamed over the final name (atomic on POSIX within one filesystem); the folder is fsync'ed
// too so the rename itself survives a power loss. On any failure the temporary is removed and
// vila::io_error names the file.
#pragma once
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "../error.hpp"

namespace vila::io {

/// Calls write(FILE*) into a temporary, then atomically replaces `path` with it.
inline void write_atomically(const std::filesystem::path& path, const std::function<void(std::FILE*)>& write) {
    namespace fs = std::filesystem;
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    std::error_code ec;
    fs::create_directories(dir, ec);  // the real reason (permission, a file in the way), not fopen's ENOENT
    if (ec) throw io_error("cannot create the folder " + dir.string() + " for " + path.filename().string() + ": " + ec.message());
    const fs::path tmp = dir / (path.filename().string() + ".tmp-" + std::to_string(::getpid()));
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw io_error("cannot create " + tmp.string() + ": " + std::strerror(errno));
    try {
        write(f);
        if (std::fflush(f) != 0 || ::fsync(::fileno(f)) != 0)
            throw io_error("cannot write " + tmp.string() + ": " + std::strerror(errno));
    } catch (...) {
        std::fclose(f);
        fs::remove(tmp, ec);
        throw;
    }
    if (std::fclose(f) != 0) {
        fs::remove(tmp, ec);
        throw io_error("cannot close " + tmp.string() + ": " + std::strerror(errno));
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = std::strerror(errno);
        fs::remove(tmp, ec);
        throw io_error("cannot rename " + tmp.string() + " to " + path.string() + ": " + why);
    }
    const int dfd = ::open(dir.c_str(), O_RDONLY);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

/// Writes all bytes or throws io_error.
inline void write_all(std::FILE* f, const void* data, std::size_t n, const std::filesystem::path& what) {
    if (n && std::fwrite(data, 1, n, f) != n) throw io_error("cannot write " + what.string() + ": " + std::strerror(errno));
}

}  // namespace vila::io
