// vila/io/folder.hpp — write a folder as a unit: after a crash at any moment, a folder that
// existed is the old one or the new one, and a new folder is whole or absent; never a mix.
//
// fill(tmp) writes into a fresh temporary ".tmp-<name>-<pid>" beside the folder; every file is
// fsync'ed; then the temporary takes the folder's place:
//   - no folder yet: rename(2);
//   - a folder exists: renameat2(RENAME_EXCHANGE) swaps the two in one step (Linux; ext4, xfs,
//     btrfs, tmpfs, overlayfs), and the old contents, now under the temporary's name, are
//     deleted. Where the exchange is not supported, the old folder is first renamed aside to
//     ".old-<name>-<pid>": a crash between the two renames leaves the folder absent for a
//     moment, and the next write (or recover_folder) renames the old one back.
// The next write of the same folder removes what a killed writer left (temporaries whose
// process is gone), so orphans do not pile up.
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
#include "atomic_file.hpp"

namespace vila::io {

namespace detail {
inline void fsync_tree(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    for (const auto& e : fs::recursive_directory_iterator(dir)) fsync_path(e.path());
    fsync_path(dir);
}
inline std::filesystem::path parent_of(const std::filesystem::path& dir) {
    return dir.has_parent_path() ? dir.parent_path() : std::filesystem::path(".");
}
/// `dir` without trailing separators ("out/" is "out"); a path that names no folder of its own
/// ("", ".", "..", "/") cannot be replaced as a unit.
inline std::filesystem::path unit_path(std::filesystem::path dir) {
    while (!dir.empty() && !dir.has_filename() && dir.has_parent_path() && dir != dir.root_path()) dir = dir.parent_path();
    const std::string name = dir.filename().string();
    if (name.empty() || name == "." || name == "..")
        throw io_error("'" + dir.string() + "' does not name a folder that can be written as a unit (give its name, e.g. out/model)");
    return dir;
}
/// Swaps two paths atomically; false where the system or filesystem cannot.
inline bool exchange_paths(const std::filesystem::path& a, const std::filesystem::path& b) {
#if defined(__linux__) && defined(RENAME_EXCHANGE)
    if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0) return true;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        throw io_error("cannot exchange " + a.string() + " with " + b.string() + ": " + std::strerror(errno));
#else
    (void)a;
    (void)b;
#endif
    return false;
}
}  // namespace detail

/// Puts back a folder that a killed writer left renamed aside (only where the exchange rename is
/// unsupported), and removes the temporaries of writers that are gone. Returns how many it
/// removed. Called by write_folder; call it before reading a folder that a crash may have hit.
inline std::size_t recover_folder(const std::filesystem::path& folder) {
    namespace fs = std::filesystem;
    const fs::path dir = detail::unit_path(folder);
    const fs::path parent = detail::parent_of(dir);
    const std::string name = dir.filename().string();
    std::error_code ec;
    std::size_t removed = 0;
    for (const auto& old : detail::stale_temporaries(parent, ".old-" + name + "-")) {
        if (!fs::exists(dir, ec)) {
            fs::rename(old, dir, ec);  // the whole old folder, moved aside just before the crash
            if (!ec) continue;
        }
        removed += fs::remove_all(old, ec) > 0 ? 1 : 0;
    }
    for (const auto& tmp : detail::stale_temporaries(parent, ".tmp-" + name + "-")) removed += fs::remove_all(tmp, ec) > 0 ? 1 : 0;
    return removed;
}

/// What write_folder does when the folder exists already.
enum class existing_folder { replace, refuse };

/// Writes folder `dir` as a unit: fill(tmp) writes the contents into an empty temporary folder,
/// which then takes dir's place (replacing it, or, with existing_folder::refuse, only if there
/// is none). An exception from fill leaves `dir` as it was.
inline void write_folder(const std::filesystem::path& folder, const std::function<void(const std::filesystem::path&)>& fill,
                         existing_folder existing = existing_folder::replace) {
    namespace fs = std::filesystem;
    const fs::path dir = detail::unit_path(folder);
    const fs::path parent = detail::parent_of(dir);
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) throw io_error("cannot create " + parent.string() + ": " + ec.message());
    recover_folder(dir);
    if (fs::exists(dir)) {
        if (existing == existing_folder::refuse) throw io_error(dir.string() + " exists: choose a new folder");
        if (!fs::is_directory(dir)) throw io_error(dir.string() + " exists and is not a folder: it is not replaced");
    }
    const std::string pid = std::to_string(::getpid());
    const fs::path tmp = parent / (".tmp-" + dir.filename().string() + "-" + pid);
    const fs::path old = parent / (".old-" + dir.filename().string() + "-" + pid);
    fs::remove_all(tmp, ec);
    fs::create_directory(tmp, ec);
    if (ec) throw io_error("cannot create " + tmp.string() + ": " + ec.message());
    bool placed = false;
    try {
        fill(tmp);
        detail::fsync_tree(tmp);
        if (!fs::exists(dir)) {
            if (::rename(tmp.c_str(), dir.c_str()) != 0) throw io_error("cannot rename " + tmp.string() + " to " + dir.string() + ": " + std::strerror(errno));
        } else if (existing == existing_folder::refuse) {
            throw io_error(dir.string() + " appeared while it was written: choose a new folder");
        } else if (!detail::exchange_paths(tmp, dir)) {
            fs::remove_all(old, ec);
            if (::rename(dir.c_str(), old.c_str()) != 0) throw io_error("cannot move " + dir.string() + " aside: " + std::strerror(errno));
            if (::rename(tmp.c_str(), dir.c_str()) != 0) {
                const std::string why = std::strerror(errno);
                ::rename(old.c_str(), dir.c_str());
                throw io_error("cannot rename " + tmp.string() + " to " + dir.string() + ": " + why);
            }
        }
        placed = true;
        detail::fsync_path(parent);
    } catch (const fs::filesystem_error& e) {
        if (!placed) fs::remove_all(tmp, ec);
        throw io_error("cannot write " + dir.string() + ": " + e.what());
    } catch (...) {
        if (!placed) fs::remove_all(tmp, ec);
        throw;
    }
    fs::remove_all(tmp, ec);  // after an exchange: the old contents
    fs::remove_all(old, ec);
}

/// Removes folder `dir` so that a crash never leaves part of it: it is renamed aside to a
/// temporary first (one step), then deleted. No-op when it does not exist.
inline void remove_folder(const std::filesystem::path& folder) {
    namespace fs = std::filesystem;
    const fs::path dir = detail::unit_path(folder);
    std::error_code ec;
    if (!fs::exists(dir, ec)) return;
    const fs::path doomed = detail::parent_of(dir) / (".tmp-" + dir.filename().string() + "-" + std::to_string(::getpid()));
    fs::remove_all(doomed, ec);
    if (::rename(dir.c_str(), doomed.c_str()) != 0) throw io_error("cannot remove " + dir.string() + ": " + std::strerror(errno));
    detail::fsync_path(detail::parent_of(dir));
    fs::remove_all(doomed, ec);
}

}  // namespace vila::io
