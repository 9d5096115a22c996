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
#include <vila/data/open.hpp>
#include <vila/model/checkpoint.hpp>
#include <vila/model/lora.hpp>
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
/// Sets io::max_weight_bytes for a scope (0 again after, even when a check throws).
struct weight_limit {
    explicit weight_limit(double bytes) { io::max_weight_bytes = bytes; }
    ~weight_limit() { io::max_weight_bytes = 0; }
};
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
    with("image_aspect_ratio", "anyres", "not supported");
    with("image_aspect_ratio", "dynamic_s2", "go together");  // without "dynamic_s2": true
    with("s2", true, "not supported");
    with("ps3", true, "not supported");
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
    const weight_limit any(1e13);  // 26 GB of F32: beyond some machines' memory, which is checked first
    const auto t0 = std::chrono::steady_clock::now();
    expect_error<format_error>([&] { (void)llm::llama<float>::load(dir.path); },
                               {"config.json implies at least 6607077376 weights", "holds 0", "refused before allocating"});
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 1.0);
}

TEST_CASE("llama_config::for_each_parameter_shape names exactly the parameters llm::llama allocates") {
    for (const char* variant : {"plain", "qwen2", "biases", "tied"}) {
        json j = llama();
        j["num_key_value_heads"] = 2;
        if (std::string(variant) == "qwen2") j["architectures"] = json::array({"Qwen2ForCausalLM"});
        if (std::string(variant) == "biases") j["attention_bias"] = true, j["mlp_bias"] = true;
        if (std::string(variant) == "tied") j["tie_word_embeddings"] = true;
        const auto cfg = llm::llama_config::from_json(j, "config.json");
        std::vector<std::pair<std::string, shape_t>> visited, allocated;
        cfg.for_each_parameter_shape([&](const std::string& n, const shape_t& s) {
            visited.emplace_back(n, s);
            return true;
        });
        llm::llama<float> m(cfg);
        m.for_each_parameter([&](const std::string& n, param<float>& p) { allocated.emplace_back(n, p.value.shape()); });
        CHECK_MESSAGE(visited == allocated, variant);
    }
}

TEST_CASE("a checkpoint is checked name by name, shape by shape and against the memory limit before the model is allocated") {
    namespace fs = std::filesystem;
    const test::scratch_folder dir("vila_checkpoint_checked");
    // ~1e9 weights in one stray tensor of a sparse 4 GB file: enough bytes for check_holds; the
    // names are wrong. Was: 4 GB allocated, then "missing tensor". Now refused in milliseconds.
    json cfg = llama();
    cfg["hidden_size"] = 2048, cfg["intermediate_size"] = 5632, cfg["num_hidden_layers"] = 22, cfg["num_attention_heads"] = 32;
    cfg["vocab_size"] = 32000;
    std::ofstream(dir.path / "config.json") << cfg.dump();
    const double need = llm::llama_config::from_json(cfg, "c").weight_count();
    const auto n = std::uint64_t(need) + 1;
    {
        const std::string header = json{{"junk", {{"dtype", "F32"}, {"shape", {n}}, {"data_offsets", {0, 4 * n}}}}}.dump();
        std::ofstream f(dir.path / "model.safetensors", std::ios::binary);
        const std::uint64_t len = header.size();
        f.write(reinterpret_cast<const char*>(&len), 8);
        f << header;
    }
    fs::resize_file(dir.path / "model.safetensors", fs::file_size(dir.path / "model.safetensors") + 4 * n);  // sparse
    const weight_limit limit(1e13);  // whatever this machine's memory: the names decide here (reset to 0 at the end)
    const auto t0 = std::chrono::steady_clock::now();
    expect_error<format_error>([&] { (void)llm::llama<float>::load(dir.path); }, {"missing tensor 'model.embed_tokens.weight'", "before allocating"});
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 1.0);

    // the memory limit: the numbers, before anything is allocated
    io::max_weight_bytes = 1e9;
    expect_error<config_error>([&] { (void)llm::llama<float>::load(dir.path); }, {"above the limit of 1.00 GB", "refused before allocating"});
    io::max_weight_bytes = 1000;
    const auto fixture = fs::path(VILA_TEST_DATA_DIR) / "llm" / "qwen2_bias";
    expect_error<config_error>([&] { (void)llm::llama<float>::load(fixture); }, {"qwen2_bias", "above the limit"});
    io::max_weight_bytes = 0;
    CHECK_NOTHROW((void)llm::llama<float>::load(fixture));

    // a layer's tensor of the wrong shape, found by the static check alone (no model allocated)
    auto good = llm::llama<float>::load(fixture);
    std::map<std::string, io::tensor_to_write> w;
    good.collect_weights(w);
    auto& t = w.at("model.layers.1.mlp.up_proj.weight");
    std::swap(t.shape[0], t.shape[1]);
    io::save_safetensors(dir.path / "swapped.safetensors", w, {{"format", "pt"}});
    const io::safetensors_checkpoint swapped(dir.path / "swapped.safetensors");
    expect_error<format_error>([&] { llm::llama<float>::check_checkpoint(good.config, swapped, "swapped"); },
                               {"swapped", "model.layers.1.mlp.up_proj.weight", "has shape"});
}

