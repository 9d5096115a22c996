// Tests the multimodal side of the `vila` CLI (ctest: check_vlm VILA FIXTURES_DIR WORK_DIR):
//  - `vila generate --image ...` on the fixture VILA-layout (--conv vicuna_v1) and LLaVA-HF
//    models, each with one and with two images, prints the tokens PyTorch's greedy decoding
//    gives from the same image files, prompts and tokenizers (tests/fixtures/vlm/
//    cli_expected.json, make_vlm.py); the same for the real-shaped checkpoints
//    (tests/fixtures/checkpoints/cli_expected.json, make_checkpoints.py) and the NVILA folder
//    with dynamic S2 tiles and VILA's own greedy (tests/fixtures/nvila, make_nvila.py);
//  - `vila logits --image` writes [text + image tokens, vocab]; `vila inspect` shows the three parts;
//  - bad input (corrupt image, image count mismatch, unknown projector type, missing projector
//    weights) exits non-zero with one clear line.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>
#include <vila/io/safetensors.hpp>

#include "check_support.hpp"

namespace fs = std::filesystem;
using namespace vila::cli_check;

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: check_vlm VILA FIXTURES_DIR WORK_DIR\n";
        return 2;
    }
    const std::string vila = argv[1];
    const fs::path fx = argv[2], work = argv[3];
    fs::create_directories(work);
    std::string out, err;
    auto q = [](const fs::path& p) { return "'" + p.string() + "'"; };

    for (const char* set : {"vlm", "checkpoints", "nvila"})  // fixture models; real-shaped checkpoints; NVILA (issue 12)
    for (const auto& e : nlohmann::json::parse(slurp(fx / set / "cli_expected.json"))) {
        const std::string name = e["model"].get<std::string>() + " x" + std::to_string(e["images"].size());
        std::string cmd = vila + " generate --model " + q(fx / set / e["model"].get<std::string>()) + " --max-new-tokens 8 --show-ids --conv " +
                          e["conv"].get<std::string>();
        for (const auto& img : e["images"]) cmd += " --image " + q(fx / "images" / img.get<std::string>());
        std::string prompt = e["prompt"].get<std::string>();
        for (std::size_t p; (p = prompt.find('\n')) != std::string::npos;) prompt.replace(p, 1, "\\n");
        cmd += " --prompt \"$(printf '%b' '" + prompt + "')\"";  // sh has no $'\n'; printf %b expands it
        const int rc = run(cmd, work, out, err);
        std::string want;
        for (const auto& id : e["ids"]) want += std::to_string(id.get<int>()) + " ";
        check(rc == 0 && out == want + "\n", name + ": vila generate prints PyTorch's greedy tokens '" + want + "', got '" + out + "' " + err);
        std::cout << name << " image(s): generate -> " << out;
    }

    // text streaming (no --show-ids) works too
    int rc = run(vila + " generate --model " + q(fx / "vlm" / "llava") + " --image " + q(fx / "images" / "a.jpg") +
                     " --prompt 'Describe the picture.' --max-new-tokens 4",
                 work, out, err);
    check(rc == 0 && !out.empty(), "generate streams text: " + err);

    rc = run(vila + " logits --model " + q(fx / "vlm" / "llava") + " --image " + q(fx / "images" / "a.png") + " --image " +
                 q(fx / "images" / "b.png") + " --prompt 'USER: <image> and <image> ASSISTANT:' --out " + q(work / "l.safetensors"),
             work, out, err);
    check(rc == 0, "vila logits --image runs: " + err);
    if (rc == 0) {
        const vila::io::safetensors_file f(work / "l.safetensors");
        const auto& s = f.info("logits").shape;
        check(s.size() == 2 && s[1] == 300 && s[0] > 32, "logits [text + 2 x 16 image tokens, 300]");
    }

    rc = run(vila + " inspect --model " + q(fx / "vlm" / "vila"), work, out, err);
    check(rc == 0 && out.find("vision tower: siglip_vision_model") != std::string::npos &&
              out.find("projector: mlp_downsample") != std::string::npos && out.find("llm: LlamaForCausalLM") != std::string::npos,
          "inspect shows the three parts: " + out + err);

    auto one_line_failure = [&](const std::string& cmd, const std::string& needle) {
        const int r = run(cmd, work, out, err);
        const bool one_line = !err.empty() && err.find('\n') == err.size() - 1;
        check(r != 0 && one_line && err.find(needle) != std::string::npos,
              "'" + cmd + "' fails clearly with '" + needle + "': rc=" + std::to_string(r) + " stderr=" + err);
    };
    const std::string llava = vila + " generate --model " + q(fx / "vlm" / "llava") + " --max-new-tokens 2";
    one_line_failure(llava + " --image " + q(fx / "images" / "truncated.png") + " --prompt hi", "truncated.png");
    one_line_failure(llava + " --image " + q(fx / "images" / "empty.png") + " --prompt hi", "empty.png");
    one_line_failure(llava + " --image " + q(fx / "images" / "bomb.png") + " --prompt hi", "decompression bomb");
    one_line_failure(llava + " --image " + q(fx / "images" / "a.png") + " --image " + q(fx / "images" / "b.png") + " --prompt '<image> hi'",
                     "the prompt has 1 <image> mark but 2 images were given");
    one_line_failure(llava + " --image " + q(fx / "images" / "missing.png") + " --prompt hi", "missing.png");

    const fs::path broken = work / "broken";
    fs::remove_all(broken);
    fs::copy(fx / "vlm" / "vila", broken, fs::copy_options::recursive);
    std::ofstream(broken / "mm_projector" / "config.json") << R"({"mm_projector_type": "qformer"})";
    one_line_failure(vila + " inspect --model " + q(broken), "mm_projector_type: 'qformer' is not supported");
    std::ofstream(broken / "mm_projector" / "config.json") << R"({"mm_projector_type": "mlp2x_gelu"})";
    one_line_failure(vila + " inspect --model " + q(broken), "missing tensor 'layers.0.weight'");
    fs::remove(broken / "mm_projector" / "model.safetensors");
    std::ofstream(broken / "mm_projector" / "config.json") << R"({"mm_projector_type": "mlp_downsample"})";
    one_line_failure(vila + " inspect --model " + q(broken), "model.safetensors");
    fs::remove_all(broken);

    if (failures) std::cerr << failures << " check(s) failed\n";
    else std::cout << "all VLM CLI checks passed\n";
    return failures ? 1 : 0;
}
