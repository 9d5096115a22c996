// vila/data/mixture.hpp — mixtures of sources as compile-time sampler policies.
//
// A mixture is one global sequence of draws (source k, record i), a pure function of a few
// counters (draws so far, records taken per source) and the seed; each source visits its
// records in a fresh permutation per pass (vila::rng(seed, source, pass)). Policies choose the
// source of the next draw:
//   mix::natural    every record of every source once per epoch, each source's share spread
//                   evenly across the epoch (the source whose (taken + 1/2) / size is smallest
//                   goes next): VILA's concatenated datasets, without explicit weights.
//   mix::weighted   each draw picks a source with probability weight / sum(weights); a source
//                   cycles through its permutations as often as it is drawn.
//   mix::sequential sources one after another, each in its permutation, then the next epoch.
// Sharding: rank r of `world` takes the draws d with d % world == r, so shards are disjoint and
// their union is the unsharded sequence. A bad record (any vila::error from reading, rendering
// or decoding its images) is skipped and counted by reason (lenient) or stops the run with its
// location (strict). The state is the counters: a resumed sampler continues exactly.
// Loading (read, tokenize, decode, preprocess) runs on `workers` background threads, `prefetch`
// records ahead, through a queue consumed in draw order: batches never depend on thread timing.
#pragma once
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/rng.hpp"
#include "../vision/image.hpp"
#include "batch.hpp"
#include "images.hpp"
#include "render.hpp"
#include "source.hpp"

namespace vila::data {

namespace mix {
struct natural {
    static constexpr const char* name = "natural";
};
struct weighted {
    static constexpr const char* name = "weighted";
};
struct sequential {
    static constexpr const char* name = "sequential";
};
}  // namespace mix

struct mixture_entry {
    std::string name;
    std::shared_ptr<const source> src;
    double weight = 1.0;  // mix::weighted only
};

enum class bad_records { lenient, strict };

struct mixture_options {
    index_t batch_size = 1;
    std::uint64_t seed = 0;
    bool shuffle = true;
    index_t rank = 0, world = 1;  // sharding for data-parallel runs
    bad_records on_bad = bad_records::lenient;
    std::size_t report_first = 5;  // lenient: bad records remembered with their message
    int workers = 0;               // loader threads (0: load in the caller's thread)
    index_t prefetch = 16;         // records loaded ahead with workers
};

/// Why a record was skipped, from its error message (a short fixed vocabulary for counts).
inline std::string bad_record_reason(const std::string& message) {
    struct rule {
        const char* needle;
        const char* reason;
    };
    static const rule rules[] = {{"invalid JSON", "invalid JSON"},
                                 {"missing image", "missing image"},
                                 {"cannot open image", "missing image"},
                                 {"is in none of the", "missing image"},
                                 {"not a decodable image", "corrupt image"},
                                 {"corrupt or truncated image", "corrupt image"},
                                 {"empty image file", "corrupt image"},
                                 {"pixels exceed", "corrupt image"},
                                 {"truncated tar member", "truncated tar member"},
                                 {"<image> mark", "image count mismatch"},
                                 {"image tokens after tokenization", "image count mismatch"},
                                 {"no caption", "missing caption"},
                                 {"no image member", "missing image"},
                                 {"no image left", "no image left"},
                                 {"tokenization mismatch", "tokenization mismatch"},
                                 {"after truncation", "too long"},
                                 {"empty conversation", "bad conversation"},
                                 {"turns alternate", "bad conversation"},
                                 {"unknown role", "bad conversation"},
                                 {"expects one human and one gpt turn", "bad conversation"}};
    for (const auto& r : rules)
        if (message.find(r.needle) != std::string::npos) return r.reason;
    return "malformed record";
}

/// Bad records met so far, each counted once (later passes skip it without re-reading).
struct bad_record_log {
    std::map<std::string, std::size_t> counts;  // reason -> distinct records skipped
    std::vector<std::string> first;             // the first few messages, with locations
    std::size_t total() const {
        std::size_t n = 0;
        for (const auto& [r, c] : counts) n += c;
        return n;
    }
};

namespace detail {
/// A few worker threads over a task queue; the destructor finishes the running tasks and drops
/// the queued ones.
class worker_pool {
public:
    explicit worker_pool(int n) {
        for (int t = 0; t < n; ++t)
            threads_.emplace_back([this] {
                for (;;) {
                    std::function<void()> task;
                    {
                        std::unique_lock<std::mutex> lock(mu_);
                        cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
                        if (stop_) return;
                        task = std::move(tasks_.front());
                        tasks_.pop_front();
                    }
                    task();
                }
            });
    }
    ~worker_pool() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    worker_pool(const worker_pool&) = delete;
    worker_pool& operator=(const worker_pool&) = delete;
    void submit(std::function<void()> task) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            tasks_.push_back(std::move(task));
        }
        cv_.notify_one();
    }

private:
    std::vector<std::thread> threads_;
    std::deque<std::function<void()>> tasks_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
};
}  // namespace detail

