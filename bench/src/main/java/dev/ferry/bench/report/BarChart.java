package dev.ferry.bench.report;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.DoubleFunction;

/**
 * A bar chart as inline SVG: categories along x, one or more series grouped (or stacked) per
 * category, and horizontal rules for thresholds. Every bar carries a {@code <title>}, so a
 * browser shows its exact value on hover without any script.
 */
final class BarChart {
    private static final int WIDTH = 560;
    private static final int HEIGHT = 250;
    private static final int LEFT = 64;
    private static final int RIGHT = 12;
    private static final int TOP = 30;
    private static final int BOTTOM = 44;
    /** Pixels per character of an 11px label, a little generous so labels never touch. */
    private static final double CHAR_WIDTH = 6.6;

    private record Series(String name, double[] values) {
    }

    private record Rule(String label, double value) {
    }

    private final String title;
    private final String xAxis;
    private final DoubleFunction<String> format;
    private final List<String> categories;
    private final List<Series> series = new ArrayList<>();
    private final List<Rule> rules = new ArrayList<>();
    private boolean stacked;

    /** A chart of {@code categories}; {@code format} prints values on the axis and in the titles. */
    BarChart(String title, String xAxis, List<String> categories, DoubleFunction<String> format) {
        this.title = title;
        this.xAxis = xAxis;
        this.categories = List.copyOf(categories);
        this.format = format;
    }

    /** Adds a series, one value per category; NaN draws no bar. */
    BarChart series(String name, double[] values) {
        if (values.length != categories.size()) {
            throw new IllegalArgumentException(values.length + " values for " + categories.size() + " categories");
        }
        series.add(new Series(name, values.clone()));
        return this;
    }

    /** Stacks the series instead of placing them side by side. */
    BarChart stacked() {
        stacked = true;
        return this;
    }

    /** A horizontal rule across the chart at {@code value}, e.g. a limit. */
    BarChart rule(String label, double value) {
        if (!Double.isNaN(value)) {
            rules.add(new Rule(label, value));
        }
        return this;
    }

