// vila/tokenizer/jinja.hpp — the subset of Jinja2 that Hugging Face chat templates use, rendered
// as transformers' apply_chat_template renders them (an ImmutableSandboxedEnvironment with
// trim_blocks, lstrip_blocks, loop controls and the {% generation %} tag).
//
// Supported (docs/tokenizer.md lists it): text, {{ }}, {% %}, {# #} with '-' whitespace control;
// if/elif/else, for (tuple targets, an `if` filter, else, loop.index/index0/revindex/revindex0/
// first/last/length/previtem/nextitem), break/continue, set (names, namespace attributes, block
// set), generation; expressions with Python semantics: literals (strings, numbers, true/false/
// none, lists, tuples, dicts), + - * / // % ** ~, comparisons, in / not in, and/or/not,
// `x if c else y`, attributes, subscripts, slices, calls; filters trim, length, count, tojson,
// upper, lower, title, capitalize, replace, join, first, last, default/d, list, selectattr,
// rejectattr, map, items, string, int, float, abs, reverse, sort, unique, safe, indent; tests
// defined, undefined, none, string, number, integer, float, mapping, iterable, sequence,
// boolean, true, false, odd, even, divisibleby, eq/equalto, ne, gt, ge, lt, le, in; globals
// range, namespace, dict, raise_exception, strftime_now; str/dict methods (upper, lower, strip,
// lstrip, rstrip, startswith, endswith, split, replace, title, capitalize, items, keys, values,
// get). Anything else (macros, includes, unknown filters) is a vila::format_error naming the
// template and the line, never a silently different render.
#pragma once
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "../error.hpp"

namespace vila::tokenizer::jinja {

using json = nlohmann::ordered_json;  // ordered: tojson keeps the keys' order, as Python's json.dumps

/// A value: JSON data, Jinja's Undefined, a namespace (mutable, shared), or a callable.
struct value {
    enum class kind { data, undefined, ns, function } k = kind::data;
    json v;                                  // data; a namespace's attributes live in *ns
    std::shared_ptr<json> ns;                // kind::ns
    std::string fn;                          // kind::function: a global or a bound method name
    std::shared_ptr<value> self;             // the receiver of a bound method
    static value undefined() {
        value x;
        x.k = kind::undefined;
        return x;
    }
    static value of(json j) {
        value x;
        x.v = std::move(j);
        return x;
    }
    static value function(std::string name, std::shared_ptr<value> receiver = nullptr) {
        value x;
        x.k = kind::function;
        x.fn = std::move(name);
        x.self = std::move(receiver);
        return x;
    }
    bool is_undefined() const { return k == kind::undefined; }
    /// The JSON of data and namespaces (undefined: null).
    const json& data() const {
        static const json null;
        return k == kind::ns ? *ns : k == kind::data ? v : null;
    }
};

/// Output of a render: the text and the byte ranges written inside {% generation %} blocks.
struct rendered {
    std::string text;
    std::vector<std::pair<std::size_t, std::size_t>> generation;
};

namespace detail {

/// Python's repr of a float: the shortest text that reads back, with ".0" for integral values.
inline std::string py_float(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    std::string s = json(d).dump();  // shortest round-trip (nlohmann's dtoa)
    if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
    return s;
}

/// Python's repr / str of JSON data (str for a top-level string; repr inside containers).
inline std::string py_str(const json& j, bool top = true) {
    switch (j.type()) {
    case json::value_t::null: return "None";
    case json::value_t::boolean: return j.get<bool>() ? "True" : "False";
    case json::value_t::number_integer: return std::to_string(j.get<std::int64_t>());
    case json::value_t::number_unsigned: return std::to_string(j.get<std::uint64_t>());
    case json::value_t::number_float: return py_float(j.get<double>());
    case json::value_t::string: {
        const std::string s = j.get<std::string>();
        if (top) return s;
        const char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
        std::string out(1, q);
        for (char c : s) {
            if (c == q || c == '\\') out += '\\', out += c;
            else if (c == '\n') out += "\\n";
            else if (c == '\t') out += "\\t";
            else if (c == '\r') out += "\\r";
            else out += c;
        }
        return out + q;
    }
    case json::value_t::array: {
        std::string out = "[";
        for (std::size_t i = 0; i < j.size(); ++i) out += (i ? ", " : "") + py_str(j[i], false);
        return out + "]";
    }
    case json::value_t::object: {
        std::string out = "{";
        bool first = true;
        for (const auto& [key, val] : j.items()) {
            out += (first ? "" : ", ") + py_str(json(key), false) + ": " + py_str(val, false);
            first = false;
        }
        return out + "}";
    }
    default: return "";
    }
}

inline bool truthy(const value& x) {
    if (x.k == value::kind::undefined) return false;
    if (x.k != value::kind::data) return true;
    const json& j = x.v;
    switch (j.type()) {
    case json::value_t::null: return false;
    case json::value_t::boolean: return j.get<bool>();
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return j.get<std::int64_t>() != 0;
    case json::value_t::number_float: return j.get<double>() != 0;
    case json::value_t::string: return !j.get_ref<const std::string&>().empty();
    case json::value_t::array:
    case json::value_t::object: return !j.empty();
    default: return false;
    }
}

// ---- lexer ----------------------------------------------------------------------------------

enum class tok { text, var_begin, var_end, block_begin, block_end, name, string, integer, floating, op, end };

struct token {
    tok type;
    std::string text;
    int line;
};

/// Splits a template into tokens with Jinja's whitespace rules (trim_blocks, lstrip_blocks,
/// '-' modifiers). Comments disappear.
class lexer {
public:
    lexer(std::string_view src, std::string name) : s_(src), name_(std::move(name)) {
        for (std::size_t p = s_.find('\n'); p != std::string_view::npos; p = s_.find('\n', p + 1)) newlines_.push_back(p);
    }

    std::vector<token> run() {
        std::vector<token> out;
        std::size_t i = 0;
        bool strip_next = false;    // a '-' closed the last tag: strip the whitespace that follows
        bool trim_newline = false;  // trim_blocks: the newline right after a block tag or comment goes
        while (i < s_.size()) {
            const std::size_t open = find_open(i);
            std::string text(s_.substr(i, open - i));
            bool line_starting = i == 0 || s_[i - 1] == '\n';  // lstrip_blocks looks at the line's start
            if (strip_next) {
                const std::size_t keep = text.find_first_not_of(" \t\r\n");
                line_starting = line_starting || text.substr(0, keep).find('\n') != std::string::npos;
                text.erase(0, keep == std::string::npos ? text.size() : keep);
            } else if (trim_newline && !text.empty() && text[0] == '\n') {
                text.erase(0, 1);
                line_starting = true;
            } else if (trim_newline && text.size() > 1 && text[0] == '\r' && text[1] == '\n') {
                text.erase(0, 2);
                line_starting = true;
            }
            strip_next = trim_newline = false;
            if (open == s_.size()) {
                if (!text.empty()) out.push_back({tok::text, text, line_at(i)});
                break;
            }
            const char kind = s_[open + 1];  // '{', '%' or '#'
            std::size_t p = open + 2;
            const bool minus = p < s_.size() && s_[p] == '-';
            const bool plus = p < s_.size() && s_[p] == '+';
            if (minus || plus) ++p;
            if (minus) {
                const std::size_t last = text.find_last_not_of(" \t\r\n");
                text.erase(last == std::string::npos ? 0 : last + 1);
            } else if (kind != '{' && !plus) {  // lstrip_blocks: spaces before a block tag or comment on its own line
                const std::size_t nl = text.find_last_of('\n');
                const std::size_t from = nl == std::string::npos ? 0 : nl + 1;
                if ((nl != std::string::npos || line_starting) && text.find_first_not_of(" \t", from) == std::string::npos) text.erase(from);
            }
            if (!text.empty()) out.push_back({tok::text, text, line_at(i)});
            const int line = line_at(open);
            if (kind == '#') {
                const std::size_t close = s_.find("#}", p);
                if (close == std::string_view::npos) fail(line, "unclosed comment");
                strip_next = close > p && s_[close - 1] == '-';
                trim_newline = true;
                i = close + 2;
                continue;
            }
            out.push_back({kind == '{' ? tok::var_begin : tok::block_begin, "", line});
            const std::string close = kind == '{' ? "}}" : "%}";
            i = lex_inside(p, close, out, strip_next);
            out.push_back({kind == '{' ? tok::var_end : tok::block_end, "", line});
            if (kind == '%') trim_newline = true;
        }
        out.push_back({tok::end, "", line_at(s_.size())});
        return out;
    }

private:
    [[noreturn]] void fail(int line, const std::string& why) const {
        throw format_error("chat template " + name_ + ": line " + std::to_string(line) + ": " + why);
    }
    /// Line of a position: a binary search over the newlines (a count from the start for every
    /// token was quadratic in a 16 MiB template).
    int line_at(std::size_t pos) const { return 1 + int(std::lower_bound(newlines_.begin(), newlines_.end(), pos) - newlines_.begin()); }
    std::size_t find_open(std::size_t from) const {
        for (std::size_t p = s_.find('{', from); p != std::string_view::npos; p = s_.find('{', p + 1))
            if (p + 1 < s_.size() && (s_[p + 1] == '{' || s_[p + 1] == '%' || s_[p + 1] == '#')) return p;
        return s_.size();
    }

