package dev.ferry.bench.cli;

import dev.ferry.core.Setting;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.TypeConversionException;

/**
 * One option of a command as picocli's model and the help know it: its name, what its value
 * looks like ({@code null} for a flag), what it does, the value it has when not given
 * ({@code null} for none), and how its text becomes a value, checked as it is parsed, so a bad
 * value stops the command before it starts. An option that sets a {@link Setting} takes all of
 * that from it. A command gets its own {@link OptionSpec} of it from {@link #spec()}.
 *
 * @param setting   the setting it sets, or null
 * @param converter text to value; throws IllegalArgumentException with the reason
 */
record CliOption(String name, String label, String description, String fallback, Setting<?> setting,
        ITypeConverter<?> converter, boolean repeats) {

    static CliOption flag(String name, String description) {
        return new CliOption(name, null, description, null, null, text -> Boolean.TRUE, false);
    }

    /** A flag that sets a boolean setting: given, it is true. */
    static CliOption flag(Setting<Boolean> setting) {
        return new CliOption(setting.name(), null, setting.description(), null, setting, text -> Boolean.TRUE, false);
    }

    /** An option whose value is its text. */
    static CliOption text(String name, String label, String description, String fallback) {
        return new CliOption(name, label, description, fallback, null, text -> text, false);
    }

    /** An option given any number of times, each value its text ({@link ParsedOptions#texts}). */
    static CliOption repeated(String name, String label, String description) {
        return new CliOption(name, label, description, null, null, text -> text, true);
    }

    static CliOption valued(String name, String label, String description, String fallback, ITypeConverter<?> converter) {
        return new CliOption(name, label, description, fallback, null, converter, false);
    }

    static CliOption of(Setting<?> setting) {
        return new CliOption(setting.name(), setting.valueHint(), setting.description(), null, setting, setting::parse,
                false);
    }

    /** Options are known by name: a command takes each name once. */
    @Override
    public boolean equals(Object o) {
        return o instanceof CliOption other && other.name.equals(name);
    }

    @Override
    public int hashCode() {
        return name.hashCode();
    }

    boolean isFlag() {
        return label == null;
    }

    /** {@code --name}. */
    String longName() {
        return "--" + name;
    }

    /** Its entry in the help: what it does, with its default (a setting's as this process has it). */
    String help() {
        String shown = setting != null && !isFlag() ? effectiveDefault(setting) : fallback;
        return shown == null ? description : description + " (default " + shown + ")";
    }

    /** A fresh picocli option for one command; its converter turns a refusal into picocli's "Invalid value". */
    OptionSpec spec() {
        OptionSpec.Builder b = OptionSpec.builder(longName()).description(Ferry.escape(help()));
        if (isFlag()) {
            return b.arity("0").type(boolean.class).build();
        }
        if (repeats) {
            return b.arity("1").paramLabel(label).type(java.util.List.class).auxiliaryTypes(String.class).build();
        }
        return b.arity("1").paramLabel(label).type(Object.class).converters(text -> {
            try {
                return convert(text);
            } catch (IllegalArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }).build();
    }

    /** The value {@code text} means. */
    Object convert(String text) {
        try {
            return converter.convert(text);
        } catch (IllegalArgumentException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }

    private static <T> String effectiveDefault(Setting<T> setting) {
        return setting.format(setting.value());
    }
}