template <class Policy>
class mixture_sampler {
    static_assert(std::is_same_v<Policy, mix::natural> || std::is_same_v<Policy, mix::weighted> || std::is_same_v<Policy, mix::sequential>,
                  "vila::data::mixture_sampler: the policy must be mix::natural, mix::weighted or mix::sequential");

public:
    /// `tok` and `processor` (may be null when no source has images) must outlive the sampler.
    mixture_sampler(std::vector<mixture_entry> sources, const tokenizer::tokenizer& tok, render_options render,
                    const vision::image_processor* processor, mixture_options o)
        : opt_(o) {
        if (sources.empty()) throw config_error("vila::data::mixture_sampler: no sources");
        if (opt_.batch_size <= 0) throw config_error("vila::data::mixture_sampler: batch size must be positive");
        if (opt_.world <= 0 || opt_.rank < 0 || opt_.rank >= opt_.world)
            throw config_error("vila::data::mixture_sampler: rank " + std::to_string(opt_.rank) + " of world " + std::to_string(opt_.world));
        if (opt_.workers < 0) throw config_error("vila::data::mixture_sampler: workers must be >= 0");
        double wsum = 0;
        for (std::size_t k = 0; k < sources.size(); ++k)
            for (std::size_t j = 0; j < k; ++j)
                if (sources[j].name == sources[k].name) throw config_error("vila::data::mixture_sampler: two sources are named '" + sources[k].name + "'");
        for (const auto& s : sources) {
            if (!s.src) throw config_error("vila::data::mixture_sampler: source '" + s.name + "' is null");
            if (s.src->size() == 0) throw config_error("vila::data::mixture_sampler: source '" + s.name + "' (" + s.src->describe() + ") is empty");
            if (!(s.weight >= 0)) throw config_error("vila::data::mixture_sampler: source '" + s.name + "' has a negative weight");
            wsum += s.weight;
            total_ += s.src->size();
        }
        if (std::is_same_v<Policy, mix::weighted> && !(wsum > 0)) throw config_error("vila::data::mixture_sampler: the weights sum to zero");
        for (const auto& s : sources) cumulative_.push_back((cumulative_.empty() ? 0.0 : cumulative_.back()) + s.weight / wsum);
        const std::size_t K = sources.size();
        committed_.taken.assign(K, 0);
        ahead_ = committed_;
        perm_.resize(K);
        perm_pass_.assign(K, -1);
        known_bad_.resize(K);
        ctx_ = std::make_shared<const context>(context{std::move(sources), &tok, std::move(render), processor});
        if (opt_.workers > 0) pool_ = std::make_unique<detail::worker_pool>(opt_.workers);
    }

