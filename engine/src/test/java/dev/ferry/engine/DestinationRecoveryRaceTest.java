package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
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
 * A post-copy session loses its control connection while the request channel's last ROUND_END
 * is still being read: the control thread has entered RECOVERING but not yet closed the lost
 * connections, and that ROUND_END arrives in between. It is the lost connection's, not a protocol
 * error, so the session waits for its source and recovers. Seen once in CI through
 * {@link DestinationChannelsTest}, whose sockets cannot force the order; the session is driven
 * here as its handler drives it, so the order is exact.
 */
class DestinationRecoveryRaceTest {
    private static final long BYTES = 2L * PageBitmap.STRIPE_PAGES * GuestMemory.PAGE_SIZE;

    @Test
    void aRequestChannelRoundEndReadAfterTheControlLossIsTheLostConnectionsAndTheSessionRecovers() throws Exception {
        try (GuestMemory memory = GuestMemory.anonymous(BYTES)) {
            RecordingVm vm = new RecordingVm();
            EnumSet<Capability> caps = EnumSet.of(Capability.ZERO_PAGES, Capability.POSTCOPY);
            DestinationSession session = new DestinationSession(size -> memory, vm, System::nanoTime, caps,
                    FaultMechanism.SOFTWARE, 10_000, 30_000, BYTES, Wire.NO_MIGRATION, new SimpleMeterRegistry(),
                    SourceBuilder.DEFAULT_GUEST, MigrationListener.NONE);
            Peer peer = new Peer();
            session.peer(peer);
            session.hello(new Wire.Hello(Wire.VERSION, GuestMemory.PAGE_SIZE, BYTES,
                    Wire.bit(Capability.ZERO_PAGES) | Wire.bit(Capability.POSTCOPY), 0, 1, Wire.NO_MIGRATION));
            session.join(new Wire.Join(peer.session, 0, Wire.NO_MIGRATION));
            session.join(new Wire.Join(peer.session, 1, Wire.NO_MIGRATION));
            session.channelRoundEnd(0, new Wire.RoundEnd(1, 0));
            session.roundEnd(new Wire.RoundEnd(1, 0));
            byte[] state = {5};
            session.deviceState(state);
            session.postcopyStart(1);
            assertTrue(peer.running, "the guest runs on the destination");

            // round 2 ends on the page channel; the control connection is lost; then the request channel's ROUND_END is read
            session.channelRoundEnd(0, new Wire.RoundEnd(2, 0));
            session.connectionGone();
            session.connectionLost("connection closed");
            session.channelRoundEnd(1, new Wire.RoundEnd(2, 0));
            assertEquals(DestinationSession.State.RECOVERING, session.state(), "failed: " + session.result().getNow(null));

            session.checkRecover(new Wire.Recover(peer.session, Wire.NO_MIGRATION));
            session.recover();
            session.join(new Wire.Join(peer.session, 0, Wire.NO_MIGRATION));
            session.join(new Wire.Join(peer.session, 1, Wire.NO_MIGRATION));
            session.channelRoundEnd(0, new Wire.RoundEnd(2, 0));
            session.channelRoundEnd(1, new Wire.RoundEnd(2, 0));
            session.roundEnd(new Wire.RoundEnd(2, 0));
            session.end(new Wire.End(PageDigest.seal(PageDigest.scan(memory), state, peer.session), 1));

            MigrationReport report = session.result().get(10, TimeUnit.SECONDS);
            assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
            assertTrue(report.verified());
            assertEquals(1, report.postcopy().recoveries());
            assertEquals(1, vm.resumes.get(), "resumed once, at POSTCOPY_START");
            assertFalse(peer.failed, "the source was told of a failure");
        }
    }

    /** The source's side as the session sees it. */
    private static final class Peer implements DestinationSession.SourcePeer {
        long session;
        boolean running;
        boolean failed;

        @Override
        public void welcome(Wire.Welcome welcome) {
            session = welcome.session();
        }

        @Override
        public void postcopyRunning(long resumeNanos) {
            running = true;
        }

        @Override
        public void resumed(long digest, long resumeNanos) {
        }

        @Override
        public void missing(PostcopyDestination postcopy) {
        }

        @Override
        public void requestPage(long page) {
        }

        @Override
        public void fail(String reason) {
            failed = true;
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
