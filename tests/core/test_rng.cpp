// rng: the same seed gives the same stream on every platform (golden values), streams are
// independent, and the distributions have the right moments.
#include <cmath>
#include <cstdint>

#include <doctest/doctest.h>

#include "../support/backends.hpp"

using namespace vila;

TEST_CASE("rng streams are bit-identical to the recorded golden values") {
    // Recorded from this implementation (xoshiro256** seeded by splitmix64). A change here means
    // every seeded initialisation in the library changed: bump the version and say so.
    rng r(42);
    CHECK(r.next_u64() == 1546998764402558742ull);
    CHECK(r.next_u64() == 6990951692964543102ull);
    rng n(42);
    CHECK(n.normal() == -0x1.d021df090f9edp-3);  // -0.22662710424806623, exact
    CHECK(n.normal() == 0x1.11c715cf366c5p+1);   // 2.1388880979328371
}

TEST_CASE("rng: reproducible, streams differ, ranges hold") {
    rng a(7), b(7), c(7, 1);
    for (int i = 0; i < 100; ++i) {
        const auto x = a.next_u64();
        CHECK(x == b.next_u64());
        CHECK(x != c.next_u64());
    }
    for (int i = 0; i < 10000; ++i) {
        const double u = a.uniform();
        CHECK(u >= 0.0);
        CHECK(u < 1.0);
        CHECK(a.below(7) < 7u);
    }
}

TEST_CASE("rng: normal moments") {
    rng r(3);
    const int n = 200000;
    double s = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < n; ++i) {
        const double x = r.normal();
        s += x;
        s2 += x * x;
        s4 += x * x * x * x;
    }
    const double mean = s / n, var = s2 / n - mean * mean;
    CHECK(std::abs(mean) < 0.01);
    CHECK(std::abs(var - 1.0) < 0.015);
    CHECK(std::abs(s4 / n - 3.0) < 0.06);  // kurtosis of a Gaussian
}

TEST_CASE_TEMPLATE("rng fills tensors identically on every backend", B, VILA_TEST_BACKENDS) {
    tensor<float, B> t({3, 4});
    tensor<float> ref({3, 4});
    rng(5).fill_normal(t, 0.0, 0.02);
    rng(5).fill_normal(ref, 0.0, 0.02);
    CHECK(t.to_host() == ref.to_host());
}
