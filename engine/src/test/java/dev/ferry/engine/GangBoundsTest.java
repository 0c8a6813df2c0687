package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import java.net.Socket;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * A gang's shared listening socket bounds strangers as a guest's own does: at most
 * {@code max-pending-connections} that have not shown a guest's frame, each for at most the
 * handshake timeout, and a member migrates through it afterwards.
 */
class GangBoundsTest {
    private static final long SIZE = 4L << 20;

    @Test
    void strangersPastTheCapAreClosedAtOnceAndTheRestAtTheDeadlineWithTheReason() throws Exception {
        Gang source = Gang.create();
        Gang destination = Gang.create();
        try (TestGuest guest = new TestGuest(SIZE, 3, false); TestGuest target = new TestGuest(SIZE, 0, false);
             IncomingMigration in = Migration.destination(target).memory(target.memory).gang(destination, 1)
                     .maxPendingConnections(2).handshakeTimeoutMillis(1500).start()) {
            try (Strangers strangers = Strangers.open(in.address(), 5, 300)) {
                assertEquals(3, strangers.closedAtOnce(), "all but the cap's 2 closed as they came");
                assertEquals(2, strangers.held().size());
                for (Socket s : strangers.held()) {
                    assertEquals("no guest's frame within the handshake timeout of 1500 ms", HandSource.refusal(s),
                            "closed at the deadline with the reason");
                }
            }
            assertFalse(in.result().isDone(), "strangers fail nothing");
            try (OutgoingMigration out = Migration.source(guest.memory, guest.dirty, guest).gang(source, 1)
                    .connect(in.address()).start()) {
                MigrationReport report = out.await(Duration.ofSeconds(60));
                MigrationReport received = in.await(Duration.ofSeconds(10));
                assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
                assertTrue(report.verified() && received.verified(), report.error() + " / " + received.error());
            }
        }
    }
}
