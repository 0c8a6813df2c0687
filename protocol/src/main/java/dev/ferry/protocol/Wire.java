package dev.ferry.protocol;

import dev.ferry.core.Capability;
import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandler;
import java.util.EnumSet;
import java.util.Set;
import java.util.UUID;
import java.util.function.LongConsumer;
import java.nio.charset.StandardCharsets;

/**
 * The Ferry wire protocol, version 4: every constant, layout, writer and reader in one place
 * (docs/protocol.md says the same in prose, and a test decodes its examples with these readers).
 * Readers check a body's size before they read it and throw {@link ProtocolException}; nothing
 * outside this module parses a frame.
 *
 * <p>All integers are big-endian. Every frame is
 * <pre>
 *   length  u32   bytes that follow (type + body), 1 .. MAX_FRAME
 *   type    u8
 *   body    length - 1 bytes
 * </pre>
 * Frames, source to destination unless noted. A session is one control connection and
 * {@code channels} page connections (plus a request connection with post-copy), each opened with
 * its own handshake:
 * <pre>
 *   HELLO        0x01  magic u64 "FERRYMIG", version u16, pageSize u32, memoryBytes u64,
 *                      capabilities u32, mode u8, channels u16 (page channels, 1 .. MAX_CHANNELS),
 *                      migration u128 (the manager's migration id, a UUID; nil for none)
 *   WELCOME      0x02  (dst→src) magic u64, version u16, capabilities u32 (those accepted),
 *                      session u64 (names the session on every other connection)
 *   JOIN         0x03  magic u64, session u64, channel u16, migration u128: the first frame of a
 *                      page connection (0 .. channels-1) or of the request connection (channels)
 *   RECOVER      0x04  magic u64, session u64, migration u128; the first frame of a control connection that
 *                      resumes a post-copy session whose connections were lost
 *   JOINED       0x05  (dst→src) channel u16: the connection is part of the session
 *   GUEST        0x06  (either way) guest u16 (a gang's member, 1 .. 65535), then whole frames of that guest's
 *                      own connection to the end of the frame; no frames: that guest's connection here closed.
 *                      A gang's guests share its connections: on a connection whose first frame is GUEST, every
 *                      frame is one, and a frame may be up to MAX_GUEST_FRAME
 *   PAGES        0x10  page records to the end of the frame:
 *                      index u64, encoding u8, length u16, payload (length bytes);
 *                      for ZERO (1) there is no payload and length counts the run of
 *                      consecutive zero pages starting at index (1 .. 65535)
 *   ROUND_END    0x11  round u32, pages u64: on a page connection, the pages that connection sent
 *                      in the round; on the control connection, after every page connection
 *                      ended the round, the round's total: a barrier, see docs/protocol.md
 *   DEVICE_STATE 0x12  the device state, opaque, the whole body
 *   END          0x13  digest u64 (memory digest at the pause), pauseNanos u64
 *   DISCARD      0x14  runs to the end of the frame: first u64, count u32; pages the
 *                      destination must treat as missing (dirtied since they were sent)
 *   POSTCOPY_START 0x15 pauseNanos u64; the destination resumes now, pages still missing
 *   RESUMED      0x20  (dst→src) digest u64 (as applied), resumeNanos u64
 *   POSTCOPY_RUNNING 0x21 (dst→src) resumeNanos u64: the guest runs on the destination
 *   PAGE_REQUEST 0x22  (dst→src, request connection) page indices u64 to the end of the frame
 *   MISSING      0x23  (dst→src) runs as in DISCARD: the pages the destination still lacks
 *   RECOVERED    0x24  (dst→src) missing u64 (pages in the MISSING runs): go on pushing
 *   STALE        0x25  (dst→src) round u32, last u8 (1 on the round's final STALE), then runs as
 *                      in DISCARD: after a round's barrier, with dedup, the pages whose references
 *                      named a copy that no longer held their content; the source sends them again
 *   HEARTBEAT    0x30  (either way, any connection after its first frame) empty: the sender is
 *                      alive; sent when it wrote nothing for a quarter of the peer timeout
 *   ERROR        0x7F  (either way) UTF-8 reason; the sender closes after it
 * </pre>
 */
