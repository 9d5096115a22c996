// vila/train/callbacks.hpp — what a trainer reports to, as types with optional hooks.
//
// A callback may define any of these (the trainer detects each at compile time, as ensmallen's
// callbacks, so an unused hook costs nothing):
//   void on_fit_begin(const fit_begin_info&)
//   std::string on_gradients(Model&, const step_info&)   non-empty: stop before the update
//   bool on_step_end(Model&, const step_info&)           true: stop after this step
//   void on_fit_end(const fit_result&)
// Shipped: progress (a bar on a terminal, plain lines otherwise), metrics_jsonl, nan_guard,
// eval_every. Checkpoints (every N steps, at the end, on SIGINT/SIGTERM) are the trainer's own:
// they need the optimizer and sampler state. To write a callback, copy one of these.
#pragma once
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "../core/shape.hpp"
#include "gradients.hpp"

namespace vila::train {

/// What the trainer knows about one finished step (or one about to update, in on_gradients).
struct step_info {
    long long step = 0;   // steps done, this one included
    long long total = 0;  // steps the run is asked for
    double loss = 0;      // mean over the step's counted labels (all micro-batches)
    double lr = 0;        // the LLM's learning rate for this step
    double grad_norm = 0; // before clipping
    index_t tokens = 0, labels = 0;
    double seconds = 0;   // this step's wall time
    double data_seconds = 0;  // of which waiting for the sampler's batches
    double elapsed = 0;   // since fit() began in this process
    long long steps_this_run = 0;  // steps done since fit() began (for rates after a resume)
    std::map<std::string, long long> sources;  // samples per data source this step
};
struct fit_begin_info {
    long long start_step = 0, total = 0;
    index_t trainable = 0, frozen = 0;  // parameters (tensors)
    std::filesystem::path run_dir;
};
struct fit_result {
    long long step = 0;
    double last_loss = 0;
    std::string stopped;  // "" when the run completed; else why it stopped
    std::filesystem::path checkpoint;  // the newest whole checkpoint ("" if none)
};

/// Progress on stdout: a redrawn bar on a terminal, a plain line every `every` steps otherwise.
struct progress {
    long long every = 10;
    bool force_plain = false;
    std::string label = "train";

    void on_fit_begin(const fit_begin_info& i) {
        tty_ = !force_plain && ::isatty(::fileno(stdout));
        std::printf("%s: steps %lld..%lld, %lld trainable / %lld frozen tensors%s%s\n", label.c_str(), i.start_step, i.total,
                    (long long)i.trainable, (long long)i.frozen, i.run_dir.empty() ? "" : ", run folder ", i.run_dir.string().c_str());
        std::fflush(stdout);
    }
    template <class Model>
    bool on_step_end(Model&, const step_info& s) {
        const double rate = s.elapsed > 0 ? double(s.steps_this_run) / s.elapsed : 0;
        const double eta = rate > 0 ? double(s.total - s.step) / rate : 0;
        const double tps = s.seconds > 0 ? double(s.tokens) / s.seconds : 0;
        if (tty_) {
            const int width = 24, filled = int(double(width) * double(s.step) / double(std::max(1LL, s.total)));
            std::string bar(std::size_t(filled), '#');
            bar.resize(std::size_t(width), '.');
            std::printf("\r%s [%s] %lld/%lld  loss %.4f  lr %.2e  %.0f tok/s  ETA %s   ", label.c_str(), bar.c_str(), s.step, s.total,
                        s.loss, s.lr, tps, clock(eta).c_str());
            if (s.step == s.total) std::printf("\n");
        } else if (s.step % every == 0 || s.step == s.total || s.step == 1) {
            std::printf("%s step %lld/%lld  loss %.4f  lr %.3e  grad-norm %.3f  %.0f tokens/s  ETA %s\n", label.c_str(), s.step, s.total,
                        s.loss, s.lr, s.grad_norm, tps, clock(eta).c_str());
        }
        std::fflush(stdout);
        return false;
    }
    void on_fit_end(const fit_result& r) {
        if (tty_) std::printf("\n");
        if (!r.stopped.empty()) std::printf("%s: stopped at step %lld: %s\n", label.c_str(), r.step, r.stopped.c_str());
        std::fflush(stdout);
    }

private:
    static std::string clock(double s) {
        const long long t = (long long)std::llround(std::max(0.0, s));
        char buf[32];
        std::snprintf(buf, sizeof buf, "%lld:%02lld", t / 60, t % 60);
        return buf;
    }
    bool tty_ = false;
};

/// One JSON line per step in `file` (RUN_DIR/metrics.jsonl). On a resume, lines of steps after
/// the checkpoint (written by the interrupted run) are dropped first.
struct metrics_jsonl {
    std::filesystem::path file;
    explicit metrics_jsonl(std::filesystem::path f = {}) : file(std::move(f)) {}

    void on_fit_begin(const fit_begin_info& i) {
        if (file.empty()) return;
        std::vector<std::string> keep;
        {
            std::ifstream in(file);
            std::string line;
            while (std::getline(in, line)) {
                try {
                    if (nlohmann::json::parse(line).value("step", 0LL) <= i.start_step) keep.push_back(line);
                } catch (const nlohmann::json::exception&) {  // a line cut by a kill: drop it
                }
            }
        }
        out_.open(file, std::ios::trunc);
        if (!out_) throw io_error("cannot write " + file.string());
        for (const auto& l : keep) out_ << l << "\n";
        out_.flush();
    }
    template <class Model>
    bool on_step_end(Model&, const step_info& s) {
        if (!out_.is_open()) return false;
        nlohmann::json j = {{"step", s.step},     {"loss", s.loss},       {"lr", s.lr},           {"grad_norm", s.grad_norm},
                            {"tokens", s.tokens}, {"labels", s.labels},   {"seconds", s.seconds}, {"elapsed", s.elapsed}};
        if (!std::isfinite(s.loss)) j["loss"] = nullptr;
        if (!std::isfinite(s.grad_norm)) j["grad_norm"] = nullptr;
        j["sources"] = s.sources;
        j["data_seconds"] = s.data_seconds;
        out_ << j.dump() << "\n";
        out_.flush();
        if (!out_) throw io_error("cannot write " + file.string());
        return false;
    }

private:
    std::ofstream out_;
};

/// Stops the run, before the update, when the loss or a gradient is NaN or infinite; names the
/// step and the first offending parameter (and its part). The last checkpoint stays the last
/// good one.
struct nan_guard {
    template <class Model>
    std::string on_gradients(Model& model, const step_info& s) {
        if (std::isfinite(s.loss) && std::isfinite(s.grad_norm)) return {};
        const std::string bad = first_non_finite_grad(model);
        std::string why = "non-finite " + std::string(std::isfinite(s.loss) ? "gradient" : "loss") + " at step " + std::to_string(s.step);
        if (!bad.empty()) why += " (first in " + std::string(part_name(classify(bad).module)) + ": " + bad + ")";
        return why;
    }
};

/// Calls fn(model, step) every `every` steps and after the last one (an evaluation hook).
template <class Model>
struct eval_every {
    long long every = 100;
    std::function<void(Model&, long long)> fn;
    bool on_step_end(Model& m, const step_info& s) {
        if (fn && every > 0 && (s.step % every == 0 || s.step == s.total)) fn(m, s.step);
        return false;
    }
};

}  // namespace vila::train
