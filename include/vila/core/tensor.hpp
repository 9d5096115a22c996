// vila/core/tensor.hpp — tensor<T, Backend>: an owning, row-major N-d array on a backend.
//
// The CPU backend stores an xt::xarray (reach it with xt()); Eigen maps (core/eigen_map.hpp)
// view the same memory for the math, so nothing is copied between the two libraries. Other
// backends store their own buffers (thrust::device_vector). data() is the raw element pointer,
// device memory on a GPU backend.
//
// Requires: shapes have non-negative extents.  Ensures: a new or resized tensor is zero-filled.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "../backend/cpu.hpp"
#include "shape.hpp"

namespace vila {

template <class T, class Backend = backend::cpu>
class tensor {
public:
    using value_type = T;
    using backend_type = Backend;
    using storage_type = typename Backend::template storage<T>;

    tensor() { Backend::resize(storage_, shape_); }
    /// A zero-filled tensor of this shape.
    explicit tensor(shape_t shape) { resize(std::move(shape)); }
    tensor(shape_t shape, T value) : tensor(std::move(shape)) { fill(value); }

    /// A tensor holding a copy of host values (row-major), checked against the shape.
    static tensor from_host(shape_t shape, const std::vector<T>& values) {
        if (numel(shape) != static_cast<index_t>(values.size()))
            throw shape_error("vila::tensor::from_host: shape " + to_string(shape) + " holds " +
                              std::to_string(numel(shape)) + " values, got " + std::to_string(values.size()));
        tensor t(std::move(shape));
        Backend::upload(t.data(), values.data(), t.size());
        return t;
    }
    /// Copies the values to a host vector (row-major).
    std::vector<T> to_host() const {
        std::vector<T> out(static_cast<std::size_t>(size()));
        Backend::download(out.data(), data(), size());
        return out;
    }

    const shape_t& shape() const noexcept { return shape_; }
    index_t rank() const noexcept { return static_cast<index_t>(shape_.size()); }
    /// Extent of dimension i; negative i counts from the end (-1 is the last).
    index_t dim(index_t i) const {
        const index_t r = rank();
        if (i < -r || i >= r)
            throw shape_error("vila::tensor::dim: dimension " + std::to_string(i) + " of shape " + to_string(shape_));
        return shape_[static_cast<std::size_t>(i < 0 ? i + r : i)];
    }
    index_t size() const noexcept { return numel(shape_); }
    bool empty() const noexcept { return size() == 0; }

    T* data() noexcept { return Backend::data(storage_); }
    const T* data() const noexcept { return Backend::data(storage_); }
    storage_type& storage() noexcept { return storage_; }
    const storage_type& storage() const noexcept { return storage_; }

    /// The xtensor container (CPU backend only).
    template <class B = Backend, class = std::enable_if_t<std::is_same<B, backend::cpu>::value>>
    storage_type& xt() noexcept { return storage_; }
    template <class B = Backend, class = std::enable_if_t<std::is_same<B, backend::cpu>::value>>
    const storage_type& xt() const noexcept { return storage_; }

    /// Gives the tensor this shape, zero-filled (reuses the buffer when the size is unchanged).
    void resize(shape_t shape) {
        for (index_t e : shape)
            if (e < 0) throw shape_error("vila::tensor: negative extent in shape " + to_string(shape));
        shape_ = std::move(shape);
        Backend::resize(storage_, shape_);
        zero();
    }
    /// Ensures this shape without clearing when it is already right (for reused output buffers).
    void ensure_shape(const shape_t& shape) {
        if (shape != shape_) resize(shape);
    }
    /// Same elements, new shape of the same size.
    void reshape(shape_t shape) {
        if (numel(shape) != size())
            throw shape_error("vila::tensor::reshape: cannot view " + to_string(shape_) + " as " + to_string(shape));
        shape_ = std::move(shape);
        Backend::resize(storage_, shape_);
    }
    void fill(T value) { Backend::fill(data(), size(), value); }
    void zero() { fill(T(0)); }

private:
    shape_t shape_{0};
    storage_type storage_;
};

/// Converts a tensor between backends or element types through the host.
template <class To, class ToBackend, class T, class B>
tensor<To, ToBackend> tensor_cast(const tensor<T, B>& t) {
    const std::vector<T> h = t.to_host();
    return tensor<To, ToBackend>::from_host(t.shape(), std::vector<To>(h.begin(), h.end()));
}

}  // namespace vila
