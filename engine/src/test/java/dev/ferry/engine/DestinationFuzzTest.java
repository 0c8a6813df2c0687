package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.api.BugDetectors;
import com.code_intelligence.jazzer.api.SilentCloseable;
import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.ferry.compression.MalformedPayloadException;
import dev.ferry.compression.PageDecoder;
import dev.ferry.core.FaultMechanism;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageDigest;
import dev.ferry.protocol.PageEncoding;
import dev.ferry.protocol.PageRecords;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.Wire;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Coverage-guided fuzzing of the destination, whole streams at a time: a real destination
 * ({@link Migration#destination}, its {@link DestinationHandler} and {@link DestinationSession})
 * listening on 127.0.0.1, fed a sequence of frames over up to four real connections. Every stream
 * must end, within a bound, either with a clear error (FAILED, a reason that is the protocol's
 * own and not an exception's name, the guest never resumed unless post-copy began) or with a
 * verified guest (COMPLETED, verified, resumed once, its memory the pages the stream sent); no
 * thread may die of an uncaught exception.
 *
 * <p>An input is a sequence of operations:
 * <pre>
 *   op      u8   bits 0-1: the connection (opened at first use; the source's first is its control
 *                connection); bit 6: raw, the bytes go out as they are, with no frame around them;
 *                bit 7: verbatim, no fix-up
 *   type    u8   the frame's type (absent when raw)
 *   length  u16  the body's length (or the raw bytes'), cut to what the input has left
 *   body    length bytes
 * </pre>
 * A fuzzer cannot guess what the destination chose, so unless verbatim the session of a JOIN or
 * RECOVER is the one WELCOME named, and an END carries the digest of the pages the stream sent so
 * far (as a mirror of the destination applied them), sealed with the device state sent and the
 * session. Regression inputs, real migrations recorded by {@link SeedStreams} and every input that
 * ever failed, are in {@code src/test/resources/dev/ferry/engine/DestinationFuzzTestInputs/stream/}.
 */
class DestinationFuzzTest {
    /** Three stripes: two page channels, one of them with two stripes. */
    static final long BYTES = 3L * PageBitmap.STRIPE_PAGES * GuestMemory.PAGE_SIZE;
    private static final int SLOTS = 4;
    private static final int RAW = 0x40;
    private static final int VERBATIM = 0x80;
    /** How long a stream may take to end once its source is done: far above what any takes, a hang below it. */
    private static final long END_SECONDS = 20;
    /** What a reason must not look like: an exception's name or message, not the protocol's own words. */
    private static final Pattern CRASH = Pattern.compile(
            "(java|io\\.netty|jdk|sun)\\.[\\w.$]*(Exception|Error)|out of bounds for length|Out of bound access"
                    + "|cannot go from|NullPointer|ClassCast|IllegalState|IllegalArgument|ArrayIndex");
    private static final Queue<Throwable> UNCAUGHT = new ConcurrentLinkedQueue<>();

    static {
        Thread.UncaughtExceptionHandler previous = Thread.getDefaultUncaughtExceptionHandler();
        Thread.setDefaultUncaughtExceptionHandler((thread, error) -> {
            UNCAUGHT.add(new AssertionError("uncaught in " + thread.getName() + ": " + error, error));
            if (previous != null) {
                previous.uncaughtException(thread, error);
            }
        });
    }

    @FuzzTest(maxDuration = "10m")
    void stream(byte[] input) throws Exception {
        // the stream's connections go to the destination on 127.0.0.1, and only there
        try (SilentCloseable loopbackOnly = BugDetectors.allowNetworkConnections(
                (host, port) -> host.equals("localhost") || host.startsWith("127.") || host.equals("::1"))) {
            play(input);
        }
    }

    /**
     * The recorded real migrations, played as they were, complete verified: the harness reaches
     * the end of a stream, so what the fuzzer mutates from them can too.
     */
    @Test
    void realStreamsCompleteVerified() throws Exception {
        Path inputs = Path.of("src/test/resources/dev/ferry/engine/DestinationFuzzTestInputs/stream");
        List<Path> real;
        try (java.util.stream.Stream<Path> files = Files.list(inputs)) {
            real = files.filter(p -> p.getFileName().toString().startsWith("real-")).sorted().toList();
        }
        assertFalse(real.isEmpty(), "no recorded stream in " + inputs);
        for (Path p : real) {
            MigrationReport report = play(Files.readAllBytes(p));
            assertNotNull(report, p + ": no session");
            assertEquals(MigrationState.COMPLETED, report.outcome(), p + ": " + report.error());
        }
    }

    /** Plays one input to a new destination and checks how the stream ended; returns its report, or null when no session began. */
    static MigrationReport play(byte[] input) throws Exception {
        RecordingVm vm = new RecordingVm();
        try (GuestMemory memory = GuestMemory.anonymous(BYTES); Stream stream = new Stream();
                IncomingMigration in = Migration.destination(vm).memory(memory).peerTimeoutMillis(1_000)
                        .recoverTimeoutMillis(1).faultMechanism(FaultMechanism.SOFTWARE).start()) {
            stream.port = in.address().getPort();
            stream.play(input);
            if (stream.ended) {
                // a whole stream ends by itself; one the destination still waits on is cut by the close below
                try {
                    in.result().get(2, TimeUnit.SECONDS);
                } catch (java.util.concurrent.TimeoutException stillWaiting) {
                    // closed below
                }
            }
            stream.closeAll();
            if (!stream.welcomed && !in.result().isDone()) {
                // no session began: the destination rightly goes on waiting for its source (a scan is no source)
                assertNoneUncaught();
                return null;
            }
            MigrationReport report;
            try {
                report = in.result().get(END_SECONDS, TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                throw new AssertionError("the destination did not end the stream within " + END_SECONDS + " s", e);
            }
            assertNoneUncaught();
            if (report.outcome() == MigrationState.COMPLETED) {
                assertTrue(report.verified(), "completed unverified");
                assertEquals(1, vm.resumes.get(), "a completed guest resumes once");
                assertNotNull(vm.loadedState, "a completed guest has its device state");
                assertTrue(stream.mirrorValid, "completed, yet the stream sent a page the mirror could not apply");
                assertEquals(-1L, memory.segment().mismatch(stream.mirror.segment()),
                        "completed verified, yet its memory is not the pages the stream sent");
            } else {
                assertEquals(MigrationState.FAILED, report.outcome());
                assertFalse(report.verified());
                String reason = report.error();
                assertTrue(reason != null && !reason.isBlank(), "a failure says why");
                assertFalse(CRASH.matcher(reason).find(), "the reason is a crash, not the protocol's: " + reason);
                if (!report.destinationResumed()) {
                    assertEquals(0, vm.resumes.get(), "a guest never resumed here, yet resumed: " + reason);
                }
            }
            return report;
        }
    }

    private static void assertNoneUncaught() {
        Throwable uncaught = UNCAUGHT.poll();
        if (uncaught != null) {
            throw new AssertionError(uncaught);
        }
    }

    /**
     * The operations of {@code frames}, each on its own connection, in an order a destination could
     * have read them: a real source's frames as recorded, but a control connection's ROUND_END (and
     * what follows it there) only after every joined channel's ROUND_END of that round, as the
     * barrier applies them; the proxy's own order across connections is a matter of its threads.
     */
    static byte[] operations(List<SeedStreams.Frame> frames) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        java.util.ArrayDeque<SeedStreams.Frame> control = new java.util.ArrayDeque<>();
        java.util.Map<Integer, Integer> ended = new java.util.HashMap<>();
        for (SeedStreams.Frame f : frames) {
            if (f.connection() == 0) {
                control.add(f);
            } else {
                operation(out, f);
                int type = Byte.toUnsignedInt(f.frame()[0]);
                if (type == Wire.JOIN) {
                    ended.put(f.connection(), 0);
                } else if (type == Wire.ROUND_END) {
                    ended.put(f.connection(), ByteBuffer.wrap(f.frame(), 1, 4).getInt());
                }
            }
            while (!control.isEmpty()) {
                SeedStreams.Frame next = control.peek();
                if (Byte.toUnsignedInt(next.frame()[0]) == Wire.ROUND_END) {
                    int round = ByteBuffer.wrap(next.frame(), 1, 4).getInt();
                    if (ended.values().stream().anyMatch(r -> r < round)) {
                        break;
                    }
                }
                operation(out, control.poll());
            }
        }
        control.forEach(f -> operation(out, f));
        return out.toByteArray();
    }

    private static void operation(ByteArrayOutputStream out, SeedStreams.Frame f) {
        if (f.connection() >= SLOTS || f.frame().length == 0 || f.frame().length - 1 > 0xFFFF) {
            return;
        }
        int length = f.frame().length - 1;
        out.write(f.connection());
        out.write(f.frame()[0]);
        out.write(length >>> 8);
        out.write(length);
        out.write(f.frame(), 1, length);
    }

    /** The source side of one input: its connections, what the destination answered, a mirror of what it applies. */
    private static final class Stream implements AutoCloseable {
        int port;
        final Socket[] sockets = new Socket[SLOTS];
        final boolean[] dead = new boolean[SLOTS];
        @SuppressWarnings("unchecked")
        final LinkedBlockingQueue<byte[]>[] replies = new LinkedBlockingQueue[SLOTS];
        final GuestMemory mirror = GuestMemory.anonymous(BYTES);
        final PageDecoder decoder = new PageDecoder();
        final PageRecords records = new PageRecords();
        boolean mirrorValid = true;
        byte[] deviceState = new byte[0];
        long session;
        boolean welcomed;
        boolean ended;

        void play(byte[] input) throws IOException {
            ByteBuffer in = ByteBuffer.wrap(input);
            while (in.remaining() >= 3) {
                int op = Byte.toUnsignedInt(in.get());
                int slot = op & (SLOTS - 1);
                boolean raw = (op & RAW) != 0;
                boolean verbatim = (op & VERBATIM) != 0;
                int type = raw ? -1 : Byte.toUnsignedInt(in.get());
                if (in.remaining() < 2) {
                    break;
                }
                int length = Math.min(Short.toUnsignedInt(in.getShort()), in.remaining());
                byte[] body = new byte[length];
                in.get(body);
                if (raw) {
                    send(slot, body);
                    continue;
                }
                if (!verbatim) {
                    fixUp(type, body);
                }
                ByteBuffer frame = ByteBuffer.allocate(Wire.FRAME_HEADER + length);
                frame.putInt(length + 1).put((byte) type).put(body);
                send(slot, frame.array());
                if (type == Wire.HELLO) {
                    awaitWelcome(slot);
                } else if (type == Wire.PAGES) {
                    mirror(body);
                } else if (type == Wire.DEVICE_STATE) {
                    deviceState = body;
                } else if (type == Wire.END) {
                    ended = true;
                }
            }
        }

        /** What only the destination knows, put where the source would: the session, and END's digest. */
        private void fixUp(int type, byte[] body) {
            ByteBuffer b = ByteBuffer.wrap(body);
            if ((type == Wire.JOIN || type == Wire.RECOVER) && body.length >= 16) {
                b.putLong(8, session);
            } else if (type == Wire.END && body.length >= 8) {
                b.putLong(0, PageDigest.seal(PageDigest.scan(mirror), deviceState, session));
            }
        }

        /** Applies a PAGES body to the mirror as the destination would (any channel, in the order sent). */
        private void mirror(byte[] body) {
            if (!mirrorValid) {
                return;
            }
            MemorySegment frame = MemorySegment.ofArray(body);
            records.reset(frame, 0, body.length, mirror.pageCount());
            try {
                while (records.next()) {
                    if (records.encoding() == PageEncoding.ZERO) {
                        mirror.segment().asSlice(records.index() * GuestMemory.PAGE_SIZE,
                                (long) records.length() * GuestMemory.PAGE_SIZE).fill((byte) 0);
                    } else {
                        decoder.decode(records.encoding(), records.index(), frame, records.payloadOffset(),
                                records.length(), mirror.segment());
                    }
                }
            } catch (ProtocolException | MalformedPayloadException e) {
                mirrorValid = false;
            }
        }

        /** The answer to a HELLO: WELCOME names the session; an ERROR or a close means there is none. */
        private void awaitWelcome(int slot) {
            if (dead[slot]) {
                return;
            }
            try {
                byte[] reply = replies[slot].poll(10, TimeUnit.SECONDS);
                assertNotNull(reply, "no answer to HELLO within 10 s");
                if (reply.length == Wire.FRAME_HEADER - 4 + 22 && reply[0] == Wire.WELCOME) {
                    session = ByteBuffer.wrap(reply).getLong(1 + 8 + 2 + 4);
                    welcomed = true;
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        private void send(int slot, byte[] bytes) throws IOException {
            if (dead[slot]) {
                return;
            }
            try {
                if (sockets[slot] == null) {
                    Socket s = new Socket(InetAddress.getLoopbackAddress(), port);
                    s.setTcpNoDelay(true);
                    sockets[slot] = s;
                    replies[slot] = new LinkedBlockingQueue<>();
                    LinkedBlockingQueue<byte[]> queue = replies[slot];
                    Thread.ofVirtual().start(() -> read(s, queue));
                }
                sockets[slot].getOutputStream().write(bytes);
            } catch (IOException closed) {
                // the destination closed this connection (it refused it): what it said is in its replies
                dead[slot] = true;
            }
        }

        /** Reads the destination's frames into {@code queue} until it closes; an empty array marks the close. */
        private static void read(Socket socket, LinkedBlockingQueue<byte[]> queue) {
            try {
                DataInputStream in = new DataInputStream(socket.getInputStream());
                while (true) {
                    int length = in.readInt();
                    assertTrue(length >= 1 && length <= Wire.MAX_FRAME, "the destination sent a frame of " + length);
                    byte[] frame = new byte[length];
                    in.readFully(frame);
                    queue.add(frame);
                }
            } catch (IOException closed) {
                queue.add(new byte[0]);
            }
        }

        void closeAll() {
            for (Socket s : sockets) {
                if (s != null) {
                    try {
                        s.close();
                    } catch (IOException ignored) {
                        // closing
                    }
                }
            }
        }

        @Override
        public void close() {
            closeAll();
            decoder.close();
            mirror.close();
        }
    }
}
