package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.ReportJson;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry bench --vm SPEC --vm SPEC}: the guests of a gang migrate together and the report
 * holds each guest's report and the gang's totals; with dedup, guests started from the same
 * contents send most pages as references to each other's copies, and without the shared index
 * ({@code --within-guests}) none.
 */
class GangBenchCommandTest {
    @TempDir
    Path dir;

    private ObjectNode gang(String name, String... extra) throws Exception {
        Path json = dir.resolve(name + ".json");
        String[] args = {"bench", "--vm", "idle", "--vm", "uniform:5", "--memory", "32m", "--fill", "mixed",
                "--json", json.toString()};
        String[] all = java.util.stream.Stream.concat(java.util.Arrays.stream(args), java.util.Arrays.stream(extra))
                .toArray(String[]::new);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int code = Ferry.run(all, new PrintStream(out), new PrintStream(out));
        assertEquals(0, code, out.toString());
        assertTrue(out.toString().contains("gang               COMPLETED (verified), 2 guests"), out.toString());
        return ReportJson.parseObject(Files.readString(json));
    }

    private static long sum(JsonNode guests, String field) {
        long total = 0;
        for (JsonNode g : guests) {
            total += g.get(field).asLong();
        }
        return total;
    }

    @Test
    void guestsOfOneContentCrossMostlyAsReferencesToEachOtherAndTheReportAddsThemUp() throws Exception {
        ObjectNode off = gang("off", "--stages", "zero");
        ObjectNode across = gang("across", "--stages", "zero,dedup");
        ObjectNode within = gang("within", "--stages", "zero,dedup", "--within-guests");
        for (ObjectNode report : java.util.List.of(off, across, within)) {
            JsonNode guests = report.get("guests");
            assertEquals(2, guests.size());
            assertEquals("COMPLETED", report.get("outcome").asText());
            assertTrue(report.get("verified").asBoolean());
            assertEquals(sum(guests, "bytesSent"), report.get("bytesSent").asLong(), "the total is the guests' sum");
            for (int m = 0; m < 2; m++) {
                assertEquals(m + 1, guests.get(m).get("member").asInt());
                assertTrue(guests.get(m).get("verified").asBoolean());
                assertEquals("COMPLETED", guests.get(m).get("destination").get("outcome").asText());
            }
        }
        assertEquals(0, within.get("dedup").get("acrossGuests").asLong(), "no shared index, no reference across");
        assertEquals(0, within.get("dedup").get("gangIndexBytes").asLong());
        long grown = across.get("dedup").get("gangIndexBytes").asLong();
        assertTrue(grown >= 1L << 20 && grown < 64L << 20, "grown as its contents need, below dedup-index-size's default: " + grown);
        assertEquals(0, across.get("dedup").get("gangIndexEvictions").asLong(), "4 M entries hold two 32 MiB guests");
        // an index of 1024 entries for 16 k pages: bounded, it evicts, and every guest still verifies
        ObjectNode small = gang("small", "--stages", "zero,dedup", "--dedup-index-size", "16k");
        assertEquals(16L << 10, small.get("dedup").get("gangIndexBytes").asLong());
        assertTrue(small.get("dedup").get("gangIndexEvictions").asLong() > 0, small.get("dedup").toString());
        assertTrue(small.get("verified").asBoolean());
        long references = across.get("dedup").get("acrossGuests").asLong();
        // 32 MiB of one content twice: most of one guest's 8192 pages name the other's copies
        assertTrue(references > 4000, "references across guests: " + references);
        assertOnlyRawPagesCostAPage(across);
    }

    /**
     * Each page that crossed as a reference or a zero page cost a few bytes, where a raw one cost 4096: a bound
     * from the gang's own page counts, not a ratio to another run, which a dirtying guest's resent pages and the
     * guests' race for the first copies would move.
     */
    static void assertOnlyRawPagesCostAPage(JsonNode gang) {
        long raw = 0;
        for (JsonNode guest : gang.get("guests")) {
            raw += guest.get("pages").path("raw").asLong();
        }
        long bound = raw * 4096 + gang.get("pagesSent").asLong() * 64 + 65536;
        assertTrue(gang.get("bytesSent").asLong() < bound,
                "only the pages sent raw cost a page each: " + gang.get("bytesSent") + " bytes, bound " + bound);
    }
}
