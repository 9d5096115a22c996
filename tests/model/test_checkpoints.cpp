// Checkpoints as people download them (issue 12; tests/fixtures/checkpoints, make_checkpoints.py):
// config.json read as transformers reads it (a missing key takes the config class's default;
// the family follows model_type; Qwen2's biases are q/k/v whatever attention_bias says), and a
// LLaVA-HF folder whose Qwen2 text model was saved by transformers 5 runs as transformers runs it.
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <vila/llm/generate.hpp>
#include <vila/model/checkpoint.hpp>
#include <vila/model/vlm.hpp>

#include "../support/fixtures.hpp"

using namespace vila;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
fs::path checkpoints_dir() { return fs::path(VILA_TEST_DATA_DIR) / "checkpoints"; }

std::vector<std::int32_t> checkpoint_ids(const io::safetensors_file& f, const std::string& name) {
    tensor<std::int32_t> t;
    f.read(name, t);
    return t.to_host();
}

json tiny_text_config() {
    return json::parse(R"({"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
                           "num_key_value_heads": 2, "vocab_size": 300})");
}
}  // namespace

TEST_CASE("llava-1.5-7b-hf's config.json: the keys it leaves out take transformers' defaults") {
    const test::scratch_folder dir("vila_checkpoints_llava15");
    fs::copy_file(checkpoints_dir() / "llava-1.5-7b-hf.config.json", dir.path / "config.json");
    const auto L = model::read_layout(dir.path);
    const json want = io::read_json(checkpoints_dir() / "llava-1.5-7b-hf.expected.json");
    const auto& t = want["text_config"];
    CHECK(L.llm.model_type == t["model_type"]);
    CHECK(L.llm.architecture == "LlamaForCausalLM");
    CHECK(L.llm.hidden_size == t["hidden_size"]);
    CHECK(L.llm.intermediate_size == t["intermediate_size"]);
    CHECK(L.llm.num_hidden_layers == t["num_hidden_layers"]);
    CHECK(L.llm.num_attention_heads == t["num_attention_heads"]);
    CHECK(L.llm.num_key_value_heads == t["num_key_value_heads"]);
    CHECK(L.llm.head_dim == t["head_dim"]);
    CHECK(L.llm.vocab_size == t["vocab_size"]);
    CHECK(L.llm.max_position_embeddings == t["max_position_embeddings"]);
    CHECK(L.llm.rms_norm_eps == t["rms_norm_eps"].get<double>());
    CHECK(L.llm.rope_theta == t["rope_theta"].get<double>());
    CHECK(L.llm.tie_word_embeddings == t["tie_word_embeddings"]);
    CHECK(L.llm.attention_bias == t["attention_bias"]);
    CHECK(L.llm.mlp_bias == t["mlp_bias"]);
    CHECK(L.llm.bos_token_id == t["bos_token_id"]);
    CHECK(L.llm.eos_token_ids == std::vector<index_t>{t["eos_token_id"].get<index_t>()});
    const auto& v = want["vision_config"];
    CHECK(L.vision.hidden_size == v["hidden_size"]);
    CHECK(L.vision.intermediate_size == v["intermediate_size"]);
    CHECK(L.vision.num_hidden_layers == v["num_hidden_layers"]);
    CHECK(L.vision.num_attention_heads == v["num_attention_heads"]);
    CHECK(L.vision.num_channels == v["num_channels"]);
    CHECK(L.vision.image_size == v["image_size"]);
    CHECK(L.vision.patch_size == v["patch_size"]);
    CHECK(L.vision.layer_norm_eps == v["layer_norm_eps"].get<double>());
    CHECK(L.vision.hidden_act == v["hidden_act"]);
    CHECK(L.image_token_id == 32000);
    CHECK(L.vision.select_layer == -2);
}

