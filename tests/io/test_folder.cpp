// Folders written as a unit (io/folder.hpp): replace, refuse, failure, orphan clean-up, the
// fallback's recovery, and kill -9 loops over llama::save, vlm::save and a "training into an
// existing folder" (the 02_train_decoder pattern): afterwards a folder is the old one whole, the
// new one whole, or (when it did not exist) absent; never a mix.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <vila/io/folder.hpp>
#include <vila/llm/llama.hpp>
#include <vila/model/vlm.hpp>

#include "../support/fixtures.hpp"
#include "../support/tiny_llama.hpp"

using namespace vila;
namespace fs = std::filesystem;

namespace {

std::string file_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
}
void put(const fs::path& p, const std::string& s) {
    std::ofstream f(p, std::ios::binary);
    f << s;
}
/// Names in `dir`, sorted.
std::vector<std::string> names(const fs::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}
/// A pid that no process has: a child that has exited and been reaped.
pid_t dead_pid() {
    const pid_t p = ::fork();
    if (p == 0) ::_exit(0);
    int st = 0;
    ::waitpid(p, &st, 0);
    return p;
}

/// Every parameter of `m` set to `v`: a version stamp the whole model carries.
template <class M>
void stamp(M& m, float v) {
    m.for_each_parameter([&](const std::string&, auto& p) {
        using tensor_t = std::decay_t<decltype(p.value)>;
        p.value = tensor_t::from_host(p.value.shape(), std::vector<float>(std::size_t(p.value.size()), v));
    });
}
/// The single value every parameter holds, or -1 when they differ (a mixed model).
template <class M>
float stamp_of(M& m) {
    std::set<float> seen;
    m.for_each_parameter([&](const std::string&, auto& p) {
        for (float x : p.value.to_host()) seen.insert(x);
    });
    return seen.size() == 1 ? *seen.begin() : -1.f;
}

/// Forks a child that runs `work` forever; kills it with SIGKILL after `us` microseconds.
template <class F>
void kill_after(long us, F&& work) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::alarm(20);  // never outlive a parent that failed
        try {
            for (;;) work();
        } catch (...) {
            ::_exit(3);
        }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(us));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE_MESSAGE(WIFSIGNALED(status), "the writer failed on its own (exit status " << WEXITSTATUS(status) << ")");
}

}  // namespace

TEST_CASE("write_folder replaces a folder whole, refuses when asked, and leaves it untouched when filling fails") {
    const test::scratch_folder root("vila_test_folder_basic");
    const fs::path dir = root.path / "model";
    io::write_folder(dir, [](const fs::path& t) {
        put(t / "a.txt", "one");
        put(t / "b.txt", "one");
    });
    CHECK(names(dir) == std::vector<std::string>{"a.txt", "b.txt"});
    io::write_folder(dir, [](const fs::path& t) { put(t / "a.txt", "two"); });
    CHECK(names(dir) == std::vector<std::string>{"a.txt"});  // replaced, not merged: no stale b.txt
    CHECK(file_text(dir / "a.txt") == "two");
    CHECK_THROWS_WITH_AS(io::write_folder(dir, [](const fs::path& t) { put(t / "x", "x"); }, io::existing_folder::refuse),
                         doctest::Contains("exists"), io_error);
    CHECK_THROWS_AS(io::write_folder(dir, [](const fs::path& t) {
        put(t / "a.txt", "three");
        throw io_error("disk full");
    }), io_error);
    CHECK(file_text(dir / "a.txt") == "two");
    CHECK(names(root.path) == std::vector<std::string>{"model"});  // no temporary left behind
    put(root.path / "file", "x");
    CHECK_THROWS_WITH_AS(io::write_folder(root.path / "file", [](const fs::path&) {}), doctest::Contains("not a folder"), io_error);
    io::remove_folder(dir);
    CHECK_FALSE(fs::exists(dir));
    CHECK(names(root.path) == std::vector<std::string>{"file"});

    // "out/" is the folder out (was: a temporary inside it, then a rename of a folder into itself)
    io::write_folder(root.path.string() + "/slash/", [](const fs::path& t) { put(t / "a.txt", "one"); });
    CHECK(file_text(root.path / "slash" / "a.txt") == "one");
    io::write_folder(root.path.string() + "/slash//", [](const fs::path& t) { put(t / "a.txt", "two"); });
    CHECK(file_text(root.path / "slash" / "a.txt") == "two");
    CHECK(names(root.path) == std::vector<std::string>{"file", "slash"});
    for (const char* bad : {"", ".", ".."})
        CHECK_THROWS_WITH_AS(io::write_folder(bad, [](const fs::path&) {}), doctest::Contains("does not name a folder"), io_error);
}

