package dev.ferry.bench.report;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.DoubleFunction;

/**
 * A chart over the run's time as inline SVG: a band of spans (the setup, each round as wide as
 * it lasted, the pause, post-copy) and, when given, step lines of per-span values below it
 * (the dirty rate and the bandwidth of each round) against horizontal rules. A span's label is
 * drawn only where it fits; every span and step carries a {@code <title>} with its figures.
 */
final class TimeChart {
    private static final int WIDTH = 1120;
    private static final int LEFT = 72;
    /** Room for the last tick's label. */
    private static final int RIGHT = 40;
    private static final int BAND_TOP = 30;
    private static final int BAND = 30;
    private static final int PLOT = 180;
    /** Pixels per character of an 11px label, a little generous so labels never touch. */
    private static final double CHAR_WIDTH = 6.6;

    /** One part of the run, from {@code startMs} to {@code endMs}, drawn with CSS class {@code css}. */
    record Span(String label, double startMs, double endMs, String css, String detail) {
    }

    /** A value that held from {@code startMs} to {@code endMs}. */
    record Step(double startMs, double endMs, double value) {
    }

    private record Series(String name, List<Step> steps) {
    }

    private record Rule(String label, double value) {
    }

    private final String title;
    private final DoubleFunction<String> format;
    private final List<Span> spans = new ArrayList<>();
    private final List<Series> series = new ArrayList<>();
    private final List<Rule> rules = new ArrayList<>();

    /** A chart titled {@code title}; {@code format} prints the step values. */
    TimeChart(String title, DoubleFunction<String> format) {
        this.title = title;
        this.format = format;
    }

    TimeChart span(Span span) {
        if (span.endMs() > span.startMs()) {
            spans.add(span);
        }
        return this;
    }

    TimeChart series(String name, List<Step> steps) {
        series.add(new Series(name, List.copyOf(steps)));
        return this;
    }

    /** A horizontal rule at {@code value}; NaN draws none. */
    TimeChart rule(String label, double value) {
        if (!Double.isNaN(value)) {
            rules.add(new Rule(label, value));
        }
        return this;
    }

    String svg() {
        boolean steps = !series.isEmpty();
        boolean band = !spans.isEmpty();
        int plotTop = band ? BAND_TOP + BAND + 24 : BAND_TOP;
        int height = steps ? plotTop + PLOT + 44 : BAND_TOP + BAND + 44;
        int axisY = steps ? plotTop + PLOT : BAND_TOP + BAND;
        double end = 0;
        for (Span span : spans) {
            end = Math.max(end, span.endMs());
        }
        for (Series one : series) {
            for (Step step : one.steps()) {
                end = Math.max(end, step.endMs());
            }
        }
        double xMax = Scale.ceiling(end);
        double plotW = WIDTH - LEFT - RIGHT;
        StringBuilder s = new StringBuilder();
        s.append("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" viewBox=\"0 0 ").append(WIDTH)
                .append(' ').append(height).append("\" width=\"").append(WIDTH).append("\" height=\"").append(height)
                .append("\">\n<title>").append(Xml.escape(title)).append("</title>\n");
        double xStep = Scale.step(xMax);
        for (double t = 0; t <= xMax + xStep / 2; t += xStep) {
            double x = LEFT + t / xMax * plotW;
            s.append("<line class=\"grid\" x1=\"").append(f(x)).append("\" x2=\"").append(f(x)).append("\" y1=\"")
                    .append(BAND_TOP).append("\" y2=\"").append(axisY).append("\"/>")
                    .append("<text class=\"tick\" x=\"").append(f(x)).append("\" y=\"").append(axisY + 16)
                    .append("\" text-anchor=\"middle\">").append(Xml.escape(Units.millis(t))).append("</text>\n");
        }
        for (Span span : spans) {
            double x0 = LEFT + span.startMs() / xMax * plotW;
            double w = Math.max((span.endMs() - span.startMs()) / xMax * plotW, 1);
            s.append("<rect class=\"").append(span.css()).append("\" x=\"").append(f(x0)).append("\" y=\"").append(BAND_TOP)
                    .append("\" width=\"").append(f(w)).append("\" height=\"").append(BAND).append("\"><title>")
                    .append(Xml.escape(span.label() + ": " + Units.millis(span.startMs()) + " to "
                            + Units.millis(span.endMs()) + " (" + Units.millis(span.endMs() - span.startMs()) + ")"
                            + (span.detail() == null ? "" : ", " + span.detail())))
                    .append("</title></rect>\n");
            if (span.label().length() * CHAR_WIDTH + 6 <= w) {
                s.append("<text class=\"span-label\" x=\"").append(f(x0 + w / 2)).append("\" y=\"")
                        .append(BAND_TOP + BAND / 2 + 4).append("\" text-anchor=\"middle\">")
                        .append(Xml.escape(span.label())).append("</text>\n");
            }
        }
        if (band) {
            s.append("<text class=\"legend\" x=\"").append(LEFT - 6).append("\" y=\"").append(BAND_TOP + BAND / 2 + 4)
                    .append("\" text-anchor=\"end\">run</text>\n");
        }
        if (steps) {
            steps(s, plotTop, plotW, xMax);
        }
        s.append("<line class=\"axis\" x1=\"").append(LEFT).append("\" x2=\"").append(WIDTH - RIGHT).append("\" y1=\"")
                .append(axisY).append("\" y2=\"").append(axisY).append("\"/>\n")
                .append("<text class=\"axis-title\" x=\"").append(f(LEFT + plotW / 2)).append("\" y=\"").append(height - 8)
                .append("\" text-anchor=\"middle\">time since the start</text>\n</svg>");
        return s.toString();
    }

