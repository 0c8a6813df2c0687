package dev.ferry.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class ReportJsonTest {
    private static final String NASTY = "quote \" backslash \\ newline \n return \r tab \t nul \u0000 bell \u0007 "
            + "unit-sep \u001f del \u007f e-acute \u00e9 euro \u20ac smile \uD83D\uDE00 slash /";

    @Test
    void escapesEveryCharacterJsonRequires() {
        String json = ReportJson.text(ReportJson.object().put(NASTY, NASTY));
        assertEquals(NASTY, ReportJson.parseObject(json).get(NASTY).asText());
        assertFalse(json.chars().anyMatch(c -> c < 0x20), "no raw control characters: " + json);
    }

    @Test
    void measuredFiguresHaveThreeDecimalsAndNoInfinity() {
        ObjectNode node = ReportJson.object();
        ReportJson.put(node, "nan", Double.NaN);
        ReportJson.put(node, "inf", Double.POSITIVE_INFINITY);
        ReportJson.put(node, "g", 1.23456);
        ObjectNode parsed = ReportJson.parseObject(ReportJson.text(node));
        assertTrue(parsed.get("nan").isNull());
        assertTrue(parsed.get("inf").isNull());
        assertEquals(1.235, parsed.get("g").asDouble());
    }

    @Test
    void refusesTextThatIsNotAnObjectSayingWhere() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ReportJson.parseObject("{\"a\": 1,, }"));
        assertTrue(e.getMessage().contains("at character"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ReportJson.parseObject("[1, 2]"));
    }

    @Test
    void migrationReportIsValidJsonWithItsFields() {
        RoundRecord bulk = new RoundRecord(1, RoundKind.BULK, 1000, 4_100_000, 12.5, 17, 328_000_000L, 0.2, false,
                "not \"negotiated\"", Map.of("zero", 4096L));
        RoundRecord last = new RoundRecord(2, RoundKind.STOP_AND_COPY, 17, 70_000, 0.1, 0, 700_000_000L,
                Double.POSITIVE_INFINITY, false, "n/a", Map.of());
        MigrationReport report = new MigrationReport("source", MigrationMode.PRECOPY, 1L << 30, 4096, MigrationState.FAILED,
                false, 20.0, -1, 0.2, 4_170_000, 1017, List.of(bulk, last), Map.of("normal", 900L, "zero", 117L),
                EnumSet.of(Capability.ZERO_PAGES, Capability.LZ4), NASTY, SourceVmState.RUNNING, false, 0xFEDCBA9876543210L, null,
                null, "m-1", 3.5, new Switchover(SwitchoverReason.STALLED, ConvergencePolicy.FORCE, 300, 2, 0, true,
                        new DowntimeBreakdown(1, 400, 0, 0.5), DowntimeBreakdown.UNKNOWN));

        ObjectNode json = ReportJson.parseObject(report.toJson());
        assertEquals("source", json.get("role").asText());
        assertEquals("precopy", json.get("mode").asText());
        assertEquals(1L << 30, json.get("memoryBytes").asLong());
        assertEquals("FAILED", json.get("outcome").asText());
        assertFalse(json.get("verified").asBoolean());
        assertEquals(-1.0, json.get("downtimeMs").asDouble());
        assertEquals(List.of("zero", "lz4"), json.get("capabilities").valueStream().map(JsonNode::asText).toList());
        assertEquals(900, json.get("pages").get("normal").asLong());
        assertEquals(117, json.get("pages").get("zero").asLong());
        assertEquals(NASTY, json.get("error").asText());
        assertEquals("RUNNING", json.get("sourceVmState").asText());
        assertEquals("fedcba9876543210", json.get("digest").asText());
        assertEquals("m-1", json.get("migrationId").asText());
        assertEquals(3.5, json.get("setupTimeMs").asDouble());
        JsonNode switchover = json.get("switchover");
        assertEquals("stalled", switchover.get("reason").asText());
        assertEquals("force", switchover.get("policy").asText());
        assertTrue(switchover.get("limitExceeded").asBoolean());
        assertEquals(401.5, switchover.get("predicted").get("totalMs").asDouble());
        assertEquals(-1.0, switchover.get("actual").get("totalMs").asDouble(), "nothing measured: unknown");
        assertTrue(report.downtimeLimitExceeded());
        JsonNode rounds = json.get("rounds");
        assertEquals(2, rounds.size());
        assertEquals("not \"negotiated\"", rounds.get(0).get("compressionReason").asText());
        assertEquals(4096, rounds.get(0).get("bytesSavedByStage").get("zero").asLong());
        assertTrue(rounds.get(1).has("expectedDowntimeMs"));
        assertTrue(rounds.get(1).get("expectedDowntimeMs").isNull(), "infinity is written as null");
    }

    @Test
    void postcopyMembersJoinTheReport() {
        PostcopyReport postcopy = new PostcopyReport(1, 12, 10, 500, 42.5, 0, "userfaultfd", 80, 900, 1200,
                List.of(new long[] {100, 7}, new long[] {1300, 5}));
        MigrationReport report = new MigrationReport("source", MigrationMode.POSTCOPY, 4096, 4096,
                MigrationState.COMPLETED, true, 1, 0.5, -1, 100, 1, List.of(), Map.of(), EnumSet.noneOf(Capability.class),
                null, SourceVmState.STOPPED, true, 1, postcopy, null, "m-1", 2.0, null);
        ObjectNode json = ReportJson.parseObject(report.toJson());
        assertEquals(12, json.get("faults").asLong());
        assertEquals(900, json.get("faultLatencyMicros").get("p99").asLong());
        assertEquals(5, json.get("faultLatencyMicros").get("histogram").get(1).get("count").asLong());
        assertEquals(500, json.get("pagesPushed").asLong());
        assertEquals(42.5, json.get("postcopyTimeMs").asDouble());
        assertEquals("userfaultfd", json.get("faultMechanism").asText());
    }

    @Test
    void destinationReportOmitsSourceOnlyMembers() {
        MigrationReport report = new MigrationReport("destination", MigrationMode.POSTCOPY, 4096, 4096,
                MigrationState.COMPLETED, true, 1, 0.5, -1, 100, 1, List.of(), Map.of(), EnumSet.noneOf(Capability.class),
                null, null, true, 1, null, null, "m-1", 2.0, null);
        ObjectNode json = ReportJson.parseObject(report.toJson());
        assertFalse(json.has("error"));
        assertFalse(json.has("sourceVmState"));
        assertEquals("0000000000000001", json.get("digest").asText());
        assertEquals(0, json.get("capabilities").size());
        assertTrue(report.succeeded());
    }
}
