// The error contract for configs (issue 14, rows 3 and 6): a wrong type, a non-finite number,
// an out-of-range or sparse id is a vila:: error naming the file and the key; nothing is
// narrowed (1e300 read as an int was UB) and no nlohmann::type_error escapes.
#include <chrono>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <vila/io/safetensors.hpp>
#include <vila/llm/config.hpp>
#include <vila/llm/llama.hpp>
#include <vila/model/checkpoint.hpp>
#include <vila/tokenizer/tokenizer.hpp>
#include <vila/vision/image.hpp>
#include <vila/vision/vit.hpp>

#include "../support/fixtures.hpp"

using namespace vila;
using json = nlohmann::json;

namespace {
json llama() {
    return json::parse(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 100})");
}
json vit() {
    return json::parse(R"({"model_type": "siglip_vision_model", "hidden_size": 32, "intermediate_size": 64,
        "num_hidden_layers": 2, "num_attention_heads": 4, "image_size": 32, "patch_size": 8})");
}
/// The error `fn` throws must be a vila::error of type E whose message names each of `words`.
template <class E, class F>
void expect_error(F&& fn, const std::vector<std::string>& words) {
    try {
        fn();
        FAIL("no error thrown");
    } catch (const E& e) {
        const std::string msg = e.what();
        for (const auto& w : words) CHECK_MESSAGE(msg.find(w) != std::string::npos, msg, " lacks ", w);
    }
}
}  // namespace

TEST_CASE("config.json: wrong types and out-of-range numbers name the file and the key") {
    const auto bad_llama = [](const char* key, json value, std::vector<std::string> words) {
        json j = llama();
        j[key] = std::move(value);
        words.insert(words.begin(), {"cfg/config.json", key});
        expect_error<config_error>([&] { (void)llm::llama_config::from_json(j, "cfg/config.json"); }, words);
    };
    bad_llama("hidden_size", 1e300, {"expected an integer"});
    bad_llama("hidden_size", json::parse("99999999999999999999"), {"expected an integer"});  // parsed as a double
    bad_llama("hidden_size", 9999999999LL, {"outside"});
    bad_llama("num_hidden_layers", -3, {"outside [1,"});
    bad_llama("num_key_value_heads", 0, {"outside [1,"});  // found by the fuzzer: a division by zero
    bad_llama("hidden_act", 3, {"expected a string"});
    bad_llama("model_type", json::array(), {"expected a string"});
    bad_llama("rms_norm_eps", "small", {"expected a finite number"});
    bad_llama("tie_word_embeddings", "yes", {"expected true or false"});
    bad_llama("eos_token_id", json::array({2, "x"}), {"expected an integer"});
    bad_llama("bos_token_id", 1e300, {"expected an integer"});
    bad_llama("bos_token_id", 4294967296LL, {"outside"});
    json rope = llama();
    rope["rope_scaling"] = {{"rope_type", "linear"}, {"factor", "2"}};
    expect_error<config_error>([&] { (void)llm::llama_config::from_json(rope, "cfg/config.json"); }, {"rope_scaling.factor"});
    rope["rope_scaling"] = {{"rope_type", 7}};
    expect_error<config_error>([&] { (void)llm::llama_config::from_json(rope, "cfg/config.json"); }, {"rope_scaling.rope_type"});

    json v = vit();
    v["layer_norm_eps"] = "x";
    expect_error<config_error>([&] { (void)vision::vit_config::from_json(v, "vt/config.json"); }, {"vt/config.json", "layer_norm_eps"});
    v = vit();
    v["patch_size"] = 1e300;
    expect_error<config_error>([&] { (void)vision::vit_config::from_json(v, "vt/config.json"); }, {"patch_size", "expected an integer"});
    json nested = {{"vision_config", vit()}};
    nested["vision_config"]["image_size"] = "big";
    expect_error<config_error>([&] { (void)vision::vit_config::from_json(nested, "clip/config.json"); }, {"vision_config.image_size"});

    const auto bad_proc = [](json j, std::vector<std::string> words) {
        words.insert(words.begin(), "pp.json");
        expect_error<config_error>([&] { (void)vision::image_processor::from_json(j, "pp.json"); }, words);
    };
    bad_proc({{"image_processor_type", "CLIPImageProcessor"}, {"size", 1e300}}, {"size", "expected an integer"});
    bad_proc({{"image_processor_type", "CLIPImageProcessor"}, {"size", {{"shortest_edge", 1000000}}}}, {"size.shortest_edge", "outside"});
    bad_proc({{"image_processor_type", "CLIPImageProcessor"}, {"crop_size", {{"height", -1}}}}, {"crop_size.height"});
    bad_proc({{"image_processor_type", "SiglipImageProcessor"}, {"do_resize", "yes"}}, {"do_resize", "true or false"});
    bad_proc({{"image_processor_type", "CLIPImageProcessor"}, {"image_mean", {0.5, "x", 0.5}}}, {"image_mean", "finite"});
    bad_proc({{"image_processor_type", "CLIPImageProcessor"}, {"image_std", {0.5, 0, 0.5}}}, {"image_std", "deviation of 0"});
    bad_proc({{"image_processor_type", "CLIPImageProcessor"}, {"resample", "bicubic"}}, {"resample", "expected an integer"});
    bad_proc({{"image_processor_type", 5}}, {"image_processor_type", "expected a string"});
}

