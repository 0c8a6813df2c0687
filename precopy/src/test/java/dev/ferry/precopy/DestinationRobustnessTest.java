package dev.ferry.precopy;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.compression.PageEncoding;
import dev.ferry.core.Capability;
import dev.ferry.core.FaultMechanism;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MemoryDigest;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.PageDigest;
import dev.ferry.core.VmControl;
import dev.ferry.transport.LinkServer;
import dev.ferry.transport.Transports;
import dev.ferry.transport.Wire;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.EventLoopGroup;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A destination behind a real LinkServer, fed hand-made byte streams from a plain socket: every
 * malformed or dishonest stream must end FAILED with a reason naming the problem, with the guest
 * never resumed and, while the socket is open, an ERROR frame saying the same; one honest stream
 * must complete, resume and answer RESUMED.
 */
class DestinationRobustnessTest {
    private static final int PAGES = 16;
    private static final long BYTES = PAGES * GuestMemory.PAGE_SIZE;
    private static final long NOW = 5_000_000;

    private EventLoopGroup group;
    private GuestMemory memory;
    private RecordingVm vm;
    private DestinationMigration migration;
    private LinkServer server;

    @BeforeEach
    void startDestination() throws Exception {
        group = Transports.group(1);
        memory = GuestMemory.anonymous(BYTES);
        vm = new RecordingVm();
        // as engine's DestinationBuilder.memory(...) does: a fixed guest refuses any other size
        migration = new DestinationMigration(bytes -> {
            if (bytes != memory.byteSize()) {
                throw new IllegalArgumentException("source memory is " + bytes + " bytes, destination has " + memory.byteSize());
            }
            return memory;
        }, vm, () -> NOW, EnumSet.allOf(Capability.class), FaultMechanism.AUTO, 60_000,
                new io.micrometer.core.instrument.simple.SimpleMeterRegistry());
        server = LinkServer.bind(group, new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 10_000, () -> migration);
    }

