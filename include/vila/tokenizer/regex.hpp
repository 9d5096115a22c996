// vila/tokenizer/regex.hpp — the regular expressions of tokenizer.json Split pre-tokenizers.
//
// Why our own: std::regex has no Unicode properties, and HF tokenizers uses Oniguruma, whose
// semantics the ids depend on. This is a backtracking matcher over code points with
// Oniguruma's leftmost-first alternation, supporting what real tokenizers use:
//   literals and escapes (\r \n \t \f \v \e \0 \xHH \x{H..} \uHHHH \\ and escaped punctuation),
//   '.', classes [...] with ranges and negation, \p{X} / \P{X} (L, Lu, Ll, Lt, Lm, Lo, M, Mn,
//   Mc, Me, N, Nd, Nl, No, P*, S*, Z*, C*), \s \S (White_Space), \d \D (Nd), \w \W,
//   groups (...), (?:...), (?i:...), (?i), lookahead (?=...) (?!...), quantifiers ? * + {n}
//   {n,} {n,m} and their lazy forms.
// Unsupported syntax (anchors, backreferences, lookbehind) throws vila::format_error instead of
// matching differently.
//
// Patterns come from tokenizer.json files, so resources are bounded (docs/limits.md):
//   - the compiled program has at most 65,536 instructions, a repeat count at most 100,000
//     (Oniguruma's limit), groups nest at most 256 deep, at most 16 quantifiers on one atom;
//   - matching is memoized (a bit per (branch point, position), as RE2's BitState): a state
//     explored once without reaching a match is never explored again, across start positions
//     and across the searches of find_all, so the work is O(branch points x text length) for
//     patterns without lookahead (lookaheads are memoized per position; a step cap is the last
//     resort and throws). Revisiting a branch point at the same position is an iteration that
//     consumed nothing: it ends the loop, which is how Oniguruma treats empty iterations.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "unicode.hpp"

namespace vila::tokenizer {

class regex {
public:
    using codepoint = unicode::codepoint;
    explicit regex(std::string_view pattern) : pattern_(pattern) {
        parser p{decode_pattern(pattern), 0, this};
        auto root = p.parse_alternation(false);
        if (p.i != p.s.size()) p.fail("unbalanced ')'");
        compile(*root);
        prog_.push_back({op::match});
        for (std::size_t pc = 0; pc < prog_.size(); ++pc) {
            inst& in = prog_[pc];
            if (in.code == op::split) {
                // memo rows: one per combination of "this enclosing loop's iteration started
                // here" for the innermost three checked loops (what decides its future)
                in.index = int(branches_++);
                row_base_.push_back(rows_);
                rows_ += std::size_t(1) << std::min<std::size_t>(enclosing_[pc].size(), 3);
                split_loops_.push_back(std::move(enclosing_[pc]));
            }
            if (in.code == op::look_pos || in.code == op::look_neg) in.index = int(looks_++);
        }
        enclosing_.clear();
    }

    const std::string& pattern() const noexcept { return pattern_; }

    /// Leftmost match starting at or after `from`: returns true and [start, end) in code points.
    bool search(const std::vector<codepoint>& text, std::size_t from, std::size_t& start, std::size_t& end) const {
        matcher m(*this, text);
        return m.search(from, start, end);
    }

    /// All non-overlapping matches, left to right (empty matches skip one code point).
    std::vector<std::pair<std::size_t, std::size_t>> find_all(const std::vector<codepoint>& text) const {
        std::vector<std::pair<std::size_t, std::size_t>> out;
        matcher m(*this, text);  // one memo for all the searches
        std::size_t pos = 0, s, e;
        while (pos <= text.size() && m.search(pos, s, e)) {
            if (e == s) {
                pos = s + 1;
                continue;
            }
            out.emplace_back(s, e);
            pos = e;
        }
        return out;
    }

