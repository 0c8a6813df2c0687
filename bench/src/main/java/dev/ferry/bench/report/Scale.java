package dev.ferry.bench.report;

import java.util.ArrayList;
import java.util.List;

/** Axis arithmetic the charts share: nice tick steps, and labels kept apart. */
final class Scale {
    private Scale() {
    }

    /** The smallest 1, 2 or 5 x 10^k tick step that covers {@code max} in at most five steps. */
    static double step(double max) {
        double raw = max / 5;
        double magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
        for (double m : new double[] {1, 2, 5, 10}) {
            if (m * magnitude >= raw) {
                return m * magnitude;
            }
        }
        return 10 * magnitude;
    }

    /** {@code max} rounded up to a whole number of {@link #step}s; 1 for nothing to show. */
    static double ceiling(double max) {
        if (!(max > 0)) {
            return 1;
        }
        double step = step(max);
        return Math.ceil(max / step) * step;
    }

    /**
     * Label positions (SVG y, growing downwards) at least {@code gap} apart, each as near its
     * wish as that allows, in the order given: labels of rules that lie close do not overlap.
     */
    static List<Double> apart(List<Double> wanted, double gap) {
        Integer[] order = new Integer[wanted.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (a, b) -> Double.compare(wanted.get(a), wanted.get(b)));
        double[] placed = new double[wanted.size()];
        double last = Double.NEGATIVE_INFINITY;
        for (int i : order) {
            placed[i] = Math.max(wanted.get(i), last + gap);
            last = placed[i];
        }
        List<Double> result = new ArrayList<>();
        for (double y : placed) {
            result.add(y);
        }
        return result;
    }
}
