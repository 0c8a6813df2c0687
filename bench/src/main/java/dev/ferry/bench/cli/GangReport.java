package dev.ferry.bench.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.ReportJson;
import java.util.List;

/**
 * The report of a gang: {@code guests}, each guest's own report with its {@code member} number
 * (and its {@code workload} and {@code destination}'s report where this process knows them), and
 * the totals: {@code outcome} (COMPLETED when every guest did), {@code verified} (every guest),
 * {@code bytesSent}, {@code memoryBytes} and {@code pagesSent} summed, {@code downtimeMs} the
 * longest guest's, the {@code dedup} counters summed.
 */
final class GangReport {
    /** One guest's part: its member number, its workload (or null), its report, its destination's (or null). */
    record Guest(int member, String workload, MigrationReport report, MigrationReport destination) {
        boolean succeeded() {
            return report.succeeded() && (destination == null || destination.succeeded());
        }
    }

    private GangReport() {
    }

    static ObjectNode json(List<Guest> guests) {
        ObjectNode json = ReportJson.object();
        ArrayNode each = json.putArray("guests");
        long bytes = 0;
        long hits = 0;
        long across = 0;
        long stale = 0;
        for (Guest g : guests) {
            ObjectNode one = g.report().toJsonNode();
            one.put("member", g.member());
            if (g.workload() != null) {
                one.put("workload", g.workload());
            }
            if (g.destination() != null) {
                one.set("destination", g.destination().toJsonNode());
            }
            each.add(one);
            bytes += g.report().bytesSent();
            if (g.report().dedup() != null) {
                hits += g.report().dedup().hits();
                across += g.report().dedup().acrossGuests();
                stale += g.report().dedup().stale();
            }
        }
        json.put("outcome", succeeded(guests) ? "COMPLETED" : "FAILED")
                .put("verified", guests.stream().allMatch(g -> g.report().verified()))
                .put("bytesSent", bytes)
                .put("memoryBytes", guests.stream().mapToLong(g -> g.report().memoryBytes()).sum())
                .put("pagesSent", guests.stream().mapToLong(g -> g.report().pagesSent()).sum());
        // the longest pause of any guest: each hands over on its own
        ReportJson.put(json, "downtimeMs", guests.stream().mapToDouble(g -> g.report().downtimeMs()).max().orElse(-1));
        json.putObject("dedup").put("hits", hits).put("acrossGuests", across).put("stale", stale);
        return json;
    }

    static boolean succeeded(List<Guest> guests) {
        return guests.stream().allMatch(Guest::succeeded);
    }

    /** The exit status: 1 when a guest failed, 3 when one paused past its limit, else 0. */
    static int exitStatus(List<Guest> guests) {
        return !succeeded(guests) ? 1
                : guests.stream().anyMatch(g -> g.report().downtimeLimitExceeded()) ? BenchCommand.EXIT_DOWNTIME_EXCEEDED : 0;
    }
}
