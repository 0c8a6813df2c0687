package dev.ferry.engine;

import static dev.ferry.engine.HandSource.randomPage;
import static dev.ferry.engine.HandSource.readUntilClosed;
import static dev.ferry.engine.HandSource.refusal;
import static dev.ferry.engine.HandSource.send;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.GuestMemory;
import dev.ferry.core.MemoryDigest;
import dev.ferry.core.PageDigest;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.PageBitmap;
import dev.ferry.protocol.Wire;
import java.io.OutputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The destination's bounded resources, on real sockets on 127.0.0.1: the handshake deadline, the
 * cap on connections that have not said what they are, the accept timeout, a HELLO whose channels
 * never come, a silent source, max-memory before allocation, and the work of a frame of zero runs.
 * Strangers that never finish a handshake fail nothing and the real source migrates afterwards.
 */
class DestinationBoundsTest {
    private static final int PAGES = 3 * PageBitmap.STRIPE_PAGES;
    private static final long BYTES = (long) PAGES * GuestMemory.PAGE_SIZE;

    private final RecordingVm vm = new RecordingVm();
    private GuestMemory memory;
    private IncomingMigration in;

    @AfterEach
    void stop() {
        if (in != null) {
            in.close();
        }
        if (memory != null) {
            memory.close();
        }
    }

    private void start(UnaryOperator<DestinationBuilder> settings) throws Exception {
        memory = GuestMemory.anonymous(BYTES);
        in = settings.apply(Migration.destination(vm).memory(memory)).start();
    }

    /** One page, the round, DEVICE_STATE, END: the destination must complete verified and resume once. */
    private void migrateHonestly(HandSource source) throws Exception {
        source.hello(1);
        source.join(0);
        source.raw(0, 17, randomPage(17));
        source.endRound(1);
        source.finish(new byte[] {4, 2}, 1);
        source.awaitResumed();
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
        assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
        assertTrue(report.verified());
        assertEquals(1, vm.resumes.get());
    }