    /// The next micro-batch of this rank: batch_size good samples, their pixels, their sources.
    /// Records are loaded in draw order (ahead of time by the workers when there are any), so
    /// what a batch holds never depends on thread timing.
    batch next() {
        batch b;
        std::vector<tensor<float>> pixels;
        std::size_t misses = 0;
        while (index_t(b.samples.size()) < opt_.batch_size) {
            fill();
            job j = std::move(pending_.front());
            pending_.pop_front();
            loaded L;
            if (!j.known_bad) {
                const auto t0 = std::chrono::steady_clock::now();
                L = j.result.valid() ? j.result.get() : load(*ctx_, j.k, j.i);
                wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            }
            committed_ = std::move(j.after);
            const std::string& name = ctx_->sources[j.k].name;
            if (j.known_bad || !L.ok) {
                if (!j.known_bad && !known_bad_[j.k].count(j.i)) {
                    if (L.config) throw config_error(L.message);
                    if (opt_.on_bad == bad_records::strict) throw format_error(L.message);
                    known_bad_[j.k].insert(j.i);
                    ++bad_.counts[bad_record_reason(L.message)];
                    if (bad_.first.size() < opt_.report_first) bad_.first.push_back(L.message);
                }
                if (++misses > total_)
                    throw format_error("vila::data::mixture_sampler: every record is bad (" + std::to_string(bad_.total()) + "; first: " +
                                       (bad_.first.empty() ? std::string("?") : bad_.first.front()) + ")");
                continue;
            }
            misses = 0;
            for (auto& p : L.pixels) {
                if (!pixels.empty() && p.shape() != pixels.front().shape())
                    throw shape_error(name + ": an image preprocessed to " + to_string(p.shape()) + ", others to " + to_string(pixels.front().shape()));
                pixels.push_back(std::move(p));
            }
            if (L.truncated) ++truncated_;
            dropped_images_ += std::size_t(L.dropped);
            b.samples.push_back(std::move(L.s));
            b.sources.push_back(name);
            ++served_[name];
        }
        if (!pixels.empty()) {
            const auto& one = pixels.front().shape();
            std::vector<float> all;
            for (const auto& p : pixels) {
                const auto h = p.to_host();
                all.insert(all.end(), h.begin(), h.end());
            }
            b.pixels = tensor<float>::from_host({index_t(pixels.size()), one[0], one[1], one[2]}, all);
        }
        return b;
    }

    nlohmann::json state() const {
        nlohmann::json taken = nlohmann::json::object(), sizes = nlohmann::json::object();
        for (std::size_t k = 0; k < ctx_->sources.size(); ++k) {
            taken[ctx_->sources[k].name] = committed_.taken[k];
            sizes[ctx_->sources[k].name] = ctx_->sources[k].src->size();
        }
        return {{"kind", "mixture"}, {"policy", Policy::name}, {"seed", opt_.seed}, {"shuffle", opt_.shuffle}, {"draws", committed_.draws},
                {"taken", taken}, {"sizes", sizes}, {"rank", opt_.rank}, {"world", opt_.world}};
    }

    void restore(const nlohmann::json& s) {
        auto refuse = [&](const std::string& why) {
            throw config_error("vila::data::mixture_sampler: the saved sampler state does not match this mixture: " + why);
        };
        if (!s.is_object() || s.value("kind", std::string()) != "mixture") refuse("not a mixture state");
        if (s.value("policy", std::string()) != Policy::name) refuse("policy " + s.value("policy", std::string("?")) + ", this one is " + Policy::name);
        if (s.value("seed", std::uint64_t(0)) != opt_.seed || s.value("shuffle", true) != opt_.shuffle) refuse("another seed or shuffle");
        if (s.value("rank", index_t(-1)) != opt_.rank || s.value("world", index_t(-1)) != opt_.world) refuse("another rank or world size");
        if (!s.contains("taken") || !s.contains("sizes") || !s.contains("draws")) refuse("draws, taken or sizes missing");
        const auto& taken = s.at("taken");
        const auto& sizes = s.at("sizes");
        const std::vector<mixture_entry>& sources = ctx_->sources;
        if (!taken.is_object() || !sizes.is_object() || taken.size() != sources.size()) refuse("other sources");
        cursor c;
        c.taken.resize(sources.size());
        for (std::size_t k = 0; k < sources.size(); ++k) {
            const std::string& name = sources[k].name;
            if (!taken.contains(name) || !taken[name].is_number_unsigned() || !sizes.contains(name) || sizes[name] != sources[k].src->size())
                refuse("source '" + name + "' is missing or has another size");
            c.taken[k] = taken[name].get<std::uint64_t>();
            c.draws += c.taken[k];
        }
        const auto& draws = s.at("draws");
        if (!draws.is_number_unsigned() || draws.get<std::uint64_t>() != c.draws) refuse("draws and per-source counts disagree");
        pending_.clear();  // loads scheduled from the old position are dropped (running ones finish unseen)
        committed_ = c;
        ahead_ = std::move(c);
    }