TEST_CASE("config.json: the family follows model_type, with that family's defaults and biases") {
    json j = tiny_text_config();
    j["model_type"] = "qwen2";  // as transformers 5 saves a LLaVA text_config: no architectures
    j["attention_bias"] = true;  // Qwen2 ignores it: q/k/v biases, never o_proj
    auto c = llm::llama_config::from_json(j, "t/config.json");
    CHECK(c.architecture == "Qwen2ForCausalLM");
    CHECK(c.qkv_bias);
    CHECK_FALSE(c.attention_bias);
    CHECK(c.max_position_embeddings == 32768);  // Qwen2Config's default, not LlamaConfig's 2048
    CHECK(c.eos_token_ids.empty());             // Qwen2Config has no default eos/bos
    std::vector<std::string> names;
    c.for_each_parameter_shape([&](const std::string& n, const shape_t&) { return names.push_back(n), true; });
    CHECK(std::count(names.begin(), names.end(), "model.layers.0.self_attn.k_proj.bias") == 1);
    CHECK(std::count(names.begin(), names.end(), "model.layers.0.self_attn.o_proj.bias") == 0);

    j.erase("num_key_value_heads");
    j["num_attention_heads"] = 64, j["hidden_size"] = 128;
    CHECK(llm::llama_config::from_json(j, "t/config.json").num_key_value_heads == 32);  // Qwen2Config: 32, not the head count
    j["num_attention_heads"] = 4, j["hidden_size"] = 48;
    j["num_key_value_heads"] = nullptr;
    CHECK(llm::llama_config::from_json(j, "t/config.json").num_key_value_heads == 4);  // null: the head count

    json m = tiny_text_config();
    m["model_type"] = "mistral";
    m["mlp_bias"] = true, m["attention_bias"] = true;  // Mistral has no biases whatever these say
    m["max_position_embeddings"] = 4096;               // the default sliding window (4096) then covers every position
    c = llm::llama_config::from_json(m, "t/config.json");
    CHECK(c.architecture == "MistralForCausalLM");
    CHECK_FALSE(c.attention_bias);
    CHECK_FALSE(c.mlp_bias);
    CHECK(c.eos_token_ids == std::vector<index_t>{2});
    m.erase("max_position_embeddings");  // 131072 positions with a 4096 window: sliding attention, refused
    CHECK_THROWS_WITH_AS(llm::llama_config::from_json(m, "t/config.json"), doctest::Contains("sliding_window"), config_error);

    json l = tiny_text_config();
    l["attention_bias"] = true;  // LLaMA reads it: biases on q, k, v and o
    c = llm::llama_config::from_json(l, "t/config.json");
    CHECK(c.architecture == "LlamaForCausalLM");
    CHECK(c.attention_bias);
    CHECK(c.max_position_embeddings == 2048);
    CHECK(c.num_key_value_heads == 2);
    l.erase("num_key_value_heads");
    CHECK(llm::llama_config::from_json(l, "t/config.json").num_key_value_heads == 4);  // LlamaConfig: the head count

    json bad = tiny_text_config();
    bad["model_type"] = "qwen2", bad["architectures"] = json::array({"LlamaForCausalLM"});
    CHECK_THROWS_WITH_AS(llm::llama_config::from_json(bad, "t/config.json"), doctest::Contains("contradicts model_type 'qwen2'"),
                         config_error);
    bad.erase("architectures");
    bad["model_type"] = "gpt_neox";
    CHECK_THROWS_WITH_AS(llm::llama_config::from_json(bad, "t/config.json"), doctest::Contains("unsupported model_type 'gpt_neox'"),
                         config_error);
    bad["hidden_size"] = 50;  // 4 heads do not divide it and no head_dim says otherwise
    bad["model_type"] = "llama";
    CHECK_THROWS_WITH_AS(llm::llama_config::from_json(bad, "t/config.json"), doctest::Contains("does not divide hidden_size 50"),
                         config_error);
}

TEST_CASE("LLaVA-HF with a Qwen2 text model saved by transformers 5: logits and greedy decoding match transformers") {
    const fs::path dir = checkpoints_dir() / "llava_qwen2";
    const auto L = model::read_layout(dir);
    CHECK(L.llm.architecture == "Qwen2ForCausalLM");
    CHECK(L.llm.max_position_embeddings == 32768);
    auto m = vlm<vision::clip, projector::mlp2x_gelu, llm::llama>::load(dir);
    const io::safetensors_file ex(dir / "expected.safetensors");
    tensor<float> pixels, ref;
    ex.read("pixels1", pixels);
    ex.read("logits1", ref);
    const auto ids = checkpoint_ids(ex, "ids1");
    tensor<float> out = m.forward({{ids, {}, 1}}, &pixels);
    out.reshape(ref.shape());
    test::require_close(out, ref, 1e-4, 0, "logits");
    llm::generate_options o;
    o.max_new_tokens = 8;
    const auto& embeds = m.embed({{ids, {}, 1}}, &pixels);
    CHECK(llm::generate_from_embeddings(m.llm, embeds, ids, o) == checkpoint_ids(ex, "greedy1"));
}
