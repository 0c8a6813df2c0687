package dev.ferry.bench.report;

import java.util.Locale;

/** How the reports print figures: decimal units, as the CLI's MB and MB/s are. */
final class Units {
    private Units() {
    }

    /** 950, 12.3k, 4.5M. */
    static String count(double n) {
        if (Double.isNaN(n)) {
            return "n/a";
        }
        double a = Math.abs(n);
        if (a >= 1e9) {
            return trim(n / 1e9) + "G";
        }
        if (a >= 1e6) {
            return trim(n / 1e6) + "M";
        }
        if (a >= 1e3) {
            return trim(n / 1e3) + "k";
        }
        return trim(n);
    }

    /** 512 B, 3.4 kB, 61.2 MB, 1.1 GB. */
    static String bytes(double n) {
        if (Double.isNaN(n)) {
            return "n/a";
        }
        double a = Math.abs(n);
        if (a >= 1e9) {
            return trim(n / 1e9) + " GB";
        }
        if (a >= 1e6) {
            return trim(n / 1e6) + " MB";
        }
        if (a >= 1e3) {
            return trim(n / 1e3) + " kB";
        }
        return trim(n) + " B";
    }

    /** A guest size in binary units, as the CLI takes it: 256 MiB, 1 GiB. */
    static String memory(long bytes) {
        if (bytes >= 1L << 30) {
            return trim(bytes / (double) (1L << 30)) + " GiB";
        }
        return trim(bytes / (double) (1L << 20)) + " MiB";
    }

    static String bytesPerSecond(double n) {
        return bytes(n) + "/s";
    }

    static String millis(double ms) {
        return Double.isNaN(ms) ? "n/a" : trim(ms) + " ms";
    }

    static String micros(double us) {
        return Double.isNaN(us) ? "n/a" : trim(us) + " \u00b5s";
    }

    /** Three significant digits at most, no trailing zeros: 1234 -> 1234, 12.345 -> 12.3, 0.5 -> 0.5. */
    static String trim(double v) {
        double a = Math.abs(v);
        String s;
        if (a >= 100 || v == Math.rint(v)) {
            s = String.format(Locale.ROOT, "%.0f", v);
        } else if (a >= 10) {
            s = String.format(Locale.ROOT, "%.1f", v);
        } else if (a >= 1) {
            s = String.format(Locale.ROOT, "%.2f", v);
        } else {
            s = String.format(Locale.ROOT, "%.3f", v);
        }
        if (s.contains(".")) {
            s = s.replaceAll("0+$", "").replaceAll("\\.$", "");
        }
        return s;
    }
}
