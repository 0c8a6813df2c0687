package dev.ferry.engine;

import static dev.ferry.engine.HandSource.describe;
import static dev.ferry.engine.HandSource.filledPage;
import static dev.ferry.engine.HandSource.randomPage;
import static dev.ferry.engine.HandSource.readUntilClosed;
import static dev.ferry.engine.HandSource.refusal;
import static dev.ferry.engine.HandSource.send;
import static dev.ferry.engine.HandSource.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Capability;
import dev.ferry.core.FaultMechanism;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageDigest;
import dev.ferry.core.SourceVmState;
import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import java.lang.foreign.MemorySegment;
import java.net.Socket;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * What page channels bring to the destination, on real sockets on 127.0.0.1: JOIN's refusals,
 * the stripe rule, each channel's ROUND_END count, strangers' connections, the barrier, and with
 * the real source a migration over three channels and one that loses a page channel.
 */
class DestinationChannelsTest {
    /** Three stripes: pages 0..511, 512..1023 and 1024..1535. */
    private static final int PAGES = 3 * PageBitmap.STRIPE_PAGES;
    private static final long BYTES = (long) PAGES * GuestMemory.PAGE_SIZE;
    private static final long PEER_TIMEOUT = 10_000;
    private static final String CONTROL_THREAD = "ferry-destination-control";

    private GuestMemory memory;
    private RecordingVm vm;
    private IncomingMigration in;

    @BeforeEach
    void guest() {
        memory = GuestMemory.anonymous(BYTES);
        vm = new RecordingVm();
    }

    @AfterEach
    void stopDestination() {
        if (in != null) {
            in.close();
        }
        memory.close();
    }

    private void start(UnaryOperator<DestinationBuilder> settings) throws Exception {
        in = settings.apply(Migration.destination(vm).memory(memory).peerTimeoutMillis(PEER_TIMEOUT)).start();
    }

    private void start() throws Exception {
        start(b -> b);
    }

    /** One page in the first stripe of each of channels 0 .. n-1, the round ended, DEVICE_STATE, END, RESUMED. */
    private void completeHonestly(HandSource source, int n) throws Exception {
        for (int c = 0; c < n; c++) {
            long page = (long) c * PageBitmap.STRIPE_PAGES + 17;
            source.raw(c, page, randomPage(page));
        }
        source.endRound(n);
        source.finish(new byte[] {4, 2}, 1);
        Wire.Resumed resumed = source.awaitResumed();
        assertEquals(source.sealed(new byte[] {4, 2}), resumed.digest());
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
        assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
        assertTrue(report.verified() && report.destinationResumed());
        assertEquals(1, vm.resumes.get());
        assertEquals(-1, source.expected.segment().mismatch(memory.segment()), "the memory as sent");
    }

    /** The migration failed with {@code reason}, said on the control connection, and nothing was resumed or loaded. */
    private MigrationReport assertFailedAndSaid(HandSource source, String reason) throws Exception {
        List<ByteBuf> replies = readUntilClosed(source.control);
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
        assertEquals(MigrationState.FAILED, report.outcome());
        assertTrue(report.error().contains(reason), "reason: " + report.error());
        assertFalse(report.verified());
        assertFalse(report.destinationResumed());
        assertEquals(0, vm.resumes.get(), "the guest was resumed");
        assertNull(vm.loadedState, "device state was loaded");
        assertEquals(1, replies.size(), "one ERROR, then the close: " + describe(replies));
        ByteBuf error = replies.get(0);
        assertEquals(Wire.ERROR, error.readUnsignedByte());
        assertEquals(report.error(), Wire.readError(error), "the ERROR frame says what the report says");
        return report;
    }

    private static boolean allZero(GuestMemory m, long page, int count) {
        MemorySegment pages = m.segment().asSlice(page * GuestMemory.PAGE_SIZE, (long) count * GuestMemory.PAGE_SIZE);
        return pages.mismatch(MemorySegment.ofArray(new byte[count * GuestMemory.PAGE_SIZE])) == -1;
    }

    // ---- 1. JOIN for another session ----