    static constexpr std::size_t max_program = std::size_t(1) << 16;
    static constexpr int max_repeat = 100000, max_group_depth = 256, max_quantifiers = 16;

private:
    // loop_start / loop_check: Oniguruma's empty check, emitted for loops whose body can match
    // empty: an iteration that consumed nothing leaves the loop (x: loop number, y: the exit)
    enum class op : std::uint8_t { chr, cls, any, split, jmp, match, look_pos, look_neg, loop_start, loop_check };
    struct inst {
        op code;
        codepoint c = 0;
        bool icase = false;
        int x = 0, y = 0;  // split: preferred x, then y; look: sub-program at x, continue at pc + 1
        int cls = -1;
        int index = -1;    // split: its branch number; look: its lookahead number (memo rows)
    };
    struct class_item {
        enum kind_t : std::uint8_t { range, category, space, word } kind;
        bool negated = false;
        codepoint lo = 0, hi = 0;
        std::uint32_t categories = 0;  // bit per general_category
    };
    struct char_class {
        std::vector<class_item> items;
        bool negated = false;
        bool icase = false;
    };
    struct node {
        enum kind_t { literal, cls, any, concat, alternation, repeat, look_pos, look_neg, empty } kind;
        codepoint c = 0;
        bool icase = false;
        int cls_index = -1;
        int min = 0, max = 0;  // repeat; max < 0 = unbounded
        bool greedy = true;
        std::vector<std::unique_ptr<node>> kids;
    };

    static std::vector<codepoint> decode_pattern(std::string_view p) { return unicode::decode_utf8(p); }

    static bool category_in(std::uint32_t mask, codepoint c) {
        return (mask >> static_cast<unsigned>(unicode::category(c))) & 1u;
    }
    static bool item_matches(const class_item& it, codepoint c) {
        bool m = false;
        switch (it.kind) {
            case class_item::range: m = c >= it.lo && c <= it.hi; break;
            case class_item::category: m = category_in(it.categories, c); break;
            case class_item::space: m = unicode::is_white_space(c); break;
            case class_item::word:
                m = unicode::is_letter(c) || unicode::is_mark(c) ||
                    unicode::category(c) == unicode::general_category::Nd ||
                    unicode::category(c) == unicode::general_category::Pc;
                break;
        }
        return m != it.negated;
    }
    bool class_matches(int index, codepoint c) const {
        const char_class& k = classes_[std::size_t(index)];
        bool m = false;
        for (const auto& it : k.items)
            if (item_matches(it, c) || (k.icase && item_matches(it, unicode::simple_fold(c)))) {
                m = true;
                break;
            }
        return m != k.negated;
    }

    // --- parser ------------------------------------------------------------------------------
    struct parser {
        std::vector<codepoint> s;
        std::size_t i;
        regex* re;
        bool icase = false;
        int depth = 0;  // group nesting

        [[noreturn]] void fail(const std::string& why) const {
            throw format_error("regex '" + re->pattern_ + "': " + why + " at character " + std::to_string(i));
        }
        bool at(codepoint c) const { return i < s.size() && s[i] == c; }

