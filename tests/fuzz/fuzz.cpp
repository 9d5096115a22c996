// libFuzzer harnesses for the readers of untrusted files (issue 14): one binary, the target
// chosen by the environment variable VILA_FUZZ (tests/fuzz/run.sh sets it):
//   image        decode_image, then CLIP preprocessing in pad and resize modes
//   safetensors  the header and every tensor's conversion to float
//   config       config.json readers: LLaMA-family, ViT, image processor
//   tokenizer    tokenizer.json (first line: a text to encode, then the JSON)
//   regex        a Split pattern (first line) matched against the rest
//   jinja        a chat template (Jinja), parsed and rendered with a small conversation
//   data         the training-data readers: the first byte picks the format (llava JSON,
//                MMC4 JSONL, MMC4 as pairs, a webdataset tar shard, instructions, text, a data
//                registry), the rest is the file; every record is read and its images loaded
// The contract checked besides memory safety: a reader throws vila::error (with a message) or
// succeeds; any other exception aborts, so libFuzzer reports it as a crash.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <unistd.h>

#include <vila/data/images.hpp>
#include <vila/data/open.hpp>
#include <vila/io/safetensors.hpp>
#include <vila/llm/config.hpp>
#include <vila/tokenizer/jinja.hpp>
#include <vila/tokenizer/regex.hpp>
#include <vila/tokenizer/tokenizer.hpp>
#include <vila/vision/image.hpp>
#include <vila/vision/vit.hpp>

namespace {

std::string target;

void fuzz_image(const unsigned char* data, std::size_t size) {
    // a smaller pixel limit than the default keeps each run fast; the checks are the same
    const auto im = vila::vision::decode_image(data, size, "fuzz", 1u << 20);
    vila::vision::image_processor p;
    p.shortest_edge = p.width = p.height = 16;
    p.max_pixels = 1u << 20;
    for (const char* mode : {"none", "pad", "resize"}) {
        p.aspect_ratio = mode;
        try {
            (void)p.preprocess(im);
        } catch (const vila::shape_error&) {  // an intermediate image above the limit
        }
    }
}

void fuzz_safetensors(const unsigned char* data, std::size_t size) {
    static const std::string path = "/tmp/vila_fuzz_" + std::to_string(::getpid()) + ".safetensors";
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
    vila::io::safetensors_file st(path);
    for (const auto& [name, info] : st.tensors()) {
        if (vila::numel(info.shape) > (1 << 20)) continue;
        vila::tensor<float> t;
        try {
            st.read(name, t);
        } catch (const vila::format_error&) {  // an integer tensor read as float
        }
    }
}

nlohmann::json parse(const unsigned char* data, std::size_t size) {
    try {
        return nlohmann::json::parse(data, data + size);
    } catch (const nlohmann::json::exception& e) {
        throw vila::format_error(std::string("fuzz: invalid JSON: ") + e.what());
    }
}

void fuzz_config(const unsigned char* data, std::size_t size) {
    const auto j = parse(data, size);
    const auto each = [](auto&& fn) {
        try {
            fn();
        } catch (const vila::error& e) {
            if (!*e.what()) std::abort();
        }
    };
    each([&] { (void)vila::llm::llama_config::from_json(j, "fuzz/config.json"); });
    each([&] { (void)vila::vision::vit_config::from_json(j, "fuzz/config.json"); });
    each([&] { (void)vila::vision::image_processor::from_json(j, "fuzz/preprocessor_config.json"); });
}

void fuzz_tokenizer(const unsigned char* data, std::size_t size) {
    const auto* nl = static_cast<const unsigned char*>(std::memchr(data, '\n', size));
    const std::size_t cut = nl ? std::size_t(nl - data) : 0;
    const std::string text(reinterpret_cast<const char*>(data), std::min<std::size_t>(cut, 256));
    const auto t = vila::tokenizer::tokenizer::from_json(parse(data + cut, size - cut), "fuzz/tokenizer.json");
    const auto ids = t.encode(text);
    try {
        (void)t.decode(ids);
    } catch (const vila::error&) {  // e.g. a byte-level decoder on ids of another model
    }
}

void fuzz_regex(const unsigned char* data, std::size_t size) {
    const auto* nl = static_cast<const unsigned char*>(std::memchr(data, '\n', size));
    if (!nl) return;
    const std::string pattern(reinterpret_cast<const char*>(data), std::size_t(nl - data));
    const std::string text(reinterpret_cast<const char*>(nl + 1), std::min<std::size_t>(size - std::size_t(nl - data) - 1, 256));
    const vila::tokenizer::regex re(pattern);
    std::vector<vila::tokenizer::unicode::codepoint> cps;
    for (unsigned char c : text) cps.push_back(c);
    (void)re.find_all(cps);
}

void fuzz_data(const unsigned char* data, std::size_t size) {
    if (size == 0) return;
    static const char* const formats[] = {"llava", "mmc4", "mmc4-pairs", "webdataset", "instructions", "text", "registry"};
    static const char* const extensions[] = {".json", ".jsonl", ".jsonl", ".tar", ".jsonl", ".jsonl", ".json"};
    const std::size_t pick = data[0] % 7;
    static const std::string dir = "/tmp/vila_fuzz_data_" + std::to_string(::getpid());
    static const bool made = std::filesystem::create_directories(dir) || true;
    (void)made;
    const std::string path = dir + "/input" + extensions[pick];
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) std::abort();
    if (size > 1) std::fwrite(data + 1, 1, size - 1, f);
    std::fclose(f);
    std::vector<vila::data::source_spec> specs;
    if (pick == 6) {
        specs = vila::data::parse_mixture("a+b", path);  // names an entry may give: a, b
    } else {
        vila::data::source_spec s;
        s.format = formats[pick];
        s.path = path;
        specs.push_back(s);
    }
    vila::vision::image_processor p;
    p.shortest_edge = p.width = p.height = 16;
    p.max_pixels = 1u << 20;
    for (const auto& spec : specs) {
        const auto src = vila::data::open_source(spec);
        for (std::size_t i = 0; i < std::min<std::size_t>(src->size(), 32); ++i) {
            try {
                const auto r = src->get(i);
                for (const auto& im : r.images) (void)vila::data::load_pixels(im, p);
            } catch (const vila::error& e) {  // a bad record or image: an error that says so
                if (!*e.what()) std::abort();
            }
        }
    }
}

