// Tests the model commands of the `vila` CLI (ctest: check_llm VILA FIXTURES_DIR WORK_DIR):
//  - `vila logits` on a transformers-made random model agrees with transformers within 1e-4;
//  - `vila generate` streams the requested number of tokens; `vila inspect` lists tensors;
//  - bad input (token outside the vocabulary, truncated safetensors, missing files, bad flags)
//    exits non-zero with one clear line.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <vila/io/safetensors.hpp>

#include "check_support.hpp"

namespace fs = std::filesystem;

using namespace vila::cli_check;

int main(int argc, char** argv) {
    if (argc != 4) {
        std::cerr << "usage: check_llm VILA FIXTURES_DIR WORK_DIR\n";
        return 2;
    }
    const std::string vila = argv[1];
    const fs::path fx = argv[2], work = argv[3];
    fs::create_directories(work);
    const fs::path model = fx / "llm" / "llama_gqa";
    std::string out, err;

    // logits against transformers (row 0 of the fixture batch has no padding)
    vila::io::safetensors_file ex(model / "expected.safetensors");
    const auto& ids_info = ex.info("ids");
    const std::int64_t T = ids_info.shape[1];
    std::vector<std::int32_t> ids(static_cast<std::size_t>(T));
    std::memcpy(ids.data(), ex.bytes(ids_info), ids.size() * 4);
    std::string list;
    for (auto v : ids) list += (list.empty() ? "" : ",") + std::to_string(v);
    int rc = run(vila + " logits --model '" + model.string() + "' --ids " + list + " --out '" + (work / "l.safetensors").string() + "'",
                 work, out, err);
    check(rc == 0, "vila logits runs: " + err);
    if (rc == 0) {
        vila::io::safetensors_file got(work / "l.safetensors");
        vila::tensor<float> ours, ref;
        got.read("logits", ours);
        ex.read("logits", ref);
        const auto a = ours.to_host(), b = ref.to_host();  // ref is [2, T, V]; row 0 first
        check(ours.dim(0) == T && std::int64_t(a.size()) * 2 == std::int64_t(b.size()), "logits shape [T, V]");
        double worst = 0;
        for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) worst = std::max(worst, double(std::abs(a[i] - b[i])));
        check(worst <= 1e-4, "vila logits within 1e-4 of transformers (max diff " + std::to_string(worst) + ")");
        std::cout << "vila logits vs transformers: max |diff| = " << worst << "\n";
    }

    rc = run(vila + " generate --model '" + model.string() + "' --ids 1,2,3 --max-new-tokens 5", work, out, err);
    std::istringstream toks(out);
    int n = 0;
    for (std::string t; toks >> t;) ++n;
    check(rc == 0 && n == 5, "generate prints 5 token ids: " + out + err);

    rc = run(vila + " inspect --model '" + model.string() + "'", work, out, err);
    check(rc == 0 && out.find("model.layers.1.mlp.down_proj.weight") != std::string::npos && out.find("LlamaForCausalLM") != std::string::npos,
          "inspect lists the tensors");

    // bad input: one clear line, non-zero exit
    auto one_line_failure = [&](const std::string& cmd, const std::string& needle) {
        const int r = run(cmd, work, out, err);
        const bool one_line = !err.empty() && err.find('\n') == err.size() - 1;
        check(r != 0 && err.find(needle) != std::string::npos && (one_line || err.find("usage:") != std::string::npos),
              "'" + cmd + "' fails clearly with '" + needle + "': rc=" + std::to_string(r) + " stderr=" + err);
    };
    one_line_failure(vila + " logits --model '" + model.string() + "' --ids 1,500 --out '" + (work / "x.safetensors").string() + "'",
                     "token id 500");
    const fs::path broken = work / "broken";
    fs::create_directories(broken);
    fs::copy_file(model / "config.json", broken / "config.json", fs::copy_options::overwrite_existing);
    {
        const std::string all = slurp(model / "model.safetensors");
        std::ofstream(broken / "model.safetensors", std::ios::binary) << all.substr(0, all.size() / 2);
    }
    one_line_failure(vila + " inspect --model '" + broken.string() + "'", "truncated");
    one_line_failure(vila + " generate --model '" + (work / "nowhere").string() + "' --ids 1", "cannot open");
    one_line_failure(vila + " perplexity --model '" + model.string() + "' --text x", "no tokenizer.json");
    one_line_failure(vila + " logits --model '" + model.string() + "' --ids 1,x --out y", "--ids expects");
    // numeric options (issue 14, row 9): finite, in range, one line with a pointer to --help
    const std::string gen = vila + " generate --model '" + model.string() + "' --ids 1,2 ";
    for (const auto& [opt, needle] : std::vector<std::pair<std::string, std::string>>{
             {"--max-new-tokens 1e14", "--max-new-tokens expects an integer in [0, 1.04858e+06]"},
             {"--max-new-tokens 2.5", "--max-new-tokens expects an integer"},
             {"--seed -1", "--seed expects an integer"},
             {"--temperature nan", "--temperature expects a number"},
             {"--temperature -0.5", "--temperature expects a number in [0,"},
             {"--top-p 0", "--top-p expects a number in (0, 1]"},
             {"--top-p 1.5", "--top-p expects a number in (0, 1]"},
             {"--top-k -1", "--top-k expects an integer"},
             {"--repetition-penalty 0", "--repetition-penalty expects a number in (0,"},
             {"--repetition-penalty inf", "--repetition-penalty expects"}}) {
        one_line_failure(gen + opt, needle);
        check(err.find("see vila --help") != std::string::npos && err.find("usage:") == std::string::npos,
              "a usage error is one line pointing to --help, not the usage text: " + err);
    }
    one_line_failure(vila + " generate --model '" + model.string() + "' --ids 1,99999999999", "outside [0, 2147483647]");
    rc = run(vila + " --help", work, out, err);
    check(rc == 0 && out.find("usage") != std::string::npos, "vila --help prints the usage and exits 0");
    std::cout << (failures ? "FAILED" : "OK") << ": vila model commands\n";
    return failures ? 1 : 0;
}