TEST_CASE("the next write removes what a killed writer left, and puts back a folder moved aside") {
    const test::scratch_folder root("vila_test_folder_orphans");
    const fs::path dir = root.path / "model";
    const std::string gone = std::to_string(dead_pid());
    fs::create_directories(root.path / (".tmp-model-" + gone) / "llm");
    put(root.path / (".tmp-model-" + gone) / "llm" / "config.json", "{");
    fs::create_directories(root.path / ".tmp-model-1");  // pid 1 is alive: another writer's, kept
    fs::create_directories(root.path / (".tmp-modelx-" + gone));  // another folder's, kept
    put(root.path / ("config.json.tmp-" + gone), "half");
    io::write_folder(dir, [](const fs::path& t) { put(t / "config.json", "{}"); });
    CHECK(names(root.path) == std::vector<std::string>{".tmp-model-1", ".tmp-modelx-" + gone, "config.json.tmp-" + gone, "model"});
    io::write_atomically(root.path / "config.json", [](std::FILE* f) { io::write_all(f, "{}", 2, "config.json"); });
    CHECK(names(root.path) == std::vector<std::string>{".tmp-model-1", ".tmp-modelx-" + gone, "config.json", "model"});

    // where the exchange rename is unsupported, a crash between moving the old folder aside and
    // moving the new one in leaves ".old-<name>-<pid>": it is the whole old folder, put back
    fs::rename(dir, root.path / (".old-model-" + gone));
    CHECK(io::recover_folder(dir) == 0);
    CHECK(file_text(dir / "config.json") == "{}");
}

TEST_CASE("kill -9 during llama::save leaves the old model or the new one, whole (a new folder: whole or absent)") {
    const test::scratch_folder root("vila_test_folder_kill_llama");
    llm::llama<float> m(test::tiny_llama_config(16, 24, 4, 40));
    const fs::path dir = root.path / "model";
    int absent = 0, old_seen = 0, new_seen = 0;
    for (int round = 0; round < 24; ++round) {
        const bool fresh = round % 4 == 0;  // every fourth round: the folder does not exist yet
        if (fresh) io::remove_folder(dir);
        else {
            stamp(m, 1.f);
            m.save(dir);
        }
        int k = 0;
        kill_after(500 + 1300 * (round % 12), [&] {
            stamp(m, float(2 + (k++ % 2)));
            m.save(dir);
        });
        if (!fs::exists(dir)) {
            CHECK(fresh);  // an existing folder never disappears
            ++absent;
        } else {
            auto r = llm::llama<float>::load(dir);
            const float v = stamp_of(r);
            CHECK_MESSAGE((v == 1.f || v == 2.f || v == 3.f), "round " << round << ": a mixed model (" << v << ")");
            CHECK_FALSE((fresh && v == 1.f));
            (v == 1.f ? old_seen : new_seen) += 1;
        }
        io::recover_folder(dir);
        for (const auto& n : names(root.path)) CHECK_MESSAGE(n == "model", "left behind: " << n);
    }
    MESSAGE("after kill -9: " << absent << " absent (new folder), " << old_seen << " old, " << new_seen << " new");
    CHECK(new_seen > 0);
}

TEST_CASE("kill -9 during vlm::save (three sub-folders) leaves a whole VILA folder, old or new") {
    using llava_model = vlm<vision::clip, projector::mlp2x_gelu, llm::llama>;
    const test::scratch_folder root("vila_test_folder_kill_vlm");
    auto m = llava_model::load(fs::path(VILA_TEST_DATA_DIR) / "vlm" / "llava");
    const fs::path dir = root.path / "vlm";
    stamp(m, 1.f);
    m.save(dir);
    int old_seen = 0, new_seen = 0;
    for (int round = 0; round < 12; ++round) {
        int k = 0;
        kill_after(500 + 2000 * round, [&] {
            stamp(m, float(2 + (k++ % 2)));
            m.save(dir);
        });
        REQUIRE(fs::exists(dir));
        auto r = llava_model::load(dir);
        const float v = stamp_of(r);
        CHECK_MESSAGE((v == 1.f || v == 2.f || v == 3.f), "round " << round << ": a mixed model (" << v << ")");
        (v == 1.f ? old_seen : new_seen) += 1;
        stamp(m, 1.f);
        m.save(dir);
        for (const auto& n : names(root.path)) CHECK_MESSAGE(n == "vlm", "left behind: " << n);
    }
    MESSAGE("after kill -9: " << old_seen << " old, " << new_seen << " new");
}

TEST_CASE("kill -9 while training into an existing folder: its tokenizer and model stay of one run") {
    // 02_train_decoder's pattern: the tokenizer is written first, the model after the training;
    // both go into the temporary folder, so a killed run never pairs a new tokenizer with an old model
    const test::scratch_folder root("vila_test_folder_kill_train");
    const fs::path dir = root.path / "run";
    llm::llama<float> m(test::tiny_llama_config(16, 24, 4, 40));
    auto write_run = [&](int version, bool slow) {
        io::write_folder(dir, [&](const fs::path& t) {
            io::write_json(t / "tokenizer.json", nlohmann::json{{"run", version}});
            if (slow) std::this_thread::sleep_for(std::chrono::milliseconds(3));  // "training"
            stamp(m, float(version));
            m.save_into(t);
        });
    };
    write_run(1, false);
    int version = 1;
    for (int round = 0; round < 16; ++round) {
        kill_after(400 + 900 * round, [&] { write_run(++version, true); });
        const int tok = io::read_json(dir / "tokenizer.json").at("run").get<int>();
        auto r = llm::llama<float>::load(dir);
        CHECK_MESSAGE(stamp_of(r) == float(tok), "round " << round << ": tokenizer of run " << tok << " beside model " << stamp_of(r));
    }
}
