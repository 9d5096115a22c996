#!/usr/bin/env python3
"""Generates include/vila/tokenizer/unicode_tables.hpp from the Unicode Character Database.

    apt-get install unicode-data            # Debian 12: Unicode 15.0.0 in /usr/share/unicode
    python3 cmake/gen_unicode_tables.py [--ucd /usr/share/unicode]

Tables (all sorted for binary search):
  general category runs, White_Space ranges, simple case folding, full lowercase mapping,
  canonical combining classes, full canonical and compatibility decompositions (pre-expanded,
  Hangul excluded: it is algorithmic), and primary composition pairs (without exclusions).
The output is committed; rerun only to move to a new Unicode version.
"""
import argparse
import os
import re

CATS = ["Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi",
        "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"]


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                yield [x.strip() for x in line.split(";")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ucd", default="/usr/share/unicode")
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "include", "vila", "tokenizer", "unicode_tables.hpp"))
    a = ap.parse_args()
    ucd = a.ucd
    version = open(os.path.join(ucd, "PropList.txt"), encoding="utf-8").readline().strip().lstrip("# ")

    # --- UnicodeData: categories, decompositions, combining classes, simple lowercase -------
    cat = {}
    ccc = {}
    decomp = {}  # cp -> (compat, [cps])
    lower = {}
    rows = list(read_lines(os.path.join(ucd, "UnicodeData.txt")))
    i = 0
    while i < len(rows):
        r = rows[i]
        cp = int(r[0], 16)
        if r[1].endswith(", First>"):
            end = int(rows[i + 1][0], 16)
            for c in range(cp, end + 1):
                cat[c] = r[2]
            i += 2
            continue
        cat[cp] = r[2]
        if int(r[3]):
            ccc[cp] = int(r[3])
        if r[5]:
            parts = r[5].split()
            compat = parts[0].startswith("<")
            if compat:
                parts = parts[1:]
            decomp[cp] = (compat, [int(x, 16) for x in parts])
        if r[13]:
            lower[cp] = [int(r[13], 16)]
        i += 1
    # unconditional SpecialCasing lowercase (e.g. U+0130 -> i + combining dot)
    for r in read_lines(os.path.join(ucd, "SpecialCasing.txt")):
        if len(r) >= 5 and r[4]:
            continue  # conditional
        cp = int(r[0], 16)
        lo = [int(x, 16) for x in r[1].split()]
        if lo != [cp]:
            lower[cp] = lo

    # --- category runs --------------------------------------------------------------------
    runs = []
    prev = None
    for c in range(0x110000):
        k = cat.get(c, "Cn")
        if k != prev:
            runs.append((c, CATS.index(k)))
            prev = k

    # --- White_Space --------------------------------------------------------------------------
    ws = []
    for r in read_lines(os.path.join(ucd, "PropList.txt")):
        if r[1] == "White_Space":
            lo, _, hi = r[0].partition("..")
            ws.append((int(lo, 16), int(hi or lo, 16)))
    ws.sort()

    # --- simple case folding (C + S) --------------------------------------------------------
    fold = {}
    for r in read_lines(os.path.join(ucd, "CaseFolding.txt")):
        if r[1] in ("C", "S"):
            fold[int(r[0], 16)] = int(r[2], 16)

    # --- full decompositions ------------------------------------------------------------------
    def expand(cp, compat):
        d = decomp.get(cp)
        if d is None or (d[0] and not compat):
            return [cp]
        out = []
        for x in d[1]:
            out += expand(x, compat)
        return out

    canon_full = {cp: expand(cp, False) for cp in decomp if not decomp[cp][0]}
    compat_full = {}
    for cp in decomp:
        e = expand(cp, True)
        if canon_full.get(cp) != e:
            compat_full[cp] = e

    # --- composition pairs: canonical 2-element decompositions minus Full_Composition_Exclusion
    excluded = set()
    for r in read_lines(os.path.join(ucd, "DerivedNormalizationProps.txt")):
        if r[1] == "Full_Composition_Exclusion":
            lo, _, hi = r[0].partition("..")
            excluded.update(range(int(lo, 16), int(hi or lo, 16) + 1))
    pairs = sorted((d[1][0], d[1][1], cp) for cp, d in decomp.items()
                   if not d[0] and len(d[1]) == 2 and cp not in excluded)

    # --- combining class runs -----------------------------------------------------------------
    ccc_runs = []
    for cp in sorted(ccc):
        if ccc_runs and ccc_runs[-1][1] == cp - 1 and ccc_runs[-1][2] == ccc[cp]:
            ccc_runs[-1][1] = cp
        else:
            ccc_runs.append([cp, cp, ccc[cp]])

    def pool_table(name, mapping):
        pool, entries = [], []
        for cp in sorted(mapping):
            entries.append("{0x%X,%d,%d}" % (cp, len(pool), len(mapping[cp])))
            pool += mapping[cp]
        return ("inline constexpr std::uint32_t %s_pool[] = {%s};\n" % (name, ",".join("0x%X" % x for x in pool)) +
                "inline constexpr mapping_entry %s[] = {%s};\n" % (name, ",".join(entries)))

    def wrap(s, width=110):
        out, line = [], ""
        for tok in s.split(","):
            if len(line) + len(tok) + 1 > width:
                out.append(line)
                line = ""
            line += tok + ","
        out.append(line)
        return "\n".join(out).rstrip(",")

    body = []
    body.append("enum class general_category : std::uint8_t { %s };\n" % ", ".join(CATS))
    body.append("struct category_run { std::uint32_t first; std::uint8_t category; };\n")
    body.append("struct codepoint_range { std::uint32_t first, last; };\n")
    body.append("struct mapping_entry { std::uint32_t cp, offset, length; };\n")
    body.append("struct pair_entry { std::uint32_t first, second, composite; };\n")
    body.append("struct class_run { std::uint32_t first, last; std::uint8_t ccc; };\n")
    body.append("struct fold_entry { std::uint32_t cp, folded; };\n\n")
    body.append("inline constexpr category_run category_runs[] = {\n%s};\n" %
                wrap(",".join("{0x%X,%d}" % r for r in runs)))
    body.append("inline constexpr codepoint_range white_space[] = {%s};\n" % ",".join("{0x%X,0x%X}" % r for r in ws))
    body.append("inline constexpr fold_entry simple_case_fold[] = {\n%s};\n" %
                wrap(",".join("{0x%X,0x%X}" % (k, fold[k]) for k in sorted(fold))))
    body.append(wrap(pool_table("lowercase", lower)) + "\n")
    body.append("inline constexpr class_run combining_classes[] = {\n%s};\n" %
                wrap(",".join("{0x%X,0x%X,%d}" % tuple(r) for r in ccc_runs)))
    body.append(wrap(pool_table("canonical_decomposition", canon_full)) + "\n")
    body.append(wrap(pool_table("compatibility_decomposition", compat_full)) + "\n")
    body.append("inline constexpr pair_entry composition_pairs[] = {\n%s};\n" %
                wrap(",".join("{0x%X,0x%X,0x%X}" % p for p in pairs)))

    hdr = ("// vila/tokenizer/unicode_tables.hpp — GENERATED by cmake/gen_unicode_tables.py from %s.\n"
           "// Do not edit; rerun the script. Data: Unicode Character Database (Unicode license).\n"
           "#pragma once\n#include <cstdint>\n\nnamespace vila::tokenizer::unicode_data {\n\n"
           "inline constexpr const char* unicode_version = \"%s\";\n\n" % (version, version))
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(hdr + "".join(body) + "\n}  // namespace vila::tokenizer::unicode_data\n")
    print("wrote %s: %d category runs, %d folds, %d lowercase, %d canonical, %d compat, %d pairs" % (
        a.out, len(runs), len(fold), len(lower), len(canon_full), len(compat_full), len(pairs)))


if __name__ == "__main__":
    main()
