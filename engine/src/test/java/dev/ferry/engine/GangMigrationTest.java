package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Capability;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.PageDigest;
import dev.ferry.core.SourceVmState;
import dev.ferry.core.VmControl;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Guests of a gang over real connections: a page another member already sent crosses as a
 * reference to that member's copy on the destination, which the destination checks before it
 * installs it; a copy changed there since is a stale reference, and the page crosses in full; and
 * members migrating at once, their connections in no order with each other, all verify.
 */
class GangMigrationTest {
    private static final long SIZE = 16L << 20;
    private static final MigrationParameters DEDUP = MigrationParameters.builder()
            .capabilities(EnumSet.of(Capability.ZERO_PAGES, Capability.DEDUP)).build();

    private static MigrationReport migrate(Gang source, Gang destination, int member, TestGuest guest, TestGuest target)
            throws Exception {
        try (IncomingMigration in = Migration.destination(target).memory(target.memory).gang(destination, member).start();
             OutgoingMigration out = Migration.source(guest.memory, guest.dirty, guest).parameters(DEDUP)
                     .gang(source, member).connect(in.address()).start()) {
            MigrationReport report = out.await(Duration.ofSeconds(60));
            MigrationReport received = in.await(Duration.ofSeconds(10));
            assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
            assertTrue(report.verified() && received.verified(), report.error() + " / " + received.error());
            assertEquals(report.digest(), received.digest());
            return report;
        }
    }

    @Test
    void aMemberWhosePagesAnotherMemberSentCrossesAsReferencesToThemAndVerifies() throws Exception {
        Gang source = Gang.create();
        Gang destination = Gang.create();
        try (TestGuest first = new TestGuest(SIZE, 7, false); TestGuest second = new TestGuest(SIZE, 7, false);
             TestGuest firstTarget = new TestGuest(SIZE, 0, false); TestGuest secondTarget = new TestGuest(SIZE, 0, false)) {
            MigrationReport one = migrate(source, destination, 1, first, firstTarget);
            MigrationReport two = migrate(source, destination, 2, second, secondTarget);
            long nonZero = SIZE / GuestMemory.PAGE_SIZE * 3 / 4;
            assertEquals(0, one.dedup().acrossGuests(), "the first member has nobody to refer to");
            // the same contents: every non-zero page of the second refers to the first's copy
            assertEquals(nonZero, two.dedup().acrossGuests(), two.dedup().toString());
            assertEquals(0, two.dedup().stale());
            assertTrue(two.bytesSent() * 20 < one.bytesSent(), two.bytesSent() + " bytes against " + one.bytesSent());
            assertEquals(PageDigest.scan(second.memory), PageDigest.scan(secondTarget.memory));
        }
    }

    @Test
    void aCopyChangedOnTheDestinationSinceIsAStaleReferenceAndThePageCrossesInFull() throws Exception {
        Gang source = Gang.create();
        Gang destination = Gang.create();
        try (TestGuest first = new TestGuest(SIZE, 7, false); TestGuest second = new TestGuest(SIZE, 7, false);
             TestGuest firstTarget = new TestGuest(SIZE, 0, false); TestGuest secondTarget = new TestGuest(SIZE, 0, false)) {
            migrate(source, destination, 1, first, firstTarget);
            // the first member runs on the destination now, and writes: page 1 of every 8 changes there
            long changed = 0;
            for (long page = 1; page < firstTarget.memory.pageCount(); page += 8) {
                firstTarget.memory.segment().set(ValueLayout.JAVA_LONG, page * GuestMemory.PAGE_SIZE + 64, page);
                changed++;
            }
            MigrationReport two = migrate(source, destination, 2, second, secondTarget);
            assertEquals(changed, two.dedup().stale(), two.dedup().toString());
            assertEquals(PageDigest.scan(second.memory), PageDigest.scan(secondTarget.memory));
        }
    }

    @Test
    void membersMigratingAtOnceAllVerify() throws Exception {
        Gang source = Gang.create();
        Gang destination = Gang.create();
        List<IncomingMigration> ins = new ArrayList<>();
        List<OutgoingMigration> outs = new ArrayList<>();
        try (Opened opened = new Opened()) {
            for (int member = 1; member <= 3; member++) {
                TestGuest guest = opened.add(new TestGuest(SIZE, 7, true));
                TestGuest target = opened.add(new TestGuest(SIZE, 0, false));
                IncomingMigration in = opened.add(Migration.destination(target).memory(target.memory)
                        .gang(destination, member).start());
                ins.add(in);
                outs.add(opened.add(Migration.source(guest.memory, guest.dirty, guest).parameters(DEDUP).gang(source, member)
                        .connect(in.address()).start()));
            }
            for (int m = 0; m < 3; m++) {
                MigrationReport report = outs.get(m).await(Duration.ofSeconds(60));
                assertEquals(MigrationState.COMPLETED, report.outcome(), "member " + (m + 1) + ": " + report.error());
                assertTrue(report.verified(), report.error());
                assertTrue(ins.get(m).await(Duration.ofSeconds(10)).verified());
            }
        }
    }

