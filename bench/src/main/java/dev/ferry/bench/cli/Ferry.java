package dev.ferry.bench.cli;

import dev.ferry.bench.trace.TraceSummary;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import picocli.CommandLine.Model.ArgGroupSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.PositionalParamSpec;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;
import picocli.CommandLine.UnmatchedArgumentException;
import picocli.CommandLine;

/**
 * The {@code ferry} command line: benchmarks, the two sides of a migration, trace tools, JMH.
 * Every command is a picocli model built here from {@link CliOption}s, the settings' from
 * {@link dev.ferry.core.Configuration}, so no option is declared twice and each command's
 * {@code --help} lists exactly what it takes.
 */
public final class Ferry {
    /** Lines of the help and of picocli's messages. */
    private static final int WIDTH = 100;
    private static final String ENVIRONMENT = """
            Every setting's default can also be set for the process with -Dferry.NAME=VALUE (for ./ferry, in \
            FERRY_JVM_OPTS); an option overrides it. Sizes take binary units (512m, 1g); rates are bytes per \
            second with the same units (100m is 100 MiB/s, also written 100m/s or 100MB/s), or bits per second \
            in decimal units as tc writes them (800mbit is 100,000,000 bytes/s); 0 is unlimited.""";
    private static final String EXIT_STATUS = """
            Exit status: 0 when the migration completed and was verified (matrix: every run did), 1 when it \
            did not, 2 for a usage error (a bad option or value, an output path that cannot be written, a \
            port in use, a missing trace file).""";

    private static final String TOOL_EXIT_STATUS = "Exit status: 0 when it did what it says, 1 when it failed (a "
            + "malformed trace, say), 2 for a usage error (a bad option, a missing trace file).";

    /** What a command does with what picocli parsed for it; returns the exit status. */
    @FunctionalInterface
    interface Action {
        int run(ParsedOptions options) throws Exception;
    }

    /** Options shown under one heading of a command's help. */
    record Section(String heading, List<CliOption> options) {
    }

    private Ferry() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs {@code args} as the command line does, printing to {@code out} and {@code err}; returns the exit status. */
    static int run(String[] args, PrintStream out, PrintStream err) {
        Map<String, Action> actions = new TreeMap<>();
        CommandLine ferry = commandLine(out, err, actions);
        ferry.setExecutionStrategy(parsed -> execute(ferry, parsed, actions, err));
        ferry.setParameterExceptionHandler((e, given) -> {
            err.println(oneLine(e));
            err.flush();
            return 2;
        });
        return ferry.execute(args);
    }

    /**
     * The command {@code name} alone, for parsing a command line without running it (matrix
     * checks every run's arguments so): a bad one throws picocli's ParameterException.
     */
    static ParsedOptions parse(String name, List<String> args) {
        CommandLine ferry = commandLine(System.out, System.err, new TreeMap<>());
        List<String> line = new ArrayList<>(List.of(name));
        line.addAll(args);
        return new ParsedOptions(ferry.parseArgs(line.toArray(String[]::new)).subcommand());
    }

    private static CommandLine commandLine(PrintStream out, PrintStream err, Map<String, Action> actions) {
        CommandSpec top = CommandSpec.create().name("ferry").version("ferry " + FerryVersion.current())
                .mixinStandardHelpOptions(true);
        top.usageMessage().description("Ferry moves a running guest's memory between hosts; this is its benchmark CLI.")
                .footerHeading("%n").footer(escape(ENVIRONMENT), "", escape(EXIT_STATUS)).width(WIDTH);
        CommandLine ferry = new CommandLine(top);
        BenchCommand bench = new BenchCommand(out, err);
        add(ferry, actions, "bench", "Migrate a workload between a source and a destination in this process, over a "
                + "real loopback socket, and report it.", BenchCommand.benchSections(), bench::bench);
        add(ferry, actions, "source", "Migrate a workload to a destination process (ferry dest).",
                BenchCommand.sourceSections(), bench::source);
        add(ferry, actions, "dest", "Receive one migration, then exit: prints 'listening on HOST:PORT' first, and exits 0 "
                + "only when it completed verified.", DestCommand.sections(), new DestCommand(out, err)::run);
        add(ferry, actions, "matrix", "Run bench over modes x stages x workloads x bandwidths x channels, each run in a JVM "
                + "of its own, and print a table of medians.", BenchCommand.matrixSections(), bench::matrix);
        CommandSpec trace = add(ferry, actions, "trace-info", "Summarise a memory trace and verify its checksum.",
                List.of(), o -> traceInfo(o, out));
        trace.addPositional(PositionalParamSpec.builder().paramLabel("TRACE").arity("1").index("0").required(true)
                .description("the trace file (FERRYMT1, zstd-compressed or not)").build());
        CommandSpec jmh = add(ferry, actions, "jmh", "Run the JMH suite; every argument goes to JMH (ferry jmh -- -h "
                + "for JMH's own help).", List.of(), Ferry::jmh);
        jmh.parser().unmatchedOptionsArePositionalParams(true);
        jmh.addPositional(PositionalParamSpec.builder().paramLabel("JMH_ARG").arity("0..*").index("0..*")
                .description("a JMH argument: a benchmark pattern, -f 1, -prof gc, -p name=values ...").build());
        CommandSpec help = add(ferry, actions, "help", "Show the help of a command, or of ferry.", List.of(),
                o -> help(ferry, o, out));
        help.addPositional(PositionalParamSpec.builder().paramLabel("COMMAND").arity("0..1").index("0")
                .description("the command").build());
        actions.put("ferry", o -> {
            ferry.usage(out);
            return 2;
        });
        ferry.setOut(new PrintWriter(out, true)).setErr(new PrintWriter(err, true));
        return ferry;
    }

