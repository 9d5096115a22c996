// Tests `vila train` end to end (ctest: check_train VILA WORK_DIR), as a user runs it from a
// fresh clone: a tokenizer trained by `vila train-tokenizer`, a tiny LLaMA from --init-config,
// text JSONL data; progress, metrics and checkpoints; SIGKILL at several moments (mid-step and
// during checkpoint writes) then --resume, until the run completes: the final weights equal an
// uninterrupted run's byte for byte. Plus the one-line failures of bad flags and folders. With
// FIXTURES_DIR: fine-tuning the fixture VLM folders on the fixture datasets (tests/fixtures/data).
#include <chrono>
#include <cmath>
#include <cstring>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check_support.hpp"

extern char** environ;
namespace fs = std::filesystem;
using namespace vila::cli_check;

namespace {
/// Starts `argv` with stdout/stderr to `log`; returns the pid.
pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    pid_t pid = -1;
    const int e = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0 || pid <= 0) {  // never hand back -1: kill(-1, ...) would signal every process of the user
        std::cerr << "FAILED: cannot start " << args[0] << " (log " << log << "): " << std::strerror(e) << "\n";
        std::exit(1);
    }
    return pid;
}
int exit_code(int st) { return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0); }
int wait_exit(pid_t pid) {
    int st = 0;
    waitpid(pid, &st, 0);
    return exit_code(st);
}
std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

/// Losses of a run's metrics.jsonl, in order.
std::vector<double> losses(const fs::path& metrics) {
    std::ifstream m(metrics);
    std::vector<double> out;
    for (std::string line; std::getline(m, line);) {
        const auto at = line.find("\"loss\":");
        if (at != std::string::npos) out.push_back(std::stod(line.substr(at + 7)));
    }
    return out;
}

