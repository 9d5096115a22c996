// vila/train/trainer.hpp — the training loop, composed at compile time from policies:
//
//   using stage2 = train::trainer<model_t, train::freeze::pretrain, data::sequence_sampler,
//                                 optim::adamw<float>, train::cosine_warmup,
//                                 train::progress, train::metrics_jsonl, train::nan_guard>;
//   stage2 t(model, optim::adamw<float>({...}), train::cosine_warmup{warmup, steps}, groups, options,
//            train::progress{}, train::metrics_jsonl{run / "metrics.jsonl"}, train::nan_guard{});
//   t.resume_if_possible(data);   // continue from RUN_DIR/checkpoints/latest, if there is one
//   auto r = t.fit(data);
//
// One step: take grad_accum micro-batches from the sampler, count their labels (N), run each
// forward and backward_loss(count_i / N) (so the step's gradient is that of one batch k times
// larger, normalised by all its labels), clip the global norm, ask the callbacks' on_gradients
// (the NaN guard), then update every trainable parameter with its group's rate times the
// schedule's factor. Checkpoints: every save_every steps, at the end, and on SIGINT/SIGTERM
// (the run then stops after the step in flight). A resume restores the weights, the optimizer
// state, the step and the sampler's position: on the CPU backend it continues bit for bit.
#pragma once
#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../config.hpp"
#include "../data/sampler.hpp"
#include "../model/lora.hpp"
#include "callbacks.hpp"
#include "checkpoint.hpp"
#include "freeze.hpp"
#include "gradients.hpp"
#include "groups.hpp"
#include "model_step.hpp"
#include "schedule.hpp"

namespace vila::train {

struct trainer_options {
    long long steps = 100;              // total optimizer steps of the run
    int grad_accum = 1;                 // micro-batches per step
    double max_grad_norm = 1.0;         // global-norm clipping (<= 0: off)
    std::filesystem::path run_dir;      // "" : no checkpoints
    long long save_every = 0;           // 0: only at the end (and on a signal)
    int keep_last = 3;                  // checkpoints kept (0: all)
    bool save_final = true;             // write RUN_DIR/final/ at the end
    bool handle_signals = true;         // SIGINT/SIGTERM: checkpoint, then stop
    std::filesystem::path tokenizer_dir;  // its tokenizer files are copied next to each saved model
    std::filesystem::path preprocessor_file;  // a VLM's preprocessor_config.json, copied into vision_tower/
    nlohmann::json run_config = nlohmann::json::object();  // recorded in trainer_state.json
};

namespace detail {
inline volatile std::sig_atomic_t& stop_signal() {
    static volatile std::sig_atomic_t s = 0;
    return s;
}
extern "C" inline void on_stop_signal(int sig) { stop_signal() = sig; }

// Optional callback hooks, detected at compile time.
template <class C, class = void>
struct has_fit_begin : std::false_type {};
template <class C>
struct has_fit_begin<C, std::void_t<decltype(std::declval<C&>().on_fit_begin(std::declval<const fit_begin_info&>()))>> : std::true_type {};
template <class C, class M, class = void>
struct has_gradients : std::false_type {};
template <class C, class M>
struct has_gradients<C, M, std::void_t<decltype(std::string(std::declval<C&>().on_gradients(std::declval<M&>(), std::declval<const step_info&>())))>>
    : std::true_type {};
template <class C, class M, class = void>
struct has_step_end : std::false_type {};
template <class C, class M>
struct has_step_end<C, M, std::void_t<decltype(bool(std::declval<C&>().on_step_end(std::declval<M&>(), std::declval<const step_info&>())))>>
    : std::true_type {};
template <class C, class = void>
struct has_fit_end : std::false_type {};
template <class C>
struct has_fit_end<C, std::void_t<decltype(std::declval<C&>().on_fit_end(std::declval<const fit_result&>()))>> : std::true_type {};

struct any_linear {
    template <class L>
    void operator()(L&, bool) const {}
};
template <class M, class = void>
struct has_linears : std::false_type {};  // a model that can carry LoRA adapters
template <class M>
struct has_linears<M, std::void_t<decltype(std::declval<M&>().for_each_linear(any_linear{}))>> : std::true_type {};

template <class S, class = void>
struct is_schedule : std::false_type {};
template <class S>
struct is_schedule<S, std::void_t<decltype(double(std::declval<const S&>().factor(0LL)))>> : std::true_type {};
template <class O, class M, class = void>
struct is_optimizer : std::false_type {};
template <class O, class M>
struct is_optimizer<O, M, std::void_t<decltype(std::declval<O&>().save(std::declval<std::filesystem::path>())),
                                      decltype(std::declval<O&>().load(std::declval<std::filesystem::path>()))>> : std::true_type {};
}  // namespace detail

template <class Model, class Freeze, class Sampler, class Optimizer, class Schedule, class... Callbacks>
class trainer {
    static_assert(is_freeze_policy_v<Freeze>,
                  "Freeze must be a freezing policy: static bool trains(const vila::train::parameter_part&, std::string_view)");
    static_assert(data::is_sampler_v<Sampler>,
                  "Sampler needs data::batch next(), nlohmann::json state() const and void restore(const nlohmann::json&)");
    static_assert(detail::is_schedule<Schedule>::value, "Schedule needs double factor(long long step) const");
    static_assert(detail::is_optimizer<Optimizer, Model>::value,
                  "Optimizer needs update(name, param&, lr, weight_decay), save(path) and load(path)");

public:
    trainer(Model& model, Optimizer optimizer, Schedule schedule, param_groups groups, trainer_options options, Callbacks... callbacks)
        : model_(model), opt_(std::move(optimizer)), schedule_(std::move(schedule)), groups_(groups), o_(std::move(options)),
          callbacks_(std::move(callbacks)...) {
        if (o_.steps < 0) throw config_error("vila::train: steps must be >= 0");
        if (o_.grad_accum < 1) throw config_error("vila::train: grad_accum must be >= 1");
        const index_t n = apply_freeze<Freeze>(model_);
        if (n == 0) throw config_error("vila::train: the freezing policy leaves no parameter to train");
    }

