package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationListener;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.NanoClock;
import dev.ferry.core.RoundRecord;
import dev.ferry.core.SourceVmState;
import dev.ferry.qemu.BootBlockGuest;
import dev.ferry.qemu.ContentHashLog;
import dev.ferry.qemu.QemuVm;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real QEMU guest (the boot block, under TCG, 256 MiB) migrated by Ferry to a second QEMU over
 * loopback: Ferry carries the RAM through the shared files, QEMU the devices. The oracle is the
 * guest's: on the destination it keeps writing to serial, and its memory, stopped, shows at most
 * one step; after a failure it runs on the source.
 */
class QemuMigrationTest {
    /**
     * The test guest rewrites every page on every pass, so its rounds never converge: these tests
     * are about the hand-over, so it is forced (the default policy would fail it, guest running).
     */
    private static final MigrationParameters FORCED = MigrationParameters.builder()
            .convergence(dev.ferry.core.ConvergencePolicy.FORCE).build();

    private static final long RAM = 256L << 20;
    private static final long TIMEOUT = 30_000;
    private static final long MIGRATION_TIMEOUT = 180_000;
    private static Path image;

    @TempDir
    static Path dir;

    @BeforeAll
    static void tools() throws Exception {
        var missing = BootBlockGuest.missingTools();
        Assumptions.assumeTrue(missing.isEmpty(), () -> "skipped: " + missing.orElseThrow());
        image = BootBlockGuest.image(dir);
    }

    /** Both QEMUs, attached, their RAM mapped, the source's guest running. */
    private record Pair(BootBlockGuest source, BootBlockGuest dest, QemuVm from, QemuVm to, GuestMemory sourceRam,
            GuestMemory destRam, ContentHashLog log) implements AutoCloseable {
        static Pair start(String name, List<String> sourceExtra) throws Exception {
            BootBlockGuest source = BootBlockGuest.start(dir, image, name + "-src", RAM, false, TIMEOUT, sourceExtra);
            BootBlockGuest dest = BootBlockGuest.start(dir, image, name + "-dst", RAM, true, TIMEOUT);
            QemuVm from = QemuVm.attach(QemuVm.Side.SOURCE, source.qmpSocket(), source.ramFile(), TIMEOUT);
            QemuVm to = QemuVm.attach(QemuVm.Side.DESTINATION, dest.qmpSocket(), dest.ramFile(), TIMEOUT);
            GuestMemory sourceRam = from.mapRam();
            Pair pair = new Pair(source, dest, from, to, sourceRam, to.mapRam(),
                    new ContentHashLog(sourceRam, NanoClock.SYSTEM));
            assertTrue(source.awaitSerial(0, 20, TIMEOUT), "the guest never ran: " + source.log());
            return pair;
        }

        Result migrate(MigrationListener listener) throws Exception {
            try (IncomingMigration in = Migration.destination(to).memory(destRam)
                    .listen(new InetSocketAddress("127.0.0.1", 0)).start()) {
                OutgoingMigration out = Migration.source(sourceRam, log, from).parameters(FORCED)
                        .connect(in.address()).listener(listener).start();
                MigrationReport sent = out.result().get(MIGRATION_TIMEOUT, TimeUnit.MILLISECONDS);
                MigrationReport received = in.result().get(MIGRATION_TIMEOUT, TimeUnit.MILLISECONDS);
                return new Result(sent, received);
            }
        }

        String status(QemuVm vm) {
            return vm.qmp().execute("query-status").path("status").asText();
        }

        @Override
        public void close() throws Exception {
            log.close();
            sourceRam.close();
            destRam.close();
            from.close();
            to.close();
            source.close();
            dest.close();
        }
    }

    private record Result(MigrationReport source, MigrationReport destination) {
    }

    @Test
    void theGuestRunsOnTheDestinationWithItsMemoryInOrder() throws Exception {
        try (Pair pair = Pair.start("ok", List.of())) {
            Result result = pair.migrate(MigrationListener.NONE);
            assertEquals(MigrationState.COMPLETED, result.source().outcome(), result.source().error());
            assertTrue(result.source().verified(), "the source's memory is what was sent");
            assertEquals(MigrationState.COMPLETED, result.destination().outcome(), result.destination().error());
            assertEquals("postmigrate", pair.status(pair.from()), "the source QEMU stays stopped");
            long there = pair.dest().serialBytes();
            assertTrue(pair.dest().awaitSerial(there, 50, TIMEOUT), "the guest does not run on the destination");
            pair.to().pause();
            int steps = BootBlockGuest.steps(pair.destRam().segment());
            assertTrue(steps <= 1, "the destination's memory has " + steps + " steps: a page was lost or stale");
        }
    }

    @Test
    void destinationQemuKilledMidMigrationLeavesTheGuestRunningOnTheSource() throws Exception {
        try (Pair pair = Pair.start("killed", List.of())) {
            Result result = pair.migrate(new MigrationListener() {
                @Override
                public void onRound(RoundRecord round) {
                    if (round.round() == 1) {
                        try {
                            pair.dest().kill();
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }
                }
            });
            assertEquals(MigrationState.FAILED, result.source().outcome());
            assertEquals(SourceVmState.RUNNING, result.source().sourceVmState(), result.source().error());
            assertEquals("running", pair.status(pair.from()));
            long here = pair.source().serialBytes();
            assertTrue(pair.source().awaitSerial(here, 50, TIMEOUT), "the guest does not run on the source after the failure");
        }
    }

    /** A device that blocks QEMU's migration: QEMU refuses {@code migrate} at the switch-over, after Ferry's stop. */
    @Test
    void qmpRefusingTheDeviceStateResumesTheSourceAndNeverTheDestination() throws Exception {
        List<String> blocker = List.of("-object", "memory-backend-ram,id=peer,size=1M", "-device",
                "ivshmem-plain,memdev=peer");
        try (Pair pair = Pair.start("refused", blocker)) {
            Result result = pair.migrate(MigrationListener.NONE);
            assertEquals(MigrationState.FAILED, result.source().outcome());
            assertTrue(result.source().error().contains("QEMU refused migrate"), result.source().error());
            assertEquals(SourceVmState.RUNNING, result.source().sourceVmState());
            assertEquals("running", pair.status(pair.from()), "Ferry stopped the source, so it cont'ed it");
            assertEquals("inmigrate", pair.status(pair.to()), "the destination QEMU never got cont");
            long here = pair.source().serialBytes();
            assertTrue(pair.source().awaitSerial(here, 50, TIMEOUT), "the guest does not run on the source after the refusal");
        }
    }
}
