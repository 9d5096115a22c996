// examples/reproduce_vila — the VILA paper's findings (its Tables 1, 3 and 4) reproduced at toy
// scale on the synthetic world, from random weights, with several seeds, through the library's
// recipe (vila/train/recipe.hpp) and evaluation (vila/eval/world.hpp).
//
//   reproduce_vila [--out DIR] [--seeds N] [--first-seed S] [--jobs J] [--size world|ci] [--overwrite]
//
// Per seed s (its own process with one thread when J > 1, so the seeds run side by side):
//   DIR/seed-s/world     a synthetic world written with seed s (400 visual in-context episodes)
//   DIR/seed-s/00-init   random weights (seed s) and a tokenizer trained on the world
//   DIR/seed-s/shared    the stages every condition shares: copy, text (the LLM), vision, align
//   DIR/seed-s/<cond>    stage 2 (pre-training) and stage 3 (SFT) of one condition:
//     frozen       stage 2 on mmc4+coyo with the LLM frozen, SFT llava+flan   (Table 1)
//     updated      stage 2 on mmc4+coyo with the LLM updated, SFT llava+flan  (Table 1)
//     coyo         stage 2 on pairs, visual-only SFT llava                    (Table 3)
//     mmc4-pairs   stage 2 on MMC4's documents cut into pairs, SFT llava      (Table 3)
//     mmc4         stage 2 on interleaved documents, SFT llava                (Tables 3, 4)
//     mmc4-flan    mmc4's stage 2, then SFT llava+flan (text-only blended)    (Table 4)
//   DIR/seed-s/scores.json   the world's held-out sets after each stage; DIR/seed-s/log.txt
// then DIR/results.md, DIR/results.json and DIR/table1.svg, table3.svg, table4.svg.
//
// The metrics were fixed before the first run (docs/results.md): Table 1, 4-shot visual in-context
// accuracy after SFT; Table 3, strict text in-context accuracy after SFT (greedy over the whole
// vocabulary); Table 4, both. A finding "holds in direction" when the mean difference over the
// seeds is positive and larger than the spread (max - min) of the per-seed differences.
// Interrupted? Run the same command again: finished stages and scores are kept.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <vila/eval/world.hpp>
#include <vila/vila.hpp>

#include "svg.hpp"

namespace fs = std::filesystem;
namespace R = vila::recipe;
using vila::train::world_vlm;

namespace {

struct condition {
    const char* key;
    const char* from;      // "": the shared stages' model; else this condition's stage-2 model
    bool frozen_llm;       // stage 2 trains the projector alone (Table 1's control)
    const char* pretrain;  // stage 2's data ("": no stage 2 of its own)
    const char* sft;       // stage 3's data
};
// In run order: mmc4-flan starts from mmc4's stage 2.
const condition conditions[] = {
    {"frozen", "", true, "mmc4+coyo", "llava+flan"},  {"updated", "", false, "mmc4+coyo", "llava+flan"},
    {"coyo", "", false, "coyo", "llava"},             {"mmc4-pairs", "", false, "mmc4_pairs", "llava"},
    {"mmc4", "", false, "mmc4", "llava"},             {"mmc4-flan", "mmc4", false, "", "llava+flan"},
};

struct options {
    fs::path out = "reproduce-vila";
    int seeds = 2, first_seed = 0, jobs = 0;
    std::string size = "world";
    bool overwrite = false;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// --- one seed -------------------------------------------------------------------------------------

class seed_run {
public:
    seed_run(const options& o, int seed) : o_(o), seed_(seed), dir_(o.out / ("seed-" + std::to_string(seed))) {}

