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
#pragma once
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
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

template <class Policy>
class mixture_sampler {
    static_assert(std::is_same_v<Policy, mix::natural> || std::is_same_v<Policy, mix::weighted> || std::is_same_v<Policy, mix::sequential>,
                  "vila::data::mixture_sampler: the policy must be mix::natural, mix::weighted or mix::sequential");

public:
    /// `processor` preprocesses images (may be null when no source has images).
    mixture_sampler(std::vector<mixture_entry> sources, const tokenizer::tokenizer& tok, render_options render,
                    const vision::image_processor* processor, mixture_options o)
        : sources_(std::move(sources)), tok_(&tok), render_(std::move(render)), processor_(processor), opt_(o) {
        if (sources_.empty()) throw config_error("vila::data::mixture_sampler: no sources");
        if (opt_.batch_size <= 0) throw config_error("vila::data::mixture_sampler: batch size must be positive");
        if (opt_.world <= 0 || opt_.rank < 0 || opt_.rank >= opt_.world)
            throw config_error("vila::data::mixture_sampler: rank " + std::to_string(opt_.rank) + " of world " + std::to_string(opt_.world));
        double wsum = 0;
        for (std::size_t k = 0; k < sources_.size(); ++k)
            for (std::size_t j = 0; j < k; ++j)
                if (sources_[j].name == sources_[k].name) throw config_error("vila::data::mixture_sampler: two sources are named '" + sources_[k].name + "'");
        for (const auto& s : sources_) {
            if (!s.src) throw config_error("vila::data::mixture_sampler: source '" + s.name + "' is null");
            if (s.src->size() == 0) throw config_error("vila::data::mixture_sampler: source '" + s.name + "' (" + s.src->describe() + ") is empty");
            if (!(s.weight >= 0)) throw config_error("vila::data::mixture_sampler: source '" + s.name + "' has a negative weight");
            wsum += s.weight;
            total_ += s.src->size();
        }
        if (std::is_same_v<Policy, mix::weighted> && !(wsum > 0)) throw config_error("vila::data::mixture_sampler: the weights sum to zero");
        for (const auto& s : sources_) cumulative_.push_back((cumulative_.empty() ? 0.0 : cumulative_.back()) + s.weight / wsum);
        taken_.assign(sources_.size(), 0);
        perm_.resize(sources_.size());
        perm_pass_.assign(sources_.size(), -1);
        known_bad_.resize(sources_.size());
    }

    /// The draw d's (source, record index): advances the counters.
    std::pair<std::size_t, std::size_t> advance() {
        const std::size_t k = pick();
        const std::size_t n = sources_[k].src->size();
        const long long pass = (long long)(taken_[k] / n);
        const std::size_t pos = taken_[k] % n;
        ++taken_[k];
        ++draws_;
        return {k, record_index(k, pass, pos)};
    }

