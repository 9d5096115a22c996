// vila/config.hpp — version, the host/device function marker, and the Thrust system default.
//
// Included first by every vila header. Nothing here depends on Eigen, xtensor or Thrust.
#pragma once

#define VILA_VERSION_MAJOR 0
#define VILA_VERSION_MINOR 2
#define VILA_VERSION_PATCH 0
#define VILA_VERSION_STRING "0.2.0"

// Functors that run on both the host and a CUDA device are marked VILA_HOST_DEVICE.
// Only a CUDA compiler understands __host__ __device__; everywhere else the marker is empty.
#if defined(__CUDACC__)
#define VILA_HOST_DEVICE __host__ __device__
#else
#define VILA_HOST_DEVICE
#endif

// The Thrust backend is opt-in (the CMake target vila::thrust defines VILA_USE_THRUST and the
// device system). A host compiler cannot target CUDA, so default to OpenMP or sequential C++.
#if defined(VILA_USE_THRUST) && !defined(THRUST_DEVICE_SYSTEM)
#if defined(__CUDACC__)
#define THRUST_DEVICE_SYSTEM THRUST_DEVICE_SYSTEM_CUDA
#elif defined(_OPENMP)
#define THRUST_DEVICE_SYSTEM THRUST_DEVICE_SYSTEM_OMP
#else
#define THRUST_DEVICE_SYSTEM THRUST_DEVICE_SYSTEM_CPP
#endif
#endif

// Internal invariants (never user input: that throws vila::error). Overridable, on in debug builds.
#ifndef VILA_ASSERT
#include <cassert>
#define VILA_ASSERT(cond) assert(cond)
#endif

namespace vila {
/// Library version as a string, e.g. "0.2.0".
inline constexpr const char* version() noexcept { return VILA_VERSION_STRING; }
}  // namespace vila
