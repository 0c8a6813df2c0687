package dev.ferry.bench.cli;

import dev.ferry.bench.cli.Options.Option;
import dev.ferry.core.Configuration;
import java.io.PrintStream;
import java.util.List;
import java.util.stream.Collectors;

/** The {@code ferry} command line: benchmarks, the two sides of a migration, trace tools, JMH. */
public final class Ferry {
    private static final String COMMANDS = """
            usage: ferry COMMAND [OPTIONS]

            commands:
              bench        migrate a workload between a source and a destination in this process,
                           over a real loopback socket, and report it
              source       migrate a workload, or a QEMU guest (--qemu-qmp, --qemu-ram), to a destination
                           process (--connect HOST:PORT)
              dest         receive one migration (--listen HOST:PORT), then exit
              matrix       run bench over modes x stages x workloads x bandwidths, each run in a JVM
                           of its own, and print a table of medians
              trace-info   summarise a memory trace: ferry trace-info PATH
              jmh          run the JMH suite (arguments go to JMH)

            """;
    private static final String EXIT_STATUS = """
            Every setting's default can also be set for the process with -Dferry.NAME=VALUE (for ./ferry, in
            FERRY_JVM_OPTS); an option overrides it.

            exit status: 0 when the migration completed and was verified (matrix: every run did), 1 when
            it did not, 2 for a usage error.
            """;

    private Ferry() {
    }

    /** The help: every option of every command, each with its default; the settings' come from {@link Configuration}. */
    static String usage() {
        List<Option> source = MigrationFlags.options(MigrationFlags.SOURCE);
        List<Option> destination = MigrationFlags.options(MigrationFlags.DESTINATION);
        List<Option> both = source.stream().filter(destination::contains).toList();
        String passedOn = BenchCommand.MATRIX_COMMON.stream().map(o -> "--" + o.name()).collect(Collectors.joining(", "));
        return COMMANDS
                + Options.help("bench and source options", BenchCommand.OWN)
                + Options.help("bench options", BenchCommand.BENCH_OWN)
                + Options.help("source settings (bench, source)", minus(source, both))
                + Options.help("settings of both sides (bench, source, dest)", both)
                + Options.help("destination settings (bench, dest)", minus(destination, both))
                + Options.help("dest options", DestCommand.OWN)
                + Options.help("QEMU options (source, dest): migrate a QEMU guest, pre-copy", QemuTarget.OPTIONS)
                + Options.help("matrix options (each run is a bench; lists are comma-separated)", BenchCommand.MATRIX_OWN)
                        .stripTrailing() + "\n" + Options.paragraph(passedOn + ": passed to every run") + "\n"
                + EXIT_STATUS;
    }

    /** The options of {@code options} that {@code others} does not have. */
    private static List<Option> minus(List<Option> options, List<Option> others) {
        return options.stream().filter(o -> !others.contains(o)).toList();
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    private static int traceInfo(String[] args, PrintStream out) throws java.io.IOException {
        if (args.length != 2) {
            throw new UsageException("trace-info takes one trace path");
        }
        out.print(dev.ferry.bench.trace.TraceSummary.of(java.nio.file.Path.of(args[1])).format());
        return 0;
    }

    static int run(String[] args, PrintStream out, PrintStream err) {
        try {
            if (args.length == 0 || args[0].equals("--help") || args[0].equals("help")) {
                out.print(usage());
                return args.length == 0 ? 2 : 0;
            }
            return switch (args[0]) {
                case "bench" -> new BenchCommand(out, err).bench(args);
                case "source" -> new BenchCommand(out, err).source(args);
                case "matrix" -> new BenchCommand(out, err).matrix(args);
                case "dest" -> new DestCommand(out, err).run(args);
                case "trace-info" -> traceInfo(args, out);
                case "jmh" -> {
                    String[] rest = java.util.Arrays.copyOfRange(args, 1, args.length);
                    org.openjdk.jmh.Main.main(rest);
                    yield 0;
                }
                default -> throw new UsageException("unknown command '" + args[0] + "'");
            };
        } catch (UsageException e) {
            err.println("ferry: " + e.getMessage());
            err.println("run 'ferry --help' for the options");
            return 2;
        } catch (Exception e) {
            err.println("ferry: " + (e.getMessage() != null ? e.getMessage() : e.toString()));
            return 1;
        }
    }
}