        std::unique_ptr<node> make(node::kind_t k) {
            auto n = std::make_unique<node>();
            n->kind = k;
            return n;
        }
        std::unique_ptr<node> parse_alternation(bool in_group) {
            if (in_group && ++depth > max_group_depth) fail("groups nest deeper than " + std::to_string(max_group_depth));
            auto alt = make(node::alternation);
            const bool saved = icase;
            alt->kids.push_back(parse_concat());
            while (at('|')) {
                ++i;
                alt->kids.push_back(parse_concat());
            }
            if (in_group) {
                if (!at(')')) fail("missing ')'");
                ++i;
                icase = saved;  // (?i) inside a group ends with the group
                --depth;
            }
            return alt->kids.size() == 1 ? std::move(alt->kids[0]) : std::move(alt);
        }
        std::unique_ptr<node> parse_concat() {
            auto cat = make(node::concat);
            while (i < s.size() && !at('|') && !at(')')) {
                auto atom = parse_atom();
                if (!atom) continue;  // a flag group like (?i)
                cat->kids.push_back(parse_quantifier(std::move(atom)));
            }
            if (cat->kids.empty()) return make(node::empty);
            return cat->kids.size() == 1 ? std::move(cat->kids[0]) : std::move(cat);
        }
        int parse_int() {
            if (i >= s.size() || s[i] < '0' || s[i] > '9') fail("expected a number");
            long long v = 0;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
                v = v * 10 + (s[i++] - '0');
                if (v > max_repeat) fail("repeat count above " + std::to_string(max_repeat));
            }
            return int(v);
        }
        std::unique_ptr<node> parse_quantifier(std::unique_ptr<node> atom) {
            for (int count = 0;; ++count) {
                if (count > max_quantifiers) fail("more than " + std::to_string(max_quantifiers) + " quantifiers on one atom");
                int mn, mx;
                if (at('?')) mn = 0, mx = 1, ++i;
                else if (at('*')) mn = 0, mx = -1, ++i;
                else if (at('+')) mn = 1, mx = -1, ++i;
                else if (at('{') && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9') {
                    ++i;
                    mn = parse_int();
                    mx = mn;
                    if (at(',')) {
                        ++i;
                        mx = at('}') ? -1 : parse_int();
                    }
                    if (!at('}')) fail("missing '}'");
                    ++i;
                    if (mx >= 0 && mx < mn) fail("bad repeat range");
                } else {
                    return atom;
                }
                auto r = make(node::repeat);
                r->min = mn;
                r->max = mx;
                if (at('?')) r->greedy = false, ++i;
                else if (at('+')) fail("possessive quantifiers are not supported");
                r->kids.push_back(std::move(atom));
                atom = std::move(r);
            }
        }
        codepoint parse_hex(std::size_t digits) {
            codepoint v = 0;
            for (std::size_t k = 0; k < digits; ++k) {
                if (i >= s.size()) fail("truncated hex escape");
                const codepoint c = s[i++];
                int d = (c >= '0' && c <= '9') ? int(c - '0') : (c >= 'a' && c <= 'f') ? int(c - 'a' + 10)
                        : (c >= 'A' && c <= 'F') ? int(c - 'A' + 10) : -1;
                if (d < 0) fail("bad hex digit");
                v = v * 16 + codepoint(d);
            }
            return v;
        }
        std::uint32_t parse_property() {  // after \p or \P
            if (!at('{')) fail("expected '{' after \\p");
            ++i;
            std::string name;
            while (i < s.size() && !at('}')) name += char(s[i++]);
            if (!at('}')) fail("missing '}' in \\p{...}");
            ++i;
            if (!name.empty() && name[0] == '^') fail("\\p{^...} is not supported");
            return category_mask(name);
        }
        std::uint32_t category_mask(const std::string& name) {
            static const char* names[] = {"Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd",
                                          "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm",
                                          "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
            std::string n = name;
            if (n == "Letter") n = "L";
            else if (n == "Number") n = "N";
            else if (n == "Mark") n = "M";
            else if (n == "Punctuation") n = "P";
            else if (n == "Symbol") n = "S";
            else if (n == "Separator") n = "Z";
            else if (n == "Other") n = "C";
            std::uint32_t mask = 0;
            for (unsigned k = 0; k < 30; ++k) {
                const std::string cat = names[k];
                if (cat == n || (n.size() == 1 && cat[0] == n[0])) mask |= 1u << k;
            }
            if (!mask) fail("unknown Unicode property \\p{" + name + "}");
            return mask;
        }
        // An escape that names a set (returns true and fills item) or a single code point.
        bool parse_escape(class_item& item, codepoint& c) {
            if (i >= s.size()) fail("trailing backslash");
            const codepoint e = s[i++];
            item = class_item{};
            switch (e) {
                case 'p': case 'P':
                    item.kind = class_item::category;
                    item.categories = parse_property();
                    item.negated = e == 'P';
                    return true;
                case 's': case 'S': item.kind = class_item::space; item.negated = e == 'S'; return true;
                case 'd': case 'D':
                    item.kind = class_item::category;
                    item.categories = 1u << static_cast<unsigned>(unicode::general_category::Nd);
                    item.negated = e == 'D';
                    return true;
                case 'w': case 'W': item.kind = class_item::word; item.negated = e == 'W'; return true;
                case 'r': c = '\r'; return false;
                case 'n': c = '\n'; return false;
                case 't': c = '\t'; return false;
                case 'f': c = '\f'; return false;
                case 'v': c = '\v'; return false;
                case 'e': c = 0x1B; return false;
                case '0': c = 0; return false;
                case 'x':
                    if (at('{')) {
                        ++i;
                        c = 0;
                        std::size_t n = 0;
                        while (i < s.size() && !at('}') && n < 8) c = c * 16 + parse_hex(1), ++n;
                        if (!at('}') || n == 0 || c > 0x10FFFF) fail("bad \\x{...}");
                        ++i;
                    } else {
                        c = parse_hex(2);
                    }
                    return false;
                case 'u': c = parse_hex(4); return false;
                default:
                    if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9'))
                        fail(std::string("unsupported escape \\") + char(e));
                    c = e;  // escaped punctuation stands for itself
                    return false;
            }
        }
        int add_class(char_class k) {
            re->classes_.push_back(std::move(k));
            return int(re->classes_.size() - 1);
        }
        std::unique_ptr<node> class_node(char_class k) {
            auto n = make(node::cls);
            k.icase = icase;
            n->cls_index = add_class(std::move(k));
            return n;
        }
        std::unique_ptr<node> parse_class() {  // after '['
            char_class k;
            if (at('^')) k.negated = true, ++i;
            bool first = true;
            while (i < s.size() && (!at(']') || first)) {
                first = false;
                if (at('[')) fail("nested classes are not supported");
                class_item item;
                codepoint lo;
                if (at('\\')) {
                    ++i;
                    if (parse_escape(item, lo)) {
                        k.items.push_back(item);
                        continue;
                    }
                } else {
                    lo = s[i++];
                }
                codepoint hi = lo;
                if (at('-') && i + 1 < s.size() && s[i + 1] != ']') {
                    ++i;
                    if (at('\\')) {
                        ++i;
                        class_item ignored;
                        if (parse_escape(ignored, hi)) fail("a set cannot end a range");
                    } else {
                        hi = s[i++];
                    }
                    if (hi < lo) fail("bad class range");
                }
                item = class_item{};
                item.kind = class_item::range;
                item.lo = lo;
                item.hi = hi;
                k.items.push_back(item);
            }
            if (!at(']')) fail("missing ']'");
            ++i;
            return class_node(std::move(k));
        }
        std::unique_ptr<node> parse_atom() {
            const codepoint c = s[i++];
            switch (c) {
                case '(': {
                    if (at('?')) {
                        ++i;
                        if (at(':')) {
                            ++i;
                            return parse_alternation(true);
                        }
                        if (at('=') || at('!')) {
                            const bool neg = at('!');
                            ++i;
                            auto look = make(neg ? node::look_neg : node::look_pos);
                            look->kids.push_back(parse_alternation(true));
                            return look;
                        }
                        if (at('<')) fail("lookbehind and named groups are not supported");
                        bool on = true, flag = false;
                        const bool saved = icase;
                        while (i < s.size() && !at(':') && !at(')')) {
                            if (at('-')) on = false;
                            else if (at('i')) icase = on, flag = true;
                            else fail("unsupported group flag");
                            ++i;
                        }
                        if (!flag || i >= s.size()) fail("bad group flags");
                        if (at(')')) {  // (?i): applies to the rest of the enclosing group
                            ++i;
                            return nullptr;
                        }
                        ++i;  // ':'
                        auto inner = parse_alternation(true);
                        icase = saved;
                        return inner;
                    }
                    return parse_alternation(true);
                }
                case '[': return parse_class();
                case '.': {
                    char_class k;
                    class_item nl;
                    nl.kind = class_item::range;
                    nl.lo = nl.hi = '\n';
                    k.items.push_back(nl);
                    k.negated = true;  // Oniguruma's '.' does not match a newline
                    return class_node(std::move(k));
                }
                case '\\': {
                    class_item item;
                    codepoint lit;
                    if (parse_escape(item, lit)) {
                        char_class k;
                        k.items.push_back(item);
                        return class_node(std::move(k));
                    }
                    auto n = make(node::literal);
                    n->c = lit;
                    n->icase = icase;
                    return n;
                }
                case '^': case '$': fail("anchors are not supported");
                case '*': case '+': case '?': fail("quantifier without a target");
                default: {
                    auto n = make(node::literal);
                    n->c = c;
                    n->icase = icase;
                    return n;
                }
            }
        }
    };

