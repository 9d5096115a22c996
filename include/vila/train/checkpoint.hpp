// vila/train/checkpoint.hpp — the run folder and its checkpoints, written so that a crash at
// any moment leaves every checkpoint whole or absent.
//
//   RUN_DIR/config.json                 the run's configuration (the CLI's; any JSON)
//   RUN_DIR/metrics.jsonl               one line per step (train::metrics_jsonl)
//   RUN_DIR/checkpoints/step-N/         the model in its folder layout (HF LLM folder, or the
//                                       VILA layout for a VLM) + tokenizer files,
//                                       optimizer.safetensors, trainer_state.json
//   RUN_DIR/checkpoints/latest          "step-N": the newest whole checkpoint
//   RUN_DIR/final/                      the trained model (same layout, no training state)
// Every folder is written as a unit (io::write_folder: a temporary, fsync'ed, then renamed or
// exchanged into place); `latest` is replaced atomically afterwards, so it only ever names a
// whole folder. Orphan temporaries of a killed writer are removed on the next start
// (remove_orphans).
#pragma once
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include "../config.hpp"
#include "../io/atomic_file.hpp"
#include "../io/folder.hpp"
#include "../io/json.hpp"

namespace vila::train {

/// Version of the run-folder format; a resume of another version is refused.
inline constexpr int run_format_version = 1;

/// Removes ".tmp-*" and ".old-*" folders and files a killed writer left in `dir` (the trainer
/// is a run folder's only writer); an ".old-NAME-PID" whose NAME is missing is put back
/// (io::write_folder's fallback moves the old folder aside just before the new one arrives).
inline std::size_t remove_orphans(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    std::size_t n = 0;
    std::error_code ec;
    if (!fs::is_directory(dir)) return 0;
    std::vector<fs::path> doomed;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (name.rfind(".tmp-", 0) == 0 || name.rfind(".old-", 0) == 0 || name.find(".tmp-") != std::string::npos) doomed.push_back(e.path());
    }
    for (const auto& p : doomed) {
        const std::string name = p.filename().string();
        const std::size_t dash = name.rfind('-');
        if (name.rfind(".old-", 0) == 0 && dash > 5) {
            const fs::path target = dir / name.substr(5, dash - 5);
            if (!fs::exists(target, ec)) {
                fs::rename(p, target, ec);
                if (!ec) continue;
            }
        }
        n += fs::remove_all(p, ec) > 0 ? 1 : 0;
    }
    return n;
}

/// The checkpoints of a run folder, oldest first: (step, folder).
inline std::vector<std::pair<long long, std::filesystem::path>> list_checkpoints(const std::filesystem::path& run_dir) {
    namespace fs = std::filesystem;
    std::vector<std::pair<long long, fs::path>> out;
    const fs::path dir = run_dir / "checkpoints";
    if (!fs::is_directory(dir)) return out;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string name = e.path().filename().string();
        if (!e.is_directory() || name.rfind("step-", 0) != 0) continue;
        const std::string num = name.substr(5);
        if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos || num.size() > 18) continue;
        out.emplace_back(std::stoll(num), e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

/// The folder `latest` names, or "" when the run has no checkpoint.
inline std::filesystem::path latest_checkpoint(const std::filesystem::path& run_dir) {
    namespace fs = std::filesystem;
    const fs::path file = run_dir / "checkpoints" / "latest";
    if (!fs::exists(file)) return {};
    std::ifstream in(file);
    std::string name;
    std::getline(in, name);
    if (name.rfind("step-", 0) != 0 || name.find('/') != std::string::npos)
        throw format_error(file.string() + ": does not name a checkpoint (\"" + name + "\")");
    const fs::path dir = run_dir / "checkpoints" / name;
    if (!fs::is_directory(dir)) throw format_error(file.string() + ": names " + name + ", which does not exist");
    return dir;
}

/// Points `latest` at `name` (atomically) and keeps only the newest keep_last checkpoints.
inline void publish_checkpoint(const std::filesystem::path& run_dir, const std::string& name, int keep_last) {
    namespace fs = std::filesystem;
    const fs::path file = run_dir / "checkpoints" / "latest";
    const std::string line = name + "\n";
    io::write_atomically(file, [&](std::FILE* f) { io::write_all(f, line.data(), line.size(), file); });
    if (keep_last <= 0) return;
    auto all = list_checkpoints(run_dir);
    std::error_code ec;
    for (std::size_t i = 0; i + std::size_t(keep_last) < all.size(); ++i)
        if (all[i].second.filename() != name) fs::remove_all(all[i].second, ec);
}

/// Copies the tokenizer files of `from` (tokenizer.json, tokenizer_config.json, ...) into `to`.
inline void copy_tokenizer_files(const std::filesystem::path& from, const std::filesystem::path& to) {
    namespace fs = std::filesystem;
    if (from.empty()) return;
    for (const char* name : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                             "generation_config.json", "chat_template.json", "chat_template.jinja", "preprocessor_config.json"}) {
        if (!fs::exists(from / name)) continue;
        std::error_code ec;
        fs::copy_file(from / name, to / name, fs::copy_options::overwrite_existing, ec);
        if (ec) throw io_error("cannot copy " + (from / name).string() + " to " + to.string() + ": " + ec.message());
    }
}

}  // namespace vila::train