    void operator()() {
        const auto t0 = std::chrono::steady_clock::now();
        fs::create_directories(dir_);
        if (fs::exists(dir_ / "scores.json")) scores_ = vila::io::read_json(dir_ / "scores.json");
        if (!scores_.is_object()) scores_ = nlohmann::json::object();
        scores_["seed"] = seed_;
        const fs::path world = dir_ / "world";
        if (!fs::exists(world)) {
            auto w = vila::data::synthetic::recipe_world(o_.size, std::uint64_t(seed_));
            if (o_.size != "ci") w.eval_icl = 400;  // one standard error ~2.5 points, not 5
            std::printf("seed %d: writing the world into %s\n", seed_, world.c_str());
            vila::data::synthetic::write_world(world, w);
        }
        const fs::path init = dir_ / "00-init";
        if (!fs::exists(init)) {
            vila::train::world_model_options wo;
            wo.seed = std::uint64_t(seed_);
            vila::train::make_world_model(world, init, wo);
        }
        auto presets = R::preset("vila3-from-scratch", o_.size);  // copy, text, vision, align, pretrain, sft
        const std::vector<R::stage_settings> shared(presets.begin(), presets.begin() + 4);
        const R::stage_settings pretrain = presets[4], sft = presets[5];

        const auto shared_run = run<R::stages<R::copy_stage, R::text_stage, R::vision_stage, R::align_stage>>(init, shared, dir_ / "shared", "shared");
        score("text", R::stage_dir(dir_ / "shared", 1, "text") / "final", world);  // the text LLM before any VLM stage
        for (const condition& c : conditions) {
            R::stage_settings p = pretrain, s = sft;
            p.data = c.pretrain;
            s.data = c.sft;
            const fs::path cdir = dir_ / c.key;
            if (std::string(c.from).empty()) {
                if (c.frozen_llm) run<R::stages<R::pretrain_frozen_llm_stage, R::sft_stage>>(shared_run, {p, s}, cdir, c.key);
                else run<R::stages<R::pretrain_stage, R::sft_stage>>(shared_run, {p, s}, cdir, c.key);
            } else {
                run<R::stages<R::sft_stage>>(R::stage_dir(dir_ / c.from, 0, "pretrain") / "final", {s}, cdir, c.key);
            }
        }
        for (const condition& c : conditions) {
            const bool own_stage2 = std::string(c.from).empty();
            if (own_stage2) score(std::string(c.key) + "/pretrain", R::stage_dir(dir_ / c.key, 0, "pretrain") / "final", world);
            score(std::string(c.key) + "/sft", R::stage_dir(dir_ / c.key, own_stage2 ? 1 : 0, "sft") / "final", world);
        }
        std::printf("seed %d: done in %.1f min\n", seed_, seconds_since(t0) / 60);
    }

private:
    template <class Recipe>
    fs::path run(const fs::path& init, const std::vector<R::stage_settings>& settings, const fs::path& run_dir, const std::string& what) {
        R::run_options ro;
        ro.run_dir = run_dir;
        ro.registry = dir_ / "world" / "registry.json";
        ro.seed = std::uint64_t(seed_);
        ro.plain_progress = true;
        ro.progress_every = o_.size == "ci" ? 1 : 100;
        std::printf("seed %d: %s\n", seed_, what.c_str());
        std::fflush(stdout);
        const R::run_result r = R::run<world_vlm, Recipe>(init, settings, ro);
        if (!r.stopped.empty()) throw vila::error("seed " + std::to_string(seed_) + ", " + what + ": " + r.stopped);
        nlohmann::json& secs = scores_["seconds"];
        if (!secs.is_object()) secs = nlohmann::json::object();
        secs[what] = secs.value(what, 0.0) + r.seconds;
        return r.model;
    }

    void score(const std::string& key, const fs::path& model, const fs::path& world) {
        if (scores_["scores"].contains(key)) return;  // scored before an interruption
        const auto t0 = std::chrono::steady_clock::now();
        vila::eval::world_eval_options eo;
        eo.captions = false;  // not a metric of any table; the slowest set
        nlohmann::json r = vila::eval::on_world(model, world, eo);
        r["eval_seconds"] = seconds_since(t0);
        scores_["scores"][key] = r;
        vila::io::write_json(dir_ / "scores.json", scores_);
        std::printf("seed %d: %s: %s\n", seed_, key.c_str(), r.dump().c_str());
        std::fflush(stdout);
    }

