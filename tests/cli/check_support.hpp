// Shared helpers of the CLI checkers: run a command, capture its output, count failures.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <sys/wait.h>

namespace vila::cli_check {

inline int failures = 0;

inline void check(bool ok, const std::string& what) {
    if (!ok) {
        std::cerr << "FAILED: " << what << "\n";
        ++failures;
    }
}

inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

/// Runs a shell command with stdin from /dev/null; stdout and stderr go to files in `work`
/// and are returned. Returns the exit status (128 when the command did not exit normally).
inline int run(const std::string& cmd, const std::filesystem::path& work, std::string& out, std::string& err) {
    const auto o = work / "stdout.txt", e = work / "stderr.txt";
    const int rc = std::system((cmd + " > '" + o.string() + "' 2> '" + e.string() + "' < /dev/null").c_str());
    out = slurp(o);
    err = slurp(e);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

}  // namespace vila::cli_check