    // --- compiler ----------------------------------------------------------------------------
    int emit(inst in) {
        if (prog_.size() >= max_program)
            throw format_error("regex '" + pattern_ + "': the compiled program exceeds " + std::to_string(max_program) + " instructions");
        std::vector<int> enclosing;  // a split's checked loops, innermost first, up to a lookahead
        if (in.code == op::split)
            for (auto it = loop_stack_.rbegin(); it != loop_stack_.rend() && *it >= 0; ++it) enclosing.push_back(*it);
        enclosing_.push_back(std::move(enclosing));
        prog_.push_back(in);
        return int(prog_.size() - 1);
    }
    void compile(const node& n) {
        switch (n.kind) {
            case node::empty: break;
            case node::literal: {
                inst in{op::chr};
                in.c = n.icase ? unicode::simple_fold(n.c) : n.c;
                in.icase = n.icase;
                emit(in);
                break;
            }
            case node::cls: {
                inst in{op::cls};
                in.cls = n.cls_index;
                emit(in);
                break;
            }
            case node::any: emit({op::any}); break;
            case node::concat:
                for (const auto& k : n.kids) compile(*k);
                break;
            case node::alternation: {
                std::vector<int> jumps;
                for (std::size_t k = 0; k + 1 < n.kids.size(); ++k) {
                    const int split = emit({op::split});
                    prog_[std::size_t(split)].x = split + 1;
                    compile(*n.kids[k]);
                    jumps.push_back(emit({op::jmp}));
                    prog_[std::size_t(split)].y = int(prog_.size());
                }
                compile(*n.kids.back());
                for (int j : jumps) prog_[std::size_t(j)].x = int(prog_.size());
                break;
            }
            case node::repeat: {
                const node& body = *n.kids[0];
                for (int k = 0; k < n.min; ++k) compile(body);
                if (n.max < 0) {  // star: L: split body, out; [loop_start] body; [loop_check]; jmp L
                    const int split = emit({op::split});
                    const int loop = nullable(body) ? int(loops_++) : -1;
                    if (loop >= 0) {
                        inst start{op::loop_start};
                        start.x = loop;
                        emit(start);
                        loop_stack_.push_back(loop);
                    }
                    compile(body);
                    int check = -1;
                    if (loop >= 0) {
                        loop_stack_.pop_back();
                        inst c{op::loop_check};
                        c.x = loop;
                        check = emit(c);
                    }
                    const int jmp = emit({op::jmp});
                    prog_[std::size_t(jmp)].x = split;
                    set_split(split, split + 1, int(prog_.size()), n.greedy);
                    if (check >= 0) prog_[std::size_t(check)].y = int(prog_.size());
                } else {  // (max - min) nested optionals
                    std::vector<int> splits;
                    for (int k = n.min; k < n.max; ++k) {
                        splits.push_back(emit({op::split}));
                        compile(body);
                    }
                    for (int sp : splits) set_split(sp, sp + 1, int(prog_.size()), n.greedy);
                }
                break;
            }
            case node::look_pos: case node::look_neg: {
                const int look = emit({n.kind == node::look_pos ? op::look_pos : op::look_neg});
                const int skip = emit({op::jmp});  // jump over the sub-program
                prog_[std::size_t(look)].x = int(prog_.size());
                loop_stack_.push_back(-1);  // the lookahead's sub-run ends at its own match
                compile(*n.kids[0]);
                loop_stack_.pop_back();
                emit({op::match});
                prog_[std::size_t(skip)].x = int(prog_.size());
                prog_[std::size_t(look)].y = skip;  // not used: look continues at pc + 1 (the jmp)
                break;
            }
        }
    }
    /// Whether `n` can match the empty string (then a loop over it needs the empty check).
    static bool nullable(const node& n) {
        switch (n.kind) {
            case node::empty: case node::look_pos: case node::look_neg: return true;
            case node::literal: case node::cls: case node::any: return false;
            case node::concat:
                for (const auto& k : n.kids)
                    if (!nullable(*k)) return false;
                return true;
            case node::alternation:
                for (const auto& k : n.kids)
                    if (nullable(*k)) return true;
                return false;
            case node::repeat: return n.min == 0 || nullable(*n.kids[0]);
        }
        return true;
    }
    void set_split(int at, int body, int out, bool greedy) {
        prog_[std::size_t(at)].x = greedy ? body : out;
        prog_[std::size_t(at)].y = greedy ? out : body;
    }