    const options& o_;
    int seed_;
    fs::path dir_;
    nlohmann::json scores_;
};

// --- the seeds side by side -----------------------------------------------------------------------

std::string last_line(const fs::path& file) {
    std::ifstream f(file);
    std::string line, last;
    while (std::getline(f, line))
        if (!line.empty()) last = line;
    return last.size() > 110 ? last.substr(0, 110) : last;
}

/// Each seed in a child process (forked before any OpenMP region runs) with `threads` threads,
/// its output in DIR/seed-s/log.txt; a status line per seed every 30 s. False if one failed.
bool run_seeds_in_processes(const options& o, int threads) {
    struct child {
        pid_t pid;
        int seed;
        fs::path log;
        bool done = false;
    };
    std::vector<child> running, queue;
    for (int s = o.first_seed; s < o.first_seed + o.seeds; ++s) {
        const fs::path d = o.out / ("seed-" + std::to_string(s));
        fs::create_directories(d);
        queue.push_back({0, s, d / "log.txt"});
    }
    bool ok = true;
    auto start = [&](child c) {
        std::fflush(stdout);
        const pid_t pid = ::fork();
        if (pid < 0) throw vila::error("reproduce_vila: cannot fork");
        if (pid == 0) {
            if (!std::freopen(c.log.c_str(), "a", stdout)) std::_Exit(3);
            ::dup2(::fileno(stdout), 2);
            vila::set_num_threads(threads);
            try {
                seed_run(o, c.seed)();
                std::fflush(stdout);
                std::_Exit(0);
            } catch (const std::exception& e) {
                std::printf("error: %s\n", e.what());
                std::fflush(stdout);
                std::_Exit(1);
            }
        }
        c.pid = pid;
        std::printf("seed %d: running (process %d, %d thread%s), log %s\n", c.seed, int(pid), threads, threads == 1 ? "" : "s", c.log.c_str());
        running.push_back(c);
    };
    std::size_t next = 0;
    auto t_status = std::chrono::steady_clock::now();
    const auto t0 = t_status;
    while (next < queue.size() || !running.empty()) {
        while (next < queue.size() && int(running.size()) < o.jobs) start(queue[next++]);
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        for (auto& c : running) {
            int status = 0;
            if (::waitpid(c.pid, &status, WNOHANG) != c.pid) continue;
            c.done = true;
            const bool good = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            std::printf("[%5.1f min] seed %d: %s\n", seconds_since(t0) / 60, c.seed, good ? "finished" : "FAILED");
            if (!good) {
                ok = false;
                std::printf("  last line of %s: %s\n", c.log.c_str(), last_line(c.log).c_str());
            }
        }
        running.erase(std::remove_if(running.begin(), running.end(), [](const child& c) { return c.done; }), running.end());
        if (seconds_since(t_status) >= 30) {
            t_status = std::chrono::steady_clock::now();
            for (const auto& c : running) std::printf("[%5.1f min] seed %d: %s\n", seconds_since(t0) / 60, c.seed, last_line(c.log).c_str());
        }
        std::fflush(stdout);
    }
    return ok;
}

// --- the tables -------------------------------------------------------------------------------------

struct cell {
    std::vector<double> per_seed;  // percent
    double mean() const {
        double s = 0;
        for (double v : per_seed) s += v;
        return per_seed.empty() ? NAN : s / double(per_seed.size());
    }
};

struct difference {
    std::vector<double> per_seed;
    double mean = 0, spread = 0;
    bool holds = false;      // mean > 0 and mean > spread
    bool not_worse = false;  // mean >= -spread: no drop beyond the seeds' spread ("not hurt")
};

class tables {
public:
    explicit tables(std::vector<nlohmann::json> seeds) : seeds_(std::move(seeds)) {}