/// Fine-tuning VLM folders (VILA layout and LLaVA-HF) on LLaVA conversation data from the CLI:
/// the loss falls, the result generates, a killed run resumes to the same weights, mixtures
/// of formats, bad records counted (lenient) or fatal (strict).
void check_vlm_finetune(const std::string& vila, const fs::path& work, const fs::path& fixtures) {
    std::string out, err;
    fs::create_directories(work);
    const fs::path vila_dir = fixtures / "vlm" / "vila", llava_dir = fixtures / "vlm" / "llava", data = fixtures / "data";
    const std::string common = " --data " + q(data / "llava" / "rows.json") + " --steps 24 --batch-size 2 --lr 3e-3 --warmup-steps 2" +
                               " --save-every 4 --seed 5 --threads 2 --plain";
    int rc = run(vila + " train --init " + q(vila_dir) + " --out " + q(work / "va") + common, work, out, err);
    check(rc == 0 && out.find("data: rows.json: llava:") != std::string::npos, "vila train fine-tunes a VILA folder on LLaVA JSON: " + out + err);
    const auto l = losses(work / "va" / "metrics.jsonl");
    check(l.size() == 24, "24 metrics lines");
    if (l.size() == 24) {
        double tail = 0;
        for (std::size_t i = 20; i < 24; ++i) tail += l[i] / 4;
        check(tail < 0.5 * l[0], "the fine-tuning loss falls: " + std::to_string(l[0]) + " -> " + std::to_string(tail) + " (last 4)");
        std::cout << "vila train (VLM): loss " << l[0] << " -> " << tail << " (mean of the last 4 steps)\n";
    }
    const fs::path fin = work / "va" / "final";
    check(fs::exists(fin / "llm" / "tokenizer.json") && fs::exists(fin / "vision_tower" / "preprocessor_config.json") &&
              fs::exists(fin / "mm_projector" / "model.safetensors"),
          "final/ is a VILA folder with its tokenizer and image processor");
    rc = run(vila + " generate --model " + q(fin) + " --image " + q(data / "llava" / "images" / "red.png") +
                 " --prompt 'What colour is the square?' --conv vicuna_v1 --max-new-tokens 6",
             work, out, err);
    check(rc == 0, "the fine-tuned VLM generates: " + err);

    // SIGKILL once a few steps are done, resume: the same final weights
    {
        const pid_t pid = spawn({vila, "train", "--init", vila_dir.string(), "--out", (work / "vb").string(), "--data",
                                 (data / "llava" / "rows.json").string(), "--steps", "24", "--batch-size", "2", "--lr", "3e-3",
                                 "--warmup-steps", "2", "--save-every", "4", "--seed", "5", "--threads", "2", "--plain"},
                                work / "vb.log");
        auto lines = [&] { return losses(work / "vb" / "metrics.jsonl").size(); };
        for (int i = 0; i < 50000 && lines() < 10; ++i) std::this_thread::sleep_for(std::chrono::microseconds(200));
        ::kill(pid, SIGKILL);
        wait_exit(pid);
        const int st = wait_exit(spawn({vila, "train", "--resume", (work / "vb").string(), "--threads", "2"}, work / "vb.log"));
        check(st == 0, "the VLM run resumes: " + slurp(work / "vb.log"));
        for (const char* f : {"llm/model.safetensors", "mm_projector/model.safetensors", "vision_tower/model.safetensors"})
            check(slurp(work / "vb" / "final" / f) == slurp(fin / f), std::string("killed-and-resumed VLM run: ") + f + " equals the uninterrupted run's");
    }

    // a LLaVA-HF folder on a mixture of conversation and text-only instruction data
    rc = run(vila + " train --init " + q(llava_dir) + " --out " + q(work / "vc") + " --data " + q(data / "llava" / "rows.jsonl") + "+" +
                 q(data / "text" / "flan.jsonl") + " --mixture weighted --steps 6 --batch-size 3 --lr 1e-3 --seed 2 --threads 2 --plain",
             work, out, err);
    check(rc == 0, "a LLaVA-HF folder fine-tunes on a two-source mixture: " + out + err);
    const std::string metrics = slurp(work / "vc" / "metrics.jsonl");
    check(metrics.find("\"rows.jsonl\"") != std::string::npos && metrics.find("\"flan.jsonl\"") != std::string::npos,
          "metrics count samples per source: " + metrics.substr(0, 300));
    rc = run(vila + " generate --model " + q(work / "vc" / "final") + " --image " + q(data / "llava" / "images" / "blue.png") +
                 " --prompt 'Colour?' --max-new-tokens 4",
             work, out, err);
    check(rc == 0, "the fine-tuned LLaVA-HF model (saved in the VILA layout) generates: " + err);

    // bad records: counted and reported (lenient), or the first one stops the run (strict)
    const std::string bad = " --init " + q(vila_dir) + " --data " + q(data / "bad" / "llava.jsonl") + " --image-folder " +
                            q(data / "bad" / "images") + " --steps 2 --batch-size 2 --threads 2 --plain";
    rc = run(vila + " train --out " + q(work / "vd") + bad, work, out, err);
    check(rc == 0 && out.find("data: 6 bad records skipped: bad conversation 2; corrupt image 1; image count mismatch 1; invalid JSON 1; "
                              "missing image 1;") != std::string::npos &&
              out.find("llava.jsonl:3: missing image nowhere.png") != std::string::npos,
          "lenient: bad records skipped, counted by reason, located: " + out + err);
    rc = run(vila + " train --out " + q(work / "ve") + bad + " --bad-records strict", work, out, err);
    check(rc != 0 && err.find("bad/llava.jsonl:") != std::string::npos && !fs::exists(work / "ve" / "final"),
          "strict: the first bad record stops the run, naming it: " + err);

    // LoRA on the LLM (the projector trains too, as in LLaVA's LoRA recipe): the LLM's base
    // weights stay byte-identical, the adapter is saved in PEFT's format, generate applies it
    rc = run(vila + " train --init " + q(vila_dir) + " --out " + q(work / "vg") + common + " --lora r=4,alpha=8,targets=q_proj+v_proj+down_proj",
             work, out, err);
    check(rc == 0 && out.find("lora: r=4") != std::string::npos, "vila train --lora on a VLM folder: " + out + err);
    rc = run(vila + " train --init " + q(vila_dir) + " --out " + q(work / "vh") + " --data " + q(data / "llava" / "rows.json") +
                 " --freeze align_projector --steps 1 --threads 2 --plain",
             work, out, err);
    check(rc == 0 && slurp(work / "vg" / "final" / "llm" / "model.safetensors") == slurp(work / "vh" / "final" / "llm" / "model.safetensors"),
          "LoRA leaves the LLM's base weights byte-identical (compared with a run that froze the LLM)");
    check(fs::exists(work / "vg" / "final" / "adapter_config.json") && fs::exists(work / "vg" / "final" / "adapter_model.safetensors") &&
              slurp(work / "vg" / "final" / "adapter_model.safetensors").find("base_model.model.llm.model.layers.0.self_attn.q_proj.lora_A.weight") !=
                  std::string::npos,
          "final/ holds the PEFT adapter under VILA's module names");
    const auto lora_losses = losses(work / "vg" / "metrics.jsonl");
    check(lora_losses.size() == 24 && lora_losses.back() < lora_losses.front(), "the LoRA fine-tune's loss falls");
    rc = run(vila + " generate --model " + q(work / "vg" / "final") + " --image " + q(data / "llava" / "images" / "red.png") +
                 " --prompt 'Colour?' --conv vicuna_v1 --max-new-tokens 4",
             work, out, err);
    check(rc == 0 && err.find("adapter:") != std::string::npos, "generate applies the VLM folder's adapter: " + err);

    // the synthetic world from the CLI: reproducible, and trainable through its registry
    rc = run(vila + " make-world " + q(work / "world") + " --seed 11", work, out, err);
    const int rc_again = run(vila + " make-world " + q(work / "world2") + " --seed 11", work, out, err);
    check(rc == 0 && rc_again == 0 && slurp(work / "world" / "pairs" / "00001.tar") == slurp(work / "world2" / "pairs" / "00001.tar") &&
              slurp(work / "world" / "mmc4" / "docs.jsonl") == slurp(work / "world2" / "mmc4" / "docs.jsonl"),
          "vila make-world writes the same world for the same seed: " + err);
    rc = run(vila + " train --init " + q(vila_dir) + " --out " + q(work / "vw") + " --data-registry " + q(work / "world" / "registry.json") +
                 " --data llava+flan+mmc4+coyo --steps 4 --batch-size 4 --lr 1e-3 --threads 2 --plain",
             work, out, err);
    check(rc == 0 && out.find("data: coyo: webdataset:") != std::string::npos && out.find("bad records") == std::string::npos,
          "a VLM trains on the synthetic world's four sources by registry name, without a bad record: " + out + err);
    // vila eval on the world's held-out sets: every task runs and writes its results
    for (const auto& [task, file] : std::vector<std::pair<std::string, std::string>>{
             {"vqa", "eval/vqa.json"}, {"caption", "eval/captions.json"}, {"icl", "eval/icl.jsonl"}, {"mc", "eval/text_icl.jsonl"},
             {"mc", "eval/text_mc.jsonl"}, {"ppl", "text/knowledge.jsonl"}}) {
        const fs::path res = work / ("eval-" + task + ".json");
        rc = run(vila + " eval --model " + q(work / "vw" / "final") + " --task " + task + " --data " + q(work / "world" / file) +
                     " --limit 6 --max-new-tokens 4 --out " + q(res),
                 work, out, err);
        const std::string j = slurp(res);
        const std::string key = task == "ppl" ? "\"perplexity\"" : task == "caption" ? "\"cider\"" : "\"accuracy\"";
        check(rc == 0 && j.find(key) != std::string::npos && j.find("\"items\": 6") != std::string::npos && out.find(task) != std::string::npos,
              "vila eval --task " + task + " on the world: " + out + err + j.substr(0, 200));
    }

    auto fails = [&](const std::string& cmd, const std::string& needle) {
        const int r = run(cmd, work, out, err);
        check(r != 0 && err.find(needle) != std::string::npos, "'" + cmd + "' fails with '" + needle + "': rc=" + std::to_string(r) + " " + err);
    };
    fails(vila + " make-world " + q(work / "world"), "exists");
    fails(vila + " eval --model " + q(work / "vw" / "final") + " --task captions --data " + q(work / "world" / "eval" / "vqa.json"), "--task 'captions'");
    fails(vila + " eval --model " + q(work / "vw" / "final") + " --task vqa --data " + q(work / "world" / "eval" / "icl.jsonl"), "icl.jsonl:1:");
    fails(vila + " train --out " + q(work / "vf") + " --init " + q(vila_dir) + common + " --lora r=4,targets=nothing_here", "no linear layer");
    fails(vila + " train --out " + q(work / "vf") + " --init " + q(vila_dir) + common + " --freeze llm", "--freeze 'llm' is not one of");
    fails(vila + " train --out " + q(work / "vf") + " --init " + q(vila_dir) + " --data nowhere.json --steps 2", "data 'nowhere.json' is neither");
    fails(vila + " train --out " + q(work / "vf") + " --init " + q(vila_dir) + " --data " + q(data / "llava" / "rows.json") + " --seq-len 100000",
          "exceeds the model's max_position_embeddings");
    check(!fs::exists(work / "vf"), "refused VLM runs leave no folder behind");
}
}  // namespace

