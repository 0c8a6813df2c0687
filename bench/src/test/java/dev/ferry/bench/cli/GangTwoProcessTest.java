package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.ReportJson;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A gang between two processes over real sockets: {@code ferry dest --gang 2} receives both guests
 * of {@code ferry source --vm A --vm B}, each over connections of its own, most pages of one
 * crossing as references to the other's copies in the destination process.
 */
class GangTwoProcessTest {
    @TempDir
    Path dir;

    @Test
    void aDestinationReceivesEveryGuestOfAGangFromASourceProcess() throws Exception {
        Path destJson = dir.resolve("dest.json");
        Path sourceJson = dir.resolve("source.json");
        try (FerryProcess dest = FerryProcess.start(dir, "dest", "--listen", "127.0.0.1:0", "--gang", "2",
                "--json", destJson.toString())) {
            int port = dest.awaitListeningPort();
            // both guests on the one address, over the connections they share
            try (FerryProcess source = FerryProcess.start(dir, "source", "--connect", "127.0.0.1:" + port, "--vm", "idle", "--vm", "uniform:5", "--memory", "32m",
                    "--fill", "mixed", "--stages", "zero,dedup", "--json", sourceJson.toString())) {
                assertEquals(0, source.awaitExit(120), source::outputText);
            }
            assertEquals(0, dest.awaitExit(60), dest::outputText);
        }
        JsonNode sent = ReportJson.parseObject(Files.readString(sourceJson));
        JsonNode received = ReportJson.parseObject(Files.readString(destJson));
        for (JsonNode report : new JsonNode[] {sent, received}) {
            assertEquals("COMPLETED", report.get("outcome").asText(), report.toString());
            assertTrue(report.get("verified").asBoolean());
            assertEquals(2, report.get("guests").size());
        }
        JsonNode guests = sent.get("guests");
        for (int m = 0; m < 2; m++) {
            assertEquals(guests.get(m).get("digest").asText(), received.get("guests").get(m).get("digest").asText(),
                    "member " + (m + 1) + ": both sides agree on the memory");
        }
        // one content twice (the same fill and seed); whichever guest sent a page first, the other refers to it
        assertTrue(sent.get("dedup").get("acrossGuests").asLong() > 4000, sent.get("dedup").toString());
        GangBenchCommandTest.assertOnlyRawPagesCostAPage(sent);
    }

    @Test
    void aGangSourceTakesOneAddressForAllItsGuests() throws Exception {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int code = Ferry.run(new String[] {"source", "--connect", "127.0.0.1:9", "--connect", "127.0.0.1:10", "--vm", "idle",
                "--vm", "idle"},
                new PrintStream(out), new PrintStream(out));
        assertEquals(2, code, out.toString());
        assertTrue(out.toString().contains("--connect once: a gang's guests share the destination's address"), out.toString());
    }
}
