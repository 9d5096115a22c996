// safetensors: round trips, and every malformed file is a format_error naming file and tensor.
#include <cstring>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <vila/io/safetensors.hpp>
#include <vila/llm/llama.hpp>

#include "../support/fixtures.hpp"

using namespace vila;
namespace fs = std::filesystem;

namespace {
fs::path tmp_dir() {
    static const test::scratch_folder d("vila_test_safetensors");
    return d.path;
}
/// Writes a file with a hand-made header and `data_bytes` bytes of data.
fs::path craft(const std::string& name, const std::string& header, std::size_t data_bytes, long long declared_len = -1) {
    const auto p = tmp_dir() / name;
    std::ofstream f(p, std::ios::binary);
    const unsigned long long n = declared_len >= 0 ? (unsigned long long)declared_len : header.size();
    for (int i = 0; i < 8; ++i) f.put(char((n >> (8 * i)) & 0xFF));
    f << header << std::string(data_bytes, '\0');
    return p;
}
void expect_st_error(const fs::path& p, const std::vector<std::string>& mention) {
    try {
        io::safetensors_file f(p);
        FAIL("no format_error for " << p);
    } catch (const format_error& e) {
        const std::string msg = e.what();
        CHECK_MESSAGE(msg.find(p.string()) != std::string::npos, msg);
        for (const auto& m : mention) CHECK_MESSAGE(msg.find(m) != std::string::npos, msg, " lacks ", m);
    }
}
}  // namespace

TEST_CASE("safetensors: F32 and BF16 round trips, metadata, atomic write") {
    const auto p = tmp_dir() / "rt.safetensors";
    std::map<std::string, io::tensor_to_write> t;
    t["a"] = {{2, 3}, {1.f, -2.f, 3.5f, 0.f, 1e-3f, 65504.f}};
    t["b.bias"] = {{3}, {0.1f, 0.2f, 0.3f}};
    io::save_safetensors(p, t, {{"format", "pt"}});
    CHECK_FALSE(fs::exists(tmp_dir() / ("rt.safetensors.tmp-" + std::to_string(::getpid()))));
    io::safetensors_file f(p);
    CHECK(f.metadata().at("format") == "pt");
    tensor<float> a;
    f.read("a", a);
    CHECK(a.shape() == shape_t{2, 3});
    CHECK(a.to_host() == t["a"].values);
    io::save_safetensors(p, t, {}, io::dtype::bf16);
    io::safetensors_file g(p);
    CHECK(g.info("a").type == io::dtype::bf16);
    g.read("a", a);
    const auto h = a.to_host();
    for (std::size_t i = 0; i < h.size(); ++i) CHECK(h[i] == doctest::Approx(t["a"].values[i]).epsilon(0.01));
    CHECK(io::bf16_to_float(io::float_to_bf16(1.0f)) == 1.0f);
    CHECK(io::half_to_float(0x3C00) == 1.0f);   // 1.0 in IEEE half
    CHECK(io::half_to_float(0xC000) == -2.0f);
    CHECK(io::half_to_float(0x0001) == doctest::Approx(5.96046448e-8));  // smallest subnormal
}

TEST_CASE("safetensors: malformed files name the file and the problem") {
    const auto short_file = tmp_dir() / "short.safetensors";
    std::ofstream(short_file, std::ios::binary) << "abc";
    expect_st_error(short_file, {"too short"});
    expect_st_error(craft("len.safetensors", "{}", 0, 1000), {"header length 1000"});
    expect_st_error(craft("json.safetensors", "{\"a\": [", 0), {"invalid JSON"});
    expect_st_error(craft("dtype.safetensors", R"({"w": {"dtype": "F8", "shape": [2], "data_offsets": [0, 2]}})", 2),
                 {"tensor 'w'", "unknown dtype"});
    expect_st_error(craft("bytes.safetensors", R"({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", 20),
                 {"tensor 'w'", "needs 24 bytes"});
    expect_st_error(craft("trunc.safetensors", R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 10),
                 {"tensor 'w'", "not within", "truncated"});
    expect_st_error(craft("overlap.safetensors",
                       R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                       12),
                 {"'a'", "'b'", "overlap"});
    expect_st_error(craft("dup.safetensors",
                       R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                       8),
                 {"'a'", "twice"});
    expect_st_error(craft("rev.safetensors", R"({"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}})", 8), {"reversed"});
    expect_st_error(craft("neg.safetensors", R"({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", 4), {"negative"});
    expect_st_error(craft("huge.safetensors",
                       R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296, 4], "data_offsets": [0, 4]}})", 4),
                 {"overflows"});
    expect_st_error(craft("meta.safetensors", R"({"__metadata__": {"x": 1}})", 0), {"__metadata__"});
    CHECK_THROWS_AS(io::safetensors_file(tmp_dir() / "does_not_exist.safetensors"), io_error);
    io::safetensors_file ok(craft("ok.safetensors", R"({"w": {"dtype": "I32", "shape": [1], "data_offsets": [0, 4]}})", 4));
    tensor<float> t;
    CHECK_THROWS_WITH_AS(ok.read("w", t), doctest::Contains("expected a floating type"), format_error);
    CHECK_THROWS_WITH_AS(ok.read("nope", t), doctest::Contains("no tensor 'nope'"), format_error);
}