    cell get(const std::string& key, const std::string& metric) const {
        cell c;
        for (const auto& s : seeds_) c.per_seed.push_back(100 * s.at("scores").at(key).at(metric).get<double>());
        return c;
    }
    difference diff(const std::string& a, const std::string& b, const std::string& metric) const {  // a - b
        difference d;
        const cell x = get(a, metric), y = get(b, metric);
        double lo = 1e300, hi = -1e300;
        for (std::size_t i = 0; i < x.per_seed.size(); ++i) {
            const double v = x.per_seed[i] - y.per_seed[i];
            d.per_seed.push_back(v);
            d.mean += v / double(x.per_seed.size());
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
        d.spread = hi - lo;
        const double eps = 1e-6;  // a tie (e.g. +3 / +1: mean 2, spread 2) is not a direction
        d.holds = d.mean > eps && d.mean > d.spread + eps;
        d.not_worse = d.mean >= -d.spread - eps;
        return d;
    }
    std::size_t seeds() const { return seeds_.size(); }
    int seed(std::size_t i) const { return seeds_[i].at("seed").get<int>(); }

private:
    std::vector<nlohmann::json> seeds_;
};

std::string fmt(const char* f, double v) {
    char b[64];
    std::snprintf(b, sizeof b, f, v);
    return b;
}
std::string cells(const cell& c) {  // "41.8 / 60.3 (mean 51.0)"
    std::string s;
    for (std::size_t i = 0; i < c.per_seed.size(); ++i) s += (i ? " / " : "") + fmt("%.1f", c.per_seed[i]);
    return s + " (mean " + fmt("%.1f", c.mean()) + ")";
}
std::string diff_text(const difference& d, bool not_hurt = false) {
    std::string s;
    for (std::size_t i = 0; i < d.per_seed.size(); ++i) s += (i ? " / " : "") + fmt("%+.1f", d.per_seed[i]);
    s += "; mean " + fmt("%+.1f", d.mean) + ", spread " + fmt("%.1f", d.spread) + ": ";
    if (not_hurt) return s + (d.not_worse ? "**not hurt**" : "**hurt**");
    return s + (d.holds ? "**holds**" : "**does not hold**");
}


/// results.md, results.json and the three plots from the seeds' scores; prints the tables.
void report(const options& o, const std::vector<nlohmann::json>& seed_scores, double wall_seconds) {
    const tables t(seed_scores);
    std::string seeds_list;
    for (std::size_t i = 0; i < t.seeds(); ++i) seeds_list += (i ? ", " : "") + std::to_string(t.seed(i));
    std::string md = "# VILA's findings on the synthetic world (reproduce_vila, size " + o.size + ", seeds " + seeds_list + ")\n\n";
    // time from the seeds' own records, so that a resumed run reports the work, not the last call
    double train_max = 0, eval_max = 0;
    for (const auto& sc : seed_scores) {
        double tr = 0, ev = 0;
        for (const auto& kv : sc.at("seconds").items()) tr += kv.value().get<double>();
        for (const auto& kv : sc.at("scores").items()) ev += kv.value().value("eval_seconds", 0.0);
        train_max = std::max(train_max, tr);
        eval_max = std::max(eval_max, ev);
    }
    md += "Per cell: each seed's value in percent, then the mean. A difference holds in direction when its mean is positive and "
          "larger than the spread (max - min) of the per-seed differences. Time: the slowest seed trained for " + fmt("%.1f", train_max / 60) +
          " min and evaluated for " + fmt("%.1f", eval_max / 60) + " min; this call took " + fmt("%.1f", wall_seconds / 60) + " min.\n\n";
    nlohmann::json out;
    out["size"] = o.size;
    out["wall_seconds"] = wall_seconds;
    out["seeds"] = seed_scores;

    // Table 1
    const difference t1 = t.diff("updated/sft", "frozen/sft", "icl4"), t1_vqa = t.diff("updated/sft", "frozen/sft", "vqa");
    md += "## Table 1: the LLM frozen or updated in stage 2 (both then SFT llava+flan)\n\n"
          "| stage 2 | 0-shot VQA after SFT | **4-shot after SFT** | 4-shot after stage 2 | paper (0-shot / 4-shot) |\n|---|---|---|---|---|\n";
    md += "| LLM frozen | " + cells(t.get("frozen/sft", "vqa")) + " | " + cells(t.get("frozen/sft", "icl4")) + " | " + cells(t.get("frozen/pretrain", "icl4")) +
          " | 66.8 / 57.6 |\n";
    md += "| LLM updated | " + cells(t.get("updated/sft", "vqa")) + " | " + cells(t.get("updated/sft", "icl4")) + " | " + cells(t.get("updated/pretrain", "icl4")) +
          " | 66.8 / 68.8 |\n\n";
    md += "Updated - frozen, 4-shot after SFT (the metric): " + diff_text(t1) + ". 0-shot VQA: " + diff_text(t1_vqa) + ".\n\n";
    out["table1"] = {{"icl4_diff", t1.per_seed}, {"holds", t1.holds}};

    // Table 3
    const difference t3_coyo = t.diff("mmc4/sft", "coyo/sft", "text_icl_strict"), t3_pairs = t.diff("mmc4/sft", "mmc4-pairs/sft", "text_icl_strict");
    md += "## Table 3: stage-2 data (LLM updated, then visual-only SFT llava)\n\n"
          "| stage 2 data | **strict text ICL after SFT** | text ICL by choice | 0-shot VQA | 4-shot | paper (0-shot / 4-shot, MMLU) |\n|---|---|---|---|---|---|\n";
    md += "| (the text LLM before any VLM stage) | " + cells(t.get("text", "text_icl_strict")) + " | " + cells(t.get("text", "text_icl")) + " | | | MMLU 46.0 |\n";
    const char* paper3[] = {"51.1 / 50.3, 28.8", "46.4 / 44.5, 32.4", "68.7 / 70.9, 40.7"};
    const char* keys3[] = {"coyo", "mmc4-pairs", "mmc4"};
    const char* names3[] = {"COYO-like pairs", "MMC4-pairs", "MMC4 (interleaved)"};
    for (int i = 0; i < 3; ++i) {
        const std::string k = std::string(keys3[i]) + "/sft";
        md += std::string("| ") + names3[i] + " | " + cells(t.get(k, "text_icl_strict")) + " | " + cells(t.get(k, "text_icl")) + " | " + cells(t.get(k, "vqa")) + " | " +
              cells(t.get(k, "icl4")) + " | " + paper3[i] + " |\n";
    }
    md += "\nInterleaved - pairs (pairs forget text): " + diff_text(t3_coyo) + ".\nInterleaved - MMC4-pairs (it is the interleaving, not the text): " +
          diff_text(t3_pairs) + ".\n\n";
    out["table3"] = {{"mmc4_minus_coyo", t3_coyo.per_seed}, {"mmc4_minus_pairs", t3_pairs.per_seed}, {"holds", t3_coyo.holds && t3_pairs.holds}};

    // Table 4
    const difference t4_text = t.diff("mmc4-flan/sft", "mmc4/sft", "text_icl_strict"), t4_vqa = t.diff("mmc4-flan/sft", "mmc4/sft", "vqa"),
                     t4_icl = t.diff("mmc4-flan/sft", "mmc4/sft", "icl4");
    md += "## Table 4: SFT with text-only data blended in (after MMC4 stage 2)\n\n"
          "| SFT data | **strict text ICL** | **0-shot VQA** | **4-shot** | text MC | paper (0-shot / 4-shot, MMLU) |\n|---|---|---|---|---|---|\n";
    md += "| llava (visual only) | " + cells(t.get("mmc4/sft", "text_icl_strict")) + " | " + cells(t.get("mmc4/sft", "vqa")) + " | " + cells(t.get("mmc4/sft", "icl4")) + " | " +
          cells(t.get("mmc4/sft", "text_mc")) + " | 68.7 / 70.9, 40.7 |\n";
    md += "| llava+flan | " + cells(t.get("mmc4-flan/sft", "text_icl_strict")) + " | " + cells(t.get("mmc4-flan/sft", "vqa")) + " | " +
          cells(t.get("mmc4-flan/sft", "icl4")) + " | " + cells(t.get("mmc4-flan/sft", "text_mc")) + " | 71.0 / 72.1, 51.4 |\n\n";
    md += "With text - without, strict text ICL (recovered): " + diff_text(t4_text) + ". 0-shot VQA: " + diff_text(t4_vqa, true) + ". 4-shot: " +
          diff_text(t4_icl, true) + ".\n";
    out["table4"] = {{"text_diff", t4_text.per_seed}, {"vqa_diff", t4_vqa.per_seed}, {"icl4_diff", t4_icl.per_seed},
                     {"holds", t4_text.holds && t4_vqa.not_worse && t4_icl.not_worse}};

    // plots: ours (mean, seeds as dots) beside the paper (outlined)
    auto series = [&](const std::string& name, const std::string& colour, const std::vector<std::pair<std::string, std::string>>& key_metric) {
        reproduce::bar_series s{name, colour, false, {}, {}};
        for (const auto& km : key_metric) {
            const cell c = t.get(km.first, km.second);
            s.values.push_back(c.mean());
            s.dots.push_back(c.per_seed);
        }
        return s;
    };
    const std::string seeds_note = std::to_string(t.seeds()) + " seeds (dots), size " + o.size;
    reproduce::bar_chart c1{"Table 1: the LLM frozen or updated in pre-training (stage 2)", "4-shot accuracy after SFT; ours: " + seeds_note,
                            "accuracy (%)", {"LLM frozen in stage 2", "LLM updated"}, {}, 25};
    c1.series.push_back(series("ours: 4-shot visual naming", "#1f77b4", {{"frozen/sft", "icl4"}, {"updated/sft", "icl4"}}));
    c1.series.push_back({"paper: 4-shot (Table 1)", "#1f77b4", true, {57.6, 68.8}, {}});
    reproduce::write_svg(o.out / "table1.svg", c1);
    reproduce::bar_chart c3{"Table 3: pre-training data and the text-only ability", "text ability after visual-only SFT; ours: " + seeds_note, "accuracy (%)",
                            {"text LLM (before)", "pairs", "MMC4-pairs", "MMC4"}, {}, -1};
    c3.series.push_back(series("ours: strict text in-context", "#2ca02c",
                               {{"text", "text_icl_strict"}, {"coyo/sft", "text_icl_strict"}, {"mmc4-pairs/sft", "text_icl_strict"}, {"mmc4/sft", "text_icl_strict"}}));
    c3.series.push_back({"paper: MMLU (Table 3)", "#2ca02c", true, {46.0, 28.8, 32.4, 40.7}, {}});
    reproduce::write_svg(o.out / "table3.svg", c3);
    reproduce::bar_chart c4{"Table 4: text-only data blended into SFT", "after MMC4 stage 2; ours: " + seeds_note, "accuracy (%)",
                            {"strict text ICL / MMLU", "0-shot VQA", "4-shot"}, {}, -1};
    c4.series.push_back(series("ours: SFT llava", "#9467bd", {{"mmc4/sft", "text_icl_strict"}, {"mmc4/sft", "vqa"}, {"mmc4/sft", "icl4"}}));
    c4.series.push_back(series("ours: SFT llava+flan", "#ff7f0e", {{"mmc4-flan/sft", "text_icl_strict"}, {"mmc4-flan/sft", "vqa"}, {"mmc4-flan/sft", "icl4"}}));
    c4.series.push_back({"paper: visual SFT", "#9467bd", true, {40.7, 68.7, 70.9}, {}});
    c4.series.push_back({"paper: + text SFT", "#ff7f0e", true, {51.4, 71.0, 72.1}, {}});
    reproduce::write_svg(o.out / "table4.svg", c4);

    md += "\nPlots: table1.svg, table3.svg, table4.svg. Per-seed scores after every stage: seed-*/scores.json.\n";
    vila::io::write_atomically(o.out / "results.md", [&](std::FILE* f) { vila::io::write_all(f, md.data(), md.size(), o.out / "results.md"); });
    vila::io::write_json(o.out / "results.json", out);
    std::printf("\n%s\n", md.c_str());
}

int usage(const char* why) {
    if (why) std::fprintf(stderr, "reproduce_vila: %s\n", why);
    std::fprintf(stderr,
                 "usage: reproduce_vila [--out DIR] [--seeds N] [--first-seed S] [--jobs J] [--size world|ci] [--overwrite]\n"
                 "  VILA's Tables 1, 3 and 4 on the synthetic world (see the top of examples/reproduce_vila/main.cpp).\n"
                 "  --jobs: seeds run at once, each a process with (cores / jobs) threads; default min(seeds, cores).\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            auto value = [&]() -> std::string {
                if (i + 1 >= argc) throw vila::config_error(a + " needs a value");
                return argv[++i];
            };
            auto number = [&](int lo, int hi) {
                const std::string v = value();
                char* end = nullptr;
                const long x = std::strtol(v.c_str(), &end, 10);
                if (v.empty() || *end || x < lo || x > hi) throw vila::config_error(a + " expects an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
                return int(x);
            };
            if (a == "--out") o.out = value();
            else if (a == "--seeds") o.seeds = number(1, 64);
            else if (a == "--first-seed") o.first_seed = number(0, 1 << 30);
            else if (a == "--jobs") o.jobs = number(1, 64);
            else if (a == "--size") o.size = value();
            else if (a == "--overwrite") o.overwrite = true;
            else if (a == "--help" || a == "-h") return usage(nullptr), 0;
            else throw vila::config_error("unknown argument '" + a + "'");
        }
        if (o.size != "world" && o.size != "ci") throw vila::config_error("--size is world or ci");
    } catch (const vila::error& e) {
        return usage(e.what());
    }
    try {
        const int cores = std::max(1, int(std::thread::hardware_concurrency()));
        if (o.jobs == 0) o.jobs = std::min(o.seeds, cores);
        const int threads = std::max(1, cores / o.jobs);
        if (o.overwrite && fs::exists(o.out)) {
            // only a folder this program wrote (or an empty one): --out / --overwrite must not erase anything else
            bool ours = fs::is_directory(o.out) && (fs::is_empty(o.out) || fs::exists(o.out / "results.json"));
            if (fs::is_directory(o.out))
                for (const auto& e : fs::directory_iterator(o.out)) ours = ours || e.path().filename().string().rfind("seed-", 0) == 0;
            if (!ours) throw vila::config_error(o.out.string() + " does not look like a reproduce_vila folder (no seed-*/, no results.json): not removing it");
            vila::io::remove_folder(o.out);  // renamed aside first: a crash never leaves half of it
        }
        fs::create_directories(o.out);
        std::printf("reproduce_vila: %d seed%s (%d at a time, %d thread%s each), size %s, into %s\n", o.seeds, o.seeds == 1 ? "" : "s", o.jobs, threads,
                    threads == 1 ? "" : "s", o.size.c_str(), o.out.c_str());
        const auto t0 = std::chrono::steady_clock::now();
        if (o.jobs == 1) {
            vila::set_num_threads(threads);
            for (int s = o.first_seed; s < o.first_seed + o.seeds; ++s) seed_run(o, s)();
        } else if (!run_seeds_in_processes(o, threads)) {
            std::fprintf(stderr, "reproduce_vila: a seed failed (its log.txt says why); run the same command again to continue\n");
            return 1;
        }
        std::vector<nlohmann::json> scores;
        for (int s = o.first_seed; s < o.first_seed + o.seeds; ++s)
            scores.push_back(vila::io::read_json(o.out / ("seed-" + std::to_string(s)) / "scores.json"));
        report(o, scores, seconds_since(t0));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "reproduce_vila: %s\n", e.what());
        return 1;
    }
}