    const bad_record_log& bad_records_seen() const noexcept { return bad_; }
    const std::map<std::string, std::size_t>& served() const noexcept { return served_; }
    std::size_t truncated() const noexcept { return truncated_; }
    std::size_t dropped_images() const noexcept { return dropped_images_; }
    std::uint64_t draws() const noexcept { return committed_.draws; }
    std::size_t epoch_size() const noexcept { return total_; }
    /// Seconds next() spent waiting for records to be loaded (all of the loading without workers).
    double wait_seconds() const noexcept { return wait_seconds_; }

private:
    struct context {  // what loading needs; shared with the workers, never changed
        std::vector<mixture_entry> sources;
        const tokenizer::tokenizer* tok;
        render_options render;
        const vision::image_processor* processor;
    };
    struct cursor {
        std::uint64_t draws = 0;
        std::vector<std::uint64_t> taken;  // per source, all passes
    };
    struct loaded {
        bool ok = false, config = false, truncated = false;
        sample s;
        std::vector<tensor<float>> pixels;
        index_t dropped = 0;
        std::string message;
    };
    struct job {
        std::size_t k = 0, i = 0;
        cursor after;  // the counters once this draw is consumed
        bool known_bad = false;
        std::shared_future<loaded> result;  // invalid: load when consumed (no workers)
    };

    /// Reads, renders and preprocesses record i of source k; never throws (a failure is a result).
    static loaded load(const context& c, std::size_t k, std::size_t i) {
        loaded L;
        try {
            const record r = c.sources[k].src->get(i);
            rendered out = render(r, *c.tok, c.render);
            for (const auto& ref : out.images) {
                if (!c.processor)
                    throw config_error("vila::data::mixture_sampler: source '" + c.sources[k].name + "' has images but no image processor was given");
                try {
                    L.pixels.push_back(load_pixels(ref, *c.processor));
                } catch (const config_error&) {
                    throw;
                } catch (const error& e) {
                    throw format_error(r.where + ": " + e.what());  // the record's location too
                }
                if (L.pixels.back().shape() != L.pixels.front().shape())
                    throw shape_error(ref.where() + ": preprocessed to " + to_string(L.pixels.back().shape()) + ", the record's first image to " +
                                      to_string(L.pixels.front().shape()));
            }
            L.s = std::move(out.s);
            L.truncated = out.truncated;
            L.dropped = out.dropped_images;
            L.ok = true;
        } catch (const config_error& e) {
            L.config = true;
            L.message = e.what();
        } catch (const error& e) {
            L.message = e.what();
        } catch (const std::exception& e) {  // e.g. bad_alloc: a record that cannot be loaded
            L.message = std::string("malformed record: ") + e.what();
        }
        if (!L.ok) L.pixels.clear();
        return L;
    }

    /// Schedules this rank's next draws until `prefetch` loads are pending (one without workers).
    void fill() {
        const std::size_t want = opt_.workers > 0 ? std::size_t(std::max<index_t>(opt_.prefetch, 1)) : std::size_t(1);
        while (pending_.size() < want) {
            while (ahead_.draws % std::uint64_t(opt_.world) != std::uint64_t(opt_.rank)) advance(ahead_);  // other ranks' draws
            job j;
            std::tie(j.k, j.i) = advance(ahead_);
            j.after = ahead_;
            j.known_bad = known_bad_[j.k].count(j.i) > 0;  // seen bad in an earlier pass: not read again
            if (!j.known_bad && pool_) {
                auto task = std::make_shared<std::packaged_task<loaded()>>([c = ctx_, k = j.k, i = j.i] { return load(*c, k, i); });
                j.result = task->get_future().share();
                pool_->submit([task] { (*task)(); });
            }
            pending_.push_back(std::move(j));
        }
    }

    std::pair<std::size_t, std::size_t> advance(cursor& c) {
        const std::size_t k = pick(c);
        const std::size_t n = ctx_->sources[k].src->size();
        const long long pass = (long long)(c.taken[k] / n);
        const std::size_t pos = c.taken[k] % n;
        ++c.taken[k];
        ++c.draws;
        return {k, record_index(k, pass, pos)};
    }

    std::size_t pick(const cursor& c) const {
        const auto& sources = ctx_->sources;
        const std::size_t K = sources.size();
        if constexpr (std::is_same_v<Policy, mix::weighted>) {
            rng g(opt_.seed ^ 0x6d697874757265ull, c.draws);  // one stream per draw: resumable from the count alone
            const double u = g.uniform();
            for (std::size_t k = 0; k < K; ++k)
                if (u < cumulative_[k] && sources[k].weight > 0) return k;
            for (std::size_t k = K; k-- > 0;)
                if (sources[k].weight > 0) return k;
            return 0;
        } else {
            const std::uint64_t epoch = c.draws / total_;
            if constexpr (std::is_same_v<Policy, mix::sequential>) {
                std::uint64_t p = c.draws % total_;
                for (std::size_t k = 0; k < K; ++k) {
                    if (p < sources[k].src->size()) return k;
                    p -= sources[k].src->size();
                }
                return K - 1;
            } else {  // natural: the source furthest behind its even share of this epoch
                std::size_t best = K;
                double best_due = 0;
                for (std::size_t k = 0; k < K; ++k) {
                    const std::size_t n = sources[k].src->size();
                    const std::uint64_t within = c.taken[k] - epoch * n;
                    if (within >= n) continue;
                    const double due = (double(within) + 0.5) / double(n);
                    if (best == K || due < best_due) best = k, best_due = due;
                }
                return best;
            }
        }
    }

