// examples/reproduce_vila/svg.hpp — a grouped bar chart as a standalone SVG file, so that a
// fresh clone draws its plots without Python: per category one bar per series (the mean over
// seeds), each seed's value as a dot on its bar, and a dashed line for chance.
#pragma once
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <vila/io/atomic_file.hpp>

namespace reproduce {

struct bar_series {
    std::string name;
    std::string colour;                     // "#1f77b4"
    bool hollow = false;                    // outlined (the paper's numbers)
    std::vector<double> values;             // per category, in percent (NaN: no bar)
    std::vector<std::vector<double>> dots;  // per category: each seed's value (may be empty)
};

struct bar_chart {
    std::string title, subtitle, y_label;
    std::vector<std::string> categories;
    std::vector<bar_series> series;
    double chance = -1;  // percent; < 0: no line
};

inline std::string svg_escape(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (c == '&') o += "&amp;";
        else if (c == '<') o += "&lt;";
        else if (c == '>') o += "&gt;";
        else if (c == '"') o += "&quot;";
        else o += c;
    }
    return o;
}

inline std::string to_svg(const bar_chart& c) {
    const double left = 60, right = 20, top = 62, bottom = 78, plot_h = 260;
    const double group_w = std::max(120.0, 44.0 * double(c.series.size()) + 40), bar_w = 36;
    const double plot_w = group_w * double(c.categories.size());
    // wide enough for the title (~8.5 px a character at 15 px) and the two-column legend
    const double width = std::max({left + right + plot_w, left + right + 8.5 * double(c.title.size()), left + right + 520.0});
    const double height = top + plot_h + bottom + 22.0 * double((c.series.size() + 1) / 2);
    auto y_of = [&](double v) { return top + plot_h * (1 - std::clamp(v, 0.0, 100.0) / 100.0); };
    std::string s;
    char b[512];
    auto put = [&](const char* fmt, auto... a) {
        std::snprintf(b, sizeof b, fmt, a...);
        s += b;
    };
    put("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", width, height);
    s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    put("<text x=\"%.0f\" y=\"22\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", left, svg_escape(c.title).c_str());
    put("<text x=\"%.0f\" y=\"40\" fill=\"#555\">%s</text>\n", left, svg_escape(c.subtitle).c_str());
    for (int t = 0; t <= 100; t += 20) {
        const double y = y_of(t);
        put("<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, width - right, y, y);
        put("<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n", left - 6, y + 4, t);
    }
    put("<text transform=\"translate(16 %.0f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n", top + plot_h / 2, svg_escape(c.y_label).c_str());
    const double n = double(c.series.size());
    for (std::size_t k = 0; k < c.categories.size(); ++k) {
        const double gw = (width - left - right) / double(c.categories.size());  // groups spread over the width
        const double x0 = left + gw * double(k), mid = x0 + gw / 2;
        for (std::size_t j = 0; j < c.series.size(); ++j) {
            const auto& se = c.series[j];
            if (k >= se.values.size() || !(se.values[k] == se.values[k])) continue;  // NaN: no bar
            const double x = mid - bar_w * n / 2 + bar_w * double(j) + 3, y = y_of(se.values[k]);
            if (se.hollow)
                put("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.1f\" fill=\"white\" stroke=\"%s\" stroke-width=\"2\"/>\n", x, y, bar_w - 6,
                    top + plot_h - y, se.colour.c_str());
            else
                put("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.0f\" height=\"%.1f\" fill=\"%s\"/>\n", x, y, bar_w - 6, top + plot_h - y, se.colour.c_str());
            double label_y = y;  // above the bar and above its seeds' dots
            if (k < se.dots.size())
                for (double d : se.dots[k]) label_y = std::min(label_y, y_of(d) - 3);
            put("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">%.0f</text>\n", x + (bar_w - 6) / 2, label_y - 4, se.values[k]);
            if (k < se.dots.size())
                for (double d : se.dots[k])
                    put("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"black\" fill-opacity=\"0.7\"/>\n", x + (bar_w - 6) / 2, y_of(d));
        }
        put("<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", mid, top + plot_h + 18, svg_escape(c.categories[k]).c_str());
    }
    put("<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", left, width - right, top + plot_h, top + plot_h);
    if (c.chance >= 0)
        put("<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#c00\" stroke-dasharray=\"5 4\"/>"
            "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#c00\" font-size=\"10\">chance</text>\n",
            left, width - right, y_of(c.chance), y_of(c.chance), width - right - 2, y_of(c.chance) - 3);
    for (std::size_t j = 0; j < c.series.size(); ++j) {
        const auto& se = c.series[j];
        const double x = left + 260.0 * double(j % 2), y = top + plot_h + 40 + 22.0 * double(j / 2);
        put("<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"14\" fill=\"%s\" stroke=\"%s\" stroke-width=\"2\"/>", x, y, se.hollow ? "white" : se.colour.c_str(),
            se.colour.c_str());
        put("<text x=\"%.0f\" y=\"%.0f\">%s</text>\n", x + 20, y + 12, svg_escape(se.name).c_str());
    }
    s += "</svg>\n";
    return s;
}

inline void write_svg(const std::filesystem::path& file, const bar_chart& c) {
    const std::string s = to_svg(c);
    vila::io::write_atomically(file, [&](std::FILE* f) { vila::io::write_all(f, s.data(), s.size(), file); });
}

}  // namespace reproduce
