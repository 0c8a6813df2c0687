package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
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
            List<Socket> strangers = new ArrayList<>();
            try {
                for (int i = 0; i < 5; i++) {
                    Socket s = new Socket(in.address().getAddress(), in.address().getPort());
                    strangers.add(s);
                }
                int closedAtOnce = 0;
                List<Socket> held = new ArrayList<>();
                for (Socket s : strangers) {
                    s.setSoTimeout(300);
                    try {
                        if (s.getInputStream().read() == -1) {
                            closedAtOnce++;
                        }
                    } catch (SocketTimeoutException stillPending) {
                        held.add(s);
                    }
                }
                assertEquals(3, closedAtOnce, "all but the cap's 2 closed as they came");
                assertEquals(2, held.size());
                for (Socket s : held) {
                    s.setSoTimeout(10_000);
                    String said = readToEnd(s.getInputStream());
                    assertTrue(said.contains("no guest's frame within the handshake timeout of 1500 ms"),
                            "closed at the deadline with the reason: " + said);
                }
            } finally {
                for (Socket s : strangers) {
                    s.close();
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

    /** What the peer sent until it closed; an ERROR frame's text among it. */
    private static String readToEnd(InputStream in) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        in.transferTo(bytes);
        return bytes.toString(StandardCharsets.UTF_8);
    }
}
