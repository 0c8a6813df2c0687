package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Capability;
import dev.ferry.core.FaultMechanism;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationListener;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageDigest;
import dev.ferry.postcopy.PostcopyDestination;
import dev.ferry.protocol.Wire;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.util.EnumSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A page channel lost while the control connection waits at a round's barrier, with the device
 * state and an END (whose digest matches what arrived) queued behind it: before post-copy the loss
 * fails the session, and nothing queued is applied. Found by {@link DestinationFuzzTest} (its input
 * {@code crash-82f5ef93...}): the control thread left the abandoned barrier and went on to apply
 * DEVICE_STATE and END, so a session could complete verified without the lost channel's last
 * round. The session is driven here as its handler drives it, on its own, so the order is exact.
 */
class DestinationBarrierLossTest {
    private static final long BYTES = 2L * PageBitmap.STRIPE_PAGES * GuestMemory.PAGE_SIZE;

    @Test
    void aChannelLostAtTheBarrierFailsTheSessionAndNothingQueuedIsApplied() throws Exception {
        try (GuestMemory memory = GuestMemory.anonymous(BYTES)) {
            RecordingVm vm = new RecordingVm();
            DestinationSession session = new DestinationSession(size -> memory, vm, System::nanoTime,
                    EnumSet.of(Capability.ZERO_PAGES), FaultMechanism.SOFTWARE, 10_000, 1, BYTES, Wire.NO_MIGRATION, new SimpleMeterRegistry(),
                    SourceBuilder.DEFAULT_GUEST, MigrationListener.NONE);
            Peer peer = new Peer();
            session.peer(peer);
            session.hello(new Wire.Hello(Wire.VERSION, GuestMemory.PAGE_SIZE, BYTES, Wire.bit(Capability.ZERO_PAGES), 0, 2,
                    Wire.NO_MIGRATION));
            session.join(new Wire.Join(peer.session, 0, Wire.NO_MIGRATION));
            session.join(new Wire.Join(peer.session, 1, Wire.NO_MIGRATION));
            session.channelRoundEnd(0, new Wire.RoundEnd(1, 0));
            session.channelRoundEnd(1, new Wire.RoundEnd(1, 0));
            session.roundEnd(new Wire.RoundEnd(1, 0));
            // round 2: channel 0 ends it, channel 1 is lost before it does
            session.channelRoundEnd(0, new Wire.RoundEnd(2, 0));
            session.connectionGone();

            assertThrows(DestinationSession.Abandoned.class, () -> session.roundEnd(new Wire.RoundEnd(2, 0)));
            byte[] state = {1, 2, 3};
            assertThrows(DestinationSession.Abandoned.class, () -> session.deviceState(state));
            long sealed = PageDigest.seal(PageDigest.scan(memory), state, peer.session);
            assertThrows(DestinationSession.Abandoned.class, () -> session.end(new Wire.End(sealed, 1)));
            session.connectionLost("connection closed");

            MigrationReport report = session.result().get(10, TimeUnit.SECONDS);
            assertEquals(MigrationState.FAILED, report.outcome());
            assertFalse(report.verified());
            assertTrue(report.error().contains("connection lost before the end of the stream"), report.error());
            assertEquals(0, vm.resumes.get(), "the guest resumed on the destination");
            assertEquals(null, vm.loadedState, "device state loaded");
            assertEquals(report.error(), peer.failure);
        }
    }

    /** The source's side as the session sees it: the session id it was welcomed with, and the failure it was told. */
    private static final class Peer implements DestinationSession.SourcePeer {
        long session;
        String failure;

        @Override
        public void welcome(Wire.Welcome welcome) {
            session = welcome.session();
        }

        @Override
        public void postcopyRunning(long resumeNanos) {
            throw new AssertionError("post-copy was never offered");
        }

        @Override
        public void resumed(long digest, long resumeNanos) {
            throw new AssertionError("resumed a session that lost a channel before the end of its stream");
        }

        @Override
        public void missing(PostcopyDestination postcopy) {
            throw new AssertionError("no recovery before post-copy");
        }

        @Override
        public void requestPage(long page) {
            throw new AssertionError("no page requests before post-copy");
        }

        @Override
        public void fail(String reason) {
            failure = reason;
        }

        @Override
        public void closeAll() {
        }

        @Override
        public void stale(int round, PageBitmap pages) {
            throw new AssertionError("dedup was never offered");
        }
    }
}
