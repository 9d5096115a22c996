// Loading of the committed PyTorch fixtures (tests/fixtures/*.json, made by make_*.py there).
#pragma once
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <vila/vila.hpp>

namespace vila::test {

inline std::string fixture_path(const std::string& name) { return std::string(VILA_TEST_DATA_DIR) + "/" + name; }

/// An empty scratch folder under the temp directory, unique to this process: ctest runs the
/// CPU and Thrust test executables in parallel, and a shared folder would race.
inline std::filesystem::path scratch_dir(const std::string& name) {
    const auto d = std::filesystem::temp_directory_path() / (name + "." + std::to_string(::getpid()));
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
}
/// A scratch folder that removes itself: for a folder a test file keeps in a static for the whole
/// process (ctest runs each case in a process of its own, so a static folder left behind per
/// case piles up in /tmp).
struct scratch_folder {
    std::filesystem::path path;
    explicit scratch_folder(const std::string& name) : path(scratch_dir(name)) {}
    scratch_folder(const scratch_folder&) = delete;
    scratch_folder& operator=(const scratch_folder&) = delete;
    ~scratch_folder() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

/// Parsed once per process.
inline const nlohmann::json& load_json_fixture(const std::string& name) {
    static std::map<std::string, nlohmann::json> cache;
    auto it = cache.find(name);
    if (it != cache.end()) return it->second;
    std::ifstream in(fixture_path(name));
    if (!in) throw io_error("cannot open fixture " + fixture_path(name));
    return cache[name] = nlohmann::json::parse(in);
}

template <class T, class B>
tensor<T, B> tensor_from_json(const nlohmann::json& j) {
    shape_t shape = j.at("shape").get<shape_t>();
    std::vector<T> data;
    for (const auto& v : j.at("data")) data.push_back(static_cast<T>(v.get<double>()));
    return tensor<T, B>::from_host(shape, data);
}

/// Elementwise |a - b| <= atol + rtol |b|; reports the worst element on failure.
template <class T, class B, class U, class C>
void require_close(const tensor<T, B>& a, const tensor<U, C>& b, double atol, double rtol, const std::string& what) {
    INFO(what);
    REQUIRE(to_string(a.shape()) == to_string(b.shape()));
    const auto ha = a.to_host();
    const auto hb = b.to_host();
    double worst = 0;
    std::size_t at = 0;
    bool ok = true;
    for (std::size_t i = 0; i < ha.size(); ++i) {
        const double d = std::abs(double(ha[i]) - double(hb[i]));
        const double excess = d - (atol + rtol * std::abs(double(hb[i])));
        if (excess > 0) ok = false;
        if (d > worst) worst = d, at = i;
    }
    INFO("max |diff| = " << worst << " at flat index " << at);
    CHECK(ok);
}

}  // namespace vila::test
