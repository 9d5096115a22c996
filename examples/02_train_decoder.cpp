// 02_train_decoder — train a LLaMA-style decoder from scratch, save it as an HF checkpoint,
// and generate from it. Everything is built in: the text comes from a procedural generator,
// the tokenizer is trained on it with vila's BPE trainer.
//
//   02_train_decoder [--seconds S] [--steps N] [--out DIR] [--seed S] [--quiet]
// Default: about one minute on two cores, then DIR (default runs/tiny-llama) holds
// config.json, model.safetensors, tokenizer.json: `vila generate --model DIR --prompt "..."`.
// Exit status 0 when the loss fell below 60% of its start.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <vila/vila.hpp>
#include <vila/llm/generate.hpp>
#include <vila/llm/llama.hpp>
#include <vila/optim/adamw.hpp>

using namespace vila;

namespace {

/// A small world of facts in simple English: learnable structure, endless variety.
std::string make_sentence(rng& g) {
    static const char* names[] = {"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"};
    static const char* animals[] = {"cat", "dog", "fox", "owl", "horse", "mouse", "bird", "fish"};
    static const char* colors[] = {"red", "blue", "green", "yellow", "black", "white", "brown", "gray"};
    static const char* places[] = {"garden", "forest", "river", "house", "market", "school", "field", "hill"};
    static const char* foods[] = {"apples", "bread", "cheese", "soup", "rice", "pears", "cake", "beans"};
    static const char* numbers[] = {"one", "two", "three", "four", "five", "six", "seven", "eight"};
    auto pick = [&](const char* const* list) { return std::string(list[g.below(8)]); };
    switch (g.below(5)) {
        case 0: return pick(names) + " has " + pick(numbers) + " " + pick(colors) + " " + pick(animals) + "s.";
        case 1: return "the " + pick(colors) + " " + pick(animals) + " sleeps in the " + pick(places) + ".";
        case 2: return pick(names) + " eats " + pick(foods) + " at the " + pick(places) + " with " + pick(names) + ".";
        case 3: return "in the " + pick(places) + " the " + pick(animals) + " sees a " + pick(colors) + " " + pick(animals) + ".";
        default: return pick(names) + " likes " + pick(foods) + ", but " + pick(names) + " likes " + pick(foods) + ".";
    }
}

struct options {
    double seconds = 60;
    int steps = 0;  // 0: run for `seconds`
    std::string out = "runs/tiny-llama";
    std::uint64_t seed = 1;
    bool quiet = false;
};

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw config_error("missing value after " + a);
            return argv[++i];
        };
        if (a == "--seconds") o.seconds = std::stod(value());
        else if (a == "--steps") o.steps = std::stoi(value());
        else if (a == "--out") o.out = value();
        else if (a == "--seed") o.seed = std::stoull(value());
        else if (a == "--quiet") o.quiet = true;
        else throw config_error("unknown option " + a + " (use --seconds S --steps N --out DIR --seed S --quiet)");
    }
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const options opt = parse(argc, argv);
        tune_allocator();
        namespace fs = std::filesystem;
        float first = 0, smooth = 0;
        std::int32_t eos = 0;
        // DIR is written as a unit (io::write_folder): everything goes into a temporary folder
        // beside it, which replaces DIR at the end; a run killed at any moment leaves DIR as it was.
        io::write_folder(opt.out, [&](const fs::path& dir) {
            // 1. Text and tokenizer.
            rng text_rng(opt.seed);
            const fs::path corpus = dir / "corpus.txt";
            {
                std::ofstream f(corpus);
                for (int i = 0; i < 20000; ++i) f << make_sentence(text_rng) << "\n";
                f.close();
                if (!f) throw io_error("cannot write " + corpus.string() + " (disk full?)");  // never train on a cut corpus
            }
            tokenizer::bpe_trainer_options topt;
            topt.vocab_size = 384;
            tokenizer::bpe_trainer trainer(topt);
            trainer.feed_files({corpus});
            trainer.train_and_save(dir);
            const auto tok = tokenizer::load(dir);
            eos = *tok.token_to_id("<|endoftext|>");

            // 2. Model: a 4-layer LLaMA with grouped-query attention.
            llm::llama_config cfg;
            cfg.hidden_size = 128;
            cfg.intermediate_size = 352;
            cfg.num_hidden_layers = 4;
            cfg.num_attention_heads = 4;
            cfg.num_key_value_heads = 2;
            cfg.head_dim = 32;
            cfg.vocab_size = index_t(tok.vocab_size());
            cfg.max_position_embeddings = 256;
            cfg.rms_norm_eps = 1e-5;
            cfg.eos_token_ids = {eos};
            cfg.bos_token_id = eos;
            llm::llama<float> model(cfg);
            model.init_weights(opt.seed);
            optim::adamw<float> adam({3e-3, 0.9, 0.95, 1e-8, 0.1});
            std::printf("vila %s: training a %.2f M-parameter decoder (%lld layers, width %lld, vocab %lld) on %d threads\n",
                        version(), double(model.parameter_count()) / 1e6, (long long)cfg.num_hidden_layers, (long long)cfg.hidden_size,
                        (long long)cfg.vocab_size, num_threads());

            // 3. Training on packed sequences: sentences joined by <|endoftext|>.
            const index_t B = 16, T = 64;
            std::vector<std::int32_t> stream;
            auto next_batch = [&]() {
                std::vector<std::int32_t> ids(std::size_t(B * T));
                for (auto& id : ids) {
                    if (stream.empty()) {
                        stream = tok.encode(make_sentence(text_rng), false);
                        stream.push_back(eos);
                        std::reverse(stream.begin(), stream.end());
                    }
                    id = stream.back();
                    stream.pop_back();
                }
                return tensor<std::int32_t>::from_host({B, T}, ids);
            };
            const auto start = std::chrono::steady_clock::now();
            auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
            int step = 0;
            const int warmup = 30;
            for (;; ++step) {
                const double t = elapsed();
                if (opt.steps ? step >= opt.steps : t >= opt.seconds) break;
                const auto batch = next_batch();
                model.forward(batch);
                const float loss = model.loss(batch).loss;
                model.zero_grad();
                model.backward_loss();
                // warmup, then cosine decay over the expected run
                const double progress = opt.steps ? double(step) / opt.steps : t / opt.seconds;
                const double lr = 3e-3 * std::min(1.0, double(step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + std::cos(3.14159265 * progress)));
                adam.step(model, lr);
                if (step == 0) first = smooth = loss;
                smooth = 0.95f * smooth + 0.05f * loss;
                if (!opt.quiet && (step % 20 == 0)) {
                    const double e = elapsed();
                    const double eta = opt.steps ? e / (step + 1) * (opt.steps - step - 1) : std::max(0.0, opt.seconds - e);
                    std::printf("step %4d  loss %.3f (smoothed %.3f)  lr %.2e  %6.0f tokens/s  ETA %4.0f s\n", step, loss, smooth, lr,
                                double(step + 1) * B * T / e, eta);
                    std::fflush(stdout);
                }
            }
            std::printf("trained %d steps in %.1f s: loss %.3f -> %.3f (uniform guess: %.3f)\n", step, elapsed(), first, smooth,
                        std::log(double(cfg.vocab_size)));

            // 4. Save an HF checkpoint and generate from it.
            model.save_into(dir);
        });
        std::printf("saved %s/{config.json, model.safetensors, tokenizer.json}\n", opt.out.c_str());
        const auto tok = tokenizer::load(opt.out);
        auto loaded = llm::llama<float>::load(opt.out);
        for (const char* prompt : {"alice has", "the red", "in the garden"}) {
            llm::generate_options g;
            g.max_new_tokens = 24;
            g.stop_tokens = {eos};
            const auto out = llm::generate(loaded, tok.encode(prompt, false), g);
            std::printf("  %s|%s\n", prompt, tok.decode(out, true).c_str());
        }
        const bool ok = smooth < 0.6f * first;
        std::printf("%s\n", ok ? "OK: the loss fell below 60% of its start" : "FAILED: the loss did not fall enough");
        return ok ? 0 : 1;
    } catch (const vila::error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
}