    @Test
    void aJoinForAnotherSessionIsRefusedAndTheMigrationGoesOn() throws Exception {
        start();
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(2);
            for (int c = 0; c < 2; c++) {
                try (Socket stale = source.connect()) {
                    int channel = c;
                    send(stale, out -> Wire.writeJoin(out, new Wire.Join(source.session ^ 0x5a5a, channel, Wire.NO_MIGRATION)));
                    assertEquals("JOIN for another session", refusal(stale));
                }
            }
            assertFalse(in.result().isDone(), "a refused connection fails nothing");
            // the refused JOINs took no channel: the source's own join them now
            source.joinAll(2);
            completeHonestly(source, 2);
        }
    }

    // ---- 2. a channel outside the session ----

    @Test
    void aJoinForAChannelOutsideTheSessionIsRefused() throws Exception {
        start();
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(2);
            // == channels is the request channel, which needs post-copy; above it, nothing
            for (int channel : new int[] {2, 3, Wire.MAX_CHANNELS, 0xffff}) {
                try (Socket outside = source.connect()) {
                    send(outside, out -> Wire.writeJoin(out, new Wire.Join(source.session, channel, Wire.NO_MIGRATION)));
                    assertEquals("channel " + channel + " is not one of this session's 2 page channels", refusal(outside));
                }
            }
            assertFalse(in.result().isDone(), "a refused connection fails nothing");
            source.joinAll(2);
            completeHonestly(source, 2);
        }
    }

    @Test
    void withPostcopyTheRequestChannelMayJoinButNothingAboveIt() throws Exception {
        start(b -> b.faultMechanism(FaultMechanism.SOFTWARE));
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            Wire.Welcome welcome = source.hello(1, Wire.bit(Capability.ZERO_PAGES) | Wire.bit(Capability.POSTCOPY));
            assertEquals(Wire.bit(Capability.ZERO_PAGES) | Wire.bit(Capability.POSTCOPY), welcome.capabilities());
            source.join(0);
            source.join(1);
            try (Socket outside = source.connect()) {
                send(outside, out -> Wire.writeJoin(out, new Wire.Join(source.session, 2, Wire.NO_MIGRATION)));
                assertEquals("channel 2 is not one of this session's 1 page channels or its request channel", refusal(outside));
            }
            try (Socket again = source.connect()) {
                send(again, out -> Wire.writeJoin(out, new Wire.Join(source.session, 1, Wire.NO_MIGRATION)));
                assertEquals("channel 1 joined twice", refusal(again));
            }
            // a pre-copy end: the request channel stays silent
            completeHonestly(source, 1);
        }
    }

    // ---- 3. the same channel twice ----

    @Test
    void theSameChannelJoinedTwiceIsRefusedTheSecondTime() throws Exception {
        start();
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(2);
            source.joinAll(2);
            for (int c = 0; c < 2; c++) {
                try (Socket twice = source.connect()) {
                    int channel = c;
                    send(twice, out -> Wire.writeJoin(out, new Wire.Join(source.session, channel, Wire.NO_MIGRATION)));
                    assertEquals("channel " + c + " joined twice", refusal(twice));
                }
            }
            assertFalse(in.result().isDone(), "a refused connection fails nothing");
            // the first connections are still the channels
            completeHonestly(source, 2);
        }
    }

    // ---- 4. the stripe rule ----

    /** Pages sent on {@code channel} of a session of {@code channels}, that are another channel's. */
    record WrongChannel(String name, int channels, int channel, long first, int count) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<WrongChannel> wrongChannels() {
        return Stream.of(
                new WrongChannel("a page of stripe 0 on channel 1", 2, 1, 3, 1),
                new WrongChannel("a page of stripe 2 (channel 0's) on channel 1", 2, 1, 1024 + 5, 1),
                new WrongChannel("a page of stripe 1 on channel 0", 2, 0, 600, 1),
                new WrongChannel("a page of stripe 2 on channel 0 of three", 3, 0, 1024, 1),
                new WrongChannel("a zero run of channel 1's stripe on channel 0", 2, 0, 700, 4),
                new WrongChannel("a zero run that crosses from channel 0's stripe into channel 1's", 2, 0, 510, 4));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("wrongChannels")
    void aPageOnAnotherChannelsStripeFailsTheMigration(WrongChannel wrong) throws Exception {
        start();
        // the destination's memory where the pages would land is not zero, so a zero run applied shows
        memory.segment().asSlice(wrong.first() * GuestMemory.PAGE_SIZE, (long) wrong.count() * GuestMemory.PAGE_SIZE).fill((byte) 9);
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(wrong.channels());
            source.joinAll(wrong.channels());
            if (wrong.count() == 1) {
                source.raw(wrong.channel(), wrong.first(), filledPage(0));
            } else {
                source.zeros(wrong.channel(), wrong.first(), wrong.count());
            }
            long last = wrong.first() + wrong.count() - 1;
            assertFailedAndSaid(source, "pages " + wrong.first() + ".." + last + " on channel " + wrong.channel()
                    + ", which carries only its own stripes of 512 pages");
            for (int c = 0; c < wrong.channels(); c++) {
                assertEquals("[]", describe(readUntilClosed(source.channel(c))), "channel " + c + " closed");
            }
        }
        MemorySegment landing = memory.segment().asSlice(wrong.first() * GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE);
        assertEquals(9, landing.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0), "the refused record was applied");
    }

    // ---- 5. a channel's ROUND_END that lies ----

    /** What channel {@code channel} of two sends, ending with a ROUND_END of {@code round} claiming {@code claimed} pages. */
    record BadRoundEnd(String name, int channel, int pages, int round, long claimed, String reason) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<BadRoundEnd> badRoundEnds() {
        return Stream.of(
                new BadRoundEnd("more pages claimed than arrived", 0, 1, 1, 2, "channel 0 ended round 1 with 2 pages, 1 arrived on it"),
                new BadRoundEnd("fewer pages claimed than arrived", 0, 3, 1, 2, "channel 0 ended round 1 with 2 pages, 3 arrived on it"),
                new BadRoundEnd("pages claimed on a silent channel", 1, 0, 1, 1, "channel 1 ended round 1 with 1 pages, 0 arrived on it"),
                new BadRoundEnd("a round skipped", 1, 0, 2, 0, "channel 1 ended round 2 after round 0"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badRoundEnds")
    void aChannelsRoundEndThatDisagreesWithWhatArrivedFails(BadRoundEnd bad) throws Exception {
        start();
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(2);
            source.joinAll(2);
            for (int i = 0; i < bad.pages(); i++) {
                long page = (long) bad.channel() * PageBitmap.STRIPE_PAGES + i;
                source.raw(bad.channel(), page, randomPage(page));
            }
            send(source.channel(bad.channel()), out -> Wire.writeRoundEnd(out, bad.round(), bad.claimed()));
            assertFailedAndSaid(source, bad.reason());
        }
    }

    @Test
    void aChannelEndingTheSameRoundTwiceFails() throws Exception {
        start();
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(1);
            source.join(0);
            source.raw(0, 1, randomPage(1));
            source.endChannelRound(0);
            send(source.channel(0), out -> Wire.writeRoundEnd(out, 1, 0));
            assertFailedAndSaid(source, "channel 0 ended round 1 after round 1");
        }
    }

    // ---- 6. strangers ----

    /** Connects and closes at once, or after {@code bytes} of a frame header, or with a reset. */
    private static void probe(HandSource source, int kind) throws Exception {
        Socket probe = source.connect();
        switch (kind) {
            case 0 -> probe.close();
            case 1 -> {
                probe.getOutputStream().write(new byte[] {0, 0, 0});
                probe.close();
            }
            default -> {
                probe.setSoLinger(true, 0);
                probe.close();
            }
        }
    }

    @Test
    void connectionsThatCloseWithoutAFrameBeforeAndDuringTheMigrationFailNothing() throws Exception {
        start();
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            // the HandSource's control connection is open but silent: probe before it says HELLO
            for (int kind = 0; kind < 3; kind++) {
                probe(source, kind);
            }
            source.hello(2);
            for (int kind = 0; kind < 3; kind++) {
                probe(source, kind);
            }
            source.join(0);
            probe(source, 0);
            source.join(1);
            probe(source, 1);
            source.raw(0, 1, randomPage(1));
            probe(source, 2);
            source.raw(1, 513, randomPage(513));
            source.endRound(2);
            probe(source, 0);
            assertFalse(in.result().isDone(), "a connection that said nothing fails nothing");
            completeHonestly(source, 2);
        }
    }

    @Test
    void connectionsPastTheCapOnPendingOnesAreClosedAtOnce() throws Exception {
        start(b -> b.maxPendingConnections(2));
        try (Socket first = new Socket(in.address().getAddress(), in.address().getPort());
             Socket second = new Socket(in.address().getAddress(), in.address().getPort());
             Socket third = new Socket(in.address().getAddress(), in.address().getPort())) {
            // none said anything: two hold both places, and whichever the destination saw last is
            // closed at once (the others only at the peer timeout, far later than these reads wait)
            int closed = 0;
            int open = 0;
            for (Socket s : List.of(first, second, third)) {
                s.setSoTimeout(2000);
                try {
                    assertEquals(-1, s.getInputStream().read(), "nothing is sent to a stranger");
                    closed++;
                } catch (java.net.SocketTimeoutException stillOpen) {
                    open++;
                }
            }
            assertEquals(1, closed, "one connection past the cap of 2");
            assertEquals(2, open);
            assertFalse(in.result().isDone(), "strangers fail nothing");
        }
    }

    @Test
    void aPortScanBeforeTheSourceConnectsFailsNothing() throws Exception {
        start();
        // before any connection of the source exists
        for (int kind = 0; kind < 3; kind++) {
            try (Socket probe = new Socket(in.address().getAddress(), in.address().getPort())) {
                if (kind == 1) {
                    probe.getOutputStream().write(new byte[] {0, 0});
                } else if (kind == 2) {
                    probe.setSoLinger(true, 0);
                }
            }
        }
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(1);
            source.join(0);
            completeHonestly(source, 1);
        }
    }

    @Test
    void strangersSendingGarbageAreRefusedAndTheMigrationCompletesVerified() throws Exception {
        start();
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            // before the source's HELLO
            try (Socket stranger = source.connect()) {
                send(stranger, out -> HandSource.pages(out, o -> HandSource.zeroRecord(o, 1, 1)));
                assertEquals("expected HELLO, JOIN or RECOVER as a connection's first frame, got PAGES", refusal(stranger));
            }
            try (Socket early = source.connect()) {
                send(early, out -> Wire.writeJoin(out, new Wire.Join(42, 0, Wire.NO_MIGRATION)));
                assertEquals("JOIN while the session is AWAIT_HELLO", refusal(early));
            }
            source.hello(2);
            source.join(0);
            // during the migration
            try (Socket stranger = source.connect()) {
                send(stranger, out -> HandSource.pages(out, o -> HandSource.rawRecord(o, 1, filledPage(1))));
                assertEquals("malformed frame: a connection's first frame of 4108 bytes, above MAX_HANDSHAKE_FRAME 4096",
                        refusal(stranger), "refused at the length field, before its page is buffered");
            }
            try (Socket stranger = source.connect()) {
                send(stranger, out -> Wire.writeRoundEnd(out, 1, 0));
                assertEquals("expected HELLO, JOIN or RECOVER as a connection's first frame, got ROUND_END", refusal(stranger));
            }
            try (Socket stranger = source.connect()) {
                send(stranger, out -> out.writeInt(0));
                assertEquals("expected HELLO, JOIN or RECOVER as a connection's first frame, got an empty frame",
                        refusal(stranger));
            }
            try (Socket stranger = source.connect()) {
                send(stranger, out -> {
                    Wire.writeHeader(out, 0x55, 3);
                    out.writeByte(1).writeShort(2);
                });
                assertEquals("expected HELLO, JOIN or RECOVER as a connection's first frame, got unknown(0x55)",
                        refusal(stranger));
            }
            try (Socket stranger = source.connect()) {
                send(stranger, out -> {
                    Wire.writeHeader(out, Wire.JOIN, 34);
                    out.writeLong(0x4854_5450_2f31_2e31L).writeLong(source.session).writeShort(1).writeZero(16);
                });
                assertEquals("bad magic 0x485454502f312e31 in JOIN: not a Ferry source", refusal(stranger));
            }
            try (Socket stranger = source.connect()) {
                send(stranger, out -> {
                    Wire.writeHeader(out, Wire.JOIN, 16);
                    out.writeLong(Wire.MAGIC).writeLong(source.session);
                });
                assertEquals("JOIN body of 16 bytes, expected 34", refusal(stranger));
            }
            try (Socket stranger = source.connect()) {
                // above MAX_FRAME, and so above MAX_HANDSHAKE_FRAME
                send(stranger, out -> out.writeInt(Wire.MAX_FRAME + 1).writeByte(Wire.JOIN));
                assertEquals("malformed frame: a connection's first frame of 16777217 bytes, above MAX_HANDSHAKE_FRAME 4096",
                        refusal(stranger));
            }
            source.join(1);
            try (Socket stranger = source.connect()) {
                send(stranger, out -> Wire.writeHello(out, new Wire.Hello(Wire.VERSION, GuestMemory.PAGE_SIZE, BYTES, 1, 0, 2, Wire.NO_MIGRATION)));
                assertEquals("this destination is already receiving a migration", refusal(stranger));
            }
            assertFalse(in.result().isDone(), "a refused connection fails nothing");
            completeHonestly(source, 2);
        }
    }

    // ---- 7. the barrier ----

    /**
     * The system clock, reporting when the destination's control thread first reads it after
     * {@link #arm}: after the handshake that is the barrier of a control ROUND_END, taking its
     * deadline.
     */
    private static final class BarrierWatch implements NanoClock {
        final CountDownLatch reached = new CountDownLatch(1);
        private volatile boolean armed;

        void arm() {
            armed = true;
        }

        @Override
        public long nanoTime() {
            if (armed && Thread.currentThread().getName().equals(CONTROL_THREAD)) {
                reached.countDown();
            }
            return System.nanoTime();
        }
    }

    @Test
    void theBarrierWaitsForEveryChannelsRoundEndBeforeEndIsApplied() throws Exception {
        BarrierWatch clock = new BarrierWatch();
        start(b -> b.clock(clock));
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(2);
            source.joinAll(2);
            clock.arm();
            // channel 0 is done with round 1; channel 1 is slow
            source.raw(0, 5, randomPage(5));
            long channel0 = source.roundPages(0);
            source.endChannelRound(0);
            byte[] latePage = source.rawFrame(1, 600, randomPage(600));
            byte[] lateLast = source.rawFrame(1, 1023, randomPage(1023));
            long channel1 = source.roundPages(1);
            byte[] lateEnd = source.channelRoundEndFrame(1);
            // the control connection goes first: the barrier, the device state and END, whose
            // digest counts the two pages channel 1 has not sent yet
            source.endControlRound(channel0 + channel1);
            source.finish(new byte[] {1}, 1);
            assertTrue(clock.reached.await(10, TimeUnit.SECONDS), "the control thread never reached the barrier");
            assertFalse(in.result().isDone(), "END applied before channel 1 ended the round: " + in.result().getNow(null));
            write(source.channel(1), latePage);
            write(source.channel(1), lateLast);
            write(source.channel(1), lateEnd);
            Wire.Resumed resumed = source.awaitResumed();
            assertEquals(source.sealed(new byte[] {1}), resumed.digest());
            assertEquals(-1, source.expected.segment().mismatch(memory.segment()), "the memory as sent");
        }
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
        assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
        assertTrue(report.verified());
        assertEquals(1, vm.resumes.get());
    }

    @Test
    void theBarrierGivesUpOnASilentChannelAfterThePeerTimeout() throws Exception {
        // the destination's clock leaps by twice the peer timeout once its control thread waits at the barrier
        AtomicLong readsAtBarrier = new AtomicLong();
        java.util.concurrent.atomic.AtomicBoolean armed = new java.util.concurrent.atomic.AtomicBoolean();
        NanoClock clock = () -> {
            long now = System.nanoTime();
            if (armed.get() && Thread.currentThread().getName().equals(CONTROL_THREAD)
                    && readsAtBarrier.incrementAndGet() >= 2) {
                return now + TimeUnit.MILLISECONDS.toNanos(2 * PEER_TIMEOUT);
            }
            return now;
        };
        start(b -> b.clock(clock));
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(1);
            source.join(0);
            source.raw(0, 5, randomPage(5));
            armed.set(true);
            // channel 0 never ends round 1
            source.endControlRound(1);
            assertFailedAndSaid(source, "the page channels did not end round 1 within " + PEER_TIMEOUT
                    + " ms of the control connection");
            assertEquals("[]", describe(readUntilClosed(source.channel(0))));
        }
    }

    @Test
    void aPageChannelLostWhileTheControlConnectionWaitsAtTheBarrierFailsWithTheLoss() throws Exception {
        BarrierWatch clock = new BarrierWatch();
        // a long peer timeout: the loss must not wait for it
        start(b -> b.clock(clock).peerTimeoutMillis(60_000));
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(2);
            source.joinAll(2);
            source.raw(0, 5, randomPage(5));
            source.endChannelRound(0);
            clock.arm();
            source.endControlRound(1);
            assertTrue(clock.reached.await(10, TimeUnit.SECONDS), "the control thread never reached the barrier");
            source.channel(1).close();
            assertFailedAndSaid(source, "connection lost before the end of the stream");
        }
    }

    // ---- post-copy: a lost connection must lead to recovery, also at the last round's barrier ----

    private static final int POSTCOPY_CAPS = Wire.bit(Capability.ZERO_PAGES) | Wire.bit(Capability.POSTCOPY);

    /**
     * A post-copy session by hand on one page channel and the request channel: round 1 carries
     * page 3, then DEVICE_STATE and POSTCOPY_START with nothing discarded; returns once the
     * destination answered POSTCOPY_RUNNING (the guest runs there from now on).
     */
    private void intoPostcopy(HandSource source) throws Exception {
        source.hello(1, POSTCOPY_CAPS);
        source.join(0);
        source.join(1);
        source.raw(0, 3, randomPage(3));
        source.endRound(1);
        send(source.control, out -> {
            Wire.writeDeviceState(out, new byte[] {5});
            Wire.writePostcopyStart(out, 1);
        });
        ByteBuf running = HandSource.readFrame(source.control);
        assertEquals(Wire.typeName(Wire.POSTCOPY_RUNNING), Wire.typeName(running.readUnsignedByte()));
        assertEquals(1, vm.resumes.get(), "resumed at POSTCOPY_START");
    }

    /**
     * RECOVER on a new control connection, RECOVERED with nothing missing, both channels joined
     * again, then the last round's barrier on every connection (as PostcopySource repeats it after
     * a recovery) and END: the migration must complete verified.
     */
    private void recoverAndComplete(HandSource source, int round) throws Exception {
        Socket control = source.connect();
        send(control, out -> Wire.writeRecover(out, new Wire.Recover(source.session, source.migration)));
        ByteBuf answer = HandSource.readFrame(control);
        if (answer != null && answer.getUnsignedByte(answer.readerIndex()) == Wire.ERROR) {
            answer.readUnsignedByte();
            throw new AssertionError("RECOVER refused: " + Wire.readError(answer) + "; destination: " + in.result().getNow(null));
        }
        assertEquals(Wire.typeName(Wire.RECOVERED), Wire.typeName(answer.readUnsignedByte()), "nothing is missing");
        assertEquals(0, Wire.readRecovered(answer));
        source.join(0);
        source.join(1);
        send(source.channel(0), out -> Wire.writeRoundEnd(out, round, 0));
        send(source.channel(1), out -> Wire.writeRoundEnd(out, round, 0));
        long digest = source.sealed(new byte[] {5});
        send(control, out -> {
            Wire.writeRoundEnd(out, round, 0);
            Wire.writeEnd(out, digest, 1);
        });
        List<ByteBuf> replies = readUntilClosed(control);
        assertEquals("[RESUMED]", describe(replies), "destination: " + in.result().getNow(null));
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
        assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
        assertTrue(report.verified());
        assertEquals(1, report.postcopy().recoveries());
        assertEquals(-1, source.expected.segment().mismatch(memory.segment()), "the memory as sent");
    }

    @Test
    void aConnectionForAnotherMigrationIsRefusedWithItsReasonOnHelloJoinAndRecover() throws Exception {
        UUID id = UUID.fromString("6f1c2d3e-4a5b-4c6d-8e7f-90a1b2c3d4e5");
        UUID other = UUID.fromString("0b5e7a3c-1d2f-4e6a-9b8c-7d6e5f4a3b2c");
        List<String> refused = new java.util.concurrent.CopyOnWriteArrayList<>();
        start(b -> b.faultMechanism(FaultMechanism.SOFTWARE).recoverTimeoutMillis(30_000).migrationId(id)
                .onRefused(refused::add));
        for (UUID wrong : List.of(other, Wire.NO_MIGRATION)) {
            try (HandSource stranger = new HandSource(in.address(), BYTES)) {
                send(stranger.control, out -> Wire.writeHello(out, new Wire.Hello(Wire.VERSION, GuestMemory.PAGE_SIZE,
                        BYTES, POSTCOPY_CAPS, 0, 1, wrong)));
                assertEquals("HELLO for migration " + (wrong.equals(other) ? other : "none (no migration-id given)")
                        + ", this destination serves migration " + id, refusal(stranger.control));
            }
        }
        assertFalse(in.result().isDone(), "a HELLO for another migration fails nothing: the destination waits on");
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.migration = id;
            intoPostcopy(source);
            try (Socket stray = source.connect()) {
                send(stray, out -> Wire.writeJoin(out, new Wire.Join(source.session, 0, other)));
                assertEquals("JOIN for migration " + other + ", this session is migration " + id, refusal(stray));
            }
            send(source.channel(0), out -> Wire.writeRoundEnd(out, 2, 0));
            send(source.channel(1), out -> Wire.writeRoundEnd(out, 2, 0));
            source.control.close();
            assertEquals("[]", describe(readUntilClosed(source.channel(0))));
            assertEquals("[]", describe(readUntilClosed(source.channel(1))));
            // the lost session waits for its source: a RECOVER of another migration does not take its place
            try (Socket wrong = source.connect()) {
                send(wrong, out -> Wire.writeRecover(out, new Wire.Recover(source.session, other)));
                assertEquals("RECOVER for migration " + other + ", this session is migration " + id, refusal(wrong));
            }
            assertFalse(in.result().isDone(), "the refused RECOVER fails nothing");
            recoverAndComplete(source, 2);
        }
        assertEquals(4, refused.size(), "each refusal told to the destination's caller: " + refused);
        assertTrue(refused.get(3).contains("RECOVER for migration " + other), refused.toString());
    }

    @Test
    void aPostcopySessionLostAfterItsChannelsEndedTheLastRoundRecoversAndCompletes() throws Exception {
        start(b -> b.faultMechanism(FaultMechanism.SOFTWARE).recoverTimeoutMillis(30_000));
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            intoPostcopy(source);
            // every page went: the channels end the post-copy round, then the control connection breaks
            send(source.channel(0), out -> Wire.writeRoundEnd(out, 2, 0));
            send(source.channel(1), out -> Wire.writeRoundEnd(out, 2, 0));
            source.control.close();
            // the destination closes every connection of the lost session and waits for the source
            assertEquals("[]", describe(readUntilClosed(source.channel(0))));
            assertEquals("[]", describe(readUntilClosed(source.channel(1))));
            assertFalse(in.result().isDone(), "the guest runs here: the session waits for a recovery");
            recoverAndComplete(source, 2);
        }
    }

    @Test
    void aConnectionLostWhileThePostcopyBarrierWaitsLeadsToRecoveryNotFailure() throws Exception {
        BarrierWatch clock = new BarrierWatch();
        // a long peer timeout: the loss must not wait for it
        start(b -> b.faultMechanism(FaultMechanism.SOFTWARE).recoverTimeoutMillis(30_000).peerTimeoutMillis(60_000).clock(clock));
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            intoPostcopy(source);
            send(source.channel(0), out -> Wire.writeRoundEnd(out, 2, 0));
            clock.arm();
            send(source.control, out -> Wire.writeRoundEnd(out, 2, 0));
            assertTrue(clock.reached.await(10, TimeUnit.SECONDS), "the control thread never reached the barrier");
            // the request channel breaks before its ROUND_END
            source.channel(1).close();
            assertEquals("[]", describe(readUntilClosed(source.control)),
                    "the lost session's control connection closes without an ERROR: " + in.result().getNow(null));
            assertFalse(in.result().isDone(), "the guest runs here: the session waits for a recovery");
            recoverAndComplete(source, 2);
        }
    }

    @Test
    void aRecoverWithOnlyTheMagicOrForAnotherSessionIsRefusedAndTheRealSourceRecovers() throws Exception {
        start(b -> b.faultMechanism(FaultMechanism.SOFTWARE).recoverTimeoutMillis(30_000));
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            intoPostcopy(source);
            send(source.channel(0), out -> Wire.writeRoundEnd(out, 2, 0));
            send(source.channel(1), out -> Wire.writeRoundEnd(out, 2, 0));
            source.control.close();
            assertEquals("[]", describe(readUntilClosed(source.channel(0))));
            // the session is lost and waits: a client that knows only the magic learns nothing
            try (Socket stranger = source.connect()) {
                send(stranger, out -> {
                    Wire.writeHeader(out, Wire.RECOVER, 8);
                    out.writeLong(Wire.MAGIC);
                });
                assertEquals("RECOVER body of 8 bytes, expected " + (8 + 8 + 16), refusal(stranger), "no MISSING runs for it");
            }
            try (Socket stranger = source.connect()) {
                send(stranger, out -> Wire.writeRecover(out, new Wire.Recover(source.session ^ 1, Wire.NO_MIGRATION)));
                assertEquals("RECOVER for another session", refusal(stranger));
            }
            try (Socket stranger = source.connect()) {
                send(stranger, out -> Wire.writeJoin(out, new Wire.Join(source.session, 0, Wire.NO_MIGRATION)));
                assertEquals("JOIN while the session is RECOVERING", refusal(stranger), "no page goes in before RECOVER");
            }
            assertFalse(in.result().isDone(), "refused recoveries fail nothing");
            recoverAndComplete(source, 2);
        }
    }

    @Test
    void aSourceSilentPastThePeerTimeoutInPostcopyIsRecoveredNotFailed() throws Exception {
        start(b -> b.faultMechanism(FaultMechanism.SOFTWARE).recoverTimeoutMillis(30_000).peerTimeoutMillis(500));
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            intoPostcopy(source);
            send(source.channel(0), out -> Wire.writeRoundEnd(out, 2, 0));
            send(source.channel(1), out -> Wire.writeRoundEnd(out, 2, 0));
            // then nothing, not even a heartbeat, on any connection: the read timeouts take the session for lost
            long began = System.nanoTime();
            assertEquals("[]", describe(readUntilClosed(source.control)), "closed without an ERROR: " + in.result().getNow(null));
            assertEquals("[]", describe(readUntilClosed(source.channel(0))));
            assertTrue(System.nanoTime() - began < TimeUnit.SECONDS.toNanos(8), "noticed within the peer timeout");
            assertFalse(in.result().isDone(), "the guest runs here: the session waits for a recovery");
            recoverAndComplete(source, 2);
        }
    }

    @Test
    void aSecondPostcopyStartIsRefusedAndTheGuestResumedOnce() throws Exception {
        start(b -> b.faultMechanism(FaultMechanism.SOFTWARE).recoverTimeoutMillis(1000));
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            intoPostcopy(source);
            send(source.control, out -> Wire.writePostcopyStart(out, 2));
            MigrationReport report = in.result().get(30, TimeUnit.SECONDS);
            assertEquals(MigrationState.FAILED, report.outcome());
            assertTrue(report.error().contains("POSTCOPY_START while the session is POSTCOPY"), report.error());
            assertEquals(1, vm.resumes.get(), "resumed once, at the first POSTCOPY_START");
        }
    }

    // ---- 8. the real source over three channels ----

    @Test
    void theRealSourceOverThreeChannelsMigratesAGuestByteForByte() throws Exception {
        long size = 32L << 20;
        try (TestGuest source = new TestGuest(size, 21, true); TestGuest target = new TestGuest(size, 0, false)) {
            target.memory.segment().fill((byte) 0);
            try (IncomingMigration dst = Migration.destination(target).memory(target.memory).start();
                    TcpProxy proxy = new TcpProxy(dst.address())) {
                MigrationReport out = Migration.source(source.memory, source.dirty, source)
                        .parameters(MigrationParameters.builder().channels(3).downtimeLimitMillis(50).build())
                        .connect(proxy.address()).start().result().get(60, TimeUnit.SECONDS);
                MigrationReport dest = dst.result().get(10, TimeUnit.SECONDS);

                assertEquals(MigrationState.COMPLETED, out.outcome(), out.error());
                assertTrue(out.verified(), out.error());
                assertEquals(SourceVmState.STOPPED, out.sourceVmState());
                assertEquals(MigrationState.COMPLETED, dest.outcome(), dest.error());
                assertTrue(dest.verified() && dest.destinationResumed());
                assertEquals(-1, source.memory.segment().mismatch(target.memory.segment()), "memories differ");
                assertEquals(PageDigest.scan(source.memory), PageDigest.scan(target.memory));
                assertEquals(out.digest(), dest.digest());
                assertArrayEquals(source.saveDeviceState(), target.loadedDeviceState);
                assertEquals(1, target.resumes);

                List<TcpProxy.Connection> connections = proxy.connections();
                assertEquals(4, connections.size(), "a control connection and three page channels");
                assertTrue(connections.get(0).upstreamBytes.get() < 64 << 10,
                        "no page on the control connection: " + connections.get(0).upstreamBytes.get() + " bytes");
                for (int c = 1; c <= 3; c++) {
                    // each channel carries its third of the guest's 24 MiB of non-zero pages
                    assertTrue(connections.get(c).upstreamBytes.get() > 6L << 20,
                            "page channel " + (c - 1) + " carried " + connections.get(c).upstreamBytes.get() + " bytes");
                }
            }
        }
    }

    // ---- 9. a page channel lost in pre-copy ----

    @Test
    void aPageChannelLostInPrecopyFailsBothSidesWithTheGuestRunningOnTheSource() throws Exception {
        long size = 64L << 20;
        try (TestGuest source = new TestGuest(size, 23, false); TestGuest target = new TestGuest(size, 0, false);
                GuestMemory before = GuestMemory.anonymous(size)) {
            target.memory.segment().fill((byte) 0);
            before.segment().copyFrom(source.memory.segment());
            try (IncomingMigration dst = Migration.destination(target).memory(target.memory).start();
                    // connection 0 is the control connection, 1 page channel 0: cut it 256 KiB into the bulk round
                    TcpProxy proxy = new TcpProxy(dst.address(), 1, 256 << 10)) {
                MigrationReport out = Migration.source(source.memory, source.dirty, source)
                        .parameters(MigrationParameters.builder().channels(2).build())
                        .connect(proxy.address()).start().result().get(60, TimeUnit.SECONDS);
                MigrationReport dest = dst.result().get(10, TimeUnit.SECONDS);

                assertTrue(proxy.cut.isDone(), "the proxy never cut page channel 0");
                assertEquals(MigrationState.FAILED, out.outcome(), "source: " + out.error());
                assertEquals(SourceVmState.RUNNING, out.sourceVmState(), out.error());
                assertFalse(out.verified());
                assertEquals(-1, before.segment().mismatch(source.memory.segment()), "the source's memory was written");

                assertEquals(MigrationState.FAILED, dest.outcome(), "destination: " + dest.error());
                assertFalse(dest.destinationResumed());
                assertEquals(0, target.resumes, "the destination resumed the guest");
                assertNull(target.loadedDeviceState, "the destination loaded a device state");
                assertTrue(dest.error().contains("connection lost before the end of the stream")
                        || dest.error().startsWith("source failed"), "destination: " + dest.error());
            }
        }
    }

    // ---- 10. a failing session's answer, with the source's frames still coming ----

    /**
     * The session fails on the first of a flood of frames: its ERROR must still reach the
     * source, followed by an orderly close. Frames read after the session ended once closed the
     * control connection ahead of the ERROR queued for it (a gang member's source then never heard
     * that its guest was not resumed here, and kept it paused: it ran nowhere); and a plain close
     * with the source's bytes unread resets the connection, whose reset can discard the ERROR.
     */
    @Test
    void aSessionFailingUnderAFloodOfFramesStillSaysWhyAndClosesInOrder() throws Exception {
        start();
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(1);
            source.joinAll(1);
            // the first JOINED fails the session; the rest keep the event loop reading as it does
            byte[] flood = HandSource.frame(out -> {
                for (int i = 0; i < 4096; i++) {
                    Wire.writeJoined(out, 0);
                }
            });
            Thread writer = new Thread(() -> {
                try {
                    for (int i = 0; i < 64; i++) {
                        write(source.control, flood);
                    }
                } catch (java.io.IOException closed) {
                    // the destination may close once it has said why
                }
            }, "flooding-source");
            writer.start();
            List<ByteBuf> replies = new java.util.ArrayList<>();
            String reset = null;
            try {
                for (ByteBuf f = HandSource.readFrame(source.control); f != null; f = HandSource.readFrame(source.control)) {
                    replies.add(f);
                }
            } catch (java.net.SocketException e) {
                reset = e.getMessage();
            }
            MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
            assertEquals(MigrationState.FAILED, report.outcome());
            assertEquals(0, vm.resumes.get(), "the guest was resumed");
            assertEquals(1, replies.size(), "one ERROR before the end: " + describe(replies) + ", then " + reset);
            assertEquals(Wire.ERROR, replies.get(0).readUnsignedByte());
            String reason = Wire.readError(replies.get(0));
            assertTrue(reason.contains("unexpected JOINED frame on the control connection"), reason);
            assertNull(reset, "the connection was reset after the ERROR instead of closed");
            writer.join(TimeUnit.SECONDS.toMillis(30));
            assertFalse(writer.isAlive(), "the flood never ended");
        }
    }
}
