package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import dev.ferry.core.Capability;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.PageDigest;
import dev.ferry.protocol.PageEncoding;
import dev.ferry.protocol.PageRecords;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * A hand-made protocol version 4 source on plain blocking sockets to 127.0.0.1: a control
 * connection, page channels joined by hand, and frames written byte by byte with the protocol
 * module's writers. It keeps the memory the destination should end with ({@link #expected}), so
 * that a test can send END with the right digest and compare memories, and each channel's page
 * count of the current round, so that ROUND_END can say the truth (or, on purpose, not).
 *
 * <p>Every read is bounded by the sockets' read timeout ({@link #READ_TIMEOUT_MILLIS}).
 */
final class HandSource implements AutoCloseable {
    static final int READ_TIMEOUT_MILLIS = 10_000;

    final InetSocketAddress address;
    final Socket control;
    /** The memory the destination must hold once every frame sent so far is applied. */
    final GuestMemory expected;
    private final List<Socket> opened = new ArrayList<>();
    private Socket[] channels = new Socket[0];
    private long[] roundPages = new long[0];
    private int round = 1;
    long session;
    /** The migration id its HELLO, JOINs and RECOVERs carry. */
    java.util.UUID migration = Wire.NO_MIGRATION;

    HandSource(InetSocketAddress address, long memoryBytes) throws IOException {
        this.address = address;
        this.expected = GuestMemory.anonymous(memoryBytes);
        this.control = connect();
    }