/// The recipe from the CLI on the synthetic world (the ci size: a few steps per stage): every
/// stage runs, the table and answers print, a run killed in stage 5 continues when the same
/// command runs again and ends with the uninterrupted run's weights; mistakes fail in one line.
void check_recipe(const std::string& vila, const fs::path& work) {
    fs::create_directories(work);
    std::string out, err;
    {
        std::ofstream c(work / "recipe.json");
        c << R"({"stages": {"pretrain": {"steps": 12, "save_every": 3}}})";
    }
    auto command = [&](const fs::path& run, const char* seed = "3") {
        return std::vector<std::string>{vila, "train", "--recipe", "vila3-from-scratch", "--world", (work / "world").string(), "--out", run.string(),
                                        "--size", "ci", "--seed", seed, "--recipe-config", (work / "recipe.json").string(), "--plain",
                                        "--threads", "2", "--eval-limit", "4"};
    };
    auto joined = [&](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : " ") + q(x);
        return s;
    };
    int rc = run(joined(command(work / "r1")), work, out, err);
    const std::string results = slurp(work / "r1" / "results.json");
    std::size_t rows = 0;
    for (std::size_t at = 0; (at = results.find("\"stage\":", at)) != std::string::npos; ++at) ++rows;
    check(rc == 0 && out.find("recipe vila3-from-scratch complete: 6 stages") != std::string::npos && rows == 6 &&
              out.find("text ICL") != std::string::npos && out.find("(truth: ") != std::string::npos,
          "vila train --recipe runs the six stages, evaluates each and answers new questions: " + out.substr(out.size() > 3000 ? out.size() - 3000 : 0) + err);
    for (const char* stage : {"01-copy", "02-text", "03-vision", "04-align", "05-pretrain", "06-sft"})
        check(fs::exists(work / "r1" / stage / "done.json") && fs::exists(work / "r1" / stage / "final" / "llm" / "tokenizer.json"),
              std::string("stage folder ") + stage + " is complete, with its model and tokenizer");

    // killed during stage 5, continued by the same command
    const pid_t pid = spawn(command(work / "r2"), work / "r2.log");
    auto lines = [&] { return losses(work / "r2" / "05-pretrain" / "metrics.jsonl").size(); };
    for (int i = 0; i < 300000 && lines() < 5; ++i) std::this_thread::sleep_for(std::chrono::microseconds(200));
    ::kill(pid, SIGKILL);
    const int killed = wait_exit(pid);
    check(killed == 128 + SIGKILL, "the recipe was killed in stage 5 (exit " + std::to_string(killed) + "): " + slurp(work / "r2.log"));
    rc = run(joined(command(work / "r2")), work, out, err);
    check(rc == 0 && out.find("stage 1 copy: complete, skipped") != std::string::npos &&
              out.find("stage 5 pretrain: resuming from step") != std::string::npos,
          "the same command continues the killed recipe from stage 5's checkpoint: " + out + err);
    for (const char* f : {"llm/model.safetensors", "mm_projector/model.safetensors", "vision_tower/model.safetensors"})
        check(slurp(work / "r2" / "06-sft" / "final" / f) == slurp(work / "r1" / "06-sft" / "final" / f),
              std::string("the continued recipe's ") + f + " equals the uninterrupted run's");

    auto fails = [&](const std::string& cmd, const std::string& needle) {
        const int r = run(cmd, work, out, err);
        check(r != 0 && err.find(needle) != std::string::npos, "'" + cmd + "' fails with '" + needle + "': rc=" + std::to_string(r) + " " + err);
    };
    const std::string w = " --world " + q(work / "world");
    fails(vila + " train --recipe vila4" + w + " --out " + q(work / "x"), "recipe 'vila4'");
    fails(vila + " train --recipe vila3" + w + " --out " + q(work / "x"), "give --init");
    fails(vila + " train --recipe vila3-from-scratch --out " + q(work / "x"), "give --world");
    fails(vila + " train --recipe vila3-from-scratch" + w + " --out " + q(work / "x") + " --size huge", "size 'huge'");
    {
        std::ofstream c(work / "bad.json");
        c << R"({"stages": {"sft": {"stepz": 3}}})";
    }
    fails(vila + " train --recipe vila3-from-scratch" + w + " --out " + q(work / "x") + " --recipe-config " + q(work / "bad.json"), "stages.sft: stepz");
    fails(joined(command(work / "r1", "4")), "other settings");
    check(!fs::exists(work / "x"), "refused recipes leave no folder behind");
}