    /// Tokens of an expression up to `close` (with an optional '-' before it). Returns the position after.
    std::size_t lex_inside(std::size_t p, const std::string& close, std::vector<token>& out, bool& strip_next) {
        const int line = line_at(p);
        while (true) {
            while (p < s_.size() && std::isspace(static_cast<unsigned char>(s_[p]))) ++p;
            if (p >= s_.size()) fail(line, "unclosed tag (expected '" + close + "')");
            if (s_[p] == '-' && s_.compare(p + 1, 2, close) == 0) {
                strip_next = true;
                return p + 3;
            }
            if (s_[p] == '+' && s_.compare(p + 1, 2, close) == 0) return p + 3;
            if (s_.compare(p, 2, close) == 0) return p + 2;
            const char c = s_[p];
            if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
                std::size_t e = p;
                while (e < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) ++e;
                out.push_back({tok::name, std::string(s_.substr(p, e - p)), line});
                p = e;
            } else if (std::isdigit(static_cast<unsigned char>(c))) {
                std::size_t e = p;
                bool is_float = false;
                while (e < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[e])) || s_[e] == '_')) ++e;
                if (e + 1 < s_.size() && s_[e] == '.' && std::isdigit(static_cast<unsigned char>(s_[e + 1]))) {
                    is_float = true;
                    ++e;
                    while (e < s_.size() && std::isdigit(static_cast<unsigned char>(s_[e]))) ++e;
                }
                if (e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
                    std::size_t f = e + 1;
                    if (f < s_.size() && (s_[f] == '+' || s_[f] == '-')) ++f;
                    if (f < s_.size() && std::isdigit(static_cast<unsigned char>(s_[f]))) {
                        is_float = true;
                        e = f;
                        while (e < s_.size() && std::isdigit(static_cast<unsigned char>(s_[e]))) ++e;
                    }
                }
                std::string num(s_.substr(p, e - p));
                num.erase(std::remove(num.begin(), num.end(), '_'), num.end());
                out.push_back({is_float ? tok::floating : tok::integer, num, line});
                p = e;
            } else if (c == '\'' || c == '"') {
                std::string str;
                std::size_t e = p + 1;
                while (true) {
                    if (e >= s_.size()) fail(line, "unterminated string");
                    const char d = s_[e];
                    if (d == c) break;
                    if (d == '\\' && e + 1 < s_.size()) {
                        const char n = s_[e + 1];
                        e += 2;
                        switch (n) {
                        case 'n': str += '\n'; break;
                        case 't': str += '\t'; break;
                        case 'r': str += '\r'; break;
                        case '0': str += '\0'; break;
                        case '\\': str += '\\'; break;
                        case '\'': str += '\''; break;
                        case '"': str += '"'; break;
                        case '\n': break;
                        case 'u':
                        case 'x': {
                            const std::size_t len = n == 'u' ? 4 : 2;
                            if (e + len > s_.size()) fail(line, "bad escape in a string");
                            unsigned cp = 0;
                            for (std::size_t k = 0; k < len; ++k) {
                                const char h = s_[e + k];
                                if (!std::isxdigit(static_cast<unsigned char>(h))) fail(line, "bad escape in a string");
                                cp = cp * 16 + unsigned(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
                            }
                            e += len;
                            append_utf8(str, cp);
                            break;
                        }
                        default: str += '\\', str += n;  // Python keeps unknown escapes as written
                        }
                        continue;
                    }
                    str += d;
                    ++e;
                }
                out.push_back({tok::string, str, line});
                p = e + 1;
            } else {
                static const char* ops[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "(", ")",
                                            "[", "]", "{", "}", ",", ".", ":", "|", "="};
                bool found = false;
                for (const char* o : ops)
                    if (s_.compare(p, std::strlen(o), o) == 0) {
                        out.push_back({tok::op, o, line});
                        p += std::strlen(o);
                        found = true;
                        break;
                    }
                if (!found) fail(line, std::string("unexpected character '") + c + "'");
            }
        }
    }

    static void append_utf8(std::string& s, unsigned cp) {
        if (cp < 0x80) s += char(cp);
        else if (cp < 0x800) s += char(0xC0 | (cp >> 6)), s += char(0x80 | (cp & 0x3F));
        else s += char(0xE0 | (cp >> 12)), s += char(0x80 | ((cp >> 6) & 0x3F)), s += char(0x80 | (cp & 0x3F));
    }

    std::string_view s_;
    std::string name_;
    std::vector<std::size_t> newlines_;
};

// ---- syntax tree ----------------------------------------------------------------------------

struct expr;
using expr_ptr = std::shared_ptr<const expr>;

struct expr {
    enum class op {
        literal, name, list, tuple, dict, attr, item, slice, call, filter, test, unary_not, neg, pos, binary, compare, and_,
        or_, cond
    } kind;
    json literal;                 // literal
    std::string name;             // name, attr, filter, test, binary/compare operator
    std::vector<expr_ptr> args;   // operands / elements / call arguments (first: the callee or subject)
    std::vector<std::pair<std::string, expr_ptr>> kwargs;
    std::vector<std::string> ops;  // compare: a chain "a < b <= c" (Python semantics)
    bool negated = false;         // test: "is not"
    int line = 0;
};

struct node;
using node_ptr = std::shared_ptr<const node>;
using body_t = std::vector<node_ptr>;

struct node {
    enum class kind { text, output, if_, for_, set, set_block, generation, break_, continue_ } k;
    std::string text;                                  // text
    expr_ptr value;                                    // output, set (the value), for (the iterable)
    std::vector<std::pair<expr_ptr, body_t>> branches;  // if: (condition or null for else, body)
    std::vector<std::string> targets;                  // for / set: names (set: "ns.attr" as {"ns", "attr"} below)
    std::string attr;                                  // set: namespace attribute
    expr_ptr filter;                                   // for ... if filter
    body_t body, else_body;                            // for, set_block, generation
    int line = 0;
};

// ---- parser ---------------------------------------------------------------------------------

class parser {
public:
    parser(std::vector<token> t, std::string name) : t_(std::move(t)), name_(std::move(name)) {}

    body_t parse() {
        body_t b = parse_body({});
        if (peek().type != tok::end) fail("unexpected {% " + end_tag_ + " %}");
        return b;
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        throw format_error("chat template " + name_ + ": line " + std::to_string(peek().line) + ": " + why);
    }
    const token& peek(std::size_t k = 0) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
    token next() { return t_[std::min(i_++, t_.size() - 1)]; }
    bool at_op(const char* o) const { return peek().type == tok::op && peek().text == o; }
    bool at_name(const char* n) const { return peek().type == tok::name && peek().text == n; }
    void expect_op(const char* o) {
        if (!at_op(o)) fail(std::string("expected '") + o + "', got '" + peek().text + "'");
        ++i_;
    }
    void expect(tok type, const char* what) {
        if (peek().type != type) fail(std::string("expected ") + what);
        ++i_;
    }
    std::string expect_name() {
        if (peek().type != tok::name) fail("expected a name, got '" + peek().text + "'");
        return next().text;
    }

    /// Nodes until a block tag whose name is in `ends` (left unconsumed: end_tag_ names it).
    /// Nesting (blocks, parentheses, unary operators) is bounded: a hostile template must not
    /// exhaust the stack of the recursive descent.
    struct depth_guard {
        parser& p;
        explicit depth_guard(parser& q) : p(q) {
            if (++p.depth_ > max_depth) p.fail("nested more than " + std::to_string(max_depth) + " deep");
        }
        ~depth_guard() { --p.depth_; }
    };
    static constexpr int max_depth = 200;

    body_t parse_body(const std::vector<std::string>& ends) {
        const depth_guard guard(*this);
        body_t out;
        while (true) {
            const token& t = peek();
            if (t.type == tok::end) {
                if (!ends.empty()) fail("missing {% " + ends.back() + " %}");
                return out;
            }
            if (t.type == tok::text) {
                auto n = std::make_shared<node>();
                n->k = node::kind::text;
                n->text = t.text;
                out.push_back(n);
                ++i_;
            } else if (t.type == tok::var_begin) {
                ++i_;
                auto n = std::make_shared<node>();
                n->k = node::kind::output;
                n->line = t.line;
                n->value = parse_expr();
                expect(tok::var_end, "'}}'");
                out.push_back(n);
            } else if (t.type == tok::block_begin) {
                const std::string tag = peek(1).type == tok::name ? peek(1).text : "";
                if (std::find(ends.begin(), ends.end(), tag) != ends.end()) {
                    end_tag_ = tag;
                    return out;
                }
                ++i_;
                out.push_back(parse_statement(t.line));
            } else {
                fail("unexpected '" + t.text + "'");
            }
        }
    }

    void close_tag() { expect(tok::block_end, "'%}'"); }
    void end_block(const char* tag) {  // consumes "{% tag %}"
        expect(tok::block_begin, "'{%'");
        if (expect_name() != tag) fail(std::string("expected {% ") + tag + " %}");
        close_tag();
    }

