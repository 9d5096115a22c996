// vila/error.hpp — the exception hierarchy.
//
// Every error a user can cause (bad files, bad shapes, bad configs, failed I/O, CUDA failures)
// throws a subclass of vila::error whose message names the file or tensor and what was expected.
#pragma once
#include <stdexcept>
#include <string>

namespace vila {

/// Base of every exception thrown by vila. Catch this in main().
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A file's contents are malformed: truncated, wrong magic, bad JSON, out-of-bounds offsets.
class format_error : public error {
public:
    using error::error;
};

/// A tensor has a shape its consumer cannot accept. The message names both shapes.
class shape_error : public error {
public:
    using error::error;
};

/// A configuration is invalid: unknown architecture, missing or contradictory keys.
class config_error : public error {
public:
    using error::error;
};

/// The operating system refused an I/O operation: missing file, permissions, disk full.
class io_error : public error {
public:
    using error::error;
};

/// A CUDA or cuBLAS call failed (checked on the host after each launch).
class cuda_error : public error {
public:
    using error::error;
};

}  // namespace vila
