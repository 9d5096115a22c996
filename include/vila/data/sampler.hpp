// vila/data/sampler.hpp — the Sampler concept and an in-memory sampler.
//
// A Sampler is any type with
//   data::batch next();                         the next micro-batch
//   nlohmann::json state() const;               its whole position (a few counters)
//   void restore(const nlohmann::json&);        continue exactly from a state()
// The trainer (train/trainer.hpp) checkpoints state() and restores it on resume, so a resumed
// run sees the same batches as an uninterrupted one. Samplers are deterministic from a seed:
// the order never depends on time or threads.
//
// sequence_sampler serves a list of samples in batches, in a new permutation each epoch
// (Fisher-Yates driven by vila::rng(seed, epoch)), or in order when shuffle is off.
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../core/rng.hpp"
#include "batch.hpp"

namespace vila::data {

namespace detail {
template <class S, class = void>
struct is_sampler : std::false_type {};
template <class S>
struct is_sampler<S, std::void_t<decltype(std::declval<batch&>() = std::declval<S&>().next()),
                                 decltype(std::declval<nlohmann::json&>() = std::declval<const S&>().state()),
                                 decltype(std::declval<S&>().restore(std::declval<const nlohmann::json&>()))>> : std::true_type {};
}  // namespace detail

template <class S>
inline constexpr bool is_sampler_v = detail::is_sampler<S>::value;

class sequence_sampler {
public:
    sequence_sampler(std::vector<sample> samples, index_t batch_size, std::uint64_t seed = 0, bool shuffle = true,
                     std::string source = "data")
        : samples_(std::move(samples)), batch_(batch_size), seed_(seed), shuffle_(shuffle), source_(std::move(source)) {
        if (samples_.empty()) throw config_error("vila::data::sequence_sampler: no samples");
        if (batch_ <= 0) throw config_error("vila::data::sequence_sampler: batch size must be positive");
        order_for(epoch_);
    }

    batch next() {
        batch b;
        for (index_t i = 0; i < batch_; ++i) {
            if (position_ >= index_t(samples_.size())) {
                ++epoch_;
                position_ = 0;
                order_for(epoch_);
            }
            b.samples.push_back(samples_[std::size_t(order_[std::size_t(position_++)])]);
            b.sources.push_back(source_);
        }
        return b;
    }
    nlohmann::json state() const {
        return {{"kind", "sequence"}, {"seed", seed_}, {"epoch", epoch_}, {"position", position_}, {"size", samples_.size()}};
    }
    void restore(const nlohmann::json& s) {
        if (!s.is_object() || s.value("kind", std::string()) != "sequence" || s.value("size", std::size_t(0)) != samples_.size() ||
            s.value("seed", std::uint64_t(0)) != seed_)
            throw config_error("vila::data::sequence_sampler: the saved sampler state " + s.dump() + " is not of this data (" +
                               std::to_string(samples_.size()) + " samples, seed " + std::to_string(seed_) + ")");
        epoch_ = s.at("epoch").get<long long>();
        position_ = s.at("position").get<index_t>();
        if (epoch_ < 0 || position_ < 0 || position_ > index_t(samples_.size()))
            throw config_error("vila::data::sequence_sampler: saved position out of range");
        order_for(epoch_);
    }
    std::size_t size() const noexcept { return samples_.size(); }
    long long epoch() const noexcept { return epoch_; }

private:
    void order_for(long long epoch) {
        order_.resize(samples_.size());
        for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = index_t(i);
        if (!shuffle_) return;
        rng g(seed_, std::uint64_t(epoch) + 1);
        for (std::size_t i = order_.size(); i > 1; --i) std::swap(order_[i - 1], order_[std::size_t(g.below(i))]);
    }

    std::vector<sample> samples_;
    index_t batch_;
    std::uint64_t seed_;
    bool shuffle_;
    std::string source_;
    long long epoch_ = 0;
    index_t position_ = 0;
    std::vector<index_t> order_;
};

}  // namespace vila::data