    long long step() const noexcept { return step_; }
    Model& model() noexcept { return model_; }
    Optimizer& optimizer() noexcept { return opt_; }
    const trainer_options& options() const noexcept { return o_; }

    /// Continues from RUN_DIR/checkpoints/latest when it exists; returns whether it did.
    bool resume_if_possible(Sampler& data) {
        if (o_.run_dir.empty()) return false;
        remove_orphans(o_.run_dir / "checkpoints");
        remove_orphans(o_.run_dir);
        const auto dir = latest_checkpoint(o_.run_dir);
        if (dir.empty()) return false;
        resume(dir, data);
        return true;
    }

    /// Restores weights, optimizer state, step and sampler position from a checkpoint folder.
    void resume(const std::filesystem::path& dir, Sampler& data) {
        const auto state = io::read_json(dir / "trainer_state.json");
        const std::string file = (dir / "trainer_state.json").string();
        int version = -1;
        long long step = 0;
        std::string written_by, optimizer;
        try {  // every field checked before anything is loaded
            version = state.value("format_version", -1);
            written_by = state.value("library_version", std::string("?"));
            optimizer = state.value("optimizer", std::string("?"));
            step = state.at("step").get<long long>();
            state.at("sampler");
        } catch (const nlohmann::json::exception& e) {
            throw format_error(file + ": " + e.what());
        }
        if (version != run_format_version)
            throw config_error(file + ": run format " + std::to_string(version) + " (written by vila " + written_by + "); this vila " +
                               vila::version() + " reads format " + std::to_string(run_format_version));
        if (optimizer != Optimizer::kind)
            throw config_error(file + ": the run used optimizer " + optimizer + ", this trainer " + Optimizer::kind);
        if (step < 0) throw format_error(file + ": step " + std::to_string(step) + " is negative");
        model_ = Model::load(dir);
        if constexpr (detail::has_linears<Model>::value)
            if (std::filesystem::exists(dir / "adapter_config.json")) lora::load_peft(model_, dir);
        apply_freeze<Freeze>(model_);
        opt_.load(dir / "optimizer.safetensors");
        step_ = step;
        try {
            data.restore(state.at("sampler"));
        } catch (const nlohmann::json::exception& e) {
            throw format_error(file + ": sampler: " + e.what());
        }
        last_checkpoint_ = dir;
        last_saved_step_ = step_;
    }