TEST_CASE("sharded checkpoints: index consistency") {
    const auto d = tmp_dir() / "sharded";
    fs::create_directories(d);
    io::save_safetensors(d / "model-00001-of-00002.safetensors", {{"a", {{1}, {1.f}}}});
    io::save_safetensors(d / "model-00002-of-00002.safetensors", {{"b", {{1}, {2.f}}}});
    std::ofstream(d / "model.safetensors.index.json")
        << R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})";
    io::safetensors_checkpoint c(d);
    CHECK(c.shard_count() == 2);
    tensor<float> b;
    c.read("b", b);
    CHECK(b.to_host()[0] == 2.f);
    CHECK_THROWS_WITH_AS(c.read("zz", b), doctest::Contains("missing tensor 'zz'"), format_error);
    std::ofstream(d / "model.safetensors.index.json") << R"({"weight_map": {"a": "model-00002-of-00002.safetensors"}})";
    CHECK_THROWS_WITH_AS(io::safetensors_checkpoint{d}, doctest::Contains("does not hold it"), format_error);
    std::ofstream(d / "model.safetensors.index.json") << R"({"weight_map": {"a": "gone.safetensors"}})";
    CHECK_THROWS_AS(io::safetensors_checkpoint{d}, io_error);
}

TEST_CASE("model folders: missing tensors, wrong shapes, bad configs, bad ids") {
    const auto src = fs::path(VILA_TEST_DATA_DIR) / "llm" / "llama_gqa";
    const auto d = tmp_dir() / "model";
    fs::remove_all(d);
    fs::create_directories(d);
    fs::copy_file(src / "config.json", d / "config.json");
    {  // drop one tensor
        io::safetensors_checkpoint ck(src);
        std::map<std::string, io::tensor_to_write> w;
        for (const auto& n : ck.names()) {
            if (n == "model.layers.1.mlp.up_proj.weight") continue;
            tensor<float> t;
            ck.read(n, t);
            w[n] = {t.shape(), t.to_host()};
        }
        io::save_safetensors(d / "model.safetensors", w);
    }
    CHECK_THROWS_WITH_AS(llm::llama<float>::load(d), doctest::Contains("missing tensor 'model.layers.1.mlp.up_proj.weight'"),
                         format_error);
    nlohmann::json cfg = nlohmann::json::parse(std::ifstream(src / "config.json"));
    fs::copy_file(src / "model.safetensors", d / "model.safetensors", fs::copy_options::overwrite_existing);
    cfg["intermediate_size"] = 100;
    std::ofstream(d / "config.json") << cfg.dump();
    CHECK_THROWS_WITH_AS(llm::llama<float>::load(d), doctest::Contains("config.json implies"), format_error);
    cfg.erase("hidden_size");
    std::ofstream(d / "config.json") << cfg.dump();
    // a missing key takes LlamaConfig's default (hidden_size 4096): more than this checkpoint holds
    CHECK_THROWS_WITH_AS(llm::llama<float>::load(d), doctest::Contains("config.json implies"), format_error);
    cfg = nlohmann::json::parse(std::ifstream(src / "config.json"));
    cfg["architectures"] = {"GPTNeoXForCausalLM"};
    std::ofstream(d / "config.json") << cfg.dump();
    CHECK_THROWS_WITH_AS(llm::llama<float>::load(d), doctest::Contains("unsupported architecture 'GPTNeoXForCausalLM'"), config_error);
    cfg["architectures"] = {"LlamaForCausalLM"};
    cfg["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"rope_theta", 10000.0}};
    std::ofstream(d / "config.json") << cfg.dump();
    CHECK_THROWS_WITH_AS(llm::llama<float>::load(d), doctest::Contains("'yarn' is not supported"), config_error);

    auto m = llm::llama<float>::load(src);
    CHECK_THROWS_WITH_AS(m.forward(tensor<std::int32_t>::from_host({1, 2}, {3, 101})), doctest::Contains("token id 101"), vila::error);
    fs::remove_all(d);
}