    /** Waits up to {@code millis} for the migration to end; whether it has. */
    private boolean endedWithin(long millis) throws InterruptedException {
        try {
            in.result().get(millis, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
            // not yet, or it failed: the caller looks at the result
        }
        return in.result().isDone();
    }

    private Socket open() throws Exception {
        Socket s = new Socket(in.address().getAddress(), in.address().getPort());
        s.setSoTimeout(10_000);
        return s;
    }

    @Test
    void aConnectionThatNeverFinishesItsFirstFrameIsClosedAtTheHandshakeDeadlineAndFailsNothing() throws Exception {
        start(b -> b.handshakeTimeoutMillis(500).peerTimeoutMillis(300));
        try (Socket trickle = open(); Socket silent = open()) {
            OutputStream out = trickle.getOutputStream();
            out.write(new byte[] {0, 0, 0, 30});
            long began = System.nanoTime();
            // a byte of a HELLO every 100 ms keeps the read timeout (300 ms) from firing, not the deadline
            boolean closed = false;
            for (int i = 0; i < 29 && !closed; i++) {
                try {
                    out.write(Wire.HELLO);
                    out.flush();
                    trickle.setSoTimeout(100);
                    closed = trickle.getInputStream().read() == -1;
                } catch (SocketTimeoutException stillOpen) {
                    // the next byte
                } catch (java.io.IOException reset) {
                    closed = true;
                }
            }
            long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - began);
            assertTrue(closed, "a connection trickling its first frame is closed at the handshake deadline");
            assertTrue(millis >= 400, "not before the deadline, which bytes do not reset: " + millis + " ms");
            assertEquals(-1, silent.getInputStream().read(), "a silent one is closed too, without a word");
        }
        assertFalse(in.result().isDone(), "a connection that never said what it is fails nothing");
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            migrateHonestly(source);
        }
    }

    @Test
    void pendingConnectionsPastTheCapAreClosedAndOncePastTheDeadlineTheirPlacesAreFree() throws Exception {
        start(b -> b.maxPendingConnections(4).handshakeTimeoutMillis(3000));
        try (Strangers strangers = Strangers.open(in.address(), 12, 200)) {
            assertEquals(8, strangers.closedAtOnce(), "all but the cap's 4 closed as they came");
            for (Socket s : strangers.all()) {
                assertEquals(-1, s.getInputStream().read(), "closed by the handshake deadline");
            }
        }
        assertFalse(in.result().isDone());
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            migrateHonestly(source);
        }
    }

    @Test
    void aFirstFrameLongerThanAHandshakeIsRefusedAtItsLengthField() throws Exception {
        start(b -> b);
        try (Socket stranger = open()) {
            // a JOIN claiming 16 MiB: nothing of it is buffered, the connection is refused at the length field
            stranger.getOutputStream().write(new byte[] {0x01, 0, 0, 0, Wire.JOIN});
            assertEquals("malformed frame: a connection's first frame of 16777216 bytes, above MAX_HANDSHAKE_FRAME 4096",
                    refusal(stranger));
        }
        try (Socket stranger = open()) {
            send(stranger, out -> {
                Wire.writeHeader(out, Wire.HELLO, Wire.MAX_HANDSHAKE_FRAME - 1);
                out.writeZero(Wire.MAX_HANDSHAKE_FRAME - 1);
            });
            // read whole and decoded: HELLO says a wrong magic before a wrong length
            assertTrue(refusal(stranger).startsWith("bad magic 0x0000000000000000 in HELLO"), "MAX_HANDSHAKE_FRAME itself is read");
        }
        assertFalse(in.result().isDone(), "strangers fail nothing");
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            migrateHonestly(source);
        }
    }

    @Test
    void strangersThatKeepSendingRoundEndsCannotHoldTheDestination() throws Exception {
        start(b -> b);
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            for (int i = 0; i < 5; i++) {
                try (Socket stranger = open()) {
                    send(stranger, out -> Wire.writeRoundEnd(out, 1, 0));
                    assertEquals("expected HELLO, JOIN or RECOVER as a connection's first frame, got ROUND_END",
                            refusal(stranger));
                }
                try (Socket stranger = open()) {
                    send(stranger, Wire::writeHeartbeat);
                    assertEquals("expected HELLO, JOIN or RECOVER as a connection's first frame, got HEARTBEAT",
                            refusal(stranger), "a heartbeat is not a handshake");
                }
            }
            migrateHonestly(source);
        }
    }

    @Test
    void aHelloWhoseChannelsNeverJoinFailsWithinThePeerTimeout() throws Exception {
        start(b -> b.peerTimeoutMillis(600));
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(2);
            source.join(0);
            // heartbeats keep the control connection alive; channel 1 never comes
            long began = System.nanoTime();
            for (int i = 0; i < 50 && !in.result().isDone(); i++) {
                send(source.control, Wire::writeHeartbeat);
                send(source.channel(0), Wire::writeHeartbeat);
                endedWithin(100);
            }
            MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
            assertEquals(MigrationState.FAILED, report.outcome());
            assertTrue(report.error().contains("page channels did not all join within the peer timeout of 600 ms"),
                    report.error());
            assertTrue(System.nanoTime() - began < TimeUnit.SECONDS.toNanos(5));
            assertEquals(0, vm.resumes.get());
        }
    }

    @Test
    void aSourceSilentOnTheControlConnectionFailsTheMigrationWithinThePeerTimeout() throws Exception {
        start(b -> b.peerTimeoutMillis(500));
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(1);
            source.join(0);
            source.raw(0, 3, randomPage(3));
            // the page channel goes on saying it is alive; the control connection says nothing more
            for (int i = 0; i < 50 && !in.result().isDone(); i++) {
                send(source.channel(0), Wire::writeHeartbeat);
                endedWithin(100);
            }
            MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
            assertEquals(MigrationState.FAILED, report.outcome());
            assertTrue(report.error().contains("peer silent past the peer timeout"), report.error());
            assertEquals(0, vm.resumes.get());
        }
    }

    @Test
    void withoutASourceTheDestinationFailsAtTheAcceptTimeoutWhateverConnectedMeanwhile() throws Exception {
        start(b -> b.acceptTimeoutMillis(1500).handshakeTimeoutMillis(200));
        long began = System.nanoTime();
        try (Socket scan = open()) {
            // a port scan, then a health check that says nothing
        }
        try (Socket check = open()) {
            assertEquals(-1, check.getInputStream().read());
        }
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - began);
        assertEquals(MigrationState.FAILED, report.outcome());
        assertEquals("no source's HELLO was taken within the accept timeout of 1500 ms", report.error());
        assertTrue(millis >= 1400, "failed at the accept timeout, not at a stranger: " + millis + " ms");
    }

    @Test
    void aClaimAboveMaxMemoryIsRefusedBeforeAnythingIsAllocatedAndForgotten() throws Exception {
        in = Migration.destination(vm).memoryFromHandshake().maxMemory(1L << 30).acceptTimeoutMillis(2000).start();
        try (Socket control = open()) {
            send(control, out -> Wire.writeHello(out, new Wire.Hello(Wire.VERSION, GuestMemory.PAGE_SIZE, 4L << 40, 1, 0, 1, Wire.NO_MIGRATION)));
            assertEquals("source memory of 4398046511104 bytes is above this destination's max-memory of 1073741824 bytes",
                    refusal(control));
        }
        assertNull(in.memory(), "no guest memory was allocated for the claim");
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
        assertEquals(MigrationState.FAILED, report.outcome());
        assertEquals("no source's HELLO was taken within the accept timeout of 2000 ms; the last connection refused: source"
                + " memory of 4398046511104 bytes is above this destination's max-memory of 1073741824 bytes", report.error());
        assertNull(in.memory());
        assertEquals(0, report.memoryBytes());
    }

    /**
     * The 2.1 MB PAGES frame of zero runs, 190,000 records each a run of 65,535 pages over a
     * 1 TiB guest whose only written page is its last: a run over never-written pages costs a scan
     * of its own bitmap words, so the frame is applied in a fraction of the peer timeout (it held
     * the event loop for 11.1 s when a run scanned on to the next written page).
     */
    @Test
    void aFrameOfZeroRunsOverATebibyteGuestCostsNoMoreThanItsBytes() throws Exception {
        long tib = 1L << 40;
        long last = (tib >>> GuestMemory.PAGE_SHIFT) - 1;
        byte[] page = randomPage(last);
        long digest;
        // the digest first: a scan of 1 TiB takes longer than a connection may stay silent
        try (MemoryDigest expected = new MemoryDigest(last + 1); Arena arena = Arena.ofConfined()) {
            MemorySegment copy = arena.allocate(GuestMemory.PAGE_SIZE).copyFrom(MemorySegment.ofArray(page));
            expected.update(last, PageDigest.contentHash(copy, 0));
            digest = expected.value();
        }
        in = Migration.destination(vm).memoryFromHandshake().start();
        try (HandSource source = new HandSource(in.address(), tib)) {
            source.hello(1);
            source.join(0);
            source.raw(0, last, page);
            int runs = (2_100_000 - Wire.FRAME_HEADER) / Wire.RECORD_HEADER;
            long began = System.nanoTime();
            source.zeroRuns(0, 0, runs);
            source.endRound(1);
            long sealed = PageDigest.seal(digest, new byte[] {1}, source.session);
            send(source.control, out -> {
                Wire.writeDeviceState(out, new byte[] {1});
                Wire.writeEnd(out, sealed, 1);
            });
            source.awaitResumed();
            long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - began);
            System.out.printf("a 2.1 MB frame of %d zero runs over a 1 TiB guest, applied and verified in %d ms%n", runs, millis);
            MigrationReport report = in.result().get(30, TimeUnit.SECONDS);
            assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
            assertTrue(report.verified());
            assertTrue(millis < 10_000, "within the peer timeout: " + millis + " ms");
        }
    }
}