TEST_CASE("adapter_config.json, a data registry and recipe.json: wrong types and ranges name the file and the key") {
    const auto peft = [](const char* key, json value, std::vector<std::string> words) {
        json j = json::parse(R"({"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]})");
        j[key] = std::move(value);
        words.insert(words.begin(), {"ad/adapter_config.json", key});
        expect_error<config_error>([&] { (void)lora::peft_config::from_json(j, "ad/adapter_config.json"); }, words);
    };
    peft("r", 1e300, {"expected an integer"});  // was index_t(1e300): UB
    peft("r", "8", {"expected an integer"});
    peft("r", 0, {"outside [1,"});
    peft("lora_alpha", -1, {">= 0"});
    peft("lora_dropout", 1.5, {"below 1"});
    peft("use_rslora", "yes", {"expected true or false"});  // was nlohmann::type_error
    peft("bias", 3, {"expected a string"});
    peft("rank_pattern", json{{"q_proj", json::parse("18446744073709551615")}}, {"rank_pattern.q_proj", "outside"});
    peft("rank_pattern", json{{"q_proj", -4}}, {"rank_pattern.q_proj", "outside"});
    peft("alpha_pattern", json{{"q_proj", "big"}}, {"alpha_pattern.q_proj", "finite number"});
    peft("base_model_name_or_path", 7, {"expected a string"});

    const test::scratch_folder dir("vila_test_registry_contract");
    const auto reg = dir.path / "registry.json";
    std::ofstream(dir.path / "rows.jsonl") << R"({"text": "a"})" << "\n";
    const auto bad_entry = [&](const char* key, json value, std::vector<std::string> words) {
        json e = {{"format", "text"}, {"path", "rows.jsonl"}};
        e[key] = std::move(value);
        io::write_json(reg, json{{"rows", e}});
        words.insert(words.begin(), {reg.string(), std::string("rows.") + key});
        expect_error<config_error>([&] { (void)data::parse_mixture("rows", reg); }, words);
    };
    bad_entry("pack", -1, {"outside [1,"});  // was get<size_t>: 2^64 - 1 pairs per sample
    bad_entry("pack", 1e300, {"expected an integer"});
    bad_entry("max_images", json::parse("99999999999999999999"), {"expected an integer"});
    bad_entry("weight", "heavy", {"finite number"});
    bad_entry("path", 3, {"expected a string"});
    bad_entry("colour", "red", {"unknown key"});
    io::write_json(reg, json{{"rows", {{"format", "text"}, {"path", "rows.jsonl"}, {"pack", 2}}}});
    CHECK(data::parse_mixture("rows", reg).at(0).pack == 2);  // a good entry still reads
}