    private void steps(StringBuilder s, int plotTop, double plotW, double xMax) {
        double max = 0;
        for (Series one : series) {
            for (Step step : one.steps()) {
                if (Double.isFinite(step.value())) {
                    max = Math.max(max, step.value());
                }
            }
        }
        for (Rule rule : rules) {
            max = Math.max(max, rule.value());
        }
        double top = Scale.ceiling(max);
        double yStep = Scale.step(top);
        for (double v = 0; v <= top + yStep / 2; v += yStep) {
            double y = plotTop + PLOT - v / top * PLOT;
            s.append("<line class=\"grid\" x1=\"").append(LEFT).append("\" x2=\"").append(WIDTH - RIGHT).append("\" y1=\"")
                    .append(f(y)).append("\" y2=\"").append(f(y)).append("\"/>")
                    .append("<text class=\"tick\" x=\"").append(LEFT - 6).append("\" y=\"").append(f(y + 4))
                    .append("\" text-anchor=\"end\">").append(Xml.escape(format.apply(v))).append("</text>\n");
        }
        double legendX = LEFT;
        for (int k = 0; k < series.size(); k++) {
            Series one = series.get(k);
            s.append("<rect class=\"s").append(k).append("\" x=\"").append(f(legendX)).append("\" y=\"").append(plotTop - 14)
                    .append("\" width=\"12\" height=\"4\"/><text class=\"legend\" x=\"").append(f(legendX + 16))
                    .append("\" y=\"").append(plotTop - 9).append("\">").append(Xml.escape(one.name())).append("</text>\n");
            legendX += 28 + CHAR_WIDTH * one.name().length();
            StringBuilder points = new StringBuilder();
            for (Step step : one.steps()) {
                if (!Double.isFinite(step.value())) {
                    continue;
                }
                double y = plotTop + PLOT - Math.max(step.value(), 0) / top * PLOT;
                double x0 = LEFT + step.startMs() / xMax * plotW;
                double x1 = LEFT + step.endMs() / xMax * plotW;
                points.append(f(x0)).append(',').append(f(y)).append(' ').append(f(x1)).append(',').append(f(y)).append(' ');
                s.append("<rect class=\"hit\" x=\"").append(f(x0)).append("\" y=\"").append(f(y - 4)).append("\" width=\"")
                        .append(f(Math.max(x1 - x0, 1))).append("\" height=\"8\"><title>")
                        .append(Xml.escape(one.name() + " " + Units.millis(step.startMs()) + " to "
                                + Units.millis(step.endMs()) + ": " + format.apply(step.value())))
                        .append("</title></rect>\n");
            }
            s.append("<polyline class=\"line l").append(k).append("\" points=\"").append(points.toString().strip())
                    .append("\"/>\n");
        }
        List<Double> labelYs = Scale.apart(rules.stream().map(r -> plotTop + PLOT - r.value() / top * PLOT - 4).toList(), 13);
        for (int r = 0; r < rules.size(); r++) {
            Rule rule = rules.get(r);
            double y = plotTop + PLOT - rule.value() / top * PLOT;
            String text = rule.label() + " " + format.apply(rule.value());
            s.append("<line class=\"rule r").append(r).append("\" x1=\"").append(LEFT).append("\" x2=\"")
                    .append(WIDTH - RIGHT).append("\" y1=\"").append(f(y)).append("\" y2=\"").append(f(y))
                    .append("\"><title>").append(Xml.escape(text)).append("</title></line>")
                    .append("<text class=\"rule-label r").append(r).append("\" x=\"").append(WIDTH - RIGHT - 4)
                    .append("\" y=\"").append(f(labelYs.get(r))).append("\" text-anchor=\"end\">")
                    .append(Xml.escape(text)).append("</text>\n");
        }
    }

    private static String f(double v) {
        return String.format(Locale.ROOT, "%.1f", v);
    }
}