    /** A new connection to the destination, with the read timeout set. */
    Socket connect() throws IOException {
        Socket socket = new Socket();
        socket.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), address.getPort()), READ_TIMEOUT_MILLIS);
        socket.setSoTimeout(READ_TIMEOUT_MILLIS);
        opened.add(socket);
        return socket;
    }

    /** HELLO offering zero pages, pre-copy, on {@code n} page channels; then reads WELCOME. */
    Wire.Welcome hello(int n) throws IOException, ProtocolException {
        return hello(n, Wire.bit(Capability.ZERO_PAGES));
    }

    /** HELLO for this memory offering {@code capabilities}, pre-copy, on {@code n} page channels; then reads WELCOME. */
    Wire.Welcome hello(int n, int capabilities) throws IOException, ProtocolException {
        send(control, out -> Wire.writeHello(out, new Wire.Hello(Wire.VERSION, GuestMemory.PAGE_SIZE, expected.byteSize(),
                capabilities, 0, n, migration)));
        ByteBuf welcome = readFrame(control);
        assertNotNull(welcome, "the destination closed instead of answering HELLO");
        assertEquals(Wire.typeName(Wire.WELCOME), Wire.typeName(welcome.readUnsignedByte()), "answer to HELLO");
        Wire.Welcome w = Wire.readWelcome(welcome);
        session = w.session();
        channels = new Socket[n + 1];
        roundPages = new long[n + 1];
        return w;
    }

    /** Opens page channel (or request channel) {@code c}: JOIN, then JOINED naming {@code c}. */
    Socket join(int c) throws IOException, ProtocolException {
        Socket socket = connect();
        send(socket, out -> Wire.writeJoin(out, new Wire.Join(session, c, migration)));
        ByteBuf joined = readFrame(socket);
        assertNotNull(joined, "channel " + c + " closed instead of JOINED");
        int type = joined.readUnsignedByte();
        if (type == Wire.ERROR) {
            throw new AssertionError("JOIN of channel " + c + " refused: " + Wire.readError(joined));
        }
        assertEquals(Wire.typeName(Wire.JOINED), Wire.typeName(type));
        assertEquals(c, Wire.readJoined(joined), "JOINED names the channel asked for");
        channels[c] = socket;
        return socket;
    }

    /** Joins page channels 0 .. n-1. */
    void joinAll(int n) throws IOException, ProtocolException {
        for (int c = 0; c < n; c++) {
            join(c);
        }
    }

    /** Channel {@code c}'s socket, or null when it was not joined. */
    Socket channel(int c) {
        return c < channels.length ? channels[c] : null;
    }

    /** A PAGES frame with one RAW record of {@code page} on channel {@code c}, whatever its stripe. */
    void raw(int c, long index, byte[] page) throws IOException {
        write(channels[c], rawFrame(c, index, page));
    }

    /**
     * The bytes of {@link #raw}'s frame, counted and recorded in {@link #expected} as if sent: the
     * caller sends them when it likes.
     */
    byte[] rawFrame(int c, long index, byte[] page) {
        byte[] frame = frame(out -> pages(out, o -> rawRecord(o, index, page)));
        expected.segment().asSlice(index * GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE).copyFrom(MemorySegment.ofArray(page));
        roundPages[c]++;
        return frame;
    }

    /**
     * A PAGES frame with one DEDUP record on channel {@code c}: page {@code index} has the content
     * of page {@code source}, whose XXH3-128 is {@code xxh128} (low, high). When {@code fresh} the
     * destination must install it ({@link #expected} takes the source page's content); else it
     * must leave the page as it was and name it in the round's STALE.
     */
    void reference(int c, long index, long source, long[] xxh128, boolean fresh) throws IOException {
        reference(c, 0, index, source, xxh128);
        if (fresh) {
            MemorySegment.copy(expected.segment(), source * GuestMemory.PAGE_SIZE, expected.segment(),
                    index * GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE);
        }
        roundPages[c]++;
    }

    /** A reference on channel {@code c} for page {@code index} to page {@code source} of guest {@code guest}. */
    void reference(int c, int guest, long index, long source, long[] xxh128) throws IOException {
        send(channels[c], out -> pages(out, o -> o.writeLong(index).writeByte(PageEncoding.DEDUP)
                .writeShort(PageRecords.REFERENCE_BYTES).writeShort(guest).writeLong(source).writeLong(xxh128[1])
                .writeLong(xxh128[0])));
    }

    /** The STALE frames answering the barrier of {@code round}: the pages they name, in order. */
    List<Long> awaitStale(int round) throws IOException, ProtocolException {
        List<Long> stale = new ArrayList<>();
        while (true) {
            ByteBuf frame = readFrame(control);
            assertNotNull(frame, "the destination closed instead of answering the barrier with STALE");
            int type = frame.readUnsignedByte();
            if (type == Wire.ERROR) {
                throw new AssertionError("ERROR instead of STALE: " + Wire.readError(frame));
            }
            assertEquals(Wire.typeName(Wire.STALE), Wire.typeName(type));
            Wire.Stale head = Wire.readStale(frame);
            assertEquals(round, head.round(), "STALE answers the barrier's round");
            dev.ferry.protocol.PageRuns.read("STALE", frame, expected.pageCount(), (first, count) -> {
                for (long p = first; p < first + count; p++) {
                    stale.add(p);
                }
            });
            if (head.last()) {
                return stale;
            }
        }
    }

    /** A PAGES frame with one ZERO record, a run of {@code count} pages from {@code index}, on channel {@code c}. */
    void zeros(int c, long index, int count) throws IOException {
        send(channels[c], out -> pages(out, o -> zeroRecord(o, index, count)));
        expected.segment().asSlice(index * GuestMemory.PAGE_SIZE, (long) count * GuestMemory.PAGE_SIZE).fill((byte) 0);
        roundPages[c] += count;
    }

    /**
     * One PAGES frame of {@code runs} ZERO records on channel {@code c}, each the run of
     * {@link Wire#MAX_ZERO_RUN} pages from {@code index}, over pages that are zero already (so
     * {@link #expected} does not change).
     */
    void zeroRuns(int c, long index, int runs) throws IOException {
        send(channels[c], out -> pages(out, o -> {
            for (int r = 0; r < runs; r++) {
                zeroRecord(o, index, Wire.MAX_ZERO_RUN);
            }
        }));
        roundPages[c] += (long) runs * Wire.MAX_ZERO_RUN;
    }

    /** Channel {@code c}'s ROUND_END of the current round, with what it sent in it. */
    void endChannelRound(int c) throws IOException {
        write(channels[c], channelRoundEndFrame(c));
    }

    /** The bytes of {@link #endChannelRound}'s frame, counted as sent. */
    byte[] channelRoundEndFrame(int c) {
        long n = roundPages[c];
        roundPages[c] = 0;
        return frame(out -> Wire.writeRoundEnd(out, round, n));
    }

    /** Pages counted on channel {@code c} in the current round. */
    long roundPages(int c) {
        return roundPages[c];
    }

    /** The barrier: the control connection's ROUND_END with the round's total; the next round begins. */
    void endControlRound(long total) throws IOException {
        int r = round++;
        send(control, out -> Wire.writeRoundEnd(out, r, total));
    }

    /** Ends the round on channels 0 .. n-1 and then, with their total, on the control connection. */
    void endRound(int n) throws IOException {
        long total = 0;
        for (int c = 0; c < n; c++) {
            total += roundPages[c];
            endChannelRound(c);
        }
        endControlRound(total);
    }

    /** The current round's number. */
    int round() {
        return round;
    }

    /** DEVICE_STATE and END with the digest of {@link #expected}, sealed with the state and the session. */
    void finish(byte[] deviceState, long pauseNanos) throws IOException {
        long sealed = sealed(deviceState);
        send(control, out -> {
            Wire.writeDeviceState(out, deviceState);
            Wire.writeEnd(out, sealed, pauseNanos);
        });
    }

    /** What END carries for {@link #expected} and {@code deviceState} in this session. */
    long sealed(byte[] deviceState) {
        return PageDigest.seal(digest(), deviceState, session);
    }

    /** The memory digest of {@link #expected}, by a full scan. */
    long digest() {
        return PageDigest.scan(expected);
    }

    /** Reads RESUMED on the control connection, then its close; returns the RESUMED frame's body. */
    Wire.Resumed awaitResumed() throws IOException, ProtocolException {
        List<ByteBuf> replies = readUntilClosed(control);
        assertEquals(1, replies.size(), "one frame after WELCOME: " + describe(replies));
        ByteBuf resumed = replies.get(0);
        assertEquals(Wire.typeName(Wire.RESUMED), Wire.typeName(resumed.readUnsignedByte()), describe(replies));
        return Wire.readResumed(resumed);
    }

    @Override
    public void close() {
        for (Socket s : opened) {
            try {
                s.close();
            } catch (IOException ignored) {
                // closing
            }
        }
        expected.close();
    }

    // ---- frames and sockets ----

    static void send(Socket socket, Consumer<ByteBuf> frames) throws IOException {
        write(socket, frame(frames));
    }

    static void write(Socket socket, byte[] bytes) throws IOException {
        socket.getOutputStream().write(bytes);
        socket.getOutputStream().flush();
    }

    /** The bytes {@code frames} writes. */
    static byte[] frame(Consumer<ByteBuf> frames) {
        ByteBuf out = Unpooled.buffer();
        frames.accept(out);
        return ByteBufUtil.getBytes(out);
    }

    /**
     * The next frame (type byte first) but HEARTBEAT, or null when the peer closed: the
     * destination's heartbeats only say it is alive, as a real source's link drops them.
     */
    static ByteBuf readFrame(Socket socket) throws IOException {
        DataInputStream in = new DataInputStream(socket.getInputStream());
        while (true) {
            int length;
            try {
                length = in.readInt();
            } catch (EOFException closed) {
                return null;
            }
            byte[] frame = new byte[length];
            in.readFully(frame);
            if (length != 1 || frame[0] != Wire.HEARTBEAT) {
                return Unpooled.wrappedBuffer(frame);
            }
        }
    }

    /** Every frame the destination sent (type byte first) until it closed the connection. */
    static List<ByteBuf> readUntilClosed(Socket socket) throws IOException {
        List<ByteBuf> frames = new ArrayList<>();
        for (ByteBuf f = readFrame(socket); f != null; f = readFrame(socket)) {
            frames.add(f);
        }
        return frames;
    }

    /** The reason of the single ERROR frame a refused connection got before it was closed. */
    static String refusal(Socket socket) throws IOException {
        List<ByteBuf> replies = readUntilClosed(socket);
        assertEquals(1, replies.size(), "one ERROR, then the close: " + describe(replies));
        ByteBuf error = replies.get(0);
        assertEquals(Wire.typeName(Wire.ERROR), Wire.typeName(error.readUnsignedByte()));
        return Wire.readError(error);
    }

    static String describe(List<ByteBuf> frames) {
        List<String> names = new ArrayList<>();
        for (ByteBuf f : frames) {
            int type = f.getUnsignedByte(f.readerIndex());
            names.add(type == Wire.ERROR
                    ? "ERROR(" + f.toString(f.readerIndex() + 1, f.readableBytes() - 1, java.nio.charset.StandardCharsets.UTF_8) + ")"
                    : Wire.typeName(type));
        }
        return names.toString();
    }

    /** A PAGES frame around the records {@code records} writes. */
    static void pages(ByteBuf out, Consumer<ByteBuf> records) {
        int header = out.writerIndex();
        Wire.writeHeader(out, Wire.PAGES, 0);
        records.accept(out);
        Wire.patchLength(out, header);
    }

    static void rawRecord(ByteBuf out, long index, byte[] page) {
        out.writeLong(index).writeByte(PageEncoding.RAW).writeShort(page.length).writeBytes(page);
    }

    static void zeroRecord(ByteBuf out, long index, int count) {
        out.writeLong(index).writeByte(PageEncoding.ZERO).writeShort(count);
    }

    /** A page of random bytes. */
    static byte[] randomPage(long seed) {
        byte[] page = new byte[GuestMemory.PAGE_SIZE];
        new SplittableRandom(seed).nextBytes(page);
        return page;
    }

    /** A page of {@code fill} bytes. */
    static byte[] filledPage(int fill) {
        byte[] page = new byte[GuestMemory.PAGE_SIZE];
        java.util.Arrays.fill(page, (byte) fill);
        return page;
    }
}