    @Test
    void membersShareTheSessionsConnectionsAndEachVerifies() throws Exception {
        Gang source = Gang.create();
        Gang destination = Gang.create();
        // a short peer timeout: each side's heartbeats go out on the shared connections (every 100 ms when quiet)
        MigrationParameters twoChannels = MigrationParameters.builder()
                .capabilities(EnumSet.of(Capability.ZERO_PAGES, Capability.DEDUP)).channels(2).peerTimeoutMillis(400).build();
        List<IncomingMigration> ins = new ArrayList<>();
        List<OutgoingMigration> outs = new ArrayList<>();
        try (Opened opened = new Opened()) {
            for (int member = 1; member <= 3; member++) {
                TestGuest target = opened.add(new TestGuest(SIZE, 0, false));
                ins.add(opened.add(Migration.destination(target).memory(target.memory).peerTimeoutMillis(400)
                        .gang(destination, member).start()));
            }
            assertEquals(1, ins.stream().map(IncomingMigration::address).distinct().count(), "one listening socket");
            TcpProxy proxy = opened.add(new TcpProxy(ins.getFirst().address()));
            // no member pauses before all three ask to, so all three migrate at once: a member that ended before
            // the next began would leave it connections of its own (nine in a CI run, no two overlapping)
            CountDownLatch pausing = new CountDownLatch(3);
            for (int member = 1; member <= 3; member++) {
                TestGuest guest = opened.add(new TestGuest(SIZE, 7, true));
                outs.add(opened.add(Migration.source(guest.memory, guest.dirty, pausingTogether(guest, pausing))
                        .parameters(twoChannels).gang(source, member).connect(proxy.address()).start()));
            }
            for (int m = 0; m < 3; m++) {
                MigrationReport report = outs.get(m).await(Duration.ofSeconds(60));
                assertEquals(MigrationState.COMPLETED, report.outcome(), "member " + (m + 1) + ": " + report.error());
                MigrationReport received = ins.get(m).await(Duration.ofSeconds(10));
                assertTrue(report.verified() && received.verified(), report.error() + " / " + received.error());
                assertEquals(report.digest(), received.digest());
            }
            // three each when every guest has its own (nine); shared, three for all
            assertEquals(3, proxy.connections().size(), "connections opened by three guests of two channels each");
        }
    }