public final class Wire {
    /** "FERRYMIG" as a big-endian u64. */
    public static final long MAGIC = 0x464552_52594D4947L;
    /** Protocol version this build speaks. */
    public static final int VERSION = 4;
    /** The nil UUID: a source given no migration id says so with it. */
    public static final UUID NO_MIGRATION = new UUID(0, 0);
    /** The most page channels a session may have. */
    public static final int MAX_CHANNELS = 64;
    /** The largest frame (type + body) either side accepts. */
    public static final int MAX_FRAME = 16 << 20;
    /**
     * The largest first frame (type + body) of a connection a destination accepts: HELLO, JOIN
     * and RECOVER are a few dozen bytes, so a stranger's connection costs at most this much
     * buffered before it said what it is.
     */
    public static final int MAX_HANDSHAKE_FRAME = 4096;
    /** Bytes of a GUEST frame's header: length, type and guest. */
    public static final int GUEST_HEADER = 4 + 1 + 2;
    /** The largest frame (type + body) of a connection a gang shares: a GUEST frame around one of {@link #MAX_FRAME}. */
    public static final int MAX_GUEST_FRAME = 1 + 2 + 4 + MAX_FRAME;
    /** Bytes of the length and type fields. */
    public static final int FRAME_HEADER = 5;
    /** Bytes of a page record's index, encoding and length fields. */
    public static final int RECORD_HEADER = 11;
    /** Page records a PAGES frame is filled with before it is sent, in bytes. */
    public static final int PAGES_FRAME_TARGET = 128 << 10;
    /** Longest zero run one record carries. */
    public static final int MAX_ZERO_RUN = 0xFFFF;

    public static final int HELLO = 0x01;
    public static final int WELCOME = 0x02;
    public static final int JOIN = 0x03;
    public static final int RECOVER = 0x04;
    public static final int JOINED = 0x05;
    public static final int GUEST = 0x06;
    public static final int PAGES = 0x10;
    public static final int ROUND_END = 0x11;
    public static final int DEVICE_STATE = 0x12;
    public static final int END = 0x13;
    public static final int DISCARD = 0x14;
    public static final int POSTCOPY_START = 0x15;
    public static final int RESUMED = 0x20;
    public static final int POSTCOPY_RUNNING = 0x21;
    public static final int PAGE_REQUEST = 0x22;
    public static final int MISSING = 0x23;
    public static final int RECOVERED = 0x24;
    public static final int STALE = 0x25;
    public static final int HEARTBEAT = 0x30;
    public static final int ERROR = 0x7F;

    static final int HELLO_BODY = 8 + 2 + 4 + 8 + 4 + 1 + 2 + 16;
    static final int WELCOME_BODY = 8 + 2 + 4 + 8;
    static final int JOIN_BODY = 8 + 8 + 2 + 16;
    static final int JOINED_BODY = 2;
    static final int ROUND_END_BODY = 4 + 8;
    static final int END_BODY = 8 + 8;
    static final int RESUMED_BODY = 8 + 8;
    static final int NANOS_BODY = 8;
    static final int RECOVER_BODY = 8 + 8 + 16;
    static final int RECOVERED_BODY = 8;
    /** A STALE body's round and last flag, ahead of its runs. */
    static final int STALE_HEAD = 4 + 1;
    static final int HEARTBEAT_BODY = 0;
    /** The longest ERROR reason, in bytes. */
    static final int MAX_ERROR = 4096;

    private Wire() {
    }

    /** The name of a frame type, for messages. */
    public static String typeName(int type) {
        return switch (type) {
            case HELLO -> "HELLO";
            case WELCOME -> "WELCOME";
            case JOIN -> "JOIN";
            case RECOVER -> "RECOVER";
            case JOINED -> "JOINED";
            case GUEST -> "GUEST";
            case PAGES -> "PAGES";
            case ROUND_END -> "ROUND_END";
            case DEVICE_STATE -> "DEVICE_STATE";
            case END -> "END";
            case DISCARD -> "DISCARD";
            case POSTCOPY_START -> "POSTCOPY_START";
            case RESUMED -> "RESUMED";
            case POSTCOPY_RUNNING -> "POSTCOPY_RUNNING";
            case PAGE_REQUEST -> "PAGE_REQUEST";
            case MISSING -> "MISSING";
            case RECOVERED -> "RECOVERED";
            case STALE -> "STALE";
            case HEARTBEAT -> "HEARTBEAT";
            case ERROR -> "ERROR";
            default -> String.format("unknown(0x%02x)", type);
        };
    }

