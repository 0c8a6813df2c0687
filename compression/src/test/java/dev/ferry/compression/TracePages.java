package dev.ferry.compression;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.luben.zstd.ZstdInputStream;
import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Real guest pages from the guest-redis trace (format in traces/FORMAT.md), read with the
 * least code that does it: image pages, and (old, new) pairs of a page across epochs.
 */
final class TracePages {
    static final String TRACE = "guest-redis.mtrace.zst";
    private static List<byte[]> image;
    private static List<byte[][]> pairs;

    private TracePages() {
    }

    static Path trace() {
        String dir = System.getProperty("ferry.traces");
        Path traces = dir != null ? Path.of(dir)
                : Path.of(System.getProperty("user.dir")).toAbsolutePath().getParent().resolve("../shared/traces");
        Path file = traces.resolve(TRACE).normalize();
        assertTrue(Files.isRegularFile(file), "memory trace " + file + " not found: set -Dferry.traces to the "
                + "directory holding " + TRACE + " (the shared traces directory)");
        return file;
    }

    /** The first {@code n} non-zero pages of the image. */
    static synchronized List<byte[]> image(int n) throws IOException {
        if (image == null || image.size() < n) {
            try (Reader r = new Reader(trace())) {
                long count = r.imageCount();
                List<byte[]> pages = new ArrayList<>();
                for (long i = 0; i < Math.min(n, count); i++) {
                    r.u64();
                    pages.add(r.page());
                }
                image = pages;
            }
        }
        return image.subList(0, Math.min(n, image.size()));
    }

    /**
     * (previous, current) contents of sampled pages (every {@code sample}th index) as they change
     * over the first {@code epochs} epochs; a page absent from the image starts as zeros.
     */
    static synchronized List<byte[][]> epochPairs(int sample, int epochs) throws IOException {
        if (pairs == null) {
            try (Reader r = new Reader(trace())) {
                Map<Long, byte[]> last = new HashMap<>();
                for (long i = 0, count = r.imageCount(); i < count; i++) {
                    long index = r.u64();
                    if (index % sample == 0) {
                        last.put(index, r.page());
                    } else {
                        r.skipPage();
                    }
                }
                List<byte[][]> out = new ArrayList<>();
                for (int e = 0; e < Math.min(epochs, r.epochCount); e++) {
                    assertEquals("EPC0", r.tag(), "epoch tag");
                    r.u64();
                    long count = r.u32();
                    for (long i = 0; i < count; i++) {
                        long index = r.u64();
                        if (index % sample == 0) {
                            byte[] now = r.page();
                            byte[] before = last.getOrDefault(index, new byte[Pages.PAGE]);
                            out.add(new byte[][] {before, now});
                            last.put(index, now);
                        } else {
                            r.skipPage();
                        }
                    }
                }
                pairs = out;
            }
        }
        return pairs;
    }

    private static final class Reader implements AutoCloseable {
        private final DataInputStream in;
        private final byte[] buf = new byte[8];
        final long epochCount;

        Reader(Path file) throws IOException {
            InputStream raw = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
            ZstdInputStream zstd = new ZstdInputStream(raw);
            zstd.setLongMax(27);
            this.in = new DataInputStream(new BufferedInputStream(zstd, 1 << 16));
            byte[] magic = in.readNBytes(8);
            assertEquals("FERRYMT1", new String(magic, StandardCharsets.US_ASCII), "trace magic");
            assertEquals(1, u32(), "trace version");
            assertEquals(Pages.PAGE, u32(), "trace page size");
            u64();
            this.epochCount = u32();
            in.skipNBytes(u32());
        }

        long imageCount() throws IOException {
            assertEquals("IMG0", tag(), "image tag");
            return u64();
        }

        String tag() throws IOException {
            return new String(in.readNBytes(4), StandardCharsets.US_ASCII);
        }

        long u32() throws IOException {
            in.readFully(buf, 0, 4);
            return Integer.toUnsignedLong(ByteBuffer.wrap(buf, 0, 4).order(ByteOrder.LITTLE_ENDIAN).getInt());
        }

        long u64() throws IOException {
            in.readFully(buf, 0, 8);
            return ByteBuffer.wrap(buf).order(ByteOrder.LITTLE_ENDIAN).getLong();
        }

        byte[] page() throws IOException {
            byte[] p = new byte[Pages.PAGE];
            in.readFully(p);
            return p;
        }

        void skipPage() throws IOException {
            in.skipNBytes(Pages.PAGE);
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }
}
