package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.MigrationReport;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class WarmUpTest {
    @Test
    void runsOneVerifiedMigrationThroughEveryStageOncePerProcess() {
        List<MigrationReport> reports = WarmUp.run();
        assertEquals(17, reports.size(), "nothing else in this test JVM warms up: the all-stages run and sixteen raw passes");
        MigrationReport report = reports.get(0);
        assertTrue(report.succeeded() && report.verified(), report.error());
        assertTrue(report.rounds().size() >= 3, "bulk, sparse iterate rounds and stop-and-copy: " + report.rounds());
        Map<String, Long> pages = report.pagesByKind();
        assertTrue(pages.getOrDefault("zero", 0L) > 0, "zero pages: " + pages);
        assertTrue(pages.getOrDefault("xbzrle", 0L) > 0, "XBZRLE deltas: " + pages);
        assertTrue(report.rounds().stream().anyMatch(r -> r.compressed()), "LZ4/zstd ran: " + report.rounds());
        for (int pass = 1; pass < reports.size(); pass++) {
            MigrationReport raw = reports.get(pass);
            assertTrue(raw.succeeded() && raw.verified(), raw.error());
            long references = raw.pagesByKind().getOrDefault("dedup", 0L);
            if (pass % 2 == 0) {
                // a quarter of 32768 pages are twins of the page before, in the same stripe
                assertTrue(references > 4096, "pass " + pass + " refers to twins: " + raw.pagesByKind());
            } else {
                assertEquals(0, references, "pass " + pass + " has no dedup");
                assertTrue(raw.pagesByKind().getOrDefault("raw", 0L) > 16384, "raw pages: " + raw.pagesByKind());
            }
        }
        assertTrue(WarmUp.run().isEmpty(), "a second call does nothing");
        Migration.warmUp();
    }
}