    /// Trains until options().steps (from the current step).
    fit_result fit(Sampler& data) {
        using clock = std::chrono::steady_clock;
        const auto begin = clock::now();
        fit_begin_info fb{step_, o_.steps, 0, 0, o_.run_dir};
        model_.for_each_parameter([&](const std::string&, auto& p) { (p.trainable ? fb.trainable : fb.frozen) += 1; });
        if (!o_.run_dir.empty()) {
            remove_orphans(o_.run_dir / "checkpoints");
            io::write_json(o_.run_dir / "config.json", o_.run_config);
        }
        each([&](auto& c) {
            if constexpr (detail::has_fit_begin<std::decay_t<decltype(c)>>::value) c.on_fit_begin(fb);
        });
        signal_guard guard(o_.handle_signals);
        fit_result r;
        const std::int32_t image_token = image_token_of(model_);
        long long done_here = 0;
        while (step_ < o_.steps) {
            const auto t0 = clock::now();
            std::vector<data::batch> micro;
            index_t labels = 0, tokens = 0;
            step_info info;
            for (int i = 0; i < o_.grad_accum; ++i) {
                micro.push_back(data.next());
                labels += data::label_count(micro.back(), image_token);
                for (const auto& src : micro.back().sources) ++info.sources[src];
            }
            info.data_seconds = std::chrono::duration<double>(clock::now() - t0).count();
            if (labels == 0) throw error("vila::train: step " + std::to_string(step_ + 1) + ": no sample of the batch has a label to learn");
            model_.zero_grad();
            double loss_sum = 0;
            index_t counted = 0;
            for (std::size_t i = 0; i < micro.size(); ++i) {
                auto& b = micro[i];
                if constexpr (detail::has_linears<Model>::value)  // LoRA dropout: on, with a mask per micro-batch
                    lora::set_training(model_, true, std::uint64_t(step_) * std::uint64_t(o_.grad_accum) + i);
                const auto res = forward_loss(model_, b);
                tokens += model_.logits().dim(0) * model_.logits().dim(1);
                counted += res.count;
                loss_sum += double(res.loss) * double(res.count);
                if (res.count > 0) model_.backward_loss(double(res.count) / double(labels));
            }
            if constexpr (detail::has_linears<Model>::value) lora::set_training(model_, false);  // callbacks evaluate in inference mode
            if (counted != labels)
                throw error("vila::train: the model counted " + std::to_string(counted) + " labels where the batch has " + std::to_string(labels));
            info.step = step_ + 1;
            info.total = o_.steps;
            info.loss = loss_sum / double(labels);
            info.labels = labels;
            info.tokens = tokens;
            info.grad_norm = clip_grad_norm(model_, o_.max_grad_norm);
            const double factor = schedule_.factor(step_);
            info.lr = groups_.lr * factor;
            std::string stop;
            each([&](auto& c) {
                if constexpr (detail::has_gradients<std::decay_t<decltype(c)>, Model>::value)
                    if (stop.empty()) stop = c.on_gradients(model_, info);
            });
            if (!stop.empty()) {
                r.stopped = stop;
                break;
            }
            for_each_parameter(model_, [&](const parameter_part& part, const std::string& name, auto& p) {
                if (p.trainable) opt_.update(name, p, groups_.lr_of(part) * factor, groups_.weight_decay_of(name, p));
            });
            ++step_;
            ++done_here;
            info.seconds = std::chrono::duration<double>(clock::now() - t0).count();
            info.elapsed = std::chrono::duration<double>(clock::now() - begin).count();
            info.steps_this_run = done_here;
            r.last_loss = info.loss;
            bool halt = false;
            each([&](auto& c) {
                if constexpr (detail::has_step_end<std::decay_t<decltype(c)>, Model>::value) halt = c.on_step_end(model_, info) || halt;
            });
            const int sig = detail::stop_signal();
            const bool periodic = o_.save_every > 0 && step_ % o_.save_every == 0 && step_ < o_.steps;
            if (!o_.run_dir.empty() && (periodic || sig)) save_checkpoint(data);
            if (sig) {
                r.stopped = std::string("interrupted by signal ") + std::to_string(sig) + ", checkpoint saved";
                break;
            }
            if (halt) {
                r.stopped = "stopped by a callback";
                break;
            }
        }
        r.step = step_;
        if (!o_.run_dir.empty() && r.stopped.empty()) {
            if (last_saved_step_ != step_) save_checkpoint(data);
            if (o_.save_final) save_model(o_.run_dir / "final");
        }
        r.checkpoint = last_checkpoint_;
        each([&](auto& c) {
            if constexpr (detail::has_fit_end<std::decay_t<decltype(c)>>::value) c.on_fit_end(r);
        });
        return r;
    }