    /// The next micro-batch of this rank: batch_size good samples, their pixels, their sources.
    batch next() {
        batch b;
        std::vector<tensor<float>> pixels;
        std::size_t misses = 0;
        while (index_t(b.samples.size()) < opt_.batch_size) {
            while (draws_ % std::uint64_t(opt_.world) != std::uint64_t(opt_.rank)) advance();  // other ranks' draws
            const auto [k, i] = advance();
            if (known_bad_[k].count(i)) {  // seen bad in an earlier pass: skipped without re-reading
                if (++misses > total_) throw format_error("vila::data::mixture_sampler: every record is bad (" + std::to_string(bad_.total()) + "; first: " + bad_.first.front() + ")");
                continue;
            }
            try {
                const record r = sources_[k].src->get(i);
                rendered out = render(r, *tok_, render_);
                std::vector<tensor<float>> px;
                for (const auto& ref : out.images) {
                    if (!processor_) throw config_error("vila::data::mixture_sampler: source '" + sources_[k].name + "' has images but no image processor was given");
                    try {
                        px.push_back(load_pixels(ref, *processor_));
                    } catch (const config_error&) {
                        throw;
                    } catch (const error& e) {
                        throw format_error(r.where + ": " + e.what());  // the record's location too
                    }
                    const auto& first = pixels.empty() ? px.front() : pixels.front();
                    if (px.back().shape() != first.shape())
                        throw shape_error(ref.where() + ": preprocessed to " + to_string(px.back().shape()) + ", other images to " + to_string(first.shape()));
                }
                if (out.truncated) ++truncated_;
                dropped_images_ += std::size_t(out.dropped_images);
                for (auto& p : px) pixels.push_back(std::move(p));
                b.samples.push_back(std::move(out.s));
                b.sources.push_back(sources_[k].name);
                ++served_[sources_[k].name];
                misses = 0;
            } catch (const config_error&) {
                throw;
            } catch (const error& e) {
                if (opt_.on_bad == bad_records::strict) throw;
                const std::string msg = e.what();
                known_bad_[k].insert(i);
                ++bad_.counts[bad_record_reason(msg)];
                if (bad_.first.size() < opt_.report_first) bad_.first.push_back(msg);
                if (++misses > total_) throw format_error("vila::data::mixture_sampler: every record is bad (" + std::to_string(bad_.total()) + "; first: " + bad_.first.front() + ")");
            }
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
        for (std::size_t k = 0; k < sources_.size(); ++k) {
            taken[sources_[k].name] = taken_[k];
            sizes[sources_[k].name] = sources_[k].src->size();
        }
        return {{"kind", "mixture"}, {"policy", Policy::name}, {"seed", opt_.seed}, {"shuffle", opt_.shuffle}, {"draws", draws_},
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
        const auto& taken = s.at("taken");
        const auto& sizes = s.at("sizes");
        if (!taken.is_object() || taken.size() != sources_.size()) refuse("other sources");
        std::vector<std::uint64_t> t(sources_.size());
        std::uint64_t sum = 0;
        for (std::size_t k = 0; k < sources_.size(); ++k) {
            const auto& name = sources_[k].name;
            if (!taken.contains(name) || !taken[name].is_number_unsigned() || !sizes.contains(name) ||
                sizes[name] != sources_[k].src->size())
                refuse("source '" + name + "' is missing or has another size");
            t[k] = taken[name].get<std::uint64_t>();
            sum += t[k];
        }
        const auto draws = s.at("draws");
        if (!draws.is_number_unsigned() || draws.get<std::uint64_t>() != sum) refuse("draws and per-source counts disagree");
        taken_ = t;
        draws_ = sum;
    }

    const bad_record_log& bad_records_seen() const noexcept { return bad_; }
    const std::map<std::string, std::size_t>& served() const noexcept { return served_; }
    std::size_t truncated() const noexcept { return truncated_; }
    std::size_t dropped_images() const noexcept { return dropped_images_; }
    std::uint64_t draws() const noexcept { return draws_; }
    std::size_t epoch_size() const noexcept { return total_; }

private:
    std::size_t pick() {
        const std::size_t K = sources_.size();
        if constexpr (std::is_same_v<Policy, mix::weighted>) {
            rng g(opt_.seed ^ 0x6d697874757265ull, draws_);  // one stream per draw: resumable from the count alone
            const double u = g.uniform();
            for (std::size_t k = 0; k < K; ++k)
                if (u < cumulative_[k] && sources_[k].weight > 0) return k;
            for (std::size_t k = K; k-- > 0;)
                if (sources_[k].weight > 0) return k;
            return 0;
        } else {
            const std::uint64_t epoch = draws_ / total_;
            if constexpr (std::is_same_v<Policy, mix::sequential>) {
                std::uint64_t p = draws_ % total_;
                for (std::size_t k = 0; k < K; ++k) {
                    if (p < sources_[k].src->size()) return k;
                    p -= sources_[k].src->size();
                }
                return K - 1;
            } else {  // natural: the source furthest behind its even share of this epoch
                std::size_t best = K;
                double best_due = 0;
                for (std::size_t k = 0; k < K; ++k) {
                    const std::size_t n = sources_[k].src->size();
                    const std::uint64_t within = taken_[k] - epoch * n;
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
            p.resize(sources_[k].src->size());
            for (std::size_t i = 0; i < p.size(); ++i) p[i] = i;
            rng g(opt_.seed, (std::uint64_t(k) << 40) + std::uint64_t(pass) + 1);
            for (std::size_t i = p.size(); i > 1; --i) std::swap(p[i - 1], p[std::size_t(g.below(i))]);
            perm_pass_[k] = pass;
        }
        return perm_[k][pos];
    }

    std::vector<mixture_entry> sources_;
    const tokenizer::tokenizer* tok_;
    render_options render_;
    const vision::image_processor* processor_;
    mixture_options opt_;
    std::size_t total_ = 0;
    std::vector<double> cumulative_;
    std::uint64_t draws_ = 0;
    std::vector<std::uint64_t> taken_;
    std::vector<std::vector<std::size_t>> perm_;
    std::vector<long long> perm_pass_;
    bad_record_log bad_;
    std::vector<std::set<std::size_t>> known_bad_;  // per source: records counted bad once
    std::map<std::string, std::size_t> served_;
    std::size_t truncated_ = 0, dropped_images_ = 0;
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
