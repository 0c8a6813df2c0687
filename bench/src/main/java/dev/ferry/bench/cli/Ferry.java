package dev.ferry.bench.cli;

import java.io.PrintStream;

/** The {@code ferry} command line: benchmarks, the two sides of a migration, trace tools, JMH. */
public final class Ferry {
    static final String USAGE = """
            usage: ferry COMMAND [OPTIONS]

            commands:
              bench        migrate a workload between a source and a destination in this process,
                           over a real loopback socket, and report it
              source       migrate a workload to a destination process (--connect HOST:PORT)
              dest         receive one migration (--listen HOST:PORT), then exit
              matrix       run bench over modes x stages x workloads x bandwidths, each run in a JVM
                           of its own, and print a table of medians
              trace-info   summarise a memory trace: ferry trace-info PATH
              jmh          run the JMH suite (arguments go to JMH)

            migration options (bench, source):
              --mode precopy|postcopy|hybrid how to hand over (default precopy); postcopy switches
                                             after the bulk round, hybrid once pre-copy stops converging
              --postcopy-after-rounds N      hybrid: switch to post-copy after N rounds at the latest
              --fault-mechanism auto|userfaultfd|software
                                             how the destination catches accesses to missing pages
                                             during post-copy (default auto: userfaultfd if allowed)
              --recover-timeout MS           how long a link lost during post-copy may stay lost:
                                             the source reconnects, the destination waits (default 60000)
              --workload SPEC                idle | uniform:MBPS | hotset:FRACTION:MBPS | zipf:S:MBPS |
                                             sequential:MBPS | trace:PATH[:SPEED]   (default idle)
              --memory SIZE                  guest RAM, e.g. 512m, 1g (not needed for trace:)
              --fill random|text|mixed       initial contents of synthetic workloads (default random)
              --trace-loop                   replay the trace's epochs again after the last
              --seed N                       seed of the workload's randomness (default 1)
              --downtime-limit MS            QEMU downtime-limit (default 300)
              --max-bandwidth BYTES_PER_SEC  QEMU max-bandwidth, 0 = unlimited (default 0)
              --max-rounds N                 switch over after N rounds whatever the estimate (default 30)
              --time-limit MS                switch over after MS whatever the estimate (default none)
              --stages LIST                  auto (zero,xbzrle,lz4), none, or a subset of
                                             zero,xbzrle,lz4,zstd (default auto)
              --compression adaptive|always  whether LZ4/zstd are chosen every 8 MiB by measuring
                                             how fast pages cross with and without them, or always
                                             used (default adaptive)
              --xbzrle-cache-size SIZE       default 64m
              --zstd-level N                 default 1
              --peer-timeout MS              a silent peer is dead after MS (default 10000)
              --json FILE                    write the report as JSON
              --report FILE.html             write the report as a self-contained HTML page with charts

            matrix options (each run is a bench; lists are comma-separated):
              --modes LIST                   default precopy
              --stages LIST                  stage sets, default auto; join a subset with +: none,auto,zero+lz4
              --workloads LIST               workload specs, default idle
              --max-bandwidth LIST           bytes per second, 0 = unlimited (default 0)
              --repeat N                     runs per combination; the table shows medians (default 1)
              --markdown FILE                also write the table as Markdown
              --runs-dir DIR                 keep each run's JSON and output there (default: discarded)
              --run-timeout S                kill a run still going after S seconds (default 600)
              --memory, --fill, --seed, --downtime-limit, --max-rounds, --time-limit, --compression,
              --xbzrle-cache-size, --zstd-level, --peer-timeout, --trace-loop: passed to every run

            dest options:
              --listen HOST:PORT             where to listen (port 0 picks one; the line
                                             "listening on HOST:PORT" is printed first)
              --memory SIZE                  refuse sources of another size (default: from the handshake)
              --accept-timeout MS            give up when no source connects in time (default 300000)
              --fault-mechanism ...          as above
              --recover-timeout MS           as above
              --json FILE                    write this side's report as JSON

            exit status: 0 when the migration completed and was verified (matrix: every run did), 1 when
            it did not, 2 for a usage error.
            """;

    private Ferry() {
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
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("help")) {
            out.print(USAGE);
            return args.length == 0 ? 2 : 0;
        }
        try {
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
