package dev.ferry.bench.trace;

import com.github.luben.zstd.ZstdOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import net.openhft.hashing.LongHashFunction;

/**
 * Writes small traces for tests. Every field is public and written as given (no validation), so a
 * test can break exactly one rule; the defaults make a valid trace.
 */
public final class TraceWriter {
    public static final int PAGE = 4096;

    public long magic = 0x31544D5952524546L;
    public int version = 1;
    public int pageSize = PAGE;
    public long pageCount;
    /** Declared epoch count; -1 means the number of epochs added. */
    public long declaredEpochs = -1;
    /** Declared meta length; -1 means the meta's length. */
    public long declaredMetaLength = -1;
    public byte[] meta = "{\"name\":\"synthetic\",\"description\":\"test trace\",\"n\":[1,2.5e3,true,null]}"
            .getBytes(StandardCharsets.UTF_8);
    public String imageTag = "IMG0";
    /** Declared image count; -1 means the number of image pages. */
    public long declaredImageCount = -1;
    public final List<Long> imageIndices = new ArrayList<>();
    public final List<byte[]> imagePages = new ArrayList<>();
    public final List<Epoch> epochs = new ArrayList<>();
    public String endTag = "END0";
    public long checksumXor;
    public byte[] trailing = new byte[0];

    /** One epoch; {@code declaredCount} -1 means the number of pages. */
    public static final class Epoch {
        public String tag = "EPC0";
        public long timeMicros;
        public long declaredCount = -1;
        public final List<Long> indices = new ArrayList<>();
        public final List<byte[]> pages = new ArrayList<>();

        public Epoch(long timeMicros) {
            this.timeMicros = timeMicros;
        }

        public Epoch page(long index, byte[] data) {
            indices.add(index);
            pages.add(data);
            return this;
        }
    }

    public TraceWriter(long pageCount) {
        this.pageCount = pageCount;
    }

    public TraceWriter image(long index, byte[] data) {
        imageIndices.add(index);
        imagePages.add(data);
        return this;
    }

    public Epoch epoch(long timeMicros) {
        Epoch epoch = new Epoch(timeMicros);
        epochs.add(epoch);
        return epoch;
    }

    /** A page of random bytes. */
    public static byte[] randomPage(SplittableRandom random) {
        byte[] page = new byte[PAGE];
        random.nextBytes(page);
        return page;
    }

    /** A valid trace of {@code pageCount} pages with {@code imagePages} image pages and {@code epochCount} epochs. */
    public static TraceWriter random(long pageCount, int imagePages, int epochCount, int pagesPerEpoch, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        TraceWriter writer = new TraceWriter(pageCount);
        for (long page : distinctSorted(random, pageCount, imagePages)) {
            writer.image(page, randomPage(random));
        }
        for (int e = 0; e < epochCount; e++) {
            Epoch epoch = writer.epoch((e + 1) * 10_000L);
            for (long page : distinctSorted(random, pageCount, pagesPerEpoch)) {
                epoch.page(page, randomPage(random));
            }
        }
        return writer;
    }

    private static long[] distinctSorted(SplittableRandom random, long pageCount, int n) {
        return random.longs(0, pageCount).distinct().limit(n).sorted().toArray();
    }

    /** The uncompressed trace. */
    public byte[] bytes() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(le(8, magic));
        out.writeBytes(le(4, version));
        out.writeBytes(le(4, pageSize));
        out.writeBytes(le(8, pageCount));
        out.writeBytes(le(4, declaredEpochs >= 0 ? declaredEpochs : epochs.size()));
        out.writeBytes(le(4, declaredMetaLength >= 0 ? declaredMetaLength : meta.length));
        out.writeBytes(meta);
        out.writeBytes(imageTag.getBytes(StandardCharsets.ISO_8859_1));
        out.writeBytes(le(8, declaredImageCount >= 0 ? declaredImageCount : imageIndices.size()));
        for (int i = 0; i < imageIndices.size(); i++) {
            out.writeBytes(le(8, imageIndices.get(i)));
            out.writeBytes(imagePages.get(i));
        }
        for (Epoch epoch : epochs) {
            out.writeBytes(epoch.tag.getBytes(StandardCharsets.ISO_8859_1));
            out.writeBytes(le(8, epoch.timeMicros));
            out.writeBytes(le(4, epoch.declaredCount >= 0 ? epoch.declaredCount : epoch.indices.size()));
            for (int i = 0; i < epoch.indices.size(); i++) {
                out.writeBytes(le(8, epoch.indices.get(i)));
                out.writeBytes(epoch.pages.get(i));
            }
        }
        out.writeBytes(endTag.getBytes(StandardCharsets.ISO_8859_1));
        byte[] covered = out.toByteArray();
        out.writeBytes(le(8, LongHashFunction.xx().hashBytes(covered) ^ checksumXor));
        out.writeBytes(trailing);
        return out.toByteArray();
    }

    /** {@code raw} compressed as concatenated zstd frames, split at {@code cuts} (increasing). */
    public static byte[] zstd(byte[] raw, int... cuts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int from = 0;
        try {
            for (int i = 0; i <= cuts.length; i++) {
                int to = i < cuts.length ? cuts[i] : raw.length;
                try (ZstdOutputStream zstd = new ZstdOutputStream(new NonClosing(out), 3)) {
                    zstd.write(raw, from, to - from);
                }
                from = to;
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out.toByteArray();
    }

    private static byte[] le(int size, long value) {
        ByteBuffer buffer = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(value);
        byte[] bytes = new byte[size];
        System.arraycopy(buffer.array(), 0, bytes, 0, size);
        return bytes;
    }

    private static final class NonClosing extends java.io.FilterOutputStream {
        NonClosing(java.io.OutputStream out) {
            super(out);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
        }

        @Override
        public void close() throws IOException {
            flush();
        }
    }
}
