package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.MigrationReport;
import java.util.Map;
import org.junit.jupiter.api.Test;

class WarmUpTest {
    @Test
    void runsOneVerifiedMigrationThroughEveryStageOncePerProcess() {
        MigrationReport report = WarmUp.run();
        assertNotNull(report, "nothing else in this test JVM warms up");
        assertTrue(report.succeeded() && report.verified(), report.error());
        assertTrue(report.rounds().size() >= 3, "bulk, sparse iterate rounds and stop-and-copy: " + report.rounds());
        Map<String, Long> pages = report.pagesByKind();
        assertTrue(pages.getOrDefault("zero", 0L) > 0, "zero pages: " + pages);
        assertTrue(pages.getOrDefault("xbzrle", 0L) > 0, "XBZRLE deltas: " + pages);
        assertTrue(report.rounds().stream().anyMatch(r -> r.compressed()), "LZ4/zstd ran: " + report.rounds());
        assertNull(WarmUp.run(), "a second call does nothing");
        Migration.warmUp();
    }
}