    private static CommandSpec add(CommandLine ferry, Map<String, Action> actions, String name, String description,
            List<Section> sections, Action action) {
        CommandSpec spec = CommandSpec.create().name(name).version("ferry " + FerryVersion.current())
                .mixinStandardHelpOptions(true);
        spec.usageMessage().description(escape(description)).width(WIDTH).sortOptions(false)
                .customSynopsis(sections.isEmpty() ? new String[0] : new String[] {"ferry " + name + " [OPTIONS]"})
                .footerHeading("%n").footer(escape(sections.isEmpty() ? TOOL_EXIT_STATUS : EXIT_STATUS));
        for (Section section : sections) {
            if (section.options().isEmpty()) {
                continue;
            }
            ArgGroupSpec.Builder group = ArgGroupSpec.builder().heading(escape(section.heading()) + ":%n")
                    .exclusive(false).multiplicity("0..1");
            section.options().forEach(o -> group.addArg(o.spec()));
            spec.addArgGroup(group.build());
        }
        ferry.addSubcommand(name, new CommandLine(spec));
        actions.put(name, action);
        return spec;
    }

    private static int execute(CommandLine ferry, ParseResult parsed, Map<String, Action> actions, PrintStream err) {
        Integer help = CommandLine.executeHelpRequest(parsed);
        if (help != null) {
            return help;
        }
        ParseResult command = parsed;
        while (command.hasSubcommand()) {
            command = command.subcommand();
        }
        String name = command.commandSpec().qualifiedName();
        try {
            return actions.get(command.commandSpec().name()).run(new ParsedOptions(command));
        } catch (UsageException e) {
            err.println(name + ": " + e.getMessage());
            return 2;
        } catch (ParameterException e) {
            err.println(oneLine(e));
            return 2;
        } catch (Exception e) {
            err.println(name + ": " + (e.getMessage() != null ? e.getMessage() : e.toString()));
            return 1;
        } finally {
            err.flush();
        }
    }

    /** picocli's message on one line, with the options it suggests and where the help is. */
    private static String oneLine(ParameterException e) {
        String name = e.getCommandLine().getCommandSpec().qualifiedName();
        StringBuilder line = new StringBuilder(name).append(": ").append(e.getMessage().strip().replace('\n', ' '));
        if (e instanceof UnmatchedArgumentException unmatched && !unmatched.getSuggestions().isEmpty()) {
            line.append("; did you mean ").append(String.join(" or ", unmatched.getSuggestions())).append('?');
        }
        return line.append(" (").append(name).append(" --help lists the options)").toString();
    }

    private static int traceInfo(ParsedOptions o, PrintStream out) throws java.io.IOException {
        Path path = Path.of(o.positionals().getFirst());
        if (!Files.isRegularFile(path)) {
            throw new UsageException("no such trace file: " + path);
        }
        out.print(TraceSummary.of(path).format());
        return 0;
    }

    private static int jmh(ParsedOptions o) throws Exception {
        org.openjdk.jmh.Main.main(o.positionals().toArray(String[]::new));
        return 0;
    }

    private static int help(CommandLine ferry, ParsedOptions o, PrintStream out) {
        List<String> named = o.positionals();
        if (named.isEmpty()) {
            ferry.usage(out);
            return 0;
        }
        CommandLine command = ferry.getSubcommands().get(named.getFirst());
        if (command == null) {
            throw new UsageException("no command '" + named.getFirst() + "'; the commands are "
                    + String.join(", ", new ArrayList<>(ferry.getSubcommands().keySet())));
        }
        command.usage(out);
        return 0;
    }

    /** {@code text} as picocli prints it literally: it formats what it prints. */
    static String escape(String text) {
        return text.replace("%", "%%");
    }
}
