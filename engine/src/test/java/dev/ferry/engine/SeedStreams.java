package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.compression.MalformedPayloadException;
import dev.ferry.compression.PageDecoder;
import dev.ferry.core.Capability;
import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.VmControl;
import dev.ferry.protocol.PageEncoding;
import dev.ferry.protocol.PageRecords;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.Wire;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Records the fuzz targets' seed corpora from real migrations: a real source migrates a small
 * guest to a real destination through a recording proxy on 127.0.0.1, and every frame each
 * connection carried becomes seeds: whole connections for the frame decoder
 * ({@code WireFuzzTest}), the whole session as {@link DestinationFuzzTest} operations, and each
 * distinct page payload, with the page it applied to, for {@code PageDecoderFuzzTest}.
 *
 * <p>Runs only when asked ({@code scripts/fuzz.sh --record-seeds}, i.e.
 * {@code -Dferry.seeds=DIR} naming the repository): the committed seeds are its output, and a
 * new run would only differ in session ids and timing.
 */
@EnabledIfSystemProperty(named = "ferry.seeds", matches = ".+")
class SeedStreams {
    private static final long BYTES = DestinationFuzzTest.BYTES;
    /** Payload seeds kept per encoding and run: enough to show the encoder's shapes, few enough to stay small. */
    private static final int PAYLOADS_PER_ENCODING = 3;

    @Test
    void record() throws Exception {
        Path repo = Path.of(System.getProperty("ferry.seeds"));
        Path frames = repo.resolve("protocol/src/test/resources/dev/ferry/protocol/WireFuzzTestInputs/frames");
        Path decode = repo.resolve("compression/src/test/resources/dev/ferry/compression/PageDecoderFuzzTestInputs/decode");
        Path xbzrle = repo.resolve("compression/src/test/resources/dev/ferry/compression/PageDecoderFuzzTestInputs/xbzrle");
        Path stream = repo.resolve("engine/src/test/resources/dev/ferry/engine/DestinationFuzzTestInputs/stream");
        for (Path dir : List.of(frames, decode, xbzrle, stream)) {
            Files.createDirectories(dir);
        }
        record Run(String name, Set<Capability> capabilities) {
        }
        for (Run run : List.of(new Run("raw", EnumSet.of(Capability.ZERO_PAGES)),
                new Run("lz4", EnumSet.of(Capability.ZERO_PAGES, Capability.XBZRLE, Capability.LZ4)),
                new Run("zstd", EnumSet.of(Capability.ZERO_PAGES, Capability.XBZRLE, Capability.ZSTD)))) {
            List<Chunk> log = migrate(run.capabilities());
            writeConnections(log, frames, "real-" + run.name());
            List<Frame> upstream = frames(log);
            Files.write(stream.resolve("real-" + run.name()), DestinationFuzzTest.operations(upstream));
            writePayloads(upstream, decode, xbzrle, "real-" + run.name());
        }
    }

    /** Bytes one connection carried one way, in the order the proxy saw them. */
    record Chunk(int connection, boolean upstream, byte[] bytes) {
    }

    /** A whole frame ({@code type + body}) the source sent on a connection (0 is the first opened). */
    record Frame(int connection, byte[] frame) {
    }

    /** A real pre-copy migration of a small guest over two channels, through the recording proxy. */
    private static List<Chunk> migrate(Set<Capability> capabilities) throws Exception {
        try (SeedGuest guest = new SeedGuest(); RecordingProxy proxy = new RecordingProxy()) {
            GuestMemory target = GuestMemory.anonymous(BYTES);
            try (IncomingMigration in = Migration.destination(new RecordingVm()).memory(target).start()) {
                proxy.start(in.address());
                MigrationReport out = Migration.source(guest.memory, guest.dirty, guest)
                        .parameters(MigrationParameters.builder().channels(2).downtimeLimitMillis(300).maxRounds(4)
                                .capabilities(capabilities).adaptiveCompression(false).build())
                        .connect(proxy.address()).start().result().get(60, TimeUnit.SECONDS);
                assertTrue(out.succeeded(), out.error());
                assertTrue(in.result().get(10, TimeUnit.SECONDS).verified());
                assertEquals(-1L, guest.memory.segment().mismatch(target.segment()), "memories differ");
            } finally {
                target.close();
            }
            return proxy.log();
        }
    }