void fuzz_jinja(const unsigned char* data, std::size_t size) {
    using vila::tokenizer::jinja::json;
    const vila::tokenizer::jinja::template_source t(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    const json ctx = {{"messages", json::array({{{"role", "system"}, {"content", "Be brief."}},
                                                {{"role", "user"}, {"content", "Hi <image>"}},
                                                {{"role", "assistant"}, {"content", "Hello."}}})},
                      {"tools", nullptr}, {"documents", nullptr}, {"add_generation_prompt", true},
                      {"bos_token", "<s>"}, {"eos_token", "</s>"}};
    const auto r = t.render(ctx);
    for (const auto& [b, e] : r.generation)
        if (b > e || e > r.text.size()) std::abort();  // generation ranges lie inside the text
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* t = std::getenv("VILA_FUZZ");
    target = t ? t : "";
    if (target != "image" && target != "safetensors" && target != "config" && target != "tokenizer" && target != "regex" && target != "data" &&
        target != "jinja") {
        std::fprintf(stderr, "set VILA_FUZZ to image, safetensors, config, tokenizer, regex, data or jinja\n");
        std::exit(2);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    try {
        if (target == "image") fuzz_image(data, size);
        else if (target == "safetensors") fuzz_safetensors(data, size);
        else if (target == "config") fuzz_config(data, size);
        else if (target == "tokenizer") fuzz_tokenizer(data, size);
        else if (target == "data") fuzz_data(data, size);
        else if (target == "jinja") fuzz_jinja(data, size);
        else fuzz_regex(data, size);
    } catch (const vila::error& e) {
        if (!*e.what()) std::abort();  // every error says what went wrong
    }
    return 0;  // any other exception escapes: libFuzzer reports it
}