    // --- backtracking VM with a memo ---------------------------------------------------------
    /// The matching state of one text: the memo of failed (branch point, position) states and
    /// of lookahead results, shared by every search over that text.
    struct matcher {
        const regex& re;
        const std::vector<codepoint>& text;
        std::size_t cols;                    // positions 0..text.size()
        bool memo;                           // off only when the bit table would be huge
        std::vector<std::uint64_t> failed;   // bit (branch index * cols + pos)
        std::vector<std::int8_t> looked;     // (look index * cols + pos): 0 unknown, 1 found, 2 not
        std::vector<std::size_t> undo;       // bits set inside lookaheads (cleared if they match)
        int depth = 0;                       // lookahead nesting
        std::vector<std::pair<int, std::size_t>> stack;  // alternatives; pc < 0: restore register -1 - pc
        std::vector<std::size_t> reg;        // per checked loop: where its current iteration began
        std::size_t steps = 0, step_cap;

        matcher(const regex& r, const std::vector<codepoint>& t) : re(r), text(t), cols(t.size() + 1), reg(r.loops_, 0) {
            const std::size_t bits = re.rows_ * cols;
            memo = bits / 64 < (std::size_t(1) << 24);  // at most 128 MB of bits; else only the cap
            if (memo) {
                failed.assign(bits / 64 + 1, 0);
                looked.assign(re.looks_ * cols, 0);
            }
            step_cap = (std::size_t(1) << 26) + 64 * re.prog_.size() * cols;
        }
        bool test_and_set(std::size_t bit) {
            std::uint64_t& w = failed[bit / 64];
            const std::uint64_t m = std::uint64_t(1) << (bit % 64);
            if (w & m) return true;
            w |= m;
            if (depth) undo.push_back(bit);
            return false;
        }
        bool search(std::size_t from, std::size_t& start, std::size_t& end) {
            for (std::size_t s = from; s <= text.size(); ++s)
                if (run(0, s, end)) {
                    start = s;
                    // the next search of find_all starts at `end`: states there on this match's
                    // path are not failures
                    if (memo)
                        for (std::size_t b = 0; b < re.rows_; ++b) {
                            const std::size_t bit = b * cols + end;
                            failed[bit / 64] &= ~(std::uint64_t(1) << (bit % 64));
                        }
                    return true;
                }
            return false;
        }
        bool run(int pc0, std::size_t pos0, std::size_t& end) {
            const std::size_t base = stack.size();
            stack.emplace_back(pc0, pos0);
            while (stack.size() > base) {
                auto [pc, pos] = stack.back();
                stack.pop_back();
                if (pc < 0) {  // backtracking past a loop_start: its register as it was
                    reg[std::size_t(-1 - pc)] = pos;
                    continue;
                }
                for (;;) {
                    if (++steps > step_cap)
                        throw format_error("regex '" + re.pattern_ + "': too much backtracking on a text of " +
                                           std::to_string(text.size()) + " characters");
                    const inst& in = re.prog_[std::size_t(pc)];
                    bool ok = true;
                    switch (in.code) {
                        case op::match:
                            stack.resize(base);
                            end = pos;
                            return true;
                        case op::chr:
                            ok = pos < text.size() && (in.icase ? unicode::simple_fold(text[pos]) == in.c : text[pos] == in.c);
                            ++pos, ++pc;
                            break;
                        case op::cls:
                            ok = pos < text.size() && re.class_matches(in.cls, text[pos]);
                            ++pos, ++pc;
                            break;
                        case op::any:
                            ok = pos < text.size();
                            ++pos, ++pc;
                            break;
                        case op::jmp: pc = in.x; break;
                        case op::split: {
                            // explored before without a match: fail now. The future of a split
                            // depends on its position and, per enclosing checked loop, on
                            // whether that loop's iteration began here (the empty check)
                            const auto& loops = re.split_loops_[std::size_t(in.index)];
                            std::size_t mask = 0;
                            bool exact = true;
                            for (std::size_t j = 0; j < loops.size(); ++j)
                                if (reg[std::size_t(loops[j])] == pos) {
                                    if (j < 3) mask |= std::size_t(1) << j;
                                    else exact = false;  // deeper nesting: not memoized (the cap bounds it)
                                }
                            if (memo && exact && test_and_set((re.row_base_[std::size_t(in.index)] + mask) * cols + pos)) {
                                ok = false;
                                break;
                            }
                            stack.emplace_back(in.y, pos);
                            pc = in.x;
                            break;
                        }
                        case op::loop_start:
                            stack.emplace_back(-1 - in.x, reg[std::size_t(in.x)]);
                            reg[std::size_t(in.x)] = pos;
                            ++pc;
                            break;
                        case op::loop_check:  // an iteration that consumed nothing ends the loop
                            pc = reg[std::size_t(in.x)] == pos ? in.y : pc + 1;
                            break;
                        case op::look_pos: case op::look_neg: {
                            const std::size_t at = std::size_t(in.index) * cols + pos;
                            std::int8_t r = memo ? looked[at] : 0;
                            if (!r) {
                                const std::size_t mark = undo.size();
                                std::size_t ignored;
                                ++depth;
                                const bool found = run(in.x, pos, ignored);
                                --depth;
                                if (found)  // the states on the lookahead's matching path did not fail
                                    for (std::size_t k = mark; k < undo.size(); ++k)
                                        failed[undo[k] / 64] &= ~(std::uint64_t(1) << (undo[k] % 64));
                                if (found || depth == 0) undo.resize(mark);
                                r = found ? 1 : 2;
                                if (memo) looked[at] = r;
                            }
                            ok = (r == 1) == (in.code == op::look_pos);
                            ++pc;
                            break;
                        }
                    }
                    if (!ok) break;
                }
            }
            return false;
        }
    };

    std::string pattern_;
    std::vector<inst> prog_;
    std::size_t branches_ = 0, looks_ = 0;  // split and lookahead instructions, numbered by `index`
    std::size_t loops_ = 0;                 // loops with the empty check (registers)
    std::vector<int> loop_stack_;           // while compiling: checked loops open here (-1: a lookahead)
    std::vector<std::vector<int>> enclosing_;  // while compiling: per instruction
    std::vector<std::vector<int>> split_loops_;  // per split: its checked loops, innermost first
    std::vector<std::size_t> row_base_;     // per split: its first memo row
    std::size_t rows_ = 0;
    std::vector<char_class> classes_;
};

}  // namespace vila::tokenizer
