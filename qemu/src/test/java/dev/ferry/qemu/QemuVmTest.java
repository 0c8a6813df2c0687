package dev.ferry.qemu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.GuestMemory;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** QMP and the device-state stream on real QEMUs running the test guest under TCG. */
class QemuVmTest {
    private static final long RAM = 256L << 20;
    private static final long TIMEOUT = 30_000;
    private static Path image;

    @TempDir
    static Path dir;

    @BeforeAll
    static void tools() throws Exception {
        var missing = BootBlockGuest.missingTools();
        Assumptions.assumeTrue(missing.isEmpty(), () -> "skipped: " + missing.orElseThrow());
        image = BootBlockGuest.image(dir);
    }

    @Test
    void qmpRefusalsAreErrorsWithQemusClass() throws Exception {
        try (BootBlockGuest guest = BootBlockGuest.start(dir, image, "refuse", RAM, false, TIMEOUT);
                Qmp qmp = Qmp.connect(guest.qmpSocket(), TIMEOUT)) {
            QmpException e = assertThrows(QmpException.class, () -> qmp.execute("no-such-command"));
            assertEquals("CommandNotFound", e.errorClass());
            assertEquals("running", qmp.execute("query-status").path("status").asText());
        }
    }

    @Test
    void attachRefusesAFileQemuDoesNotMapAndADestinationNotWaiting() throws Exception {
        try (BootBlockGuest guest = BootBlockGuest.start(dir, image, "wrong", RAM, false, TIMEOUT)) {
            Path other = Files.createTempFile(dir, "other", ".ram");
            QmpException e = assertThrows(QmpException.class,
                    () -> QemuVm.attach(QemuVm.Side.SOURCE, guest.qmpSocket(), other, TIMEOUT));
            assertTrue(e.getMessage().contains("no memory backend"), e.getMessage());
            e = assertThrows(QmpException.class,
                    () -> QemuVm.attach(QemuVm.Side.DESTINATION, guest.qmpSocket(), guest.ramFile(), TIMEOUT));
            assertTrue(e.getMessage().contains("inmigrate"), e.getMessage());
        }
    }

    @Test
    void aDeadQemuFailsTheWaitingCommand() throws Exception {
        try (BootBlockGuest guest = BootBlockGuest.start(dir, image, "dead", RAM, false, TIMEOUT);
                Qmp qmp = Qmp.connect(guest.qmpSocket(), TIMEOUT)) {
            guest.kill();
            QmpException e = assertThrows(QmpException.class, () -> qmp.execute("query-status"));
            assertTrue(e.getMessage().contains("QMP socket"), e.getMessage());
        }
    }

    /** The device state through QEMU's stream, the RAM copied by hand: the guest runs on where it stopped. */
    @Test
    void deviceStateMovesTheGuestWithItsRam() throws Exception {
        try (BootBlockGuest source = BootBlockGuest.start(dir, image, "src", RAM, false, TIMEOUT);
                BootBlockGuest dest = BootBlockGuest.start(dir, image, "dst", RAM, true, TIMEOUT);
                QemuVm from = QemuVm.attach(QemuVm.Side.SOURCE, source.qmpSocket(), source.ramFile(), TIMEOUT);
                QemuVm to = QemuVm.attach(QemuVm.Side.DESTINATION, dest.qmpSocket(), dest.ramFile(), TIMEOUT)) {
            assertEquals(RAM, from.ramBytes());
            assertTrue(source.awaitSerial(0, 20, TIMEOUT), "the guest never ran: " + source.log());
            assertThrows(QmpException.class, to::resume, "a destination resumes only after its device state");
            from.pause();
            byte[] state = from.saveDeviceState();
            assertTrue(state.length > 0 && state.length < RAM / 16, "device state of " + state.length + " bytes");
            // into the file the destination QEMU maps: a new file in its place would be another inode
            try (FileChannel in = FileChannel.open(source.ramFile());
                    FileChannel out = FileChannel.open(dest.ramFile(), StandardOpenOption.WRITE)) {
                for (long at = 0; at < RAM; ) {
                    at += in.transferTo(at, RAM - at, out);
                }
            }
            int passes;
            try (GuestMemory ram = from.mapRam()) {
                assertTrue(BootBlockGuest.steps(ram.segment()) <= 1, "the stopped source is in order");
                passes = BootBlockGuest.passes(ram.segment());
            }
            try {
                to.loadDeviceState(state);
            } catch (QmpException e) {
                throw new AssertionError("destination QEMU: " + dest.log(), e);
            }
            long before = dest.serialBytes();
            to.resume();
            assertTrue(dest.awaitSerial(before, 20, TIMEOUT), "the destination guest does not run: " + dest.log());
            to.pause();
            try (GuestMemory ram = to.mapRam()) {
                assertTrue(BootBlockGuest.steps(ram.segment()) <= 1, "one step at most, got " + BootBlockGuest.steps(ram.segment()));
                assertTrue(BootBlockGuest.passes(ram.segment()) != passes, "the guest went on from where it was");
            }
        }
    }
}
