package dev.ferry.bench.cli;

import dev.ferry.core.Setting;
import java.util.List;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.ParseResult;

/** The options picocli parsed for one command, read through the {@link CliOption}s that declared them. */
final class ParsedOptions {
    private final ParseResult parsed;

    ParsedOptions(ParseResult parsed) {
        this.parsed = parsed;
    }

    /** Whether {@code --name} was given. */
    boolean has(String name) {
        return parsed.hasMatchedOption("--" + name);
    }

    boolean has(CliOption option) {
        return has(option.name());
    }

    /** The value given for {@code option} (converted when it was parsed), else its fallback's, else null. */
    @SuppressWarnings("unchecked")
    <T> T get(CliOption option) {
        if (has(option)) {
            return (T) parsed.matchedOptionValue(option.longName(), null);
        }
        return option.fallback() == null ? null : (T) option.convert(option.fallback());
    }

    /** The text given for {@code option}, as typed, else its fallback (null for none). */
    String text(CliOption option) {
        OptionSpec spec = parsed.matchedOption(option.longName());
        if (spec == null) {
            return option.fallback();
        }
        List<String> texts = spec.originalStringValues();
        return texts.isEmpty() ? null : texts.getLast();
    }

    /** Every text given for a {@link CliOption#repeated} option, in order; empty when none. */
    List<String> texts(CliOption option) {
        OptionSpec spec = parsed.matchedOption(option.longName());
        return spec == null ? List.of() : List.copyOf(spec.originalStringValues());
    }

    /** The value given for {@code setting}, or its default as this process has it. */
    @SuppressWarnings("unchecked")
    <T> T value(Setting<T> setting) {
        return has(setting.name()) ? (T) parsed.matchedOptionValue("--" + setting.name(), null) : setting.value();
    }

    /** The whole command line as given, the command's name first. */
    List<String> originalArgs() {
        return parsed.originalArgs();
    }

    /** The positional parameters, as typed. */
    List<String> positionals() {
        return parsed.matchedPositionals().stream().flatMap(p -> p.stringValues().stream()).toList();
    }
}