    String svg() {
        double top = Scale.ceiling(maxValue());
        double step = Scale.step(top);
        int plotW = WIDTH - LEFT - RIGHT;
        int plotH = HEIGHT - TOP - BOTTOM;
        StringBuilder s = new StringBuilder();
        s.append("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" viewBox=\"0 0 ")
                .append(WIDTH).append(' ').append(HEIGHT).append("\" width=\"").append(WIDTH).append("\" height=\"")
                .append(HEIGHT).append("\">\n<title>").append(Xml.escape(title)).append("</title>\n");
        legend(s);
        for (double t = 0; t <= top + step / 2; t += step) {
            double y = TOP + plotH - t / top * plotH;
            s.append("<line class=\"grid\" x1=\"").append(LEFT).append("\" x2=\"").append(WIDTH - RIGHT)
                    .append("\" y1=\"").append(f(y)).append("\" y2=\"").append(f(y)).append("\"/>")
                    .append("<text class=\"tick\" x=\"").append(LEFT - 6).append("\" y=\"").append(f(y + 4))
                    .append("\" text-anchor=\"end\">").append(Xml.escape(format.apply(t))).append("</text>\n");
        }
        int n = Math.max(categories.size(), 1);
        double slot = (double) plotW / n;
        int groups = stacked ? 1 : Math.max(series.size(), 1);
        double barW = slot * 0.8 / groups;
        // as many x labels as fit side by side with a gap; then every n-th category is labelled
        int widest = categories.stream().mapToInt(String::length).max().orElse(1);
        int fit = Math.max(1, (int) (plotW / (widest * CHAR_WIDTH + 10)));
        int labelEvery = (categories.size() + fit - 1) / fit;
        for (int c = 0; c < categories.size(); c++) {
            double x0 = LEFT + c * slot + slot * 0.1;
            double base = 0;
            for (int k = 0; k < series.size(); k++) {
                double v = series.get(k).values()[c];
                if (Double.isNaN(v)) {
                    continue;
                }
                double h = Math.max(v, 0) / top * plotH;
                double x = stacked ? x0 : x0 + k * barW;
                double y = TOP + plotH - (stacked ? base / top * plotH : 0) - h;
                s.append("<rect class=\"s").append(k).append("\" x=\"").append(f(x)).append("\" y=\"").append(f(y))
                        .append("\" width=\"").append(f(Math.max(barW - 1, 1))).append("\" height=\"").append(f(h))
                        .append("\"><title>").append(Xml.escape(xAxis + " " + categories.get(c) + ", "
                                + series.get(k).name() + ": " + format.apply(v)))
                        .append("</title></rect>\n");
                if (stacked) {
                    base += Math.max(v, 0);
                }
            }
            if (c % labelEvery == 0) {
                s.append("<text class=\"tick\" x=\"").append(f(LEFT + (c + 0.5) * slot)).append("\" y=\"")
                        .append(TOP + plotH + 16).append("\" text-anchor=\"middle\">")
                        .append(Xml.escape(categories.get(c))).append("</text>\n");
            }
        }
        // labels of rules that lie close are moved apart, never drawn over each other
        List<Double> labelYs = Scale.apart(rules.stream()
                .map(rule -> TOP + plotH - Math.max(rule.value(), 0) / top * plotH - 4).toList(), 13);
        for (int r = 0; r < rules.size(); r++) {
            Rule rule = rules.get(r);
            double y = TOP + plotH - Math.max(rule.value(), 0) / top * plotH;
            String text = rule.label() + " " + format.apply(rule.value());
            s.append("<line class=\"rule r").append(r).append("\" x1=\"").append(LEFT).append("\" x2=\"")
                    .append(WIDTH - RIGHT).append("\" y1=\"").append(f(y)).append("\" y2=\"").append(f(y))
                    .append("\"><title>").append(Xml.escape(text)).append("</title></line>")
                    .append("<text class=\"rule-label r").append(r).append("\" x=\"").append(WIDTH - RIGHT - 4)
                    .append("\" y=\"").append(f(labelYs.get(r))).append("\" text-anchor=\"end\">")
                    .append(Xml.escape(text)).append("</text>\n");
        }
        s.append("<line class=\"axis\" x1=\"").append(LEFT).append("\" x2=\"").append(WIDTH - RIGHT).append("\" y1=\"")
                .append(TOP + plotH).append("\" y2=\"").append(TOP + plotH).append("\"/>\n")
                .append("<text class=\"axis-title\" x=\"").append(LEFT + plotW / 2).append("\" y=\"").append(HEIGHT - 8)
                .append("\" text-anchor=\"middle\">").append(Xml.escape(xAxis)).append("</text>\n</svg>");
        return s.toString();
    }

    private void legend(StringBuilder s) {
        double x = LEFT;
        for (int k = 0; k < series.size(); k++) {
            s.append("<rect class=\"s").append(k).append("\" x=\"").append(f(x)).append("\" y=\"8\" width=\"12\" height=\"12\"/>")
                    .append("<text class=\"legend\" x=\"").append(f(x + 16)).append("\" y=\"18\">")
                    .append(Xml.escape(series.get(k).name())).append("</text>\n");
            x += 28 + 7 * series.get(k).name().length();
        }
    }

    private double maxValue() {
        double max = 0;
        for (int c = 0; c < categories.size(); c++) {
            double sum = 0;
            for (Series one : series) {
                double v = one.values()[c];
                if (!Double.isNaN(v)) {
                    sum = stacked ? sum + Math.max(v, 0) : Math.max(sum, v);
                }
            }
            max = Math.max(max, sum);
        }
        for (Rule rule : rules) {
            max = Math.max(max, rule.value());
        }
        return max;
    }

    private static String f(double v) {
        return String.format(Locale.ROOT, "%.1f", v);
    }
}