    /** Each connection's bytes, each way, cut at a frame boundary to at most 16 KiB. */
    private static void writeConnections(List<Chunk> log, Path dir, String name) throws IOException {
        int connections = log.stream().mapToInt(Chunk::connection).max().orElse(-1) + 1;
        for (int c = 0; c < connections; c++) {
            for (boolean up : new boolean[] {true, false}) {
                ByteArrayOutputStream bytes = new ByteArrayOutputStream();
                for (Chunk chunk : log) {
                    if (chunk.connection() == c && chunk.upstream() == up) {
                        bytes.writeBytes(chunk.bytes());
                    }
                }
                byte[] all = bytes.toByteArray();
                int cut = 0;
                while (all.length - cut >= 4) {
                    int next = cut + 4 + ByteBuffer.wrap(all, cut, 4).getInt();
                    if (next > all.length || next > 16 << 10) {
                        break;
                    }
                    cut = next;
                }
                if (cut > 0) {
                    Files.write(dir.resolve(name + "-" + c + (up ? "-source" : "-destination")),
                            java.util.Arrays.copyOf(all, cut));
                }
            }
        }
    }

    /** The frames the source sent, in the order their last byte reached the proxy. */
    static List<Frame> frames(List<Chunk> log) {
        List<Frame> frames = new ArrayList<>();
        List<ByteArrayOutputStream> pending = new ArrayList<>();
        for (Chunk chunk : log) {
            if (!chunk.upstream()) {
                continue;
            }
            while (pending.size() <= chunk.connection()) {
                pending.add(new ByteArrayOutputStream());
            }
            ByteArrayOutputStream buffer = pending.get(chunk.connection());
            buffer.writeBytes(chunk.bytes());
            byte[] all = buffer.toByteArray();
            int at = 0;
            while (all.length - at >= 4 && all.length - at - 4 >= ByteBuffer.wrap(all, at, 4).getInt()) {
                int length = ByteBuffer.wrap(all, at, 4).getInt();
                frames.add(new Frame(chunk.connection(), java.util.Arrays.copyOfRange(all, at + 4, at + 4 + length)));
                at += 4 + length;
            }
            buffer.reset();
            buffer.write(all, at, all.length - at);
        }
        return frames;
    }

    /**
     * Every distinct (encoding, payload) the source sent, up to {@link #PAYLOADS_PER_ENCODING} per
     * encoding, as {@code PageDecoderFuzzTest} inputs, with the page the destination held when it
     * arrived (a mirror of the destination, applied frame by frame, knows it).
     */
    private static void writePayloads(List<Frame> frames, Path decode, Path xbzrle, String name)
            throws IOException, ProtocolException, MalformedPayloadException {
        try (GuestMemory mirror = GuestMemory.anonymous(BYTES); PageDecoder decoder = new PageDecoder()) {
            int[] kept = new int[PageEncoding.COUNT];
            Set<String> seen = new HashSet<>();
            PageRecords records = new PageRecords();
            for (Frame f : frames) {
                if (f.frame().length == 0 || f.frame()[0] != Wire.PAGES) {
                    continue;
                }
                MemorySegment frame = MemorySegment.ofArray(f.frame());
                records.reset(frame, 1, f.frame().length, mirror.pageCount());
                while (records.next()) {
                    int encoding = records.encoding();
                    long index = records.index();
                    if (encoding == PageEncoding.ZERO) {
                        mirror.segment().asSlice(index * GuestMemory.PAGE_SIZE, (long) records.length() * GuestMemory.PAGE_SIZE)
                                .fill((byte) 0);
                        continue;
                    }
                    byte[] payload = frame.asSlice(records.payloadOffset(), records.length()).toArray(ValueLayout.JAVA_BYTE);
                    byte[] old = trimmed(mirror.segment().asSlice(index * GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE)
                            .toArray(ValueLayout.JAVA_BYTE));
                    String key = encoding + ":" + java.util.Arrays.hashCode(payload) + ":" + java.util.Arrays.hashCode(old);
                    if (kept[encoding] < PAYLOADS_PER_ENCODING && seen.add(key)) {
                        String file = name + "-" + PageEncoding.name(encoding).replace('+', '-') + "-" + kept[encoding]++;
                        ByteArrayOutputStream seed = new ByteArrayOutputStream();
                        seed.write(encoding);
                        seed.write(1);
                        seed.write(payload.length >>> 8);
                        seed.write(payload.length);
                        seed.writeBytes(payload);
                        seed.writeBytes(old);
                        Files.write(decode.resolve(file), seed.toByteArray());
                        if (encoding == PageEncoding.XBZRLE) {
                            ByteArrayOutputStream delta = new ByteArrayOutputStream();
                            delta.write(payload.length >>> 8);
                            delta.write(payload.length);
                            delta.writeBytes(payload);
                            delta.writeBytes(old);
                            Files.write(xbzrle.resolve(file), delta.toByteArray());
                        }
                    }
                    decoder.decode(encoding, index, frame, records.payloadOffset(), records.length(), mirror.segment());
                }
            }
        }
    }