    std::size_t record_index(std::size_t k, long long pass, std::size_t pos) {
        if (!opt_.shuffle) return pos;
        if (perm_pass_[k] != pass) {
            auto& p = perm_[k];
            p.resize(ctx_->sources[k].src->size());
            for (std::size_t i = 0; i < p.size(); ++i) p[i] = i;
            rng g(opt_.seed, (std::uint64_t(k) << 40) + std::uint64_t(pass) + 1);
            for (std::size_t i = p.size(); i > 1; --i) std::swap(p[i - 1], p[std::size_t(g.below(i))]);
            perm_pass_[k] = pass;
        }
        return perm_[k][pos];
    }

    mixture_options opt_;
    std::shared_ptr<const context> ctx_;
    std::size_t total_ = 0;
    std::vector<double> cumulative_;
    cursor committed_, ahead_;  // the state (draws consumed into batches); the scheduling position
    std::vector<std::vector<std::size_t>> perm_;
    std::vector<long long> perm_pass_;
    std::vector<std::set<std::size_t>> known_bad_;  // per source: records counted bad once
    bad_record_log bad_;
    std::map<std::string, std::size_t> served_;
    std::size_t truncated_ = 0, dropped_images_ = 0;
    double wait_seconds_ = 0;
    std::deque<job> pending_;
    std::unique_ptr<detail::worker_pool> pool_;  // last: destroyed first, its threads joined before the rest goes
};

/// A mixture whose policy is named at run time ("natural", "weighted", "sequential"): one
/// Sampler type for programs that read the policy from a flag.
class any_mixture_sampler {
public:
    any_mixture_sampler(const std::string& policy, std::vector<mixture_entry> sources, const tokenizer::tokenizer& tok, render_options render,
                        const vision::image_processor* processor, mixture_options o)
        : s_(make(policy, std::move(sources), tok, std::move(render), processor, o)) {}

    batch next() {
        return std::visit([](auto& s) { return s.next(); }, s_);
    }
    nlohmann::json state() const {
        return std::visit([](const auto& s) { return s.state(); }, s_);
    }
    void restore(const nlohmann::json& j) {
        std::visit([&](auto& s) { s.restore(j); }, s_);
    }
    const bad_record_log& bad_records_seen() const {
        return std::visit([](const auto& s) -> const bad_record_log& { return s.bad_records_seen(); }, s_);
    }
    const std::map<std::string, std::size_t>& served() const {
        return std::visit([](const auto& s) -> const std::map<std::string, std::size_t>& { return s.served(); }, s_);
    }
    std::size_t truncated() const {
        return std::visit([](const auto& s) { return s.truncated(); }, s_);
    }
    std::size_t epoch_size() const {
        return std::visit([](const auto& s) { return s.epoch_size(); }, s_);
    }
    double wait_seconds() const {
        return std::visit([](const auto& s) { return s.wait_seconds(); }, s_);
    }

private:
    using any = std::variant<mixture_sampler<mix::natural>, mixture_sampler<mix::weighted>, mixture_sampler<mix::sequential>>;
    static any make(const std::string& policy, std::vector<mixture_entry> sources, const tokenizer::tokenizer& tok, render_options render,
                    const vision::image_processor* processor, mixture_options o) {
        if (policy == "natural") return any(std::in_place_type<mixture_sampler<mix::natural>>, std::move(sources), tok, std::move(render), processor, o);
        if (policy == "weighted") return any(std::in_place_type<mixture_sampler<mix::weighted>>, std::move(sources), tok, std::move(render), processor, o);
        if (policy == "sequential")
            return any(std::in_place_type<mixture_sampler<mix::sequential>>, std::move(sources), tok, std::move(render), processor, o);
        throw config_error("unknown mixture policy '" + policy + "' (natural, weighted, sequential)");
    }
    any s_;
};

}  // namespace vila::data