int main(int argc, char** argv) {
    if (argc != 3 && argc != 4) {
        std::cerr << "usage: check_train VILA WORK_DIR [FIXTURES_DIR]\n";
        return 2;
    }
    const std::string vila = fs::absolute(argv[1]).string();
    const fs::path work = fs::absolute(argv[2]);
    fs::remove_all(work);
    fs::create_directories(work);
    std::string out, err;

    // data: short sentences as text JSONL, and a tokenizer trained on them
    {
        std::ofstream data(work / "text.jsonl"), lines(work / "text.txt");
        const char* who[] = {"the cat", "a dog", "my owl", "the fox"};
        const char* does[] = {"sees", "likes", "finds", "follows"};
        const char* what[] = {"a red ball", "the blue house", "two green apples", "the old tree"};
        for (int i = 0; i < 400; ++i) {
            const std::string s = std::string(who[i % 4]) + " " + does[(i / 4) % 4] + " " + what[(i / 16) % 4] + ".";
            data << "{\"text\": \"" << s << "\"}\n";
            lines << s << "\n";
        }
        std::ofstream cfg(work / "tiny.json");
        cfg << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "intermediate_size": 64,
                  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 320,
                  "max_position_embeddings": 128, "rms_norm_eps": 1e-5, "eos_token_id": 0, "bos_token_id": 0})";
    }
    int rc = run(vila + " train-tokenizer --input " + q(work / "text.txt") + " --vocab-size 320 --special '<|endoftext|>' --out " +
                     q(work / "tok"),
                 work, out, err);
    check(rc == 0, "train-tokenizer: " + err);

    rc = run(vila + " train --help", work, out, err);
    check(rc == 0 && out.find("--resume RUN_DIR") != std::string::npos && out.find("--recipe vila3") != std::string::npos &&
              out.find("no arguments: the demo") != std::string::npos,
          "vila train --help exits 0 with the usage, the recipe's and the demo's");

    const std::string common = " --init-config " + q(work / "tiny.json") + " --tokenizer " + q(work / "tok") + " --data " +
                               q(work / "text.jsonl") + " --steps 40 --batch-size 4 --seq-len 32 --lr 3e-3 --warmup-steps 4" +
                               " --save-every 5 --keep-last 2 --seed 7 --threads 2 --plain";
    // uninterrupted run
    const auto t0 = std::chrono::steady_clock::now();
    rc = run(vila + " train --out " + q(work / "a") + common, work, out, err);
    const double run_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    check(rc == 0, "vila train runs: " + out + err);
    check(out.find("step 40/40") != std::string::npos && out.find("tokens/s") != std::string::npos, "progress lines: " + out);
    check(fs::exists(work / "a" / "final" / "model.safetensors") && fs::exists(work / "a" / "final" / "tokenizer.json"),
          "final/ holds the model and its tokenizer");
    check(fs::exists(work / "a" / "checkpoints" / "step-40" / "optimizer.safetensors"), "the last checkpoint");
    check(slurp(work / "a" / "checkpoints" / "latest") == "step-40\n", "latest names step-40");
    {
        std::ifstream m(work / "a" / "metrics.jsonl");
        int n = 0;
        double first = 0, last = 0;
        for (std::string line; std::getline(m, line); ++n) {
            const auto at = line.find("\"loss\":");
            const double l = std::stod(line.substr(at + 7));
            if (n == 0) first = l;
            last = l;
        }
        check(n == 40, "metrics.jsonl has 40 lines, has " + std::to_string(n));
        check(last < 0.6 * first, "the loss falls: " + std::to_string(first) + " -> " + std::to_string(last));
        std::cout << "vila train: loss " << first << " -> " << last << " in 40 steps\n";
    }
    rc = run(vila + " generate --model " + q(work / "a" / "final") + " --prompt 'the cat' --max-new-tokens 6", work, out, err);
    check(rc == 0 && !out.empty(), "the final model generates: " + err);

    // killed with SIGKILL at several moments, resumed each time
    const fs::path b = work / "b";
    std::vector<std::string> args = {vila, "train", "--out", b.string()};
    for (std::string rest = common; !rest.empty();) {  // split `common` into arguments (no spaces inside them)
        const auto s = rest.find_first_not_of(' ');
        if (s == std::string::npos) break;
        const auto e = rest.find(' ', s);
        std::string tok = rest.substr(s, e == std::string::npos ? std::string::npos : e - s);
        if (tok.size() > 1 && tok.front() == '\'') tok = tok.substr(1, tok.size() - 2);
        args.push_back(tok);
        rest = e == std::string::npos ? "" : rest.substr(e);
    }
    int kills = 0, attempts = 0;
    bool finished = false;
    auto next_command = [&] {  // a run killed before it wrote its config.json cannot be resumed: start it over
        if (fs::exists(b / "config.json")) return std::vector<std::string>{vila, "train", "--resume", b.string(), "--threads", "2"};
        auto cmd = args;
        if (fs::exists(b)) cmd.push_back("--overwrite");
        return cmd;
    };
    // Kills land by progress, not by time (machines differ tenfold): once metrics.jsonl reaches a
    // step, after a jitter that moves the kill into the step, the checkpoint write or the next step.
    auto metric_lines = [&] {
        std::ifstream m(b / "metrics.jsonl");
        int n = 0;
        for (std::string l; std::getline(m, l);) ++n;
        return n;
    };
    const std::pair<int, int> kill_at[] = {{7, 0}, {12, 300}, {16, 1500}, {21, 50}, {27, 800}, {33, 3000}, {37, 100}};
    for (const auto& [step, jitter_us] : kill_at) {
        ++attempts;
        const pid_t pid = spawn(next_command(), work / "b.log");
        int st = -1, raw = 0;
        while (st == -1) {
            if (waitpid(pid, &raw, WNOHANG) == pid) {
                st = exit_code(raw);  // ended by itself
            } else if (metric_lines() >= step) {
                std::this_thread::sleep_for(std::chrono::microseconds(jitter_us));
                ::kill(pid, SIGKILL);
                st = wait_exit(pid);
            } else {
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
        }
        if (st == 128 + SIGKILL) ++kills;
        if (st == 0) {
            finished = true;
            break;
        }
        check(st == 128 + SIGKILL, "a killed run ends by the kill, not by itself (exit " + std::to_string(st) + "): " + slurp(work / "b.log"));
    }
    if (!finished) {
        const pid_t pid = spawn(next_command(), work / "b.log");
        const int st = wait_exit(pid);
        check(st == 0, "the resumed run completes (exit " + std::to_string(st) + "): " + slurp(work / "b.log"));
    }
    std::cout << "vila train: the run takes " << run_ms << " ms; " << attempts << " starts, SIGKILL sent " << kills
              << " times, then resumed to the end\n";
    check(kills >= 5, "at least five runs were killed mid-way (" + std::to_string(kills) + ")");
    check(fs::exists(b / "final" / "model.safetensors"), "the resumed run has final/");
    check(slurp(b / "final" / "model.safetensors") == slurp(work / "a" / "final" / "model.safetensors"),
          "killed-and-resumed final weights equal the uninterrupted run's byte for byte");
    check(slurp(b / "checkpoints" / "step-40" / "optimizer.safetensors") == slurp(work / "a" / "checkpoints" / "step-40" / "optimizer.safetensors"),
          "and so does the optimizer state");
    for (const auto& e : fs::directory_iterator(b / "checkpoints")) {
        const std::string n = e.path().filename().string();
        check(n == "latest" || n.rfind("step-", 0) == 0, "no orphan in checkpoints/ after the run: " + n);
    }

    // SIGTERM (as a scheduler sends it) to a long run: it checkpoints the step in flight, exits 3,
    // and resumes from there
    {
        const fs::path t = work / "t";
        std::vector<std::string> targs = args;
        targs[3] = t.string();
        for (auto& v : targs)
            if (v == "40") v = "1000000";  // --steps: a run that would not end by itself
        const pid_t pid = spawn(targs, work / "t.log");
        auto lines = [&] {
            std::ifstream m(t / "metrics.jsonl");
            int n = 0;
            for (std::string l; std::getline(m, l);) ++n;
            return n;
        };
        for (int i = 0; i < 3000 && lines() < 12; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        ::kill(pid, SIGTERM);
        const int st = wait_exit(pid);
        const std::string log = slurp(work / "t.log");
        check(st == 3 && log.find("interrupted by signal 15") != std::string::npos, "SIGTERM stops with a checkpoint, exit 3: " + log);
        const int done = lines();
        const std::string latest = slurp(t / "checkpoints" / "latest");
        check(latest == "step-" + std::to_string(done) + "\n", "the checkpoint is of the last step (" + std::to_string(done) + "): " + latest);
        check(wait_exit(spawn({vila, "train", "--resume", t.string(), "--steps", std::to_string(done + 3), "--threads", "2"}, work / "t.log")) == 0,
              "resume after SIGTERM: " + slurp(work / "t.log"));
        check(lines() == done + 3, "the resumed run adds its steps to metrics.jsonl");
    }

    // one-line failures
    auto fails = [&](const std::string& cmd, const std::string& needle) {
        const int r = run(cmd, work, out, err);
        check(r != 0 && err.find(needle) != std::string::npos, "'" + cmd + "' fails with '" + needle + "': rc=" + std::to_string(r) + " " + err);
    };
    fails(vila + " train --out " + q(work / "a") + common, "exists");
    fails(vila + " train --out " + q(work / "c") + common + " --beta1 abc", "--beta1 expects a number");
    fails(vila + " train --out " + q(work / "c") + common + " --grad-accum -3", "--grad-accum -3 is outside");
    fails(vila + " train --out " + q(work / "c") + common + " --lr 1", "unknown argument '--lr'");  // given twice
    fails(vila + " train --out " + q(work / "c") + common + " --schedule exp", "unknown schedule");
    fails(vila + " train --resume " + q(work / "a") + " --lr 1", "--resume accepts only");
    fails(vila + " train --out " + q(work / "c") + " --init-config " + q(work / "tiny.json") + " --tokenizer " + q(work / "tok") + " --data " +
              q(work / "text.jsonl") + " --seq-len 500",
          "exceeds the model's max_position_embeddings");
    check(!fs::exists(work / "c"), "a refused run leaves no folder behind");
    {
        std::ofstream(work / "bad.json") << R"({"init-config": "x", "learning-rate": 1})";
        fails(vila + " train --config " + q(work / "bad.json"), "unknown key 'learning-rate'");
        std::ofstream(work / "rows.jsonl") << "{\"text\": \"ok\"}\n{\"txt\": 1}\n";
        fails(vila + " train --out " + q(work / "d") + " --init-config " + q(work / "tiny.json") + " --tokenizer " + q(work / "tok") +
                  " --data " + q(work / "rows.jsonl") + " --seq-len 32",
              "rows.jsonl:2");
    }
    // a config file gives the same run as flags (keys are the flag names)
    {
        std::ofstream(work / "run.json") << "{\"init-config\": \"" << (work / "tiny.json").string() << "\", \"tokenizer\": \"" << (work / "tok").string()
                                         << "\", \"data\": \"" << (work / "text.jsonl").string()
                                         << "\", \"steps\": 40, \"batch-size\": 4, \"seq-len\": 32, \"lr\": 3e-3, \"warmup-steps\": 4, \"seed\": 7}";
        rc = run(vila + " train --config " + q(work / "run.json") + " --out " + q(work / "e") + " --plain --threads 2", work, out, err);
        check(rc == 0, "vila train --config: " + err);
        check(slurp(work / "e" / "final" / "model.safetensors") == slurp(work / "a" / "final" / "model.safetensors"),
              "a --config run equals the same run from flags");
    }
    // LoRA: fine-tune the trained model on other sentences; the base stays byte-identical, the
    // adapter resumes exactly after SIGKILL, generate picks the adapter up, export merges it
    {
        std::ofstream data(work / "other.jsonl");
        for (int i = 0; i < 200; ++i) data << "{\"text\": \"" << (i % 2 ? "the owl finds the red house." : "a fox likes two old apples.") << "\"}\n";
    }
    const std::string lora_common = " --init " + q(work / "a" / "final") + " --data " + q(work / "other.jsonl") +
                                    " --lora r=4,alpha=8,targets=q_proj+v_proj+down_proj --steps 16 --batch-size 4 --seq-len 32" +
                                    " --lr 1e-2 --save-every 4 --seed 3 --threads 2 --plain";
    rc = run(vila + " train --out " + q(work / "la") + lora_common, work, out, err);
    check(rc == 0, "vila train --lora runs: " + out + err);
    check(slurp(work / "la" / "final" / "model.safetensors") == slurp(work / "a" / "final" / "model.safetensors"),
          "LoRA leaves the base weights byte-identical");
    check(fs::exists(work / "la" / "final" / "adapter_config.json") && fs::exists(work / "la" / "final" / "adapter_model.safetensors"),
          "final/ holds the PEFT adapter");
    {
        const pid_t pid = spawn({vila, "train", "--out", (work / "lb").string(), "--init", (work / "a" / "final").string(), "--data",
                                 (work / "other.jsonl").string(), "--lora", "r=4,alpha=8,targets=q_proj+v_proj+down_proj", "--steps", "16",
                                 "--batch-size", "4", "--seq-len", "32", "--lr", "1e-2", "--save-every", "4", "--seed", "3", "--threads", "2",
                                 "--plain"},
                                work / "lb.log");
        for (int i = 0; i < 20000 && !fs::exists(work / "lb" / "checkpoints" / "latest"); ++i) std::this_thread::sleep_for(std::chrono::microseconds(200));
        ::kill(pid, SIGKILL);
        wait_exit(pid);
        const std::vector<std::string> resume = fs::exists(work / "lb" / "config.json")
                                                    ? std::vector<std::string>{vila, "train", "--resume", (work / "lb").string(), "--threads", "2"}
                                                    : std::vector<std::string>{};
        check(!resume.empty() && wait_exit(spawn(resume, work / "lb.log")) == 0, "the LoRA run resumes: " + slurp(work / "lb.log"));
        check(slurp(work / "lb" / "final" / "adapter_model.safetensors") == slurp(work / "la" / "final" / "adapter_model.safetensors"),
              "a killed-and-resumed LoRA run's adapter equals the uninterrupted one's byte for byte");
    }
    rc = run(vila + " generate --model " + q(work / "la" / "final") + " --prompt 'the owl' --max-new-tokens 5", work, out, err);
    check(rc == 0 && err.find("adapter:") != std::string::npos, "generate uses the folder's adapter: " + err);
    rc = run(vila + " export --model " + q(work / "la" / "final") + " --merge --out " + q(work / "merged"), work, out, err);
    check(rc == 0 && !fs::exists(work / "merged" / "adapter_config.json") && fs::exists(work / "merged" / "tokenizer.json"),
          "export --merge writes a plain folder: " + err);
    rc = run(vila + " logits --model " + q(work / "la" / "final") + " --ids 5,9,30,2 --out " + q(work / "l1.safetensors"), work, out, err);
    const int rc2 = run(vila + " logits --model " + q(work / "merged") + " --ids 5,9,30,2 --out " + q(work / "l2.safetensors"), work, out, err);
    check(rc == 0 && rc2 == 0, "logits with the adapter and merged: " + err);
    if (rc == 0 && rc2 == 0) {
        const std::string a1 = slurp(work / "l1.safetensors"), a2 = slurp(work / "l2.safetensors");
        double worst = a1.size() == a2.size() ? 0 : 1e9;
        const std::size_t header = 8 + std::size_t(std::uint8_t(a1[0])) + 256 * std::size_t(std::uint8_t(a1[1]));
        for (std::size_t i = header; i + 4 <= a1.size() && a1.size() == a2.size(); i += 4) {
            float x, y;
            std::memcpy(&x, a1.data() + i, 4);
            std::memcpy(&y, a2.data() + i, 4);
            worst = std::max(worst, double(std::abs(x - y)));
        }
        check(worst <= 1e-5, "merged logits equal the adapter's within 1e-5 (max " + std::to_string(worst) + ")");
    }
    fails(vila + " export --model " + q(work / "a" / "final") + " --merge --out " + q(work / "m2"), "no adapter");
    fails(vila + " train --out " + q(work / "lc") + " --init " + q(work / "a" / "final") + " --data " + q(work / "other.jsonl") +
              " --seq-len 32 --lora r=4,targets=nope",
          "no linear layer");

    if (argc == 4) check_vlm_finetune(vila, work / "vlm", fs::absolute(argv[3]));
    check_recipe(vila, work / "recipe");

    std::cout << (failures ? "FAILED" : "OK") << ": vila train\n";
    if (!failures) fs::remove_all(work);
    return failures ? 1 : 0;
}