    /** A page without its trailing zeros: the fuzz targets fill the rest of the old page with zeros. */
    private static byte[] trimmed(byte[] page) {
        int end = page.length;
        while (end > 0 && page[end - 1] == 0) {
            end--;
        }
        return java.util.Arrays.copyOf(page, end);
    }

    /**
     * A small guest that is mostly zero: a few pages of text (they compress), one of noise (it
     * does not), and at the pause it writes a few bytes of three pages it sent already, so the
     * stop-and-copy round sends them as XBZRLE deltas where XBZRLE was negotiated.
     */
    private static final class SeedGuest implements VmControl, AutoCloseable {
        final GuestMemory memory = GuestMemory.anonymous(BYTES);
        final DirtyBitmap dirty = new DirtyBitmap(memory.pageCount());
        private int pauses;

        SeedGuest() {
            byte[] text = ("key:%d value:the quick brown fox jumps over the lazy dog; set get del expire ttl\n")
                    .repeat(64).getBytes(StandardCharsets.US_ASCII);
            for (long page : new long[] {1, 2, 513, 1030}) {
                MemorySegment.copy(MemorySegment.ofArray(text), 0, memory.segment(), page * GuestMemory.PAGE_SIZE,
                        Math.min(text.length, GuestMemory.PAGE_SIZE));
            }
            byte[] noise = new byte[GuestMemory.PAGE_SIZE];
            new SplittableRandom(12).nextBytes(noise);
            MemorySegment.copy(MemorySegment.ofArray(noise), 0, memory.segment(), 700L * GuestMemory.PAGE_SIZE, noise.length);
        }

        @Override
        public void pause() {
            if (pauses++ > 0) {
                return;
            }
            for (long page : new long[] {1, 513, 700}) {
                long at = page * GuestMemory.PAGE_SIZE + 100;
                for (int i = 0; i < 24; i++) {
                    memory.segment().set(ValueLayout.JAVA_BYTE, at + 3 * i, (byte) ('A' + i));
                }
                dirty.mark(page);
            }
        }

        @Override
        public void resume() {
        }

        @Override
        public byte[] saveDeviceState() {
            return "cpu0 rip=0xffffffff81000000 rsp=0x7ffe0000; virtio-net mac=52:54:00:12:34:56".getBytes(StandardCharsets.US_ASCII);
        }

        @Override
        public void loadDeviceState(byte[] state) {
        }

        @Override
        public void close() {
            memory.close();
        }
    }

    /** A TCP proxy on 127.0.0.1 that logs every chunk each connection carries, in one order for all. */
    private static final class RecordingProxy implements AutoCloseable {
        private final ServerSocket listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        private final List<Chunk> log = new ArrayList<>();
        private final List<Socket> sockets = new ArrayList<>();
        private final List<Thread> threads = new ArrayList<>();

        RecordingProxy() throws IOException {
        }

        InetSocketAddress address() {
            return new InetSocketAddress(InetAddress.getLoopbackAddress(), listener.getLocalPort());
        }

        void start(InetSocketAddress target) {
            Thread accept = Thread.ofPlatform().daemon().start(() -> {
                int connection = 0;
                try {
                    while (true) {
                        Socket client = listener.accept();
                        Socket server = new Socket(InetAddress.getLoopbackAddress(), target.getPort());
                        synchronized (this) {
                            sockets.add(client);
                            sockets.add(server);
                        }
                        int c = connection++;
                        pump(c, true, client.getInputStream(), server.getOutputStream(), server);
                        pump(c, false, server.getInputStream(), client.getOutputStream(), client);
                    }
                } catch (IOException closed) {
                    // the proxy closed
                }
            });
            threads.add(accept);
        }

        private void pump(int connection, boolean upstream, InputStream in, OutputStream out, Socket to) {
            Thread t = Thread.ofPlatform().daemon().start(() -> {
                byte[] buffer = new byte[1 << 16];
                try {
                    for (int n = in.read(buffer); n > 0; n = in.read(buffer)) {
                        // logged before it is forwarded: the log's order is an order the destination could see
                        synchronized (this) {
                            log.add(new Chunk(connection, upstream, java.util.Arrays.copyOf(buffer, n)));
                        }
                        out.write(buffer, 0, n);
                    }
                    to.shutdownOutput();
                } catch (IOException closed) {
                    // either side closed
                }
            });
            synchronized (this) {
                threads.add(t);
            }
        }

        synchronized List<Chunk> log() {
            return new ArrayList<>(log);
        }

        @Override
        public void close() throws Exception {
            listener.close();
            synchronized (this) {
                for (Socket s : sockets) {
                    s.close();
                }
            }
            for (Thread t : threads) {
                t.join(5000);
            }
        }
    }
}
