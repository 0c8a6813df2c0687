package dev.ferry.core;

import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * One setting, as {@link Configuration} declares it: its name on the command line
 * ({@code downtime-limit}), its system property ({@code ferry.downtime-limit}), its default, its
 * meaning, and how a value is parsed and range-checked. Builders start from {@link #value()}, so
 * {@code -Dferry.downtime-limit=100} changes a default for the whole process, as {@code aeron.*}
 * properties do for Aeron.
 *
 * @param <T> the type of its values
 */
public final class Setting<T> {
    private static final String PROPERTY_PREFIX = "ferry.";

    private final String propertyName;
    private final String valueHint;
    private final String takes;
    private final T defaultValue;
    private final Function<String, T> parser;
    private final Predicate<T> inRange;
    private final String range;
    private final Function<T, String> printer;
    private final String description;

    private Setting(String propertyName, String valueHint, String takes, T defaultValue, Function<String, T> parser,
            Predicate<T> inRange, String range, Function<T, String> printer, String description) {
        if (!propertyName.startsWith(PROPERTY_PREFIX)) {
            throw new IllegalArgumentException(propertyName + " does not start with " + PROPERTY_PREFIX);
        }
        this.propertyName = propertyName;
        this.valueHint = valueHint;
        this.takes = takes;
        this.defaultValue = defaultValue;
        this.parser = parser;
        this.inRange = inRange;
        this.range = range;
        this.printer = printer;
        this.description = description;
        check(defaultValue);
    }

    /** A whole number of {@code unit} (MS, N, ...) in {@code min..max}. */
    static Setting<Long> number(String property, long defaultValue, long min, long max, String unit, String description) {
        return new Setting<>(property, max == Long.MAX_VALUE ? unit : min + ".." + max, "a whole number", defaultValue,
                Long::parseLong, v -> v >= min && v <= max, rangeText(min, max, Long.MAX_VALUE), String::valueOf,
                description);
    }

    /** A whole number in {@code min..max}, as an int. */
    static Setting<Integer> integer(String property, int defaultValue, int min, int max, String description) {
        return new Setting<>(property, max == Integer.MAX_VALUE ? "N" : min + ".." + max, "a whole number", defaultValue,
                Integer::parseInt, v -> v >= min && v <= max, rangeText(min, max, Integer.MAX_VALUE), String::valueOf,
                description);
    }

    /** A positive size in bytes, given as {@link #parseSize} reads it and printed in its largest exact unit. */
    static Setting<Long> size(String property, long defaultValue, String description) {
        return new Setting<>(property, "SIZE", "a size such as 512m or 1g", defaultValue, Setting::parseSize, v -> v > 0,
                "> 0", Setting::formatSize, description);
    }

    /**
     * A rate in bytes per second, given as {@link #parseRate} reads it, {@code 0} meaning
     * unlimited, printed in its largest exact binary unit.
     */
    static Setting<Long> rate(String property, long defaultValue, String description) {
        return new Setting<>(property, "RATE", "a rate such as 100m, 1g/s or 800mbit", defaultValue, Setting::parseRate,
                v -> v >= 0, ">= 0", v -> v <= 0 ? String.valueOf(v) : formatSize(v) + "/s", description);
    }

    /** One of an enum's constants, named in lower case. */
    static <E extends Enum<E>> Setting<E> choice(String property, Class<E> type, E defaultValue, String description) {
        return choice(property, List.of(type.getEnumConstants()), e -> e.name().toLowerCase(Locale.ROOT), defaultValue,
                description);
    }

    /** One of {@code values}, each known by its name. */
    static <T> Setting<T> choice(String property, List<T> values, Function<T, String> names, T defaultValue,
            String description) {
        List<String> all = values.stream().map(names).toList();
        String takes = String.join(", ", all.subList(0, all.size() - 1)) + " or " + all.getLast();
        return new Setting<>(property, String.join("|", all), takes, defaultValue, text -> {
            int i = all.indexOf(text);
            if (i < 0) {
                throw new IllegalArgumentException();
            }
            return values.get(i);
        }, values::contains, "one of " + takes, names, description);
    }

    /** Any other kind of value: {@code parser} throws IllegalArgumentException for a text it refuses. */
    static <T> Setting<T> of(String property, String valueHint, String takes, T defaultValue, Function<String, T> parser,
            Function<T, String> printer, String description) {
        return new Setting<>(property, valueHint, takes, defaultValue, parser, v -> true, "valid", printer, description);
    }

    /** Its name on the command line, {@code downtime-limit}. */
    public String name() {
        return propertyName.substring(PROPERTY_PREFIX.length());
    }

    /** The system property that overrides its default, {@code ferry.downtime-limit}. */
    public String propertyName() {
        return propertyName;
    }

    /** What a value looks like in the help: a unit ({@code MS}), a range or the choices. */
    public String valueHint() {
        return valueHint;
    }

    /** What it means, in one line. */
    public String description() {
        return description;
    }

    /** The built-in default. */
    public T defaultValue() {
        return defaultValue;
    }

    /**
     * The default this process uses: the system property's value when it is set, else the
     * built-in default.
     *
     * @throws IllegalArgumentException if the property is set to a value {@link #parse} refuses
     */
    public T value() {
        String text = System.getProperty(propertyName);
        if (text == null) {
            return defaultValue;
        }
        try {
            return parse(text);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("system property " + propertyName + ": " + e.getMessage(), e);
        }
    }

    /**
     * The value {@code text} means, range-checked.
     *
     * @throws IllegalArgumentException naming this setting, for a text it does not take or a value out of range
     */
    public T parse(String text) {
        T value;
        try {
            value = parser.apply(text.trim());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(name() + " takes " + takes + ", got '" + text + "'", e);
        }
        return check(value);
    }

    /**
     * {@code value} itself when it is in range.
     *
     * @throws IllegalArgumentException naming this setting, when it is not
     * @throws NullPointerException for null
     */
    public T check(T value) {
        Objects.requireNonNull(value, this::name);
        if (!inRange.test(value)) {
            throw new IllegalArgumentException(name() + " must be " + range + ", got " + format(value));
        }
        return value;
    }

    /** {@code value} as {@link #parse} reads it back. */
    public String format(T value) {
        return printer.apply(value);
    }

    @Override
    public String toString() {
        return name();
    }

    /**
     * A size such as {@code 4096}, {@code 64k}, {@code 512m} or {@code 1g} (binary units), also
     * for sizes that are not settings, such as a guest's memory.
     *
     * @throws IllegalArgumentException unless it is a whole, positive number of bytes that fits a long
     */
    public static long parseSize(String text) {
        String s = text.trim().toLowerCase(Locale.ROOT);
        int shift = s.isEmpty() ? 0 : switch (s.charAt(s.length() - 1)) {
            case 'k' -> 10;
            case 'm' -> 20;
            case 'g' -> 30;
            case 't' -> 40;
            default -> 0;
        };
        long n = Long.parseLong(shift == 0 ? s : s.substring(0, s.length() - 1));
        if (n <= 0 || n > Long.MAX_VALUE >> shift) {
            throw new IllegalArgumentException("not a positive size that fits 63 bits: '" + text + "'");
        }
        return n << shift;
    }

    /**
     * A rate in bytes per second: a size as {@link #parseSize} reads it ({@code 100m} is 100 MiB/s,
     * as QEMU's {@code migrate_set_parameter max-bandwidth 100M}), optionally followed by
     * {@code /s} or {@code b/s}, or bits per second in decimal units as {@code tc} writes them
     * ({@code 800mbit}, {@code 1gbit}, {@code 64kbit}); {@code 0} stays 0.
     *
     * @throws IllegalArgumentException unless it is a whole, non-negative rate that fits a long
     */
    public static long parseRate(String text) {
        String s = text.trim().toLowerCase(Locale.ROOT);
        if (s.endsWith("bit")) {
            String number = s.substring(0, s.length() - 3);
            long scale = switch (number.isEmpty() ? ' ' : number.charAt(number.length() - 1)) {
                case 'k' -> 1_000L;
                case 'm' -> 1_000_000L;
                case 'g' -> 1_000_000_000L;
                default -> 1L;
            };
            long bits = Long.parseLong(scale == 1 ? number : number.substring(0, number.length() - 1));
            if (bits < 0 || bits > Long.MAX_VALUE / scale) {
                throw new IllegalArgumentException("not a non-negative rate that fits 63 bits: '" + text + "'");
            }
            return bits * scale / 8;
        }
        String size = s.endsWith("b/s") ? s.substring(0, s.length() - 3) : s.endsWith("/s") ? s.substring(0, s.length() - 2) : s;
        return size.equals("0") ? 0 : parseSize(size);
    }

    private static String formatSize(long bytes) {
        String units = "kmgt";
        for (int i = units.length(); i > 0; i--) {
            if (bytes % (1L << (10 * i)) == 0) {
                return (bytes >> (10 * i)) + units.substring(i - 1, i);
            }
        }
        return Long.toString(bytes);
    }

    private static String rangeText(long min, long max, long unbounded) {
        return max == unbounded ? ">= " + min : "in " + min + ".." + max;
    }
}
