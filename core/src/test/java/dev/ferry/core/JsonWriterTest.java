package dev.ferry.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class JsonWriterTest {
    private static final String NASTY = "quote \" backslash \\ newline \n return \r tab \t nul \u0000 bell \u0007 "
            + "unit-sep \u001f del \u007f e-acute \u00e9 euro \u20ac smile \uD83D\uDE00 slash /";

    @Test
    void escapesEveryCharacterJsonRequires() throws JsonReader.SyntaxError {
        String json = new JsonWriter().beginObject().name(NASTY).value(NASTY).endObject().toString();
        assertEquals(Map.of(NASTY, NASTY), JsonReader.parseObject(json));
        assertFalse(json.chars().anyMatch(c -> c < 0x20), "no raw control characters: " + json);
    }

    @Test
    void placesCommasInNestedStructures() throws JsonReader.SyntaxError {
        String json = new JsonWriter().beginObject()
                .name("a").beginArray().value(1).value("two").beginObject().endObject().beginArray().endArray().endArray()
                .name("b").beginObject().name("c").value(true).name("d").value((String) null).endObject()
                .name("e").value(Double.NaN).name("f").value(Double.POSITIVE_INFINITY).name("g").value(1.23456)
                .endObject().toString();
        Map<String, Object> parsed = JsonReader.parseObject(json);
        assertEquals(List.of(1.0, "two", Map.of(), List.of()), parsed.get("a"));
        Map<String, Object> b = new LinkedHashMap<>();
        b.put("c", true);
        b.put("d", JsonReader.NULL);
        assertEquals(b, parsed.get("b"));
        assertEquals(JsonReader.NULL, parsed.get("e"));
        assertTrue(parsed.containsKey("f") && parsed.get("f") == JsonReader.NULL);
        assertEquals(1.235, parsed.get("g"));
    }

    @Test
    void migrationReportIsValidJsonWithItsFields() throws JsonReader.SyntaxError {
        RoundRecord bulk = new RoundRecord(1, "bulk", 1000, 4_100_000, 12.5, 17, 328_000_000L, 0.2, false,
                "not \"negotiated\"", Map.of("zero", 4096L));
        RoundRecord last = new RoundRecord(2, "stop-and-copy", 17, 70_000, 0.1, 0, 700_000_000L,
                Double.POSITIVE_INFINITY, false, "n/a", Map.of());
        MigrationReport report = new MigrationReport("source", MigrationMode.PRECOPY, 1L << 30, 4096, MigrationState.FAILED,
                false, 20.0, -1, 0.2, 4_170_000, 1017, List.of(bulk, last), Map.of("normal", 900L, "zero", 117L),
                EnumSet.of(Capability.ZERO_PAGES, Capability.LZ4), NASTY, "RUNNING", false, 0xFEDCBA9876543210L, null,
                "m-1", 3.5, new Switchover("stalled", ConvergencePolicy.FORCE, 300, 2, 0, true,
                        new DowntimeBreakdown(1, 400, 0, 0.5), DowntimeBreakdown.UNKNOWN));

        Map<String, Object> json = JsonReader.parseObject(report.toJson());
        assertEquals("source", json.get("role"));
        assertEquals("precopy", json.get("mode"));
        assertEquals((double) (1L << 30), json.get("memoryBytes"));
        assertEquals("FAILED", json.get("outcome"));
        assertEquals(false, json.get("verified"));
        assertEquals(-1.0, json.get("downtimeMs"));
        assertEquals(List.of("zero", "lz4"), json.get("capabilities"));
        assertEquals(Map.of("normal", 900.0, "zero", 117.0), json.get("pages"));
        assertEquals(NASTY, json.get("error"));
        assertEquals("RUNNING", json.get("sourceVmState"));
        assertEquals("fedcba9876543210", json.get("digest"));
        assertEquals("m-1", json.get("migrationId"));
        assertEquals(3.5, json.get("setupTimeMs"));
        Map<?, ?> switchover = (Map<?, ?>) json.get("switchover");
        assertEquals("stalled", switchover.get("reason"));
        assertEquals("force", switchover.get("policy"));
        assertEquals(true, switchover.get("limitExceeded"));
        assertEquals(401.5, ((Map<?, ?>) switchover.get("predicted")).get("totalMs"));
        assertEquals(-1.0, ((Map<?, ?>) switchover.get("actual")).get("totalMs"), "nothing measured: unknown");
        assertTrue(report.downtimeLimitExceeded());
        List<?> rounds = (List<?>) json.get("rounds");
        assertEquals(2, rounds.size());
        Map<?, ?> first = (Map<?, ?>) rounds.get(0);
        assertEquals("not \"negotiated\"", first.get("compressionReason"));
        assertEquals(Map.of("zero", 4096.0), first.get("bytesSavedByStage"));
        assertTrue(((Map<?, ?>) rounds.get(1)).containsKey("expectedDowntimeMs"));
        assertEquals(JsonReader.NULL, ((Map<?, ?>) rounds.get(1)).get("expectedDowntimeMs"), "infinity is written as null");
    }

    @Test
    void destinationReportOmitsSourceOnlyMembers() throws JsonReader.SyntaxError {
        MigrationReport report = new MigrationReport("destination", MigrationMode.POSTCOPY, 4096, 4096,
                MigrationState.COMPLETED, true, 1, 0.5, -1, 100, 1, List.of(), Map.of(), EnumSet.noneOf(Capability.class),
                null, null, true, 1, null, "m-1", 2.0, null);
        Map<String, Object> json = JsonReader.parseObject(report.toJson());
        assertFalse(json.containsKey("error"));
        assertFalse(json.containsKey("sourceVmState"));
        assertEquals("0000000000000001", json.get("digest"));
        assertEquals(List.of(), json.get("capabilities"));
        assertFalse(json.containsKey("switchover"));
        assertTrue(report.succeeded());
        assertFalse(report.downtimeLimitExceeded());
    }
}