    /** A guest whose pause waits, bounded, until every member of its gang has asked for its own. */
    private static VmControl pausingTogether(TestGuest guest, CountDownLatch pausing) {
        return new ForwardingVm(guest) {
            @Override
            public void pause() {
                pausing.countDown();
                try {
                    if (!pausing.await(30, TimeUnit.SECONDS)) {
                        throw new IllegalStateException("the other members did not reach their pause within 30 s");
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException(e);
                }
                super.pause();
            }
        };
    }

    /**
     * Both members in post-copy, pushing over the page channels they share, when the shared
     * connection of page channel 0 is cut: the one lost connection is each member's loss, each
     * recovers over the connections the first to reconnect opened, and both complete verified.
     */
    @Test
    void aSharedConnectionLostInPostcopyIsRecoveredByEveryMemberOnIt() throws Exception {
        Gang source = Gang.create(16_000_000, dev.ferry.core.Configuration.DEDUP_INDEX_SIZE.value());
        Gang destination = Gang.create();
        // a recovery that cannot succeed ends within the test's wait, with its last attempt's reason
        MigrationParameters postcopy = MigrationParameters.builder().mode(dev.ferry.core.MigrationMode.POSTCOPY).channels(2)
                .capabilities(EnumSet.of(Capability.ZERO_PAGES, Capability.POSTCOPY)).recoverTimeoutMillis(15_000).build();
        CountDownLatch switched = new CountDownLatch(2);
        List<TestGuest> guests = new ArrayList<>();
        List<IncomingMigration> ins = new ArrayList<>();
        List<OutgoingMigration> outs = new ArrayList<>();
        try (Opened opened = new Opened()) {
            for (int member = 1; member <= 2; member++) {
                TestGuest target = opened.add(new TestGuest(SIZE, 0, false));
                guests.add(target);
                // the cut comes once both guests run on the destination: before that, a channel lost
                // is a loss before post-copy, which fails the migration instead of recovering it
                VmControl resuming = new ForwardingVm(target) {
                    @Override
                    public void resume() {
                        super.resume();
                        switched.countDown();
                    }
                };
                ins.add(opened.add(Migration.destination(resuming).memory(target.memory).gang(destination, member).start()));
            }
            TcpProxy proxy = opened.add(new TcpProxy(ins.getFirst().address()));
            for (int member = 1; member <= 2; member++) {
                TestGuest guest = opened.add(new TestGuest(SIZE, 7 + member, false));
                guests.add(guest);
                // at the switch the guest rewrites every page: all of them are pushed in post-copy, at 16 MB/s for both
                VmControl rewriting = new ForwardingVm(guest) {
                    @Override
                    public void pause() {
                        for (long page = 0; page < guest.memory.pageCount(); page++) {
                            guest.memory.segment().set(ValueLayout.JAVA_LONG, page * GuestMemory.PAGE_SIZE, ~page);
                            guest.dirty.mark(page);
                        }
                        super.pause();
                    }
                };
                outs.add(opened.add(Migration.source(guest.memory, guest.dirty, rewriting).parameters(postcopy)
                        .gang(source, member).connect(proxy.address()).start()));
            }
            assertTrue(switched.await(60, TimeUnit.SECONDS), "both guests run on the destination");
            // connection 0 is the shared control connection, 1 page channel 0's
            proxy.connections().get(1).close();
            for (int m = 0; m < 2; m++) {
                MigrationReport report = outs.get(m).await(Duration.ofSeconds(60));
                MigrationReport received = ins.get(m).await(Duration.ofSeconds(10));
                assertEquals(MigrationState.COMPLETED, report.outcome(), "member " + (m + 1) + ": " + report.error());
                assertTrue(report.verified() && received.verified(), report.error() + " / " + received.error());
                assertEquals(1, received.postcopy().recoveries(), "member " + (m + 1) + " recovered once");
                assertEquals(PageDigest.scan(guests.get(2 + m).memory), PageDigest.scan(guests.get(m).memory));
            }
        }
    }

    @Test
    void aMemberThatFailsFailsAloneAndTheOthersComplete() throws Exception {
        Gang source = Gang.create();
        Gang destination = Gang.create();
        try (TestGuest first = new TestGuest(SIZE, 7, true); TestGuest second = new TestGuest(SIZE, 7, true);
             TestGuest firstTarget = new TestGuest(SIZE, 0, false); TestGuest secondTarget = new TestGuest(SIZE, 0, false)) {
            // the second member's destination cannot load its device state
            VmControl refusing = new ForwardingVm(secondTarget) {
                @Override
                public void loadDeviceState(byte[] state) {
                    throw new IllegalStateException("device state refused by the test");
                }
            };
            try (IncomingMigration in1 = Migration.destination(firstTarget).memory(firstTarget.memory).gang(destination, 1).start();
                 IncomingMigration in2 = Migration.destination(refusing).memory(secondTarget.memory).gang(destination, 2).start();
                 OutgoingMigration out1 = Migration.source(first.memory, first.dirty, first).parameters(DEDUP)
                         .gang(source, 1).connect(in1.address()).start();
                 OutgoingMigration out2 = Migration.source(second.memory, second.dirty, second).parameters(DEDUP)
                         .gang(source, 2).connect(in2.address()).start()) {
                MigrationReport failed = out2.await(Duration.ofSeconds(60));
                MigrationReport completed = out1.await(Duration.ofSeconds(60));
                assertEquals(MigrationState.FAILED, failed.outcome());
                assertTrue(failed.error().contains("device state refused by the test"), failed.error());
                assertEquals(SourceVmState.RUNNING, failed.sourceVmState(), "the failed member runs on at its source");
                assertEquals(0, secondTarget.resumes, "and never on its destination");
                assertEquals(MigrationState.COMPLETED, completed.outcome(), completed.error());
                assertTrue(completed.verified() && in1.await(Duration.ofSeconds(10)).verified());
                assertEquals(1, firstTarget.resumes);
            }
        }
    }

    @Test
    void aMemberNumberOutsideTheGangIsRefusedAtOnce() {
        Gang gang = Gang.create();
        assertThrows(IllegalArgumentException.class, () -> Migration.destination(new RecordingVm()).gang(gang, 0));
        assertThrows(IllegalArgumentException.class, () -> Migration.destination(new RecordingVm()).gang(gang, 1 << 16));
    }
}
