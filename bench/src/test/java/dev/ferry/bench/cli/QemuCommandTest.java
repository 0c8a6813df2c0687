package dev.ferry.bench.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.qemu.BootBlockGuest;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry dest --qemu-qmp} and {@code ferry source --qemu-qmp}, each a process of its own, move a QEMU guest. */
class QemuCommandTest {
    private static final long RAM = 256L << 20;
    private static final long TIMEOUT = 30_000;

    @TempDir
    Path dir;

    @Test
    void sourceAndDestMigrateAQemuGuest() throws Exception {
        var missing = BootBlockGuest.missingTools();
        Assumptions.assumeTrue(missing.isEmpty(), () -> "skipped: " + missing.orElseThrow());
        Path image = BootBlockGuest.image(dir);
        Path sourceJson = dir.resolve("source.json");
        try (BootBlockGuest src = BootBlockGuest.start(dir, image, "cli-src", RAM, false, TIMEOUT);
                BootBlockGuest dst = BootBlockGuest.start(dir, image, "cli-dst", RAM, true, TIMEOUT);
                FerryProcess dest = FerryProcess.start(dir, "dest", "--listen", "127.0.0.1:0", "--qemu-qmp",
                        dst.qmpSocket().toString(), "--qemu-ram", dst.ramFile().toString())) {
            assertTrue(src.awaitSerial(0, 20, TIMEOUT), "the guest never ran: " + src.log());
            int port = dest.awaitListeningPort();
            try (FerryProcess source = FerryProcess.start(dir, "source", "--connect", "127.0.0.1:" + port,
                    "--qemu-qmp", src.qmpSocket().toString(), "--qemu-ram", src.ramFile().toString(),
                    // the test guest rewrites every page each pass: a hand-over is forced, within a limit it can meet
                    "--convergence", "force", "--downtime-limit", "5000", "--json", sourceJson.toString())) {
                assertEquals(0, source.awaitExit(180), source::outputText);
                assertTrue(source.outputText().contains("content-hash scan"), source::outputText);
            }
            assertEquals(0, dest.awaitExit(30), dest::outputText);
            String report = Files.readString(sourceJson);
            assertTrue(report.contains("\"dirtyLog\":\"content-hash\"") && report.contains("\"qemuStep\":\"DEVICES_SAVED\""),
                    report);
            long there = dst.serialBytes();
            assertTrue(dst.awaitSerial(there, 50, TIMEOUT), "the guest does not run on the destination: " + dst.log());
        }
    }
}
