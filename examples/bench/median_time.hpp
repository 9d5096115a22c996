// examples/bench/median_time.hpp — the timing rule of the GEMM benchmarks (bench_gemm, bench_bf16).
#pragma once
#include <algorithm>
#include <chrono>
#include <vector>

namespace bench {
/// Median seconds of f over at least 5 runs and up to `budget` seconds (200 runs at most), after
/// one untimed warm-up (page faults, packing buffers, JIT).
template <class F>
double median_seconds(F&& f, double budget) {
    f();
    std::vector<double> t;
    const auto start = std::chrono::steady_clock::now();
    while (t.size() < 5 || (t.size() < 200 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < budget)) {
        const auto a = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}
}  // namespace bench