    /**
     * The framing stage of every Ferry pipeline: splits the byte stream into frames of
     * {@code type + body}, stripping the u32 length, each passed on as a slice of the buffer it
     * arrived in ({@link FrameSplitter}); a length above {@link #MAX_FRAME} fails the channel with
     * a {@link io.netty.handler.codec.TooLongFrameException}.
     */
    public static ChannelHandler frameDecoder() {
        return new FrameSplitter(MAX_FRAME);
    }

    /**
     * The framing stage of a destination's connection: as {@link #frameDecoder()}, but a first
     * frame longer than {@link #MAX_HANDSHAKE_FRAME} fails the channel at its length field, before
     * its bytes are buffered.
     */
    public static ChannelHandler handshakeFrameDecoder() {
        return new FrameSplitter(MAX_HANDSHAKE_FRAME);
    }

    /** The bit of {@code capability} in the handshake's capability mask. */
    public static int bit(Capability capability) {
        return switch (capability) {
            case ZERO_PAGES -> 1;
            case XBZRLE -> 1 << 1;
            case LZ4 -> 1 << 2;
            case ZSTD -> 1 << 3;
            case DEDUP -> 1 << 4;
            case POSTCOPY -> 1 << 5;
        };
    }

    /** The mask of a set of capabilities. */
    public static int mask(Set<Capability> capabilities) {
        int mask = 0;
        for (Capability c : capabilities) {
            mask |= bit(c);
        }
        return mask;
    }

    /** The capabilities whose bits are set in {@code mask}; unknown bits are ignored. */
    public static EnumSet<Capability> capabilities(int mask) {
        EnumSet<Capability> set = EnumSet.noneOf(Capability.class);
        for (Capability c : Capability.values()) {
            if ((mask & bit(c)) != 0) {
                set.add(c);
            }
        }
        return set;
    }

    /** Writes a frame header; the caller writes {@code bodyLength} bytes of body after it. */
    public static void writeHeader(ByteBuf out, int type, int bodyLength) {
        out.writeInt(bodyLength + 1);
        out.writeByte(type);
    }

    /** Fills in the length of a frame whose header starts at {@code headerIndex} and ends at the writer index. */
    public static void patchLength(ByteBuf out, int headerIndex) {
        out.setInt(headerIndex, out.writerIndex() - headerIndex - 4);
    }

    public static void writeHello(ByteBuf out, Hello hello) {
        writeHeader(out, HELLO, HELLO_BODY);
        out.writeLong(MAGIC);
        out.writeShort(hello.version());
        out.writeInt(hello.pageSize());
        out.writeLong(hello.memoryBytes());
        out.writeInt(hello.capabilities());
        out.writeByte(hello.mode());
        out.writeShort(hello.channels());
        writeMigration(out, hello.migration());
    }

    public static void writeWelcome(ByteBuf out, Welcome welcome) {
        writeHeader(out, WELCOME, WELCOME_BODY);
        out.writeLong(MAGIC);
        out.writeShort(VERSION);
        out.writeInt(welcome.capabilities());
        out.writeLong(welcome.session());
    }

    public static void writeJoin(ByteBuf out, Join join) {
        writeHeader(out, JOIN, JOIN_BODY);
        out.writeLong(MAGIC);
        out.writeLong(join.session());
        out.writeShort(join.channel());
        writeMigration(out, join.migration());
    }

    public static void writeJoined(ByteBuf out, int channel) {
        writeHeader(out, JOINED, JOINED_BODY);
        out.writeShort(channel);
    }

    /** Reads a JOIN body, checking its magic; returns what it joins. */
    public static Join readJoin(ByteBuf body) throws ProtocolException {
        expectBody("JOIN", body, JOIN_BODY);
        readMagic("JOIN", body, "not a Ferry source");
        return new Join(body.readLong(), body.readUnsignedShort(), readMigration(body));
    }