    node_ptr parse_statement(int line) {
        const std::string tag = expect_name();
        auto n = std::make_shared<node>();
        n->line = line;
        if (tag == "if") {
            n->k = node::kind::if_;
            expr_ptr cond = parse_expr();
            close_tag();
            while (true) {
                body_t b = parse_body({"elif", "else", "endif"});
                n->branches.emplace_back(cond, std::move(b));
                expect(tok::block_begin, "'{%'");
                const std::string t = expect_name();
                if (t == "endif") {
                    close_tag();
                    break;
                }
                if (t == "elif") {
                    cond = parse_expr();
                    close_tag();
                    continue;
                }
                close_tag();  // else
                n->branches.emplace_back(nullptr, parse_body({"endif"}));
                end_block("endif");
                break;
            }
        } else if (tag == "for") {
            n->k = node::kind::for_;
            n->targets.push_back(expect_name());
            while (at_op(",")) {
                ++i_;
                n->targets.push_back(expect_name());
            }
            if (!at_name("in")) fail("expected 'in' in a for loop");
            ++i_;
            n->value = parse_expr(/*no_cond=*/true);
            if (at_name("if")) {
                ++i_;
                n->filter = parse_expr(true);
            }
            if (at_name("recursive")) fail("recursive loops are not supported");
            close_tag();
            n->body = parse_body({"else", "endfor"});
            expect(tok::block_begin, "'{%'");
            if (expect_name() == "else") {
                close_tag();
                n->else_body = parse_body({"endfor"});
                end_block("endfor");
            } else {
                close_tag();
            }
        } else if (tag == "set") {
            const std::string target = expect_name();
            if (at_op(".")) {
                ++i_;
                n->attr = expect_name();
            }
            n->targets.push_back(target);
            if (at_op("=")) {
                ++i_;
                n->k = node::kind::set;
                n->value = parse_expr();
                close_tag();
            } else {
                if (!n->attr.empty()) fail("a block set needs a plain name");
                n->k = node::kind::set_block;
                close_tag();
                n->body = parse_body({"endset"});
                end_block("endset");
            }
        } else if (tag == "generation") {
            n->k = node::kind::generation;
            close_tag();
            n->body = parse_body({"endgeneration"});
            end_block("endgeneration");
        } else if (tag == "break" || tag == "continue") {
            n->k = tag == "break" ? node::kind::break_ : node::kind::continue_;
            close_tag();
        } else if (tag.rfind("end", 0) == 0 || tag == "else" || tag == "elif") {
            fail("unexpected {% " + tag + " %}");
        } else {
            fail("the tag {% " + tag + " %} is not supported (supported: if, for, set, generation, break, continue)");
        }
        return n;
    }

    std::shared_ptr<expr> make(expr::op k, std::vector<expr_ptr> args, std::string name = {}) {
        auto e = std::make_shared<expr>();
        e->kind = k;
        e->args = std::move(args);
        e->name = std::move(name);
        e->line = peek().line;
        return e;
    }

    expr_ptr parse_expr(bool no_cond = false) {
        const depth_guard guard(*this);
        expr_ptr e = parse_or();
        if (no_cond) return e;
        while (at_name("if")) {  // a if c else b
            ++i_;
            expr_ptr c = parse_or();
            expr_ptr other;
            if (at_name("else")) {
                ++i_;
                other = parse_expr();
            }
            e = make(expr::op::cond, {c, e, other});
        }
        return e;
    }
    expr_ptr parse_or() {
        expr_ptr e = parse_and();
        while (at_name("or")) {
            ++i_;
            e = make(expr::op::or_, {e, parse_and()});
        }
        return e;
    }
    expr_ptr parse_and() {
        expr_ptr e = parse_not();
        while (at_name("and")) {
            ++i_;
            e = make(expr::op::and_, {e, parse_not()});
        }
        return e;
    }
    expr_ptr parse_not() {
        const depth_guard guard(*this);
        if (at_name("not")) {
            ++i_;
            return make(expr::op::unary_not, {parse_not()});
        }
        return parse_compare();
    }
    expr_ptr parse_compare() {
        expr_ptr first = parse_math1();
        std::shared_ptr<expr> chain;
        while (true) {
            std::string o;
            if (peek().type == tok::op && (peek().text == "==" || peek().text == "!=" || peek().text == "<" || peek().text == ">" ||
                                           peek().text == "<=" || peek().text == ">=")) {
                o = next().text;
            } else if (at_name("in")) {
                ++i_;
                o = "in";
            } else if (at_name("not") && peek(1).type == tok::name && peek(1).text == "in") {
                i_ += 2;
                o = "not in";
            } else {
                return chain ? chain : first;
            }
            if (!chain) chain = make(expr::op::compare, {first});
            chain->ops.push_back(o);
            chain->args.push_back(parse_math1());
        }
    }
    expr_ptr parse_math1() {
        expr_ptr e = parse_concat();
        while (at_op("+") || at_op("-")) {
            const std::string o = next().text;
            e = make(expr::op::binary, {e, parse_concat()}, o);
        }
        return e;
    }
    expr_ptr parse_concat() {
        expr_ptr e = parse_math2();
        while (at_op("~")) {
            ++i_;
            e = make(expr::op::binary, {e, parse_math2()}, "~");
        }
        return e;
    }
    expr_ptr parse_math2() {
        expr_ptr e = parse_pow();
        while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
            const std::string o = next().text;
            e = make(expr::op::binary, {e, parse_pow()}, o);
        }
        return e;
    }
    expr_ptr parse_pow() {
        expr_ptr e = parse_unary(true);
        while (at_op("**")) {
            ++i_;
            e = make(expr::op::binary, {e, parse_unary(true)}, "**");
        }
        return e;
    }
    expr_ptr parse_unary(bool with_filter) {
        const depth_guard guard(*this);
        expr_ptr e;
        if (at_op("-") || at_op("+")) {
            const bool neg = next().text == "-";
            e = make(neg ? expr::op::neg : expr::op::pos, {parse_unary(false)});
        } else {
            e = parse_postfix(parse_primary());
        }
        return with_filter ? parse_filters(e) : e;
    }
    expr_ptr parse_primary() {
        const token t = next();
        auto lit = [&](json j) {
            auto e = make(expr::op::literal, {});
            e->literal = std::move(j);
            return e;
        };
        switch (t.type) {
        case tok::string: {
            std::string s = t.text;
            while (peek().type == tok::string) s += next().text;  // adjacent literals concatenate
            return lit(s);
        }
        case tok::integer: return lit(json(int_literal(t.text)));
        case tok::floating: return lit(json(std::strtod(t.text.c_str(), nullptr)));  // 1e999: inf, as Python
        case tok::name:
            if (t.text == "true" || t.text == "True") return lit(true);
            if (t.text == "false" || t.text == "False") return lit(false);
            if (t.text == "none" || t.text == "None") return lit(nullptr);
            return make(expr::op::name, {}, t.text);
        case tok::op:
            if (t.text == "(") {
                if (at_op(")")) {
                    ++i_;
                    return make(expr::op::tuple, {});
                }
                expr_ptr e = parse_expr();
                if (at_op(",")) {
                    std::vector<expr_ptr> items{e};
                    while (at_op(",")) {
                        ++i_;
                        if (at_op(")")) break;
                        items.push_back(parse_expr());
                    }
                    expect_op(")");
                    return make(expr::op::tuple, std::move(items));
                }
                expect_op(")");
                return e;
            }
            if (t.text == "[") {
                std::vector<expr_ptr> items;
                while (!at_op("]")) {
                    items.push_back(parse_expr());
                    if (!at_op(",")) break;
                    ++i_;
                }
                expect_op("]");
                return make(expr::op::list, std::move(items));
            }
            if (t.text == "{") {
                std::vector<expr_ptr> items;  // key, value, key, value, ...
                while (!at_op("}")) {
                    items.push_back(parse_expr());
                    expect_op(":");
                    items.push_back(parse_expr());
                    if (!at_op(",")) break;
                    ++i_;
                }
                expect_op("}");
                return make(expr::op::dict, std::move(items));
            }
            break;
        default: break;
        }
        --i_;
        fail("unexpected '" + t.text + "' in an expression");
    }
    void parse_call_args(const expr_ptr& e) {
        auto& m = const_cast<expr&>(*e);
        while (!at_op(")")) {
            if (peek().type == tok::name && peek(1).type == tok::op && peek(1).text == "=") {
                const std::string key = next().text;
                ++i_;
                m.kwargs.emplace_back(key, parse_expr());
            } else {
                if (!m.kwargs.empty()) fail("a positional argument after a keyword argument");
                m.args.push_back(parse_expr());
            }
            if (!at_op(",")) break;
            ++i_;
        }
        expect_op(")");
    }
    expr_ptr parse_postfix(expr_ptr e) {
        while (true) {
            if (at_op(".")) {
                ++i_;
                if (peek().type == tok::integer) e = make(expr::op::item, {e, make_literal(json(int_literal(next().text)))});
                else e = make(expr::op::attr, {e}, expect_name());
            } else if (at_op("[")) {
                ++i_;
                std::vector<expr_ptr> parts(3);
                bool is_slice = false;
                for (int k = 0; k < 3; ++k) {
                    if (!at_op(":") && !at_op("]")) parts[std::size_t(k)] = parse_expr();
                    if (at_op(":") && k < 2) {
                        ++i_;
                        is_slice = true;
                        continue;
                    }
                    break;
                }
                expect_op("]");
                if (is_slice) e = make(expr::op::slice, {e, parts[0], parts[1], parts[2]});
                else {
                    if (!parts[0]) fail("an empty subscript");
                    e = make(expr::op::item, {e, parts[0]});
                }
            } else if (at_op("(")) {
                ++i_;
                e = make(expr::op::call, {e});
                parse_call_args(e);
            } else {
                return e;
            }
        }
    }
    std::int64_t int_literal(const std::string& digits) {
        errno = 0;
        const long long v = std::strtoll(digits.c_str(), nullptr, 10);
        if (errno == ERANGE) fail("the integer " + digits.substr(0, 40) + " is out of range (64-bit integers only)");
        return v;
    }
    expr_ptr make_literal(json j) {
        auto e = make(expr::op::literal, {});
        e->literal = std::move(j);
        return e;
    }
    expr_ptr parse_filters(expr_ptr e) {
        while (true) {
            if (at_op("|")) {
                ++i_;
                auto f = make(expr::op::filter, {e}, expect_name());
                if (at_op("(")) {
                    ++i_;
                    parse_call_args(f);
                }
                e = f;
            } else if (at_name("is")) {
                ++i_;
                bool negated = false;
                if (at_name("not")) {
                    ++i_;
                    negated = true;
                }
                std::string test_name = peek().type == tok::name ? next().text : "";
                if (test_name.empty()) {  // "is ==" style tests are not Jinja; names only
                    fail("expected a test name after 'is'");
                }
                auto t = make(expr::op::test, {e}, test_name);
                const_cast<expr&>(*t).negated = negated;
                if (at_op("(")) {
                    ++i_;
                    parse_call_args(t);
                } else if (peek().type == tok::string || peek().type == tok::integer || peek().type == tok::floating ||
                           (peek().type == tok::name && !at_name("and") && !at_name("or") && !at_name("else") && !at_name("if") &&
                            !at_name("is") && !at_name("not") && !at_name("in"))) {
                    const_cast<expr&>(*t).args.push_back(parse_primary());  // "is sameas x", "is equalto 'y'"
                }
                e = t;
            } else {
                return e;
            }
        }
    }

    std::vector<token> t_;
    std::string name_;
    std::size_t i_ = 0;
    std::string end_tag_;
    int depth_ = 0;
};

