package dev.ferry.bench.cli;

import dev.ferry.core.Setting;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** {@code --name value} and {@code --flag} arguments, checked against what a command accepts. */
final class Options {
    /** Where the help's descriptions start, and where its lines end. */
    private static final int COLUMN = 33;
    private static final int WIDTH = 100;

    private final Map<String, String> values = new LinkedHashMap<>();

    private Options() {
    }

    /**
     * One option a command accepts, as parsing and the help know it: its name, what its value
     * looks like ({@code null} for a flag), what it does, and the value it has when not given
     * ({@code null} for none). An option that sets a {@link Setting} takes all of that from it.
     */
    record Option(String name, String hint, String description, String fallback, Setting<?> setting) {
        static Option flag(String name, String description) {
            return new Option(name, null, description, null, null);
        }

        static Option valued(String name, String hint, String description, String fallback) {
            return new Option(name, hint, description, fallback, null);
        }

        /** A flag that sets a boolean setting: given, it is true. */
        static Option flag(Setting<Boolean> setting) {
            return new Option(setting.name(), null, setting.description(), null, setting);
        }

        static Option of(Setting<?> setting) {
            return new Option(setting.name(), setting.valueHint(), setting.description(), null, setting);
        }

        boolean isFlag() {
            return hint == null;
        }

        /** Its entry in the help, with its default: a setting's as this process has it. */
        String help() {
            String shown = setting != null ? effectiveDefault(setting) : fallback;
            List<String> words = new ArrayList<>(List.of(description.split(" ")));
            if (shown != null) {
                words.add("(default " + shown + ")");
            }
            return wrap("  --" + name + (isFlag() ? "" : " " + hint), words, COLUMN);
        }

        private static <T> String effectiveDefault(Setting<T> setting) {
            return setting.format(setting.value());
        }
    }

    /** The help of {@code options} under {@code title}. */
    static String help(String title, List<Option> options) {
        StringBuilder text = new StringBuilder(title).append(":\n");
        options.forEach(o -> text.append(o.help()));
        return text.append('\n').toString();
    }

    /** Parses {@code args} from {@code from}; an option that is not {@code accepted} is a usage error. */
    static Options parse(String[] args, int from, List<Option> accepted) {
        Map<String, Option> byName = new LinkedHashMap<>();
        for (Option option : accepted) {
            if (byName.putIfAbsent(option.name(), option) != null) {
                throw new IllegalStateException("--" + option.name() + " is accepted twice");
            }
        }
        Options options = new Options();
        for (int i = from; i < args.length; i++) {
            String arg = args[i];
            if (!arg.startsWith("--")) {
                throw new UsageException("unexpected argument '" + arg + "'");
            }
            String name = arg.substring(2);
            String inline = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                inline = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            Option option = byName.get(name);
            if (option == null || (option.isFlag() && inline != null)) {
                throw new UsageException("unknown option --" + arg.substring(2));
            }
            if (option.isFlag()) {
                inline = "true";
            } else if (inline == null) {
                if (i + 1 >= args.length) {
                    throw new UsageException("--" + name + " needs a value");
                }
                inline = args[++i];
            }
            options.values.put(name, inline);
        }
        return options;
    }

    /** Whether {@code --name} was given. */
    boolean has(String name) {
        return values.containsKey(name);
    }

    boolean has(Option option) {
        return has(option.name());
    }

    /** The text given for {@code option}, or its fallback. */
    String get(Option option) {
        return values.getOrDefault(option.name(), option.fallback());
    }

    long getLong(Option option) {
        String v = get(option);
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new UsageException("--" + option.name() + " takes a whole number, got '" + v + "'");
        }
    }

    /** A size such as {@code 4096}, {@code 64m} or {@code 1g} (binary units). */
    long getSize(Option option) {
        String v = get(option);
        try {
            return Setting.parseSize(v);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--" + option.name() + " takes a size such as 512m or 1g, got '" + v + "'");
        }
    }

    /** The value given for {@code setting}, or its default. */
    <T> T value(Setting<T> setting) {
        String v = values.get(setting.name());
        return v == null ? setting.value() : parse(setting, v);
    }

    /** {@code text} as a value of {@code setting}; a value it refuses is a usage error. */
    static <T> T parse(Setting<T> setting, String text) {
        try {
            return setting.parse(text);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--" + e.getMessage());
        }
    }

    /** {@code text} as a paragraph of the help, indented as an option is. */
    static String paragraph(String text) {
        return wrap("", List.of(text.split(" ")), 2);
    }

    /** {@code head}, then {@code words} from {@code start} on, wrapped at {@link #WIDTH}. */
    private static String wrap(String head, List<String> words, int start) {
        StringBuilder out = new StringBuilder(head);
        int column = head.length();
        if (column >= start - 1) {
            out.append('\n');
            column = 0;
        }
        out.repeat(' ', start - column);
        column = start;
        for (String word : words) {
            if (column > start && column + 1 + word.length() > WIDTH) {
                out.append('\n').repeat(' ', start);
                column = start;
            } else if (column > start) {
                out.append(' ');
                column++;
            }
            out.append(word);
            column += word.length();
        }
        return out.append('\n').toString();
    }
}