    /** Reads a JOINED body: the channel the destination took the connection as. */
    public static int readJoined(ByteBuf body) throws ProtocolException {
        expectBody("JOINED", body, JOINED_BODY);
        return body.readUnsignedShort();
    }

    /**
     * Writes a GUEST frame's header: {@code bodyBytes} bytes of {@code guest}'s frames follow it
     * (0 when its connection closed).
     */
    public static void writeGuestHeader(ByteBuf out, int guest, int bodyBytes) {
        writeHeader(out, GUEST, 2 + bodyBytes);
        out.writeShort(guest);
    }

    /**
     * {@code frames} (whole frames, at most {@link #MAX_GUEST_FRAME} - 3 bytes) as one GUEST frame
     * of {@code guest}, without copying them: the header is a buffer of its own in front. Takes
     * ownership of {@code frames}.
     */
    public static ByteBuf guestFrame(io.netty.buffer.ByteBufAllocator alloc, int guest, ByteBuf frames) {
        ByteBuf header = alloc.directBuffer(GUEST_HEADER);
        writeGuestHeader(header, guest, frames.readableBytes());
        return alloc.compositeDirectBuffer(2).addComponents(true, header, frames);
    }

    /** Reads a GUEST frame's guest, leaving {@code body} at the guest's frames. */
    public static int readGuest(ByteBuf body) throws ProtocolException {
        if (body.readableBytes() < 2) {
            throw new ProtocolException("malformed GUEST frame: " + body.readableBytes() + " bytes, needs a guest u16");
        }
        int guest = body.readUnsignedShort();
        if (guest == 0) {
            throw new ProtocolException("malformed GUEST frame: guest 0 (a gang numbers its guests from 1)");
        }
        return guest;
    }

    /**
     * Each whole frame in {@code frames} (length, type, body), as a retained slice of {@code type
     * + body} for {@code each}, which releases it; a frame cut short or longer than
     * {@link #MAX_FRAME} is an error, and nothing after it is passed on.
     */
    public static void forEachFrame(ByteBuf frames, java.util.function.Consumer<ByteBuf> each) throws ProtocolException {
        while (frames.isReadable()) {
            if (frames.readableBytes() < 4) {
                throw new ProtocolException("a GUEST frame ends inside a frame's length field");
            }
            long length = Integer.toUnsignedLong(frames.readInt());
            if (length > MAX_FRAME || length > frames.readableBytes()) {
                throw new ProtocolException("a GUEST frame holds a frame of " + length + " bytes, "
                        + (length > MAX_FRAME ? "above MAX_FRAME " + MAX_FRAME : "past its end"));
            }
            each.accept(frames.readRetainedSlice((int) length));
        }
    }

    public static void writeRoundEnd(ByteBuf out, int round, long pages) {
        writeHeader(out, ROUND_END, ROUND_END_BODY);
        out.writeInt(round);
        out.writeLong(pages);
    }

    public static void writeDeviceState(ByteBuf out, byte[] state) {
        writeHeader(out, DEVICE_STATE, state.length);
        out.writeBytes(state);
    }

    public static void writeEnd(ByteBuf out, long digest, long pauseNanos) {
        writeHeader(out, END, END_BODY);
        out.writeLong(digest);
        out.writeLong(pauseNanos);
    }

    public static void writeResumed(ByteBuf out, long digest, long resumeNanos) {
        writeHeader(out, RESUMED, RESUMED_BODY);
        out.writeLong(digest);
        out.writeLong(resumeNanos);
    }

    public static void writeRecover(ByteBuf out, Recover recover) {
        writeHeader(out, RECOVER, RECOVER_BODY);
        out.writeLong(MAGIC);
        out.writeLong(recover.session());
        writeMigration(out, recover.migration());
    }

    public static void writeRecovered(ByteBuf out, long missing) {
        writeHeader(out, RECOVERED, RECOVERED_BODY);
        out.writeLong(missing);
    }

    public static void writeHeartbeat(ByteBuf out) {
        writeHeader(out, HEARTBEAT, HEARTBEAT_BODY);
    }

    /** Reads a HEARTBEAT body, which must be empty. */
    public static void readHeartbeat(ByteBuf body) throws ProtocolException {
        expectBody("HEARTBEAT", body, HEARTBEAT_BODY);
    }

