// bench_loader — the data loader at real sizes: 384 px JPEGs in a LLaVA conversation JSON,
// decoded and preprocessed by a CLIP image processor (resize + center crop) to the tiny VILA
// config's 64 px, tokenized with a real tokenizer (Mistral's), then:
//   loader:   records/s of data::mixture_sampler alone with 0, 1 and 2 worker threads
//   train:    a stage-2 training run of the tiny VILA config (bench_vlm's: CLIP 4 x 256,
//             mlp2x_gelu, LLaMA 512 x 8, vocab 32000) fed by the loader, with 0 and 1 workers:
//             the share of step time the trainer waits for batches (target: < 5%)
// Prints one JSON line per measurement (docs/performance.md, "Data loader").
//   bench_loader [--images N] [--steps S] [--batch B] [--tokenizer DIR]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include <vila/vila.hpp>

#include "tiny_vila.hpp"

// stbi_write_jpg: vila.hpp compiles stb_image_write in (data/synthetic.hpp)

using namespace vila;
namespace fs = std::filesystem;

namespace {
/// A 384 x 384 picture with structure and noise (a plain colour would decode unrealistically fast).
void write_jpeg(const fs::path& file, rng& g) {
    const int W = 384, H = 384;
    std::vector<unsigned char> px(std::size_t(W * H * 3));
    const double fx = g.uniform(0.01, 0.08), fy = g.uniform(0.01, 0.08);
    for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x)
            for (int c = 0; c < 3; ++c) {
                const double v = 127 + 80 * std::sin(fx * x * (c + 1) + fy * y) + g.uniform(-40, 40);
                px[std::size_t((y * W + x) * 3 + c)] = (unsigned char)std::clamp(v, 0.0, 255.0);
            }
    if (!stbi_write_jpg(file.c_str(), W, H, 3, px.data(), 90)) throw io_error("cannot write " + file.string());
}
struct recorder {
    double* step_seconds;
    double* data_seconds;
    template <class M>
    bool on_step_end(M&, const train::step_info& s) {
        if (s.step > 1) *step_seconds += s.seconds, *data_seconds += s.data_seconds;  // the first step allocates
        return false;
    }
};
}  // namespace

int main(int argc, char** argv) {
    int images = 64, steps = 6;
    index_t batch = 8;
    fs::path tok_dir = fs::path(VILA_SOURCE_DIR) / "tests" / "data" / "tokenizers" / "mistral";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--images") images = std::stoi(v);
        else if (a == "--steps") steps = std::stoi(v);
        else if (a == "--batch") batch = std::stol(v);
        else if (a == "--tokenizer") tok_dir = v;
    }
    tune_allocator();
    const fs::path dir = fs::temp_directory_path() / ("vila-bench-loader." + std::to_string(::getpid()));
    fs::create_directories(dir / "images");
    rng g(7);
    nlohmann::json rows = nlohmann::json::array();
    const char* words[] = {"the", "picture", "shows", "a", "wave", "pattern", "of", "light", "and", "colour", "across", "its", "surface"};
    for (int i = 0; i < images; ++i) {
        const std::string name = "img" + std::to_string(i) + ".jpg";
        write_jpeg(dir / "images" / name, g);
        std::string answer;
        for (int w = 0; w < 40; ++w) answer += std::string(w ? " " : "") + words[g.below(13)];
        rows.push_back({{"id", i}, {"image", name},
                        {"conversations", {{{"from", "human"}, {"value", "<image>\nDescribe the picture in detail."}},
                                           {{"from", "gpt"}, {"value", answer + "."}}}}});
    }
    io::write_json(dir / "rows.json", rows);
    const auto tok = tokenizer::load(tok_dir);
    vision::image_processor proc = vision::image_processor::from_json(
        {{"image_processor_type", "CLIPImageProcessor"}, {"size", {{"shortest_edge", 64}}}, {"crop_size", {{"height", 64}, {"width", 64}}}},
        "bench");
    const std::int32_t image_token = bench::tiny_vila_image_token;
    auto sources = [&] {
        return std::vector<data::mixture_entry>{{"llava", std::make_shared<data::llava_source>(dir / "rows.json")}};
    };
    data::render_options r;
    r.image_token = image_token;
    r.tokens_per_image = 64;

    // the loader alone
    for (int workers : {0, 1, 2}) {
        data::mixture_options o;
        o.batch_size = batch;
        o.workers = workers;
        o.prefetch = 2 * batch;
        data::mixture_sampler<data::mix::natural> s(sources(), tok, r, &proc, o);
        s.next();  // warm-up
        const auto a = std::chrono::steady_clock::now();
        const int batches = std::max(1, 2 * images / int(batch));
        for (int b = 0; b < batches; ++b) s.next();
        const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
        std::printf("{\"mode\": \"loader\", \"workers\": %d, \"threads\": %d, \"records_per_s\": %.1f, \"image_px\": 384}\n", workers,
                    num_threads(), double(batches * batch) / sec);
    }

    // a stage-2 training run of the tiny VILA config, fed by the loader
    for (int workers : {0, 1}) {
        rng w(1);
        auto m = bench::make_tiny_vila(-2, w);
        data::mixture_options o;
        o.batch_size = batch;
        o.workers = workers;
        o.prefetch = 2 * batch;
        data::mixture_sampler<data::mix::natural> s(sources(), tok, r, &proc, o);
        train::trainer_options to;
        to.steps = steps + 1;
        to.handle_signals = false;
        train::param_groups gr;
        gr.lr = 1e-4;
        double step_s = 0, data_s = 0;
        train::trainer<decltype(m), train::freeze::pretrain, data::mixture_sampler<data::mix::natural>, optim::adamw<float>, train::constant, recorder>
            t(m, optim::adamw<float>({1e-4, 0.9, 0.999, 1e-8, 0.0}), train::constant{}, gr, to, recorder{&step_s, &data_s});
        t.fit(s);
        std::printf("{\"mode\": \"train\", \"workers\": %d, \"threads\": %d, \"batch\": %lld, \"step_seconds\": %.3f, \"data_wait_share\": %.4f}\n",
                    workers, num_threads(), (long long)batch, step_s / steps, data_s / step_s);
    }
    fs::remove_all(dir);
    return 0;
}
