// vila/io/atomic_file.hpp — write a file so that a crash never leaves it half-written.
//
// Bytes go to "<name>.tmp-<pid>" in the same folder, are flushed and fsync'ed, and the file is
// renamed over the final name (atomic on POSIX within one filesystem); the folder is fsync'ed
// too so the rename itself survives a power loss. On any failure the temporary is removed and
// vila::io_error names the file; a temporary that a killed writer left (its process is gone)
// is removed by the next write of the same file. Folders as a unit: io/folder.hpp.
#pragma once
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <signal.h>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "../error.hpp"

namespace vila::io {

namespace detail {
/// True when process `pid` may still be running (kill(pid, 0) succeeds or is merely not allowed).
inline bool process_alive(long long pid) {
    if (pid <= 0 || pid > 0x3fffffff) return false;
    if (pid == ::getpid()) return false;  // ours: an earlier write of this process that could not clean up
    return ::kill(pid_t(pid), 0) == 0 || errno == EPERM;
}
/// If `name` is prefix + "<pid>" (digits only) and that process is gone: true.
inline bool stale_temporary(const std::string& name, const std::string& prefix) {
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return false;
    const std::string pid = name.substr(prefix.size());
    if (pid.size() > 10 || pid.find_first_not_of("0123456789") != std::string::npos) return false;
    return !process_alive(std::stoll(pid));
}
/// The entries of `dir` whose names are prefix + the pid of a process that is gone.
inline std::vector<std::filesystem::path> stale_temporaries(const std::filesystem::path& dir, const std::string& prefix) {
    std::vector<std::filesystem::path> out;
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        if (stale_temporary(it->path().filename().string(), prefix)) out.push_back(it->path());
    return out;
}
inline void fsync_path(const std::filesystem::path& p) {
    const int fd = ::open(p.c_str(), O_RDONLY);
    if (fd < 0) return;
    ::fsync(fd);
    ::close(fd);
}
}  // namespace detail

/// Calls write(FILE*) into a temporary, then atomically replaces `path` with it.
inline void write_atomically(const std::filesystem::path& path, const std::function<void(std::FILE*)>& write) {
    namespace fs = std::filesystem;
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    std::error_code ec;
    fs::create_directories(dir, ec);  // the real reason (permission, a file in the way), not fopen's ENOENT
    if (ec) throw io_error("cannot create the folder " + dir.string() + " for " + path.filename().string() + ": " + ec.message());
    const std::string prefix = path.filename().string() + ".tmp-";
    for (const auto& stale : detail::stale_temporaries(dir, prefix)) fs::remove(stale, ec);
    const fs::path tmp = dir / (prefix + std::to_string(::getpid()));
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
    detail::fsync_path(dir);
}

/// Writes all bytes or throws io_error.
inline void write_all(std::FILE* f, const void* data, std::size_t n, const std::filesystem::path& what) {
    if (n && std::fwrite(data, 1, n, f) != n) throw io_error("cannot write " + what.string() + ": " + std::strerror(errno));
}

}  // namespace vila::io
