package dev.ferry.engine;

import static dev.ferry.engine.HandSource.describe;
import static dev.ferry.engine.HandSource.filledPage;
import static dev.ferry.engine.HandSource.pages;
import static dev.ferry.engine.HandSource.randomPage;
import static dev.ferry.engine.HandSource.rawRecord;
import static dev.ferry.engine.HandSource.readUntilClosed;
import static dev.ferry.engine.HandSource.refusal;
import static dev.ferry.engine.HandSource.send;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Capability;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageDigest;
import dev.ferry.protocol.PageEncoding;
import dev.ferry.protocol.PageRuns;
import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.net.Socket;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A destination ({@link Migration#destination}) fed hand-made protocol version 2 streams over
 * real sockets on 127.0.0.1 ({@link HandSource}): every malformed or dishonest stream, on the
 * control connection or on a page channel, must end FAILED with a reason naming the problem, with
 * the guest never resumed, no device state loaded and, while the control connection is open, an
 * ERROR frame on it saying what the report says; one honest stream over two page channels must
 * complete, resume and answer RESUMED.
 */
class DestinationRobustnessTest {
    /** Three stripes: with two page channels, stripes 0 and 2 are channel 0's, stripe 1 channel 1's. */
    private static final int PAGES = 3 * PageBitmap.STRIPE_PAGES;
    private static final long BYTES = (long) PAGES * GuestMemory.PAGE_SIZE;
    private static final long NOW = 5_000_000;

    private GuestMemory memory;
    private RecordingVm vm;
    private IncomingMigration in;

    @BeforeEach
    void startDestination() throws Exception {
        memory = GuestMemory.anonymous(BYTES);
        vm = new RecordingVm();
        // a fixed clock: the downtime the destination reports is NOW - the source's pause, exactly
        in = Migration.destination(vm).memory(memory).peerTimeoutMillis(10_000).clock(() -> NOW).start();
    }

    @AfterEach
    void stopDestination() {
        in.close();
        memory.close();
    }

    /** What a hand-made source does before it waits for the destination's verdict. */
    interface Script {
        void run(HandSource source) throws Exception;
    }

    /**
     * A hostile or broken stream and what the failure must say; {@code errorFrame} is false when
     * the stream itself closed the control connection, so that no ERROR can reach it.
     */
    record Bad(String name, Script script, String reason, boolean errorFrame) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static Bad bad(String name, Script script, String reason) {
        return new Bad(name, script, reason, true);
    }

    private static void hello(HandSource s, int version, int pageSize, long bytes, int mode, int channels) throws Exception {
        send(s.control, out -> Wire.writeHello(out, new Wire.Hello(version, pageSize, bytes, Wire.bit(Capability.ZERO_PAGES),
                mode, channels, Wire.NO_MIGRATION)));
    }

    /** HELLO and WELCOME on one page channel, and that channel joined: what the page channel then sends is the test. */
    private static Socket oneChannel(HandSource s) throws Exception {
        s.hello(1);
        return s.join(0);
    }

    /** A HELLO the destination refuses: the connection that sent it is forgotten. */
    static Stream<Bad> badHandshakes() {
        return Stream.of(
                bad("wrong magic", s -> send(s.control, out -> {
                    Wire.writeHeader(out, Wire.HELLO, 29);
                    out.writeLong(0x5145_4D55_2D4D_4947L).writeShort(Wire.VERSION).writeInt(4096).writeLong(BYTES).writeInt(1)
                            .writeByte(0).writeShort(1);
                }), "bad magic 0x51454d552d4d4947 in HELLO"),
                bad("wrong version", s -> hello(s, Wire.VERSION + 1, 4096, BYTES, 0, 1),
                        "source speaks protocol version " + (Wire.VERSION + 1) + ", this destination " + Wire.VERSION),
                bad("a version 1 HELLO, two bytes shorter", s -> send(s.control, out -> {
                    Wire.writeHeader(out, Wire.HELLO, 27);
                    out.writeLong(Wire.MAGIC).writeShort(1).writeInt(4096).writeLong(BYTES).writeInt(1).writeByte(0);
                }), "source speaks protocol version 1, this destination " + Wire.VERSION),
                bad("wrong page size", s -> hello(s, Wire.VERSION, 8192, BYTES, 0, 1), "source page size 8192"),
                bad("memory size mismatch", s -> hello(s, Wire.VERSION, 4096, 2 * BYTES, 0, 1),
                        "source memory is " + 2 * BYTES + " bytes, destination has " + BYTES),
                bad("a claim of 4 TiB, above max-memory", s -> hello(s, Wire.VERSION, 4096, 4L << 40, 0, 1),
                        "source memory of 4398046511104 bytes is above this destination's max-memory of 1099511627776 bytes"),
                bad("a claim that is no whole number of pages", s -> hello(s, Wire.VERSION, 4096, BYTES + 1, 0, 1),
                        "source memory of " + (BYTES + 1) + " bytes is not a positive number of 4096-byte pages"),
                bad("unknown mode", s -> hello(s, Wire.VERSION, 4096, BYTES, 3, 1), "unknown migration mode 3"),
                bad("no page channel", s -> hello(s, Wire.VERSION, 4096, BYTES, 0, 0),
                        "source asks for 0 page channels; 1..64 are allowed"),
                bad("too many page channels", s -> hello(s, Wire.VERSION, 4096, BYTES, 0, Wire.MAX_CHANNELS + 1),
                        "source asks for 65 page channels; 1..64 are allowed"),
                bad("HELLO cut short", s -> send(s.control, out -> {
                    Wire.writeHeader(out, Wire.HELLO, 12);
                    out.writeLong(Wire.MAGIC).writeShort(Wire.VERSION).writeShort(0);
                }), "HELLO body of 12 bytes, expected 45"));
    }

    static Stream<Bad> badStreams() {
        return Stream.of(
                // ---- pages ----
                bad("page index out of range", s -> send(oneChannel(s), out -> pages(out, o -> rawRecord(o, PAGES, filledPage(1)))),
                        "page index " + PAGES + " out of range (guest has " + PAGES + " pages)"),
                bad("zero run past the end", s -> send(oneChannel(s), out -> pages(out, o -> HandSource.zeroRecord(o, PAGES - 2, 3))),
                        "zero run of 3 pages at " + (PAGES - 2) + " does not fit " + PAGES + " pages"),
                bad("record header cut by the frame", s -> send(oneChannel(s), out -> pages(out, o -> o.writeLong(3).writeByte(0))),
                        "malformed PAGES frame: 9 bytes left, a record header needs 11"),
                bad("payload cut by the frame", s -> send(oneChannel(s), out -> pages(out,
                        o -> o.writeLong(3).writeByte(PageEncoding.RAW).writeShort(4096).writeZero(100))),
                        "page 3 payload of 4096 bytes, frame has 100"),
                bad("unknown page encoding", s -> send(oneChannel(s), out -> pages(out,
                        o -> o.writeLong(3).writeByte(9).writeShort(1).writeByte(0))),
                        "unknown page encoding 9 for page 3"),
                bad("an encoding the handshake did not accept", s -> send(oneChannel(s), out -> pages(out,
                        o -> o.writeLong(3).writeByte(PageEncoding.LZ4).writeShort(4).writeInt(0))),
                        "lz4 page 3 but the handshake accepted no stage that produces it"),
                bad("a page that does not decode", s -> {
                    s.hello(1, Wire.bit(Capability.ZERO_PAGES) | Wire.bit(Capability.LZ4));
                    send(s.join(0), out -> pages(out, o -> o.writeLong(3).writeByte(PageEncoding.LZ4).writeShort(4).writeInt(-1)));
                }, "lz4 block of 4 bytes does not decompress to 4096 bytes"),

                // ---- the stream's end ----
                new Bad("truncated page channel", s -> {
                    Socket channel = oneChannel(s);
                    ByteBuf whole = Unpooled.buffer();
                    pages(whole, o -> rawRecord(o, 2, filledPage(1)));
                    byte[] half = new byte[whole.readableBytes() / 2];
                    whole.readBytes(half);
                    channel.getOutputStream().write(half);
                    channel.shutdownOutput();
                }, "connection lost before the end of the stream (0 pages received", true),
                new Bad("truncated control stream", s -> {
                    oneChannel(s);
                    s.control.getOutputStream().write(new byte[] {0, 0, 0, 9, Wire.DEVICE_STATE, 1, 2});
                    s.control.shutdownOutput();
                }, "connection lost before the end of the stream (0 pages received", false),
                bad("wrong digest", s -> {
                    oneChannel(s);
                    s.raw(0, 3, randomPage(3));
                    s.endRound(1);
                    long digest = s.digest();
                    send(s.control, out -> {
                        Wire.writeDeviceState(out, new byte[] {1, 2, 3});
                        Wire.writeEnd(out, digest + 1, 1);
                    });
                }, "digest mismatch"),
                bad("device state other than the one sealed", s -> {
                    oneChannel(s);
                    s.endRound(1);
                    long sealed = s.sealed(new byte[] {1, 2, 3});
                    send(s.control, out -> {
                        Wire.writeDeviceState(out, new byte[] {1, 2, 4});
                        Wire.writeEnd(out, sealed, 1);
                    });
                }, "digest mismatch"),
                bad("a digest sealed to another session", s -> {
                    oneChannel(s);
                    s.endRound(1);
                    byte[] state = {1, 2, 3};
                    long other = PageDigest.seal(s.digest(), state, s.session + 1);
                    send(s.control, out -> {
                        Wire.writeDeviceState(out, state);
                        Wire.writeEnd(out, other, 1);
                    });
                }, "digest mismatch"),
                bad("END before DEVICE_STATE", s -> {
                    oneChannel(s);
                    s.endRound(1);
                    send(s.control, out -> Wire.writeEnd(out, PageDigest.zeroMemory(PAGES), 1));
                }, "END before DEVICE_STATE"),
                bad("a second DEVICE_STATE", s -> {
                    oneChannel(s);
                    s.endRound(1);
                    send(s.control, out -> {
                        Wire.writeDeviceState(out, new byte[] {1});
                        Wire.writeDeviceState(out, new byte[] {2});
                    });
                }, "a second DEVICE_STATE"),
                bad("the source's ERROR", s -> {
                    oneChannel(s);
                    send(s.control, out -> Wire.writeError(out, "disk on fire"));
                }, "source failed: disk on fire"),

                // ---- frames that are malformed or on the wrong connection ----
                bad("zero-length frame on the control connection", s -> {
                    s.hello(1);
                    send(s.control, out -> out.writeInt(0));
                }, "malformed frame: length 0 has no type"),
                bad("zero-length frame on a page channel", s -> send(oneChannel(s), out -> out.writeInt(0)),
                        "malformed frame: length 0 has no type"),
                bad("frame above MAX_FRAME on a page channel", s -> send(oneChannel(s),
                        out -> out.writeInt(Wire.MAX_FRAME + 1).writeByte(Wire.PAGES)), "malformed frame"),
                bad("discard without post-copy", s -> {
                    oneChannel(s);
                    send(s.control, out -> {
                        Wire.writeHeader(out, Wire.DISCARD, PageRuns.RUN);
                        out.writeLong(0).writeInt(1);
                    });
                }, "DISCARD without the postcopy capability"),
                bad("unknown frame type on the control connection", s -> {
                    s.hello(1);
                    send(s.control, out -> {
                        Wire.writeHeader(out, 0x55, 2);
                        out.writeShort(0);
                    });
                }, "unexpected unknown(0x55) frame on the control connection"),
                bad("unknown frame type on a page channel", s -> send(oneChannel(s), out -> {
                    Wire.writeHeader(out, 0x55, 2);
                    out.writeShort(0);
                }), "unexpected unknown(0x55) frame on page channel 0"),
                bad("PAGES on the control connection", s -> {
                    s.hello(1);
                    send(s.control, out -> pages(out, o -> rawRecord(o, 3, filledPage(1))));
                }, "unexpected PAGES frame on the control connection"),
                bad("DEVICE_STATE on a page channel", s -> send(oneChannel(s), out -> Wire.writeDeviceState(out, new byte[] {1})),
                        "unexpected DEVICE_STATE frame on page channel 0"),
                bad("JOIN again on a joined page channel", s -> {
                    Socket channel = oneChannel(s);
                    send(channel, out -> Wire.writeJoin(out, new Wire.Join(s.session, 0, Wire.NO_MIGRATION)));
                }, "unexpected JOIN frame on page channel 0"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badStreams")
    void aBadStreamFailsWithoutResuming(Bad bad) throws Exception {
        List<ByteBuf> replies;
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            bad.script().run(source);
            replies = readUntilClosed(source.control);
            Socket channel = source.channel(0);
            if (channel != null) {
                assertEquals("[]", describe(readUntilClosed(channel)), "the page channel is closed, with nothing on it");
            }
        }
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);

        assertEquals(MigrationState.FAILED, report.outcome());
        assertTrue(report.error().contains(bad.reason()), "reason: " + report.error());
        assertFalse(report.verified());
        assertFalse(report.destinationResumed());
        assertEquals(0, vm.resumes.get(), "the guest was resumed");
        assertNull(vm.loadedState, "device state was loaded");
        if (bad.errorFrame()) {
            assertEquals(1, replies.size(), "one ERROR, then the close: " + describe(replies));
            ByteBuf error = replies.get(0);
            assertEquals(Wire.ERROR, error.readUnsignedByte());
            assertEquals(report.error(), Wire.readError(error), "the ERROR frame says what the report says");
        } else {
            assertEquals("[]", describe(replies), "nothing after WELCOME on a control connection the source closed");
        }
    }

    /**
     * A connection whose HELLO is refused never finished the handshake: it gets the reason and is
     * forgotten, the destination goes on waiting, and the real source then migrates.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("badHandshakes")
    void aBadHandshakeIsRefusedAndTheDestinationWaitsForItsSource(Bad bad) throws Exception {
        try (HandSource stranger = new HandSource(in.address(), BYTES)) {
            bad.script().run(stranger);
            List<ByteBuf> replies = readUntilClosed(stranger.control);
            assertEquals(1, replies.size(), "one ERROR, then the close: " + describe(replies));
            ByteBuf error = replies.get(0);
            assertEquals(Wire.ERROR, error.readUnsignedByte());
            String reason = Wire.readError(error);
            assertTrue(reason.contains(bad.reason()), "reason: " + reason);
        }
        assertFalse(in.result().isDone(), "a refused handshake fails nothing: " + in.result().getNow(null));
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(1);
            source.join(0);
            source.raw(0, 3, randomPage(3));
            source.endRound(1);
            source.finish(new byte[] {7}, 1);
            source.awaitResumed();
        }
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
        assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
        assertTrue(report.verified());
        assertEquals(1, vm.resumes.get());
    }

    @Test
    void anHonestHandMadeStreamOverTwoChannelsCompletesResumesAndAnswersWithTheDigest() throws Exception {
        byte[] deviceState = "registers and queues".getBytes();
        long pauseNanos = 1_000_000;
        long digest;
        long sealed;
        Wire.Resumed resumed;
        List<ByteBuf> channel0;
        List<ByteBuf> channel1;
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            Wire.Welcome welcome = source.hello(2);
            assertEquals(Wire.bit(Capability.ZERO_PAGES), welcome.capabilities(), "the destination accepts what was offered");
            source.joinAll(2);
            // round 1: each page on its stripe's channel; the zero run re-sends page 5 as zeros (the last record wins)
            source.raw(0, 3, randomPage(3));
            source.raw(0, 5, randomPage(5));
            source.zeros(0, 4, 6);
            source.raw(1, 512 + 7, randomPage(519));
            source.zeros(1, 1000, 24);
            source.raw(0, 1024 + 100, randomPage(1124));
            source.endRound(2);
            // round 2: page 3 dirtied again; channel 1 sent nothing but ends the round all the same
            source.raw(0, 3, randomPage(33));
            source.raw(1, 1023, randomPage(1023));
            source.raw(1, 512 + 7, filledPage(7));
            source.endRound(2);
            // the stop-and-copy round, empty
            source.endRound(2);
            digest = source.digest();
            sealed = source.sealed(deviceState);
            source.finish(deviceState, pauseNanos);
            resumed = source.awaitResumed();
            channel0 = readUntilClosed(source.channel(0));
            channel1 = readUntilClosed(source.channel(1));
            assertEquals(-1, source.expected.segment().mismatch(memory.segment()), "the memory as sent, byte for byte");
        }
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);

        assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
        assertTrue(report.verified() && report.destinationResumed());
        assertEquals(1, vm.resumes.get());
        assertArrayEquals(deviceState, vm.loadedState);
        assertEquals(digest, report.digest());
        assertEquals((NOW - pauseNanos) / 1e6, report.downtimeMs(), 1e-9);
        assertEquals(EnumSet.of(Capability.ZERO_PAGES), report.capabilities());
        assertEquals(1 + 1 + 6 + 1 + 24 + 1 + 1 + 1 + 1, report.pagesSent(), "pages received, a zero run counting its pages");

        assertEquals(sealed, resumed.digest(), "RESUMED carries the digest sealed with the device state and session");
        assertEquals(NOW, resumed.resumeNanos());
        assertEquals("[]", describe(channel0), "the page channels close after RESUMED, with nothing on them");
        assertEquals("[]", describe(channel1));
        assertEquals(digest, PageDigest.scan(memory), "the memory as applied has the digest the source sent");
    }

    @Test
    void anotherHelloOrRecoverIsRefusedAndTheMigrationGoesOn() throws Exception {
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(1);
            source.join(0);
            try (Socket intruder = source.connect()) {
                send(intruder, out -> Wire.writeHello(out, new Wire.Hello(Wire.VERSION, GuestMemory.PAGE_SIZE, BYTES, 1, 0, 1, Wire.NO_MIGRATION)));
                assertEquals("this destination is already receiving a migration", refusal(intruder), "one source at a time");
            }
            try (Socket intruder = source.connect()) {
                send(intruder, out -> Wire.writeRecover(out, new Wire.Recover(source.session, Wire.NO_MIGRATION)));
                assertEquals("RECOVER while the session is RECEIVING", refusal(intruder),
                        "no post-copy session was lost, so there is nothing to recover");
            }
            assertFalse(in.result().isDone(), "the source's migration is untouched");
            source.raw(0, 9, randomPage(9));
            source.endRound(1);
            source.finish(new byte[] {7}, 1);
            source.awaitResumed();
        }
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
        assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
        assertTrue(report.verified());
    }
}