    /** Reads a RECOVER body, checking its magic; returns the session it resumes. */
    public static Recover readRecover(ByteBuf body) throws ProtocolException {
        expectBody("RECOVER", body, RECOVER_BODY);
        readMagic("RECOVER", body, "not a Ferry source");
        return new Recover(body.readLong(), readMigration(body));
    }

    public static void writePostcopyStart(ByteBuf out, long pauseNanos) {
        writeHeader(out, POSTCOPY_START, NANOS_BODY);
        out.writeLong(pauseNanos);
    }

    public static void writePostcopyRunning(ByteBuf out, long resumeNanos) {
        writeHeader(out, POSTCOPY_RUNNING, NANOS_BODY);
        out.writeLong(resumeNanos);
    }

    public static void writePageRequest(ByteBuf out, long page) {
        writeHeader(out, PAGE_REQUEST, 8);
        out.writeLong(page);
    }

    public static void writeError(ByteBuf out, String reason) {
        byte[] bytes = reason.getBytes(StandardCharsets.UTF_8);
        int length = Math.min(bytes.length, MAX_ERROR);
        // never split a character: back up over UTF-8 continuation bytes (10xxxxxx)
        while (length < bytes.length && (bytes[length] & 0xC0) == 0x80) {
            length--;
        }
        writeHeader(out, ERROR, length);
        out.writeBytes(bytes, 0, length);
    }

    /**
     * Reads the body of a HELLO frame (after its type byte). The magic is checked first and then
     * the version, so that a peer that is not Ferry, or a Ferry of another version, is told so
     * rather than that its HELLO has the wrong length.
     */
    public static Hello readHello(ByteBuf body) throws ProtocolException {
        if (body.readableBytes() >= 8 && body.getLong(body.readerIndex()) != MAGIC) {
            throw new ProtocolException(String.format("bad magic 0x%016x in HELLO, expected 0x%016x (\"FERRYMIG\"): not a Ferry source",
                    body.getLong(body.readerIndex()), MAGIC));
        }
        if (body.readableBytes() >= 10 && body.getUnsignedShort(body.readerIndex() + 8) != VERSION) {
            throw new ProtocolException("source speaks protocol version " + body.getUnsignedShort(body.readerIndex() + 8)
                    + ", this destination " + VERSION);
        }
        expectBody("HELLO", body, HELLO_BODY);
        body.skipBytes(8);
        return new Hello(body.readUnsignedShort(), body.readInt(), body.readLong(), body.readInt(), body.readUnsignedByte(),
                body.readUnsignedShort(), readMigration(body));
    }

    /** Reads the body of a WELCOME frame, checking magic, version and length. */
    public static Welcome readWelcome(ByteBuf body) throws ProtocolException {
        expectBody("WELCOME", body, WELCOME_BODY);
        readMagic("WELCOME", body, "the peer is not a Ferry destination");
        int version = body.readUnsignedShort();
        if (version != VERSION) {
            throw new ProtocolException("destination speaks protocol version " + version + ", this source " + VERSION);
        }
        return new Welcome(body.readInt(), body.readLong());
    }

    /** Reads a ROUND_END body. */
    public static RoundEnd readRoundEnd(ByteBuf body) throws ProtocolException {
        expectBody("ROUND_END", body, ROUND_END_BODY);
        return new RoundEnd(body.readInt(), body.readLong());
    }

    /** Reads an END body. */
    public static End readEnd(ByteBuf body) throws ProtocolException {
        expectBody("END", body, END_BODY);
        return new End(body.readLong(), body.readLong());
    }

    /** Reads a RESUMED body. */
    public static Resumed readResumed(ByteBuf body) throws ProtocolException {
        expectBody("RESUMED", body, RESUMED_BODY);
        return new Resumed(body.readLong(), body.readLong());
    }

    /** Reads a POSTCOPY_START body: the source's pause instant. */
    public static long readPostcopyStart(ByteBuf body) throws ProtocolException {
        expectBody("POSTCOPY_START", body, NANOS_BODY);
        return body.readLong();
    }

    /** Reads a POSTCOPY_RUNNING body: the destination's resume instant. */
    public static long readPostcopyRunning(ByteBuf body) throws ProtocolException {
        expectBody("POSTCOPY_RUNNING", body, NANOS_BODY);
        return body.readLong();
    }