TEST_CASE("a VILA folder's config.json: wrong types name the key (read_layout)") {
    namespace fs = std::filesystem;
    const test::scratch_folder dir("vila_config_contract");
    fs::copy(test::fixture_path("vlm/vila"), dir.path, fs::copy_options::recursive);
    const json good = io::read_json(dir.path / "config.json");
    const auto with = [&](const char* key, json value, const std::string& word) {
        json j = good;
        j[key] = std::move(value);
        std::ofstream(dir.path / "config.json") << j.dump();
        expect_error<config_error>([&] { (void)model::read_layout(dir.path); }, {"config.json", key, word});
    };
    with("mm_vision_select_layer", 1e300, "expected an integer");
    with("mm_vision_select_layer", 5000, "outside");
    with("image_aspect_ratio", 1, "expected a string");
    with("image_aspect_ratio", "dynamic_s2", "not supported");
    with("mm_vision_select_feature", false, "expected a string");
    with("image_token_id", 1e300, "expected an integer");
    with("model_type", 3, "expected a string");
    std::ofstream(dir.path / "config.json") << good.dump();
    CHECK_NOTHROW((void)model::read_layout(dir.path));
}

TEST_CASE("tokenizer.json ids: within int32 and dense (a 61-byte file cannot allocate 12.8 GB)") {
    const auto tok = [](const json& vocab, const json& added = json::array()) {
        json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", json::array()}}}, {"added_tokens", added}};
        return tokenizer::tokenizer::from_json(j, "t/tokenizer.json");
    };
    expect_error<format_error>([&] { tok({{"a", 400000000}}); }, {"t/tokenizer.json", "model.vocab", "ids must be dense"});
    expect_error<format_error>([&] { tok({{"a", 2147483647}}); }, {"model.vocab['a']", "out of range"});
    expect_error<format_error>([&] { tok({{"a", 4294967296LL}}); }, {"model.vocab['a']", "out of range"});
    expect_error<format_error>([&] { tok({{"a", -1}}); }, {"model.vocab['a']", "out of range"});
    expect_error<format_error>([&] { tok({{"a", 0}}, {{{"id", 2147483648LL}, {"content", "<x>"}}}); }, {"added_tokens[0].id", "out of range"});
    expect_error<format_error>([&] { tok({{"a", 0}}, {{{"id", 100000000}, {"content", "<x>"}}}); }, {"added_tokens", "ids must be dense"});
    // dense vocabularies with a few holes (real files have some) load
    CHECK(tok({{"a", 0}, {"b", 5}}).vocab_size() == 6);
    CHECK(tok({{"a", 0}}, {{{"id", 1000}, {"content", "<x>"}}}).vocab_size() == 1001);
    json pp = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", json::array()}}},
               {"post_processor", {{"type", "TemplateProcessing"},
                                   {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
                                   {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {99999999999LL}}, {"tokens", {"<s>"}}}}}}}}};
    expect_error<format_error>([&] { tokenizer::tokenizer::from_json(pp, "t/tokenizer.json"); }, {"out of range"});
}

TEST_CASE("an atomic write under a path that cannot be a folder says why (issue 14, row 8)") {
    namespace fs = std::filesystem;
    const test::scratch_folder dir("vila_atomic_write_reason");
    std::ofstream(dir.path / "plain_file") << "x";
    // create_directories fails because a file is in the way: the message says so, not "No such file"
    CHECK_THROWS_WITH_AS(io::write_json(dir.path / "plain_file" / "sub" / "config.json", json::object()),
                         doctest::Contains("cannot create the folder"), io_error);
    io::write_json(dir.path / "ok" / "config.json", {{"a", 1}});
    CHECK(io::read_json(dir.path / "ok" / "config.json")["a"] == 1);
    for (const auto& e : fs::directory_iterator(dir.path / "ok")) CHECK(e.path().filename() == "config.json");  // no temporaries left
}

TEST_CASE("a config.json alone cannot drive allocation (issue 14, row 4): the checkpoint is weighed first") {
    namespace fs = std::filesystem;
    const test::scratch_folder dir("vila_config_alone");
    // LLaMA-7B's shape beside an empty checkpoint: was 5.3 GB and 19 s before "missing tensor"
    json cfg = llama();
    cfg["hidden_size"] = 4096, cfg["intermediate_size"] = 11008, cfg["num_hidden_layers"] = 32, cfg["num_attention_heads"] = 32;
    cfg["vocab_size"] = 32000;
    std::ofstream(dir.path / "config.json") << cfg.dump();
    io::save_safetensors(dir.path / "model.safetensors", {}, {{"format", "pt"}});
    const auto t0 = std::chrono::steady_clock::now();
    expect_error<format_error>([&] { (void)llm::llama<float>::load(dir.path); },
                               {"config.json implies at least 6607077376 weights", "holds 0", "refused before allocating"});
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 1.0);
}