    @AfterEach
    void stopDestination() {
        server.close();
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5000);
        memory.close();
    }

    /** A hostile or broken stream, what the failure must say, and whether the handshake got through first. */
    record Bad(String name, Consumer<ByteBuf> stream, String reason, boolean welcomed, boolean halfCloses) {
        @Override
        public String toString() {
            return name;
        }
    }

    static Stream<Bad> badStreams() {
        return Stream.of(
                new Bad("wrong magic", out -> {
                    Wire.writeHeader(out, Wire.HELLO, 27);
                    out.writeLong(0x5145_4D55_2D4D_4947L).writeShort(1).writeInt(4096).writeLong(BYTES).writeInt(1).writeByte(0);
                }, "bad magic 0x51454d552d4d4947 in HELLO", false, false),
                new Bad("wrong version", out -> Wire.writeHello(out, new Wire.Hello(2, 4096, BYTES, 1, 0)),
                        "source speaks protocol version 2, this destination 1", false, false),
                new Bad("wrong page size", out -> Wire.writeHello(out, new Wire.Hello(1, 8192, BYTES, 1, 0)),
                        "source page size 8192", false, false),
                new Bad("memory size mismatch", out -> Wire.writeHello(out, new Wire.Hello(1, 4096, 2 * BYTES, 1, 0)),
                        "source memory is 131072 bytes, destination has 65536", false, false),
                new Bad("page index out of range", out -> {
                    hello(out);
                    pages(out, o -> rawRecord(o, PAGES, 1));
                }, "page index 16 out of range (guest has 16 pages)", true, false),
                new Bad("truncated stream", out -> {
                    hello(out);
                    ByteBuf whole = Unpooled.buffer();
                    pages(whole, o -> rawRecord(o, 2, 1));
                    out.writeBytes(whole, whole.readableBytes() / 2);
                }, "connection lost before the end of the stream (0 pages received); not resuming", true, true),
                new Bad("wrong digest", out -> {
                    hello(out);
                    Wire.writeDeviceState(out, new byte[] {1, 2, 3});
                    Wire.writeEnd(out, PageDigest.zeroMemory(PAGES) + 1, 1);
                }, "memory digest mismatch", true, false),
                new Bad("zero-length frame", out -> out.writeInt(0),
                        "malformed frame: length 0 has no type", false, false),
                new Bad("discard without post-copy", out -> {
                    hello(out);
                    Wire.writeHeader(out, Wire.DISCARD, Wire.DISCARD_RUN);
                    Wire.writeDiscardRun(out, 0, 1);
                }, "DISCARD without the postcopy capability", true, false),
                new Bad("unknown frame type", out -> {
                    hello(out);
                    Wire.writeHeader(out, 0x55, 2);
                    out.writeShort(0);
                }, "unexpected unknown(0x55) frame from the source", true, false));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badStreams")
    void aBadStreamFailsWithoutResuming(Bad bad) throws Exception {
        List<ByteBuf> replies;
        try (Socket socket = connect()) {
            ByteBuf out = Unpooled.buffer();
            bad.stream().accept(out);
            socket.getOutputStream().write(ByteBufUtil.getBytes(out));
            if (bad.halfCloses()) {
                socket.shutdownOutput();
            }
            replies = readUntilClosed(socket);
        }
        MigrationReport report = migration.result().get(10, TimeUnit.SECONDS);

        assertEquals(MigrationState.FAILED, report.outcome());
        assertTrue(report.error().contains(bad.reason()), "reason: " + report.error());
        assertFalse(report.verified());
        assertFalse(report.destinationResumed());
        assertEquals(0, vm.resumes, "the guest was resumed");
        assertNull(vm.loadedState, "device state was loaded");

        int next = 0;
        if (bad.welcomed()) {
            assertEquals(Wire.WELCOME, replies.get(next++).readUnsignedByte());
        }
        if (!bad.halfCloses()) {
            ByteBuf error = replies.get(next++);
            assertEquals(Wire.ERROR, error.readUnsignedByte());
            assertEquals(report.error(), Wire.readError(error), "the ERROR frame says what the report says");
        }
        assertEquals(next, replies.size(), "nothing after the ERROR");
    }

    @Test
    void anHonestHandMadeStreamCompletesResumesAndAnswersWithTheDigest() throws Exception {
        SplittableRandom random = new SplittableRandom(3);
        byte[] page3 = new byte[GuestMemory.PAGE_SIZE];
        byte[] page5 = new byte[GuestMemory.PAGE_SIZE];
        random.nextBytes(page3);
        random.nextBytes(page5);
        byte[] deviceState = "registers and queues".getBytes();
        long pauseNanos = 1_000_000;

        // The source's running digest, kept the way PageStreamWriter keeps it, record by record.
        long digest;
        try (MemoryDigest sent = new MemoryDigest(PAGES)) {
            sent.update(3, hash(page3));
            sent.update(5, hash(page5));
            for (long p = 4; p < 10; p++) {
                sent.updateZero(p); // the run below re-sends page 5 as zeros: the last record wins
            }
            digest = sent.value();
        }

        List<ByteBuf> replies;
        try (Socket socket = connect()) {
            ByteBuf out = Unpooled.buffer();
            hello(out);
            pages(out, o -> {
                rawRecord(o, 3, page3);
                rawRecord(o, 5, page5);
                o.writeLong(4).writeByte(PageEncoding.ZERO).writeShort(6);
            });
            Wire.writeRoundEnd(out, 1, 8);
            Wire.writeDeviceState(out, deviceState);
            Wire.writeEnd(out, digest, pauseNanos);
            socket.getOutputStream().write(ByteBufUtil.getBytes(out));
            replies = readUntilClosed(socket);
        }
        MigrationReport report = migration.result().get(10, TimeUnit.SECONDS);

        assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
        assertTrue(report.verified() && report.destinationResumed());
        assertEquals(1, vm.resumes);
        assertArrayEquals(deviceState, vm.loadedState);
        assertEquals(digest, report.digest());
        assertEquals((NOW - pauseNanos) / 1e6, report.downtimeMs(), 1e-9);
        assertEquals(EnumSet.of(Capability.ZERO_PAGES), report.capabilities());

        assertEquals(2, replies.size());
        ByteBuf welcome = replies.get(0);
        assertEquals(Wire.WELCOME, welcome.readUnsignedByte());
        assertEquals(Capability.ZERO_PAGES.bit(), Wire.readWelcome(welcome));
        ByteBuf resumed = replies.get(1);
        assertEquals(Wire.RESUMED, resumed.readUnsignedByte());
        assertEquals(digest, resumed.readLong());
        assertEquals(NOW, resumed.readLong());

        MemorySegment guest = memory.segment();
        assertEquals(-1, guest.asSlice(3L * GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE).mismatch(MemorySegment.ofArray(page3)));
        for (long offset = 4L * GuestMemory.PAGE_SIZE; offset < BYTES; offset += 8) {
            assertEquals(0L, guest.get(ValueLayout.JAVA_LONG, offset), "byte " + offset + " should be zero");
        }
        assertEquals(digest, PageDigest.scan(memory), "the memory as applied has the digest the source sent");
    }

    @Test
    void anotherConnectionIsRefusedAndTheMigrationGoesOn() throws Exception {
        try (Socket source = connect()) {
            ByteBuf out = Unpooled.buffer();
            hello(out);
            source.getOutputStream().write(ByteBufUtil.getBytes(out));
            DataInputStream in = new DataInputStream(source.getInputStream());
            byte[] welcome = new byte[in.readInt()];
            in.readFully(welcome);
            assertEquals(Wire.WELCOME, welcome[0]);
            for (boolean recover : new boolean[] {false, true}) {
                try (Socket intruder = connect()) {
                    ByteBuf first = Unpooled.buffer();
                    if (recover) {
                        Wire.writeRecover(first);
                    } else {
                        hello(first);
                    }
                    intruder.getOutputStream().write(ByteBufUtil.getBytes(first));
                    List<ByteBuf> replies = readUntilClosed(intruder);
                    assertEquals(1, replies.size());
                    assertEquals(Wire.ERROR, replies.get(0).readUnsignedByte());
                    assertEquals("this destination is already receiving a migration", Wire.readError(replies.get(0)),
                            recover ? "no post-copy link was lost, so there is nothing to recover" : "one source at a time");
                }
            }
            assertFalse(migration.result().isDone(), "the source's migration is untouched");
            ByteBuf end = Unpooled.buffer();
            Wire.writeDeviceState(end, new byte[] {7});
            Wire.writeEnd(end, PageDigest.zeroMemory(PAGES), 1);
            source.getOutputStream().write(ByteBufUtil.getBytes(end));
            assertEquals(MigrationState.COMPLETED, migration.result().get(10, TimeUnit.SECONDS).outcome());
        }
    }

    private Socket connect() throws IOException {
        Socket socket = new Socket(server.localAddress().getAddress(), server.localAddress().getPort());
        socket.setSoTimeout(10_000);
        return socket;
    }

    /** Every frame the destination sent (type byte first) until it closed the connection. */
    private static List<ByteBuf> readUntilClosed(Socket socket) throws IOException {
        DataInputStream in = new DataInputStream(socket.getInputStream());
        List<ByteBuf> frames = new ArrayList<>();
        while (true) {
            int length;
            try {
                length = in.readInt();
            } catch (EOFException closed) {
                return frames;
            }
            byte[] frame = new byte[length];
            in.readFully(frame);
            frames.add(Unpooled.wrappedBuffer(frame));
        }
    }

    private static void hello(ByteBuf out) {
        Wire.writeHello(out, new Wire.Hello(Wire.VERSION, GuestMemory.PAGE_SIZE, BYTES, Capability.ZERO_PAGES.bit(), 0));
    }

    /** A PAGES frame around the records {@code records} writes. */
    private static void pages(ByteBuf out, Consumer<ByteBuf> records) {
        int header = out.writerIndex();
        Wire.writeHeader(out, Wire.PAGES, 0);
        records.accept(out);
        Wire.patchLength(out, header);
    }

    private static void rawRecord(ByteBuf out, long index, int fill) {
        byte[] page = new byte[GuestMemory.PAGE_SIZE];
        java.util.Arrays.fill(page, (byte) fill);
        rawRecord(out, index, page);
    }

    private static void rawRecord(ByteBuf out, long index, byte[] page) {
        out.writeLong(index).writeByte(PageEncoding.RAW).writeShort(page.length).writeBytes(page);
    }

    private static long hash(byte[] page) {
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment copy = arena.allocate(page.length);
            MemorySegment.copy(MemorySegment.ofArray(page), 0, copy, 0, page.length);
            return PageDigest.contentHash(copy, 0);
        }
    }

    /** A guest that records what the migration did to it. */
    private static final class RecordingVm implements VmControl {
        volatile int resumes;
        volatile byte[] loadedState;

        @Override
        public void pause() {
        }

        @Override
        public void resume() {
            resumes++;
        }

        @Override
        public byte[] saveDeviceState() {
            return new byte[0];
        }

        @Override
        public void loadDeviceState(byte[] state) {
            loadedState = state;
        }
    }
}