    /** Reads a RECOVERED body: how many pages the MISSING runs named. */
    public static long readRecovered(ByteBuf body) throws ProtocolException {
        expectBody("RECOVERED", body, RECOVERED_BODY);
        return body.readLong();
    }

    /**
     * Reads a STALE body's round and last flag; its runs follow, for {@link PageRuns#read}.
     */
    public static Stale readStale(ByteBuf body) throws ProtocolException {
        if (body.readableBytes() < STALE_HEAD) {
            throw new ProtocolException("STALE body of " + body.readableBytes() + " bytes, at least " + STALE_HEAD
                    + " expected");
        }
        int round = body.readInt();
        int last = body.readUnsignedByte();
        if (last > 1) {
            throw new ProtocolException("STALE last flag " + last + ", 0 or 1 expected");
        }
        return new Stale(round, last == 1);
    }

    /** Reads a DEVICE_STATE body. */
    public static byte[] readDeviceState(ByteBuf body) {
        byte[] state = new byte[body.readableBytes()];
        body.readBytes(state);
        return state;
    }

    /**
     * Reads a PAGE_REQUEST body, handing each requested page to {@code page} after checking it
     * lies in a guest of {@code pageCount} pages.
     */
    public static void readPageRequest(ByteBuf body, long pageCount, LongConsumer page) throws ProtocolException {
        if (body.readableBytes() == 0 || body.readableBytes() % 8 != 0) {
            throw new ProtocolException("malformed PAGE_REQUEST of " + body.readableBytes() + " bytes");
        }
        while (body.isReadable()) {
            long index = body.readLong();
            if (index < 0 || index >= pageCount) {
                throw new ProtocolException("request for page " + index + " out of range (guest has " + pageCount + " pages)");
            }
            page.accept(index);
        }
    }

    /** Reads an ERROR body. */
    public static String readError(ByteBuf body) {
        return body.readCharSequence(body.readableBytes(), StandardCharsets.UTF_8).toString();
    }

    /** A migration id as u128: the UUID's most significant half first. */
    private static void writeMigration(ByteBuf out, UUID migration) {
        out.writeLong(migration.getMostSignificantBits());
        out.writeLong(migration.getLeastSignificantBits());
    }

    private static UUID readMigration(ByteBuf body) {
        return new UUID(body.readLong(), body.readLong());
    }

    /** Reads the magic a handshake frame opens with; anything else is {@code who} speaking. */
    private static void readMagic(String frame, ByteBuf body, String who) throws ProtocolException {
        long magic = body.readLong();
        if (magic != MAGIC) {
            throw new ProtocolException(String.format("bad magic 0x%016x in %s: %s", magic, frame, who));
        }
    }

    /** Checks that a fixed-size body has exactly {@code expected} bytes. */
    public static void expectBody(String frame, ByteBuf body, int expected) throws ProtocolException {
        if (body.readableBytes() != expected) {
            throw new ProtocolException(frame + " body of " + body.readableBytes() + " bytes, expected " + expected);
        }
    }

    /** The handshake a source opens with; {@code migration} is the manager's id ({@link #NO_MIGRATION}: none). */
    public record Hello(int version, int pageSize, long memoryBytes, int capabilities, int mode, int channels,
            UUID migration) {
    }

    /** The destination's answer to HELLO: the capabilities it accepted, and the session's id. */
    public record Welcome(int capabilities, long session) {
    }

    /** What a page or request connection joins: the session, its channel, and the migration it belongs to. */
    public record Join(long session, int channel, UUID migration) {
    }

    /** What a recovering control connection resumes: the session, of the migration it belongs to. */
    public record Recover(long session, UUID migration) {
    }

    /** The end of a round: its number and the pages it sent (a zero run counts its pages). */
    public record RoundEnd(int round, long pages) {
    }

    /** The head of a STALE frame: the round whose barrier it answers, and whether it is the round's last. */
    public record Stale(int round, boolean last) {
    }

    /** The end of the stream: the memory digest at the pause, and the pause instant. */
    public record End(long digest, long pauseNanos) {
    }

    /** The destination's answer to END: the digest as applied, and the resume instant. */
    public record Resumed(long digest, long resumeNanos) {
    }
}