    /// Writes RUN_DIR/checkpoints/step-N (model, optimizer, trainer state) and points `latest` at it.
    void save_checkpoint(const Sampler& data) {
        if (o_.run_dir.empty()) throw config_error("vila::train: no run folder to save a checkpoint in");
        const std::string name = "step-" + std::to_string(step_);
        const auto dir = o_.run_dir / "checkpoints" / name;
        io::write_folder(dir, [&](const std::filesystem::path& tmp) {
            write_model(tmp);
            opt_.save(tmp / "optimizer.safetensors");
            nlohmann::json st = {{"format", "vila.train"},
                                 {"format_version", run_format_version},
                                 {"library_version", vila::version()},
                                 {"step", step_},
                                 {"total_steps", o_.steps},
                                 {"optimizer", Optimizer::kind},
                                 {"sampler", data.state()},
                                 {"config", o_.run_config}};
            io::write_json(tmp / "trainer_state.json", st);
        });
        publish_checkpoint(o_.run_dir, name, o_.keep_last);
        last_checkpoint_ = dir;
        last_saved_step_ = step_;
    }

    /// Writes the model alone (its folder layout + tokenizer files) as a unit.
    void save_model(const std::filesystem::path& dir) {
        io::write_folder(dir, [&](const std::filesystem::path& tmp) { write_model(tmp); });
    }

private:
    void write_model(const std::filesystem::path& dir) {
        model_.save_into(dir);
        if constexpr (detail::has_linears<Model>::value)
            if (lora::count(model_) > 0) lora::save_peft(model_, dir, lora::config_of(model_));
        const bool vlm_layout = std::filesystem::is_directory(dir / "llm");
        copy_tokenizer_files(o_.tokenizer_dir, vlm_layout ? dir / "llm" : dir);
        if (vlm_layout && !o_.preprocessor_file.empty() && std::filesystem::exists(o_.preprocessor_file)) {
            std::error_code ec;
            std::filesystem::copy_file(o_.preprocessor_file, dir / "vision_tower" / "preprocessor_config.json",
                                       std::filesystem::copy_options::overwrite_existing, ec);
            if (ec) throw io_error("cannot copy " + o_.preprocessor_file.string() + ": " + ec.message());
        }
    }
    template <class F>
    void each(F&& f) {
        std::apply([&](auto&... c) { (f(c), ...); }, callbacks_);
    }
    /// Installs the SIGINT/SIGTERM handlers for the duration of fit().
    struct signal_guard {
        bool on;
        void (*old_int)(int) = nullptr;
        void (*old_term)(int) = nullptr;
        explicit signal_guard(bool enable) : on(enable) {
            detail::stop_signal() = 0;
            if (!on) return;
            old_int = std::signal(SIGINT, detail::on_stop_signal);
            old_term = std::signal(SIGTERM, detail::on_stop_signal);
        }
        ~signal_guard() {
            if (!on) return;
            std::signal(SIGINT, old_int);
            std::signal(SIGTERM, old_term);
        }
    };

    Model& model_;
    Optimizer opt_;
    Schedule schedule_;
    param_groups groups_;
    trainer_options o_;
    std::tuple<Callbacks...> callbacks_;
    long long step_ = 0, last_saved_step_ = -1;
    std::filesystem::path last_checkpoint_;
};

}  // namespace vila::train
