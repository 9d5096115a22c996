// vila/core/rng.hpp — a seeded random generator whose streams are identical everywhere.
//
// Why our own: std::normal_distribution (and the other std distributions) are
// implementation-defined, so the same seed gives different weights with libstdc++, libc++ and
// MSVC. Here the bit stream is xoshiro256** seeded through splitmix64 (integer arithmetic only),
// uniforms are exact bit conversions, and normals use Leva's ratio-of-uniforms method: the
// output is v/u (one correctly rounded division), and the only transcendental call (a log in
// ~1.2% of draws) decides acceptance only, so a last-ulp libm difference cannot change a value
// unless it flips an exact boundary test.
//
// `stream` selects an independent sequence for the same seed (e.g. one per parameter or rank).
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tensor.hpp"

namespace vila {

class rng {
public:
    explicit rng(std::uint64_t seed = 0, std::uint64_t stream = 0) { reseed(seed, stream); }

    void reseed(std::uint64_t seed, std::uint64_t stream = 0) {
        std::uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
        for (auto& w : s_) w = splitmix64(x);
    }

    /// Next 64 random bits.
    std::uint64_t next_u64() noexcept {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    /// Uniform in [0, 1) with 53 random bits.
    double uniform() noexcept { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
    /// Uniform in [lo, hi).
    double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform(); }
    /// Uniform integer in [0, n), unbiased (rejection of the short last block). n > 0.
    std::uint64_t below(std::uint64_t n) noexcept {
        const std::uint64_t threshold = (0 - n) % n;  // 2^64 mod n
        for (;;) {
            const std::uint64_t r = next_u64();
            if (r >= threshold) return r % n;
        }
    }
    /// Standard normal (Leva 1992, ratio of uniforms with quadratic squeezes).
    double normal() noexcept {
        for (;;) {
            const double u = 1.0 - uniform();              // (0, 1]
            const double v = 1.7156 * (uniform() - 0.5);   // sqrt(2/e) * [-1, 1)
            const double x = u - 0.449871;
            const double y = std::fabs(v) + 0.386595;
            const double q = x * x + y * (0.19600 * y - 0.25472 * x);
            if (q < 0.27597) return v / u;                  // inner squeeze: accept
            if (q > 0.27846) continue;                      // outer squeeze: reject
            if (v * v <= -4.0 * std::log(u) * u * u) return v / u;
        }
    }
    double normal(double mean, double stddev) noexcept { return mean + stddev * normal(); }

    /// Fills with N(mean, stddev^2), element by element in row-major order.
    template <class T, class B>
    void fill_normal(tensor<T, B>& t, double mean = 0.0, double stddev = 1.0) {
        std::vector<T> h(static_cast<std::size_t>(t.size()));
        for (auto& v : h) v = static_cast<T>(normal(mean, stddev));
        B::upload(t.data(), h.data(), t.size());
    }
    /// Fills with U[lo, hi), element by element in row-major order.
    template <class T, class B>
    void fill_uniform(tensor<T, B>& t, double lo = 0.0, double hi = 1.0) {
        std::vector<T> h(static_cast<std::size_t>(t.size()));
        for (auto& v : h) v = static_cast<T>(uniform(lo, hi));
        B::upload(t.data(), h.data(), t.size());
    }

    /// The generator's whole state (for checkpoints: set_state resumes the stream exactly).
    std::array<std::uint64_t, 4> state() const noexcept { return {s_[0], s_[1], s_[2], s_[3]}; }
    void set_state(const std::array<std::uint64_t, 4>& s) noexcept {
        for (int i = 0; i < 4; ++i) s_[i] = s[std::size_t(i)];
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
    static std::uint64_t splitmix64(std::uint64_t& x) noexcept {
        std::uint64_t z = (x += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    std::uint64_t s_[4];
};

}  // namespace vila
