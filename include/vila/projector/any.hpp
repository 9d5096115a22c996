// vila/projector/any.hpp — a projector whose type is chosen at run time (config.json's
// mm_projector_type), for code that loads whatever folder it is given (vila::assistant, the CLI).
// It holds one of the compiled projector types and forwards to it; researchers who know their
// type compose vlm<..., projector::mlp_downsample_3x3_fix> directly and pay no dispatch.
#pragma once
#include <string>
#include <variant>

#include "../error.hpp"
#include "projectors.hpp"

namespace vila::projector {

namespace detail {
/// One list of projector types gives the held variant, the caches' variant and the names.
template <class... P>
struct projector_list {
    using holder = std::variant<P...>;
    using caches = std::variant<typename P::cache...>;
    template <class F>
    static void each_name(F&& f) { (f(P::type_name), ...); }
};
}  // namespace detail

template <class T, class B = backend::cpu>
class any {
    using types = detail::projector_list<linear<T, B>, mlp2x_gelu<T, B>, mlp_downsample<T, B>, mlp_downsample_2x2_fix<T, B>,
                                         mlp_downsample_3x3_fix<T, B>, mlp_downsample_3x3_s2<T, B>, mlp_downsample_3x3_s2_new<T, B>>;
    using holder = typename types::holder;
    template <std::size_t I = 0>
    static holder make(const config& c) {
        if constexpr (I == std::variant_size_v<holder>) {
            throw config_error("vila::projector: mm_projector_type '" + c.type + "' is not supported (" + names() + ")");
        } else {
            using P = std::variant_alternative_t<I, holder>;
            if (c.type == P::type_name) return holder(std::in_place_index<I>, c);
            return make<I + 1>(c);
        }
    }

public:
    static constexpr const char* type_name = "any";
    /// Whether `type` names a projector this can hold.
    static bool accepts(const std::string& type) {
        bool ok = false;
        types::each_name([&](const char* n) { ok = ok || type == n; });
        return ok;
    }
    /// The mm_projector_type values this can hold, comma-separated (for messages).
    static std::string names() {
        std::string s;
        types::each_name([&](const char* n) { s += (s.empty() ? "" : ", ") + std::string(n); });
        return s;
    }

    struct cache {
        typename types::caches c;
    };

    explicit any(const config& c) : p_(make(c)) {}

    std::string type() const {
        return std::visit([](const auto& p) { return std::string(std::decay_t<decltype(p)>::type_name); }, p_);
    }
    index_t output_tokens(index_t L) const {
        return std::visit([&](const auto& p) { return p.output_tokens(L); }, p_);
    }
    index_t output_side(index_t s) const {
        return std::visit([&](const auto& p) { return p.output_side(s); }, p_);
    }
    void forward(const tensor<T, B>& x, tensor<T, B>& y, cache& c) const {
        std::visit([&](const auto& p) {
            using C = typename std::decay_t<decltype(p)>::cache;
            if (!std::holds_alternative<C>(c.c)) c.c.template emplace<C>();
            p.forward(x, y, std::get<C>(c.c));
        }, p_);
    }
    void backward(const cache& c, const tensor<T, B>& dy, tensor<T, B>* dx) {
        std::visit([&](auto& p) { p.backward(std::get<typename std::decay_t<decltype(p)>::cache>(c.c), dy, dx); }, p_);
    }
    template <class F>
    void for_each_parameter(F&& f) {
        std::visit([&](auto& p) { p.for_each_parameter(f); }, p_);
    }

private:
    holder p_;
};

}  // namespace vila::projector
