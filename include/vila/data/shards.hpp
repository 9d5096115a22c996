// vila/data/shards.hpp — a set of tar shards indexed by member name, so that a reader can find
// an image by name (MMC4's image_name) in whichever shard holds it, and webdataset samples
// grouped by key (img2dataset's KEY.jpg, KEY.txt, KEY.json).
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "../io/tar.hpp"
#include "record.hpp"

namespace vila::data {

/// The webdataset key of a member name: the path up to the first '.' of its last component.
inline std::string webdataset_key(const std::string& name, std::string* extension = nullptr) {
    const std::size_t slash = name.rfind('/');
    const std::size_t dot = name.find('.', slash == std::string::npos ? 0 : slash + 1);
    if (extension) *extension = dot == std::string::npos ? "" : name.substr(dot + 1);
    return dot == std::string::npos ? name : name.substr(0, dot);
}

/// Tar shards opened once; members found by full name or by file name.
class shard_set {
public:
    shard_set() = default;
    explicit shard_set(const std::vector<std::filesystem::path>& shards) {
        for (const auto& s : shards) {
            archives_.emplace_back(s);
            for (const auto& m : archives_.back().members()) {
                const image_ref ref{s, m.name, m.offset, m.size, m.truncated};
                by_name_.emplace(m.name, ref);
                const std::size_t slash = m.name.rfind('/');
                if (slash != std::string::npos) by_name_.emplace(m.name.substr(slash + 1), ref);
            }
        }
    }
    bool empty() const noexcept { return archives_.empty(); }
    const std::vector<io::tar_archive>& archives() const noexcept { return archives_; }
    const image_ref* find(const std::string& name) const {
        const auto it = by_name_.find(name);
        return it == by_name_.end() ? nullptr : &it->second;
    }

private:
    std::vector<io::tar_archive> archives_;
    std::map<std::string, image_ref> by_name_;
};

/// The shards of a folder (*.tar, sorted by name) or one tar file.
inline std::vector<std::filesystem::path> list_shards(const std::filesystem::path& path) {
    namespace fs = std::filesystem;
    if (!fs::exists(path)) throw io_error("no such file or folder: " + path.string());
    if (!fs::is_directory(path)) return {path};
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(path))
        if (e.is_regular_file() && e.path().extension() == ".tar") out.push_back(e.path());
    std::sort(out.begin(), out.end());
    if (out.empty()) throw io_error(path.string() + ": no .tar shards in the folder");
    return out;
}

}  // namespace vila::data