// ---- evaluation -----------------------------------------------------------------------------

struct loop_break {};
struct loop_continue {};

class evaluator {
public:
    evaluator(std::string name, const json& context) : name_(std::move(name)) {
        scopes_.emplace_back();
        for (const auto& [k, v] : context.items()) scopes_.back()[k] = value::of(v);
    }

    void run(const body_t& body) {
        for (const auto& n : body) exec(*n);
    }
    rendered out;

private:
    [[noreturn]] void fail(int line, const std::string& why) const {
        throw format_error("chat template " + name_ + ": line " + std::to_string(line) + ": " + why);
    }

    value lookup(const std::string& n) const {
        for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
            const auto f = it->find(n);
            if (f != it->end()) return f->second;
        }
        if (n == "range" || n == "namespace" || n == "raise_exception" || n == "strftime_now" || n == "dict") return value::function(n);
        return value::undefined();
    }

    /// A render does bounded work: a template that loops for ever or doubles a string in a loop
    /// is an error, not a hang or an exhausted memory.
    static constexpr std::uint64_t max_steps = 2'000'000;  // Qwen3's template on 2,000 messages fits (test_jinja.cpp)
    static constexpr std::size_t max_text = std::size_t(1) << 26;  // 64 MiB, for the output and any string
    void step(int line) {
        if (++steps_ > max_steps) fail(line, "the render takes over " + std::to_string(max_steps) + " steps");
    }
    void check_size(std::size_t n, int line) const {
        if (n > max_text) fail(line, "a text over " + std::to_string(max_text) + " bytes");
    }

    void exec(const node& n) {
        step(n.line);
        switch (n.k) {
        case node::kind::text:
            out.text += n.text;
            check_size(out.text.size(), n.line);
            break;
        case node::kind::output:
            out.text += to_text(eval(*n.value), n.line);
            check_size(out.text.size(), n.line);
            break;
        case node::kind::if_:
            for (const auto& [cond, body] : n.branches)
                if (!cond || truthy(eval(*cond))) {
                    run(body);
                    break;
                }
            break;
        case node::kind::for_: exec_for(n); break;
        case node::kind::set: {
            value v = eval(*n.value);
            if (!n.attr.empty()) {
                value target = lookup(n.targets[0]);
                if (target.k != value::kind::ns) fail(n.line, "'" + n.targets[0] + "' is not a namespace: cannot set ." + n.attr);
                (*target.ns)[n.attr] = plain(v, n.line);
            } else {
                scopes_.back()[n.targets[0]] = v;
            }
            break;
        }
        case node::kind::set_block: {
            rendered saved = std::move(out);
            out = {};
            run(n.body);
            const std::string text = std::move(out.text);
            out = std::move(saved);
            scopes_.back()[n.targets[0]] = value::of(text);
            break;
        }
        case node::kind::generation: {
            const std::size_t start = out.text.size();
            run(n.body);
            out.generation.emplace_back(start, out.text.size());
            break;
        }
        case node::kind::break_: throw loop_break{};
        case node::kind::continue_: throw loop_continue{};
        }
    }

    void exec_for(const node& n) {
        const value seq = eval(*n.value);
        std::vector<json> items;
        const json& d = seq.data();
        if (seq.is_undefined() || d.is_null()) {
        } else if (d.is_array()) {
            items.assign(d.begin(), d.end());
        } else if (d.is_object()) {
            for (const auto& [k, v] : d.items()) items.push_back(k);  // iterating a dict gives its keys
        } else if (d.is_string()) {
            for (const auto& c : utf8_chars(d.get<std::string>())) items.push_back(c);
        } else {
            fail(n.line, "cannot iterate over " + type_name(seq));
        }
        if (n.filter) {  // "for x in xs if cond": filtered before loop.* counts
            std::vector<json> kept;
            for (auto& it : items) {
                step(n.line);
                scopes_.emplace_back();
                bind(n, it);
                if (truthy(eval(*n.filter))) kept.push_back(it);
                scopes_.pop_back();
            }
            items.swap(kept);
        }
        if (items.empty()) {
            run(n.else_body);
            return;
        }
        const std::int64_t len = std::int64_t(items.size());
        for (std::int64_t i = 0; i < len; ++i) {
            step(n.line);  // an iteration is a step even when its body is empty
            scopes_.emplace_back();
            bind(n, items[std::size_t(i)]);
            json loop = {{"index", i + 1},     {"index0", i},          {"revindex", len - i}, {"revindex0", len - i - 1},
                         {"first", i == 0},    {"last", i == len - 1}, {"length", len}};
            loop["previtem"] = i > 0 ? items[std::size_t(i - 1)] : json();
            loop["nextitem"] = i + 1 < len ? items[std::size_t(i + 1)] : json();
            scopes_.back()["loop"] = value::of(std::move(loop));
            bool stop = false;
            try {
                run(n.body);
            } catch (const loop_continue&) {
            } catch (const loop_break&) {
                stop = true;
            }
            scopes_.pop_back();
            if (stop) break;
        }
    }

    void bind(const node& n, const json& item) {
        if (n.targets.size() == 1) {
            scopes_.back()[n.targets[0]] = value::of(item);
            return;
        }
        if (!item.is_array() || item.size() != n.targets.size())
            fail(n.line, "cannot unpack " + py_str(item, false) + " into " + std::to_string(n.targets.size()) + " names");
        for (std::size_t k = 0; k < n.targets.size(); ++k) scopes_.back()[n.targets[k]] = value::of(item[k]);
    }

    static std::vector<std::string> utf8_chars(const std::string& s) {
        std::vector<std::string> out;
        for (std::size_t i = 0; i < s.size();) {
            std::size_t n = 1;
            const unsigned char c = static_cast<unsigned char>(s[i]);
            if (c >= 0xF0) n = 4;
            else if (c >= 0xE0) n = 3;
            else if (c >= 0xC0) n = 2;
            out.push_back(s.substr(i, n));
            i += n;
        }
        return out;
    }

    static std::string type_name(const value& v) {
        if (v.is_undefined()) return "an undefined value";
        if (v.k == value::kind::ns) return "a namespace";
        if (v.k == value::kind::function) return "a function";
        return std::string("a ") + v.v.type_name();
    }

    /// JSON data of a value; namespaces and functions cannot be stored or output as data.
    json plain(const value& v, int line) const {
        if (v.k == value::kind::data) return v.v;
        if (v.k == value::kind::undefined) return json();
        if (v.k == value::kind::ns) return *v.ns;
        fail(line, "a function is not a value");
    }

    std::string to_text(const value& v, int line) const {
        if (v.is_undefined()) return "";
        if (v.k == value::kind::ns) return "<Namespace " + py_str(*v.ns, false) + ">";
        if (v.k == value::kind::function) fail(line, "cannot output a function");
        return py_str(v.v, true);
    }

    static bool is_number(const json& j) { return j.is_number(); }
    static bool is_int(const json& j) { return j.is_number_integer() || j.is_number_unsigned(); }
    static double num(const json& j) { return j.get<double>(); }

    static bool equal(const json& a, const json& b) {
        if (a.is_number() && b.is_number()) {
            if (is_int(a) && is_int(b)) return a.get<std::int64_t>() == b.get<std::int64_t>();
            return num(a) == num(b);
        }
        if (a.is_boolean() && b.is_number()) return equal(json(a.get<bool>() ? 1 : 0), b);
        if (b.is_boolean() && a.is_number()) return equal(a, json(b.get<bool>() ? 1 : 0));
        if (a.type() != b.type()) return false;
        if (a.is_array()) {
            if (a.size() != b.size()) return false;
            for (std::size_t i = 0; i < a.size(); ++i)
                if (!equal(a[i], b[i])) return false;
            return true;
        }
        return a == b;
    }

    int compare_order(const json& a, const json& b, int line) const {
        if (a.is_number() && b.is_number()) {
            if (is_int(a) && is_int(b)) return a.get<std::int64_t>() < b.get<std::int64_t>() ? -1 : a.get<std::int64_t>() > b.get<std::int64_t>();
            return num(a) < num(b) ? -1 : num(a) > num(b);
        }
        if (a.is_string() && b.is_string()) return a.get<std::string>().compare(b.get<std::string>()) < 0 ? -1 : a == b ? 0 : 1;
        fail(line, "cannot order " + py_str(a, false) + " and " + py_str(b, false));
    }

    bool contains(const value& hay, const value& needle, int line) const {
        const json& h = hay.data();
        const json n = plain(needle, line);
        if (h.is_string()) {
            if (!n.is_string()) fail(line, "'in <string>' needs a string on the left");
            return h.get<std::string>().find(n.get<std::string>()) != std::string::npos;
        }
        if (h.is_array()) return std::any_of(h.begin(), h.end(), [&](const json& x) { return equal(x, n); });
        if (h.is_object()) return n.is_string() && h.contains(n.get<std::string>());
        if (hay.is_undefined()) fail(line, "'in' on an undefined value");
        fail(line, "'in' needs a string, list or mapping on the right");
    }

    value arith(const std::string& o, const value& a, const value& b, int line) const {
        if (o == "~") {
            std::string r = to_text(a, line) + to_text(b, line);
            check_size(r.size(), line);
            return value::of(std::move(r));
        }
        const json x = plain(a, line), y = plain(b, line);
        if (a.is_undefined() || b.is_undefined()) fail(line, "'" + o + "' with an undefined value");
        if (o == "+") {
            if (x.is_string() && y.is_string()) {
                check_size(x.get_ref<const std::string&>().size() + y.get_ref<const std::string&>().size(), line);
                return value::of(x.get<std::string>() + y.get<std::string>());
            }
            if (x.is_array() && y.is_array()) {
                if (x.size() + y.size() > (std::size_t(1) << 20)) fail(line, "a list over 2^20 items");
                json r = x;
                for (const auto& e : y) r.push_back(e);
                return value::of(r);
            }
        }
        if (o == "*" && ((x.is_string() && is_int(y)) || (is_int(x) && y.is_string()))) {
            const std::string s = x.is_string() ? x.get<std::string>() : y.get<std::string>();
            const std::int64_t n = is_int(x) ? x.get<std::int64_t>() : y.get<std::int64_t>();
            if (n > (1 << 20) || std::size_t(std::max<std::int64_t>(n, 0)) * s.size() > max_text) fail(line, "string repetition too large");
            std::string r;
            for (std::int64_t k = 0; k < n; ++k) r += s;
            return value::of(r);
        }
        auto as_num = [&](const json& j) -> json { return j.is_boolean() ? json(j.get<bool>() ? 1 : 0) : j; };
        const json p = as_num(x), q = as_num(y);
        if (!p.is_number() || !q.is_number())
            fail(line, "unsupported operand types for " + o + ": " + py_str(x, false) + " and " + py_str(y, false));
        const bool ints = is_int(p) && is_int(q);
        if (ints && o != "/" && o != "**") {
            const std::int64_t i = p.get<std::int64_t>(), j = q.get<std::int64_t>();
            std::int64_t r = 0;  // Python's integers do not overflow; ours are 64-bit: an error, never UB
            if (o == "+") return __builtin_add_overflow(i, j, &r) ? overflow(line) : value::of(r);
            if (o == "-") return __builtin_sub_overflow(i, j, &r) ? overflow(line) : value::of(r);
            if (o == "*") return __builtin_mul_overflow(i, j, &r) ? overflow(line) : value::of(r);
            if (j == 0) fail(line, "division by zero");
            if (j == -1 && i == INT64_MIN) overflow(line);
            std::int64_t d = i / j, m = i % j;
            if (m != 0 && ((m < 0) != (j < 0))) --d, m += j;  // Python floors
            if (o == "//") return value::of(d);
            if (o == "%") return value::of(m);
        }
        const double i = num(p), j = num(q);
        if (o == "+") return value::of(i + j);
        if (o == "-") return value::of(i - j);
        if (o == "*") return value::of(i * j);
        if (o == "**") {
            if (ints && q.get<std::int64_t>() >= 0) {
                const double r = std::pow(i, j);
                if (!(std::fabs(r) < 9.2e18)) overflow(line);
                return value::of(std::int64_t(std::llround(r)));
            }
            return value::of(std::pow(i, j));
        }
        if (j == 0) fail(line, "division by zero");
        if (o == "/") return value::of(i / j);
        if (o == "//") return value::of(std::floor(i / j));
        if (o == "%") return value::of(i - j * std::floor(i / j));
        fail(line, "unknown operator " + o);
    }

    [[noreturn]] value overflow(int line) const { fail(line, "integer overflow (64-bit integers only)"); }
    static bool fits_int64(double d) { return d > -9.2e18 && d < 9.2e18; }

    /// The bytes a value holds (strings, plus 16 a node), counted up to `cap`.
    static std::size_t weight(const json& j, std::size_t cap) {
        std::size_t w = 16;
        if (j.is_string()) return w + j.get_ref<const std::string&>().size();
        if (j.is_array() || j.is_object())
            for (const auto& x : j) {
                if (w > cap) break;
                w += weight(x, cap - w);
            }
        return w;
    }
    /// Every value an expression makes is charged by its size: copying a large list or string
    /// in a loop exhausts the budget instead of the memory or the time.
    static constexpr std::size_t max_work = std::size_t(1) << 32;
    void charge(const value& v, int line) {
        if (v.k != value::kind::data) return;
        work_ += weight(v.v, max_work - std::min(work_, max_work) + 1);
        if (work_ > max_work) fail(line, "the render makes over " + std::to_string(max_work) + " bytes of values");
    }

    /// Calls f with the value of `x`; a plain variable is passed by reference (messages[i],
    /// message.role and messages|length do not copy the conversation).
    template <class F>
    auto with_operand(const expr_ptr& x, F&& f) {
        if (x->kind == expr::op::name) {
            step(x->line);
            for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
                const auto found = it->find(x->name);
                if (found != it->end()) return f(found->second);
            }
        }
        const value v = eval(*x);
        return f(v);
    }

    value eval(const expr& e) {
        step(e.line);
        value v = eval_uncharged(e);
        charge(v, e.line);
        return v;
    }

    value eval_uncharged(const expr& e) {
        switch (e.kind) {
        case expr::op::literal: return value::of(e.literal);
        case expr::op::name: return lookup(e.name);
        case expr::op::list:
        case expr::op::tuple: {
            json arr = json::array();
            for (const auto& a : e.args) arr.push_back(plain(eval(*a), e.line));
            return value::of(arr);
        }
        case expr::op::dict: {
            json obj = json::object();
            for (std::size_t k = 0; k + 1 < e.args.size(); k += 2) {
                const json key = plain(eval(*e.args[k]), e.line);
                obj[key.is_string() ? key.get<std::string>() : py_str(key)] = plain(eval(*e.args[k + 1]), e.line);
            }
            return value::of(obj);
        }
        case expr::op::attr: return with_operand(e.args[0], [&](const value& obj) { return get_attr(obj, e.name, e.line); });
        case expr::op::item: {
            const value key = eval(*e.args[1]);
            return with_operand(e.args[0], [&](const value& obj) { return get_item(obj, key, e.line); });
        }
        case expr::op::slice: return slice(eval(*e.args[0]), e.args[1], e.args[2], e.args[3], e.line);
        case expr::op::call: {
            const value f = eval(*e.args[0]);
            std::vector<value> args;
            for (std::size_t k = 1; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
            std::vector<std::pair<std::string, value>> kwargs;
            for (const auto& [k, v] : e.kwargs) kwargs.emplace_back(k, eval(*v));
            return call(f, args, kwargs, e.line);
        }
        case expr::op::filter: {
            std::vector<value> args;
            for (std::size_t k = 1; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
            std::vector<std::pair<std::string, value>> kwargs;
            for (const auto& [k, v] : e.kwargs) kwargs.emplace_back(k, eval(*v));
            return with_operand(e.args[0], [&](const value& subject) { return filter(e.name, subject, args, kwargs, e.line); });
        }
        case expr::op::test: {
            std::vector<value> args;
            for (std::size_t k = 1; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
            const bool r = with_operand(e.args[0], [&](const value& subject) { return test(e.name, subject, args, e.line); });
            return value::of(e.negated ? !r : r);
        }
        case expr::op::unary_not: return value::of(!truthy(eval(*e.args[0])));
        case expr::op::neg:
        case expr::op::pos: {
            const json x = plain(eval(*e.args[0]), e.line);
            if (!x.is_number()) fail(e.line, "unary " + std::string(e.kind == expr::op::neg ? "-" : "+") + " on " + py_str(x, false));
            if (e.kind == expr::op::pos) return value::of(x);
            if (is_int(x) && x.get<std::int64_t>() == INT64_MIN) overflow(e.line);
            return is_int(x) ? value::of(-x.get<std::int64_t>()) : value::of(-x.get<double>());
        }
        case expr::op::binary: return arith(e.name, eval(*e.args[0]), eval(*e.args[1]), e.line);
        case expr::op::compare: {  // a op1 b op2 c: (a op1 b) and (b op2 c), b evaluated once
            value a = eval(*e.args[0]);
            for (std::size_t k = 0; k < e.ops.size(); ++k) {
                value b = eval(*e.args[k + 1]);
                if (!compare(e.ops[k], a, b, e.line)) return value::of(false);
                a = std::move(b);
            }
            return value::of(true);
        }
        case expr::op::and_: {
            value a = eval(*e.args[0]);
            return truthy(a) ? eval(*e.args[1]) : a;
        }
        case expr::op::or_: {
            value a = eval(*e.args[0]);
            return truthy(a) ? a : eval(*e.args[1]);
        }
        case expr::op::cond:
            if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
            return e.args[2] ? eval(*e.args[2]) : value::undefined();
        }
        fail(e.line, "unknown expression");
    }

    bool compare(const std::string& o, const value& a, const value& b, int line) const {
        if (o == "in") return contains(b, a, line);
        if (o == "not in") return !contains(b, a, line);
        const json x = plain(a, line), y = plain(b, line);
        const bool same = a.is_undefined() ? b.is_undefined() : !b.is_undefined() && equal(x, y);
        if (o == "==") return same;
        if (o == "!=") return !same;
        const int c = compare_order(x, y, line);
        if (o == "<") return c < 0;
        if (o == ">") return c > 0;
        if (o == "<=") return c <= 0;
        return c >= 0;
    }

    value get_attr(const value& obj, const std::string& name, int line) const {
        if (obj.is_undefined()) fail(line, "'." + name + "' of an undefined value");
        if (obj.k == value::kind::ns) {
            if (obj.ns->contains(name)) return value::of((*obj.ns)[name]);
            return value::undefined();
        }
        const json& d = obj.data();
        static const char* str_methods[] = {"upper", "lower", "strip", "lstrip", "rstrip", "startswith", "endswith", "split",
                                            "replace", "title", "capitalize", "join", "format", "count", "find"};
        static const char* dict_methods[] = {"items", "keys", "values", "get"};
        if (d.is_object()) {
            if (d.contains(name)) return value::of(d[name]);
            for (const char* m : dict_methods)
                if (name == m) return value::function("dict." + name, std::make_shared<value>(obj));
            return value::undefined();
        }
        if (d.is_string())
            for (const char* m : str_methods)
                if (name == m) return value::function("str." + name, std::make_shared<value>(obj));
        return value::undefined();
    }

    value get_item(const value& obj, const value& key, int line) const {
        if (obj.is_undefined()) fail(line, "a subscript of an undefined value");
        const json& d = obj.data();
        const json k = plain(key, line);
        if (d.is_array() || d.is_string()) {
            if (!is_int(k)) {
                if (k.is_string() && !d.is_string()) return get_attr(obj, k.get<std::string>(), line);
                fail(line, "indices must be integers, got " + py_str(k, false));
            }
            const std::vector<std::string> chars = d.is_string() ? utf8_chars(d.get<std::string>()) : std::vector<std::string>{};
            const std::int64_t n = d.is_string() ? std::int64_t(chars.size()) : std::int64_t(d.size());
            std::int64_t i = k.get<std::int64_t>();
            if (i < 0) i += n;
            if (i < 0 || i >= n) return value::undefined();
            return d.is_string() ? value::of(chars[std::size_t(i)]) : value::of(d[std::size_t(i)]);
        }
        if (d.is_object() || obj.k == value::kind::ns) {
            if (k.is_string()) {
                if (d.contains(k.get<std::string>())) return value::of(d[k.get<std::string>()]);
                return get_attr(obj, k.get<std::string>(), line);
            }
            return value::undefined();
        }
        return value::undefined();
    }

    value slice(const value& obj, const expr_ptr& a, const expr_ptr& b, const expr_ptr& c, int line) {
        const json& d = obj.data();
        if (!d.is_array() && !d.is_string()) fail(line, "cannot slice " + type_name(obj));
        const std::vector<std::string> chars = d.is_string() ? utf8_chars(d.get<std::string>()) : std::vector<std::string>{};
        const std::int64_t n = d.is_string() ? std::int64_t(chars.size()) : std::int64_t(d.size());
        auto get = [&](const expr_ptr& x) -> std::optional<std::int64_t> {
            if (!x) return std::nullopt;
            const json j = plain(eval(*x), line);
            if (j.is_null()) return std::nullopt;
            if (!is_int(j)) fail(line, "slice indices must be integers");
            return j.get<std::int64_t>();
        };
        const std::int64_t step = get(c).value_or(1);
        if (step == 0) fail(line, "slice step cannot be zero");
        auto clamp = [&](std::optional<std::int64_t> v, std::int64_t def) {
            if (!v) return def;
            std::int64_t x = *v;
            if (x < 0) x += n;
            if (step > 0) return std::clamp<std::int64_t>(x, 0, n);
            return std::clamp<std::int64_t>(x, -1, n - 1);
        };
        const std::int64_t start = clamp(get(a), step > 0 ? 0 : n - 1), stop = clamp(get(b), step > 0 ? n : -1);
        json out = json::array();
        std::string s;
        for (std::int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (d.is_string()) s += chars[std::size_t(i)];
            else out.push_back(d[std::size_t(i)]);
        }
        return d.is_string() ? value::of(s) : value::of(out);
    }

    static std::string strip_chars(const std::string& s, const std::string& chars, bool left, bool right) {
        std::size_t b = 0, e = s.size();
        auto in = [&](char c) { return chars.empty() ? std::isspace(static_cast<unsigned char>(c)) != 0 : chars.find(c) != std::string::npos; };
        if (left)
            while (b < e && in(s[b])) ++b;
        if (right)
            while (e > b && in(s[e - 1])) --e;
        return s.substr(b, e - b);
    }
    static std::string ascii_map(std::string s, int (*f)(int)) {
        for (auto& c : s) c = char(f(static_cast<unsigned char>(c)));
        return s;
    }
    static std::string title_case(const std::string& s) {
        std::string out = s;
        bool start = true;
        for (auto& c : out) {
            const unsigned char u = static_cast<unsigned char>(c);
            if (std::isalpha(u)) {
                c = char(start ? std::toupper(u) : std::tolower(u));
                start = false;
            } else {
                start = true;
            }
        }
        return out;
    }
    static std::string replace_all(std::string s, const std::string& from, const std::string& to, std::int64_t count = -1) {
        if (from.empty()) return s;
        std::size_t p = 0;
        while (count != 0 && (p = s.find(from, p)) != std::string::npos) {
            s.replace(p, from.size(), to);
            p += to.size();
            if (count > 0) --count;
        }
        return s;
    }

    std::string str_arg(const std::vector<value>& args, std::size_t i, int line, const char* what) const {
        if (i >= args.size()) fail(line, std::string(what) + ": missing argument");
        const json j = plain(args[i], line);
        if (!j.is_string()) fail(line, std::string(what) + ": expected a string argument, got " + py_str(j, false));
        return j.get<std::string>();
    }

    value call(const value& f, const std::vector<value>& args, const std::vector<std::pair<std::string, value>>& kwargs, int line) {
        if (f.k != value::kind::function) fail(line, "cannot call " + type_name(f));
        const std::string& n = f.fn;
        if (n == "raise_exception") {
            throw error("chat template " + name_ + ": raise_exception: " + (args.empty() ? std::string() : to_text(args[0], line)));
        }
        if (n == "namespace" || n == "dict") {
            value ns;
            ns.k = n == "namespace" ? value::kind::ns : value::kind::data;
            json attrs = json::object();
            for (const auto& a : args) {
                const json d = plain(a, line);
                if (d.is_object())
                    for (const auto& [k, v] : d.items()) attrs[k] = v;
            }
            for (const auto& [k, v] : kwargs) attrs[k] = plain(v, line);
            if (n == "dict") return value::of(attrs);
            ns.ns = std::make_shared<json>(std::move(attrs));
            return ns;
        }
        if (n == "range") {
            std::vector<std::int64_t> a;
            for (const auto& x : args) {
                const json j = plain(x, line);
                if (!is_int(j)) fail(line, "range: integer arguments expected");
                a.push_back(j.get<std::int64_t>());
            }
            std::int64_t start = 0, stop = 0, step = 1;
            if (a.size() == 1) stop = a[0];
            else if (a.size() >= 2) start = a[0], stop = a[1], step = a.size() > 2 ? a[2] : 1;
            if (step == 0 || a.empty() || a.size() > 3) fail(line, "range: bad arguments");
            json out = json::array();
            for (std::int64_t i = start; step > 0 ? i < stop : i > stop;) {
                out.push_back(i);
                if (out.size() > (1u << 20)) fail(line, "range too large");
                if (__builtin_add_overflow(i, step, &i)) break;
            }
            return value::of(out);
        }
        if (n == "strftime_now") {
            const std::string fmt = str_arg(args, 0, line, "strftime_now");
            const std::time_t now = std::time(nullptr);
            std::tm tm{};
            localtime_r(&now, &tm);
            char buf[256];
            const std::size_t len = std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
            return value::of(std::string(buf, len));
        }
        const json self = f.self ? plain(*f.self, line) : json();
        if (n.rfind("str.", 0) == 0) {
            const std::string s = self.get<std::string>();
            const std::string m = n.substr(4);
            auto opt_chars = [&]() { return args.empty() || plain(args[0], line).is_null() ? std::string() : str_arg(args, 0, line, m.c_str()); };
            if (m == "upper") return value::of(ascii_map(s, [](int c) { return std::toupper(c); }));
            if (m == "lower") return value::of(ascii_map(s, [](int c) { return std::tolower(c); }));
            if (m == "strip") return value::of(strip_chars(s, opt_chars(), true, true));
            if (m == "lstrip") return value::of(strip_chars(s, opt_chars(), true, false));
            if (m == "rstrip") return value::of(strip_chars(s, opt_chars(), false, true));
            if (m == "title") return value::of(title_case(s));
            if (m == "capitalize") {
                std::string r = ascii_map(s, [](int c) { return std::tolower(c); });
                if (!r.empty()) r[0] = char(std::toupper(static_cast<unsigned char>(r[0])));
                return value::of(r);
            }
            if (m == "startswith" || m == "endswith") {
                const json a = args.empty() ? json() : plain(args[0], line);
                std::vector<std::string> cands;
                if (a.is_string()) cands.push_back(a.get<std::string>());
                else if (a.is_array())
                    for (const auto& x : a) cands.push_back(x.get<std::string>());
                else fail(line, m + ": expected a string or a tuple of strings");
                for (const auto& c : cands)
                    if (c.size() <= s.size() && (m == "startswith" ? s.compare(0, c.size(), c) == 0 : s.compare(s.size() - c.size(), c.size(), c) == 0))
                        return value::of(true);
                return value::of(false);
            }
            if (m == "split") {
                json out = json::array();
                const bool by_space = args.empty() || plain(args[0], line).is_null();
                std::int64_t maxsplit = args.size() > 1 ? plain(args[1], line).get<std::int64_t>() : -1;
                if (by_space) {
                    std::size_t i = 0;
                    while (i < s.size()) {
                        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
                        if (i >= s.size()) break;
                        if (maxsplit == 0) {
                            out.push_back(strip_chars(s.substr(i), "", false, true));
                            break;
                        }
                        std::size_t e = i;
                        while (e < s.size() && !std::isspace(static_cast<unsigned char>(s[e]))) ++e;
                        out.push_back(s.substr(i, e - i));
                        if (maxsplit > 0) --maxsplit;
                        i = e;
                    }
                    return value::of(out);
                }
                const std::string sep = str_arg(args, 0, line, "split");
                if (sep.empty()) fail(line, "split: empty separator");
                std::size_t from = 0, p;
                while (maxsplit != 0 && (p = s.find(sep, from)) != std::string::npos) {
                    out.push_back(s.substr(from, p - from));
                    from = p + sep.size();
                    if (maxsplit > 0) --maxsplit;
                }
                out.push_back(s.substr(from));
                return value::of(out);
            }
            if (m == "replace") {
                const std::int64_t count = args.size() > 2 ? plain(args[2], line).get<std::int64_t>() : -1;
                return value::of(replace_all(s, str_arg(args, 0, line, "replace"), str_arg(args, 1, line, "replace"), count));
            }
            if (m == "join") {
                const json list = args.empty() ? json() : plain(args[0], line);
                std::string r;
                if (!list.is_array()) fail(line, "join: expected a list");
                for (std::size_t i = 0; i < list.size(); ++i) r += (i ? s : "") + py_str(list[i]);
                return value::of(r);
            }
            if (m == "count") return value::of(std::int64_t(s.empty() ? 0 : [&] {
                const std::string sub = str_arg(args, 0, line, "count");
                std::int64_t c = 0;
                for (std::size_t p = s.find(sub); !sub.empty() && p != std::string::npos; p = s.find(sub, p + sub.size())) ++c;
                return c;
            }()));
            if (m == "find") {
                const auto p = s.find(str_arg(args, 0, line, "find"));
                return value::of(p == std::string::npos ? std::int64_t(-1) : std::int64_t(p));
            }
            fail(line, "the string method '" + m + "' is not supported");
        }
        if (n.rfind("dict.", 0) == 0) {
            const std::string m = n.substr(5);
            if (m == "items") {
                json out = json::array();
                for (const auto& [k, v] : self.items()) out.push_back(json::array({k, v}));
                return value::of(out);
            }
            if (m == "keys" || m == "values") {
                json out = json::array();
                for (const auto& [k, v] : self.items()) out.push_back(m == "keys" ? json(k) : v);
                return value::of(out);
            }
            if (m == "get") {
                const std::string key = str_arg(args, 0, line, "get");
                if (self.contains(key)) return value::of(self[key]);
                return args.size() > 1 ? args[1] : value::of(nullptr);
            }
        }
        fail(line, "cannot call '" + n + "'");
    }

    value kwarg(const std::vector<std::pair<std::string, value>>& kwargs, const char* key, const std::vector<value>& args,
                std::size_t pos, value fallback) const {
        for (const auto& [k, v] : kwargs)
            if (k == key) return v;
        return pos < args.size() ? args[pos] : fallback;
    }

    value filter(const std::string& f, const value& x, const std::vector<value>& args,
                 const std::vector<std::pair<std::string, value>>& kwargs, int line) {
        const json d = plain(x, line);
        auto need_string = [&]() -> std::string {
            if (x.is_undefined()) return "";
            if (!d.is_string()) return py_str(d);
            return d.get<std::string>();
        };
        if (f == "trim") {
            const value chars = kwarg(kwargs, "chars", args, 0, value::of(nullptr));
            return value::of(strip_chars(need_string(), chars.data().is_string() ? chars.data().get<std::string>() : "", true, true));
        }
        if (f == "length" || f == "count") {
            if (d.is_string()) return value::of(std::int64_t(utf8_chars(d.get<std::string>()).size()));
            if (d.is_array() || d.is_object()) return value::of(std::int64_t(d.size()));
            if (x.is_undefined()) return value::of(std::int64_t(0));
            fail(line, "length of " + type_name(x));
        }
        if (f == "tojson") {
            // transformers' tojson: json.dumps(x, ensure_ascii=False, indent=indent, separators, sort_keys)
            const value indent = kwarg(kwargs, "indent", args, 0, value::of(nullptr));
            const bool sort_keys = truthy(kwarg(kwargs, "sort_keys", {}, 99, value::of(false)));
            const std::int64_t width = indent.data().is_number() ? indent.data().get<std::int64_t>() : -1;
            if (width > 64) fail(line, "tojson: an indent over 64");
            return value::of(py_json(d, int(width), 0, sort_keys));
        }
        if (f == "upper") return value::of(ascii_map(need_string(), [](int c) { return std::toupper(c); }));
        if (f == "lower") return value::of(ascii_map(need_string(), [](int c) { return std::tolower(c); }));
        if (f == "title") return value::of(title_case(need_string()));
        if (f == "capitalize") {
            std::string r = ascii_map(need_string(), [](int c) { return std::tolower(c); });
            if (!r.empty()) r[0] = char(std::toupper(static_cast<unsigned char>(r[0])));
            return value::of(r);
        }
        if (f == "replace") return value::of(replace_all(need_string(), str_arg(args, 0, line, "replace"), str_arg(args, 1, line, "replace")));
        if (f == "string") return value::of(to_text(x, line));
        if (f == "safe" || f == "list") {
            if (f == "list" && d.is_string()) {
                json out = json::array();
                for (const auto& c : utf8_chars(d.get<std::string>())) out.push_back(c);
                return value::of(out);
            }
            if (f == "list" && d.is_object()) {
                json out = json::array();
                for (const auto& [k, v] : d.items()) out.push_back(k);
                return value::of(out);
            }
            return x;
        }
        if (f == "default" || f == "d") {
            const value fallback = kwarg(kwargs, "default_value", args, 0, value::of(""));
            const bool boolean = truthy(kwarg(kwargs, "boolean", args, 1, value::of(false)));
            return (x.is_undefined() || (boolean && !truthy(x))) ? fallback : x;
        }
        if (f == "int") {
            if (is_int(d)) return x;
            if (d.is_number()) {
                if (!fits_int64(d.get<double>())) fail(line, "int of " + py_str(d) + ": out of the 64-bit range");
                return value::of(std::int64_t(d.get<double>()));
            }
            if (d.is_string()) {
                try {
                    std::size_t used = 0;
                    const std::string s = strip_chars(d.get<std::string>(), "", true, true);
                    const long long v = std::stoll(s, &used);
                    if (used == s.size()) return value::of(std::int64_t(v));
                } catch (const std::exception&) {
                }
            }
            return kwarg(kwargs, "default", args, 0, value::of(std::int64_t(0)));
        }
        if (f == "float") {
            if (d.is_number()) return value::of(d.get<double>());
            if (d.is_string()) {
                try {
                    return value::of(std::stod(d.get<std::string>()));
                } catch (const std::exception&) {
                }
            }
            return kwarg(kwargs, "default", args, 0, value::of(0.0));
        }
        if (f == "abs") {
            if (is_int(d)) {
                if (d.get<std::int64_t>() == INT64_MIN) overflow(line);
                return value::of(std::llabs(d.get<std::int64_t>()));
            }
            if (d.is_number()) return value::of(std::fabs(d.get<double>()));
            fail(line, "abs of " + type_name(x));
        }
        if (f == "first" || f == "last") {
            if (d.is_array()) return d.empty() ? value::undefined() : value::of(f == "first" ? d.front() : d.back());
            if (d.is_string()) {
                const auto c = utf8_chars(d.get<std::string>());
                return c.empty() ? value::undefined() : value::of(f == "first" ? c.front() : c.back());
            }
            fail(line, f + " of " + type_name(x));
        }
        if (f == "join") {
            const std::string sep = args.empty() ? std::string() : str_arg(args, 0, line, "join");
            const value attr = kwarg(kwargs, "attribute", args, 1, value::undefined());
            if (!d.is_array()) fail(line, "join of " + type_name(x));
            std::string r;
            for (std::size_t i = 0; i < d.size(); ++i) {
                const value item = attr.is_undefined() ? value::of(d[i]) : get_attr(value::of(d[i]), attr.data().get<std::string>(), line);
                r += (i ? sep : "") + to_text(item, line);
            }
            return value::of(r);
        }
        if (f == "reverse") {
            if (d.is_string()) {
                auto c = utf8_chars(d.get<std::string>());
                std::reverse(c.begin(), c.end());
                std::string r;
                for (const auto& s : c) r += s;
                return value::of(r);
            }
            if (!d.is_array()) fail(line, "reverse of " + type_name(x));
            json r = d;
            std::reverse(r.begin(), r.end());
            return value::of(r);
        }
        if (f == "items") {
            if (!d.is_object()) fail(line, "items of " + type_name(x));
            json out = json::array();
            for (const auto& [k, v] : d.items()) out.push_back(json::array({k, v}));
            return value::of(out);
        }
        if (f == "sort" || f == "unique") {
            if (!d.is_array()) fail(line, f + " of " + type_name(x));
            const value attr = kwarg(kwargs, "attribute", {}, 99, value::undefined());
            auto key = [&](const json& item) { return attr.is_undefined() ? item : get_attr(value::of(item), attr.data().get<std::string>(), line).data(); };
            json r = json::array();
            for (const auto& item : d)
                if (f == "sort" || std::none_of(r.begin(), r.end(), [&](const json& y) { return equal(key(y), key(item)); })) r.push_back(item);
            if (f == "sort") {
                const bool reverse = truthy(kwarg(kwargs, "reverse", args, 0, value::of(false)));
                std::stable_sort(r.begin(), r.end(), [&](const json& a, const json& b) {
                    const int c = compare_order(key(a), key(b), line);
                    return reverse ? c > 0 : c < 0;
                });
            }
            return value::of(r);
        }
        if (f == "map") {
            if (!d.is_array()) fail(line, "map of " + type_name(x));
            json out = json::array();
            const value attr = kwarg(kwargs, "attribute", {}, 99, value::undefined());
            for (const auto& item : d) {
                if (!attr.is_undefined()) {
                    value v = get_attr(value::of(item), attr.data().get<std::string>(), line);
                    if (v.is_undefined()) v = kwarg(kwargs, "default", {}, 99, value::undefined());
                    out.push_back(plain(v, line));
                } else {
                    const std::string name = str_arg(args, 0, line, "map");
                    out.push_back(plain(filter(name, value::of(item), {args.begin() + 1, args.end()}, {}, line), line));
                }
            }
            return value::of(out);
        }
        if (f == "selectattr" || f == "rejectattr") {
            if (!d.is_array()) fail(line, f + " of " + type_name(x));
            const std::string attr = str_arg(args, 0, line, f.c_str());
            json out = json::array();
            for (const auto& item : d) {
                const value v = get_attr(value::of(item), attr, line);
                const bool pass = args.size() > 1 ? test(str_arg(args, 1, line, f.c_str()), v, {args.begin() + 2, args.end()}, line) : truthy(v);
                if (pass == (f == "selectattr")) out.push_back(item);
            }
            return value::of(out);
        }
        if (f == "indent") {
            const std::int64_t width = plain(kwarg(kwargs, "width", args, 0, value::of(4)), line).get<std::int64_t>();
            if (width > 1024) fail(line, "indent: a width over 1024");
            const bool first = truthy(kwarg(kwargs, "first", args, 1, value::of(false)));
            const std::string pad(std::size_t(std::max<std::int64_t>(0, width)), ' ');
            const std::string s = need_string();
            std::string r;
            for (std::size_t i = 0, line_start = 0; i <= s.size(); ++i) {
                if (i == s.size() || s[i] == '\n') {
                    const std::string l = s.substr(line_start, i - line_start);
                    if ((line_start > 0 || first) && !l.empty()) r += pad;
                    r += l;
                    if (i < s.size()) r += '\n';
                    line_start = i + 1;
                }
            }
            return value::of(r);
        }
        fail(line, "the filter '" + f + "' is not supported");
    }

    bool test(const std::string& t, const value& x, const std::vector<value>& args, int line) const {
        const json& d = x.data();
        if (t == "defined") return !x.is_undefined();
        if (t == "undefined") return x.is_undefined();
        if (x.is_undefined() && t != "none") return false;
        if (t == "none") return !x.is_undefined() && x.k == value::kind::data && d.is_null();
        if (t == "string") return d.is_string();
        if (t == "number") return d.is_number();
        if (t == "integer") return is_int(d);
        if (t == "float") return d.is_number_float();
        if (t == "mapping") return d.is_object() || x.k == value::kind::ns;
        if (t == "iterable") return d.is_array() || d.is_object() || d.is_string();
        if (t == "sequence") return d.is_array() || d.is_string() || d.is_object();
        if (t == "boolean") return d.is_boolean();
        if (t == "true") return d.is_boolean() && d.get<bool>();
        if (t == "false") return d.is_boolean() && !d.get<bool>();
        if (t == "callable") return x.k == value::kind::function;
        if (t == "odd" || t == "even") {
            if (!is_int(d)) fail(line, "'" + t + "' needs an integer");
            return (d.get<std::int64_t>() % 2 != 0) == (t == "odd");
        }
        if (args.empty()) fail(line, "the test '" + t + "' is not supported or needs an argument");
        const json y = plain(args[0], line);
        if (t == "divisibleby") return is_int(d) && is_int(y) && y.get<std::int64_t>() != 0 && d.get<std::int64_t>() % y.get<std::int64_t>() == 0;
        if (t == "eq" || t == "equalto" || t == "==" || t == "sameas") return equal(d, y);
        if (t == "ne" || t == "!=") return !equal(d, y);
        if (t == "gt" || t == "greaterthan") return compare_order(d, y, line) > 0;
        if (t == "ge") return compare_order(d, y, line) >= 0;
        if (t == "lt" || t == "lessthan") return compare_order(d, y, line) < 0;
        if (t == "le") return compare_order(d, y, line) <= 0;
        if (t == "in") return contains(args[0], x, line);
        fail(line, "the test '" + t + "' is not supported");
    }

    /// Python's json.dumps(x, ensure_ascii=False, indent=indent, sort_keys=sort_keys).
    static std::string py_json(const json& j, int indent, int depth, bool sort_keys) {
        const std::string nl = indent >= 0 ? "\n" + std::string(std::size_t(indent * (depth + 1)), ' ') : "";
        const std::string nl_end = indent >= 0 ? "\n" + std::string(std::size_t(indent * depth), ' ') : "";
        const std::string item_sep = indent >= 0 ? "," : ", ";
        switch (j.type()) {
        case json::value_t::array: {
            if (j.empty()) return "[]";
            std::string out = "[";
            for (std::size_t i = 0; i < j.size(); ++i) out += (i ? item_sep : "") + nl + py_json(j[i], indent, depth + 1, sort_keys);
            return out + nl_end + "]";
        }
        case json::value_t::object: {
            if (j.empty()) return "{}";
            std::vector<std::string> keys;
            for (const auto& [k, v] : j.items()) keys.push_back(k);
            if (sort_keys) std::sort(keys.begin(), keys.end());
            std::string out = "{";
            for (std::size_t i = 0; i < keys.size(); ++i)
                out += (i ? item_sep : "") + nl + json(keys[i]).dump(-1, ' ', false) + ": " + py_json(j[keys[i]], indent, depth + 1, sort_keys);
            return out + nl_end + "}";
        }
        case json::value_t::number_float: return py_float(j.get<double>());
        case json::value_t::null: return "null";
        default: return j.dump(-1, ' ', false);
        }
    }

    std::string name_;
    std::vector<std::map<std::string, value>> scopes_;
    std::uint64_t steps_ = 0;
    std::size_t work_ = 0;
};

}  // namespace detail

/// A parsed template; render() is const and may run on several threads at once.
class template_source {
public:
    /// Parses `source`; `name` names it in errors (e.g. "tokenizer_config.json chat_template").
    template_source(std::string_view source, std::string name) : name_(std::move(name)) {
        if (source.size() > (std::size_t(1) << 24)) throw format_error("chat template " + name_ + ": over 16 MiB");
        guarded([&] { body_ = detail::parser(detail::lexer(source, name_).run(), name_).parse(); });
    }

    /// Renders with `context` (messages, add_generation_prompt, bos_token, ...).
    rendered render(const json& context) const {
        detail::evaluator ev(name_, context);
        guarded([&] {
            try {
                ev.run(body_);
            } catch (const detail::loop_break&) {
                throw format_error("chat template " + name_ + ": break outside a loop");
            } catch (const detail::loop_continue&) {
                throw format_error("chat template " + name_ + ": continue outside a loop");
            }
        });
        return std::move(ev.out);
    }
    const std::string& name() const noexcept { return name_; }

private:
    /// A value of the wrong type where a method or filter wants another (a list of numbers to
    /// startswith, a non-string attribute name) surfaces from nlohmann as type_error: a
    /// vila::format_error naming the template, as every other template error.
    template <class F>
    void guarded(F&& f) const {
        try {
            f();
        } catch (const nlohmann::json::exception& e) {
            throw format_error("chat template " + name_ + ": a value of the wrong type (" + e.what() + ")");
        } catch (const std::out_of_range& e) {
            throw format_error("chat template " + name_ + ": out of range (" + e.what() + ")");
        } catch (const std::invalid_argument& e) {
            throw format_error("chat template " + name_ + ": invalid argument (" + e.what() + ")");
        }
    }

    std::string name_;
    detail::body_t body_;
};

}  // namespace vila::tokenizer::jinja
