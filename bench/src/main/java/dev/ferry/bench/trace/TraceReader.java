package dev.ferry.bench.trace;

import com.fasterxml.jackson.core.JsonProcessingException;
import dev.ferry.core.ReportJson;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.MalformedInputException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads a {@code .mtrace} or {@code .mtrace.zst} stream front to back, checking every rule of the
 * format as it goes: {@link #open} reads the header, then {@link #readImage}, then
 * {@link #nextEpoch} until it returns null, then {@link #finish} checks the trailer, the XXH64
 * checksum and that nothing follows. Any violation is a {@link TraceFormatException} naming the
 * offset in the decompressed stream and what was expected.
 *
 * <p>The reader streams: beyond one page it holds only the current epoch's pages.
 */
public final class TraceReader implements AutoCloseable {
    /** The only page size of format version 1. */
    public static final int PAGE_SIZE = 4096;
    /** The largest page count a trace may declare (1 TiB of guest RAM). */
    public static final long MAX_PAGE_COUNT = 1L << 28;
    /** The largest epoch count a trace may declare. */
    public static final long MAX_EPOCH_COUNT = 1L << 24;
    /** The largest meta a trace may carry. */
    public static final int MAX_META_LENGTH = 65536;

    private static final long MAGIC = 0x31544D5952524546L; // "FERRYMT1" little-endian
    private static final int TAG_IMAGE = tag("IMG0");
    private static final int TAG_EPOCH = tag("EPC0");
    private static final int TAG_END = tag("END0");

    private enum Section { IMAGE, EPOCHS, TRAILER, DONE }

    private final TraceInput input;
    private final long pageCount;
    private final int epochCount;
    private final TraceMeta meta;
    private final byte[] pageBytes = new byte[PAGE_SIZE];
    private final MemorySegment page = MemorySegment.ofArray(pageBytes);
    private final TraceEpoch epoch = new TraceEpoch();
    private Section section = Section.IMAGE;
    private int epochsRead;
    private long lastTimeMicros;

    private TraceReader(TraceInput input, long pageCount, int epochCount, TraceMeta meta) {
        this.input = input;
        this.pageCount = pageCount;
        this.epochCount = epochCount;
        this.meta = meta;
    }

    /** Opens the trace at {@code path} and reads its header. */
    public static TraceReader open(Path path) throws IOException {
        return open(Files.newInputStream(path));
    }

    /** Reads a trace's header from {@code source} (raw or zstd), which the reader then owns. */
    public static TraceReader open(InputStream source) throws IOException {
        TraceInput input = TraceInput.open(source);
        try {
            return readHeader(input);
        } catch (IOException | RuntimeException e) {
            input.close();
            throw e;
        }
    }

    private static TraceReader readHeader(TraceInput in) throws IOException {
        long at = in.offset();
        long magic = in.u64("the magic");
        if (magic != MAGIC) {
            throw new TraceFormatException(at, "expected magic \"FERRYMT1\", found " + ascii(magic, 8));
        }
        at = in.offset();
        int version = in.u32("the version");
        if (version != 1) {
            throw new TraceFormatException(at, "expected version 1, found " + Integer.toUnsignedString(version));
        }
        at = in.offset();
        int pageSize = in.u32("the page size");
        if (pageSize != PAGE_SIZE) {
            throw new TraceFormatException(at, "expected page size 4096, found " + Integer.toUnsignedString(pageSize));
        }
        at = in.offset();
        long pageCount = in.u64("the page count");
        if (pageCount == 0 || Long.compareUnsigned(pageCount, MAX_PAGE_COUNT) > 0) {
            throw new TraceFormatException(at, "expected a page count in 1..2^28, found " + Long.toUnsignedString(pageCount));
        }
        at = in.offset();
        int epochCount = in.u32("the epoch count");
        if (Integer.toUnsignedLong(epochCount) > MAX_EPOCH_COUNT) {
            throw new TraceFormatException(at, "expected an epoch count of at most 2^24, found "
                    + Integer.toUnsignedString(epochCount));
        }
        at = in.offset();
        int metaLength = in.u32("the meta length");
        if (Integer.toUnsignedLong(metaLength) > MAX_META_LENGTH) {
            throw new TraceFormatException(at, "expected a meta length of at most 65536, found "
                    + Integer.toUnsignedString(metaLength));
        }
        at = in.offset();
        byte[] metaBytes = new byte[metaLength];
        in.bytes(metaBytes, 0, metaLength, "the meta");
        return new TraceReader(in, pageCount, epochCount, parseMeta(metaBytes, at));
    }

    private static TraceMeta parseMeta(byte[] bytes, long at) throws TraceFormatException {
        if (bytes.length == 0) {
            return new TraceMeta("", ReportJson.object()); // the format allows a length of 0: no meta at all
        }
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer buffer = ByteBuffer.wrap(bytes);
        String text;
        try {
            text = decoder.decode(buffer).toString();
        } catch (MalformedInputException e) {
            throw new TraceFormatException(at + buffer.position(), "expected UTF-8 meta, found a malformed sequence");
        } catch (CharacterCodingException e) {
            throw new TraceFormatException(at + buffer.position(), "expected UTF-8 meta: " + e);
        }
        try {
            return new TraceMeta(text, ReportJson.parseObject(text));
        } catch (IllegalArgumentException e) {
            int index = e.getCause() instanceof JsonProcessingException json && json.getLocation() != null
                    ? (int) Math.clamp(json.getLocation().getCharOffset(), 0, text.length()) : 0;
            long byteIndex = text.substring(0, index).getBytes(StandardCharsets.UTF_8).length;
            throw new TraceFormatException(at + byteIndex, "expected the meta to be a JSON object: " + e.getMessage());
        }
    }

    /** Pages of guest RAM. */
    public long pageCount() {
        return pageCount;
    }

    /** Guest RAM in bytes. */
    public long memoryBytes() {
        return pageCount * PAGE_SIZE;
    }

    /** Epochs the trace declares. */
    public int epochCount() {
        return epochCount;
    }

    /** The header's meta. */
    public TraceMeta meta() {
        return meta;
    }

    /**
     * Reads the image, handing every listed (non-zero) page to {@code sink} in increasing index
     * order; pages not listed are zero. Returns how many pages were listed.
     */
    public long readImage(PageSink sink) throws IOException {
        if (section != Section.IMAGE) {
            throw new IllegalStateException("the image was already read");
        }
        expectTag(TAG_IMAGE, "IMG0");
        long at = input.offset();
        long count = input.u64("the image page count");
        if (Long.compareUnsigned(count, pageCount) > 0) {
            throw new TraceFormatException(at, "expected an image page count of at most " + pageCount
                    + ", found " + Long.toUnsignedString(count));
        }
        long previous = -1;
        for (long i = 0; i < count; i++) {
            previous = pageIndex(previous, "image");
            input.bytes(pageBytes, 0, PAGE_SIZE, "image page data");
            sink.page(previous, page);
        }
        section = Section.EPOCHS;
        return count;
    }

    /**
     * Reads the next epoch into a reused {@link TraceEpoch} (valid until the next call), or returns
     * null once all epochs were read. Reads the image first, discarding it, if it was not read.
     */
    public TraceEpoch nextEpoch() throws IOException {
        if (section == Section.IMAGE) {
            readImage((index, bytes) -> { });
        }
        if (section != Section.EPOCHS) {
            return null;
        }
        if (epochsRead == epochCount) {
            section = Section.TRAILER;
            return null;
        }
        expectTag(TAG_EPOCH, "EPC0");
        long at = input.offset();
        long time = input.u64("the epoch time");
        if (time == 0 || Long.compareUnsigned(time, lastTimeMicros) <= 0) {
            throw new TraceFormatException(at, "expected an epoch time above " + lastTimeMicros
                    + " (strictly increasing, > 0), found " + Long.toUnsignedString(time));
        }
        at = input.offset();
        int count = input.u32("the epoch page count");
        if (Integer.toUnsignedLong(count) > pageCount) {
            throw new TraceFormatException(at, "expected an epoch page count of at most " + pageCount
                    + ", found " + Integer.toUnsignedString(count));
        }
        // The pages are buffered as they arrive: a declared count allocates nothing (a tiny file
        // may claim 2^28 pages and end at once).
        epoch.begin(epochsRead, lastTimeMicros, time);
        long previous = -1;
        for (int i = 0; i < count; i++) {
            previous = pageIndex(previous, "epoch");
            MemorySegment data = epoch.add(i, previous, count);
            input.bytes(data, TraceEpoch.dataOffset(i), PAGE_SIZE, "epoch page data");
        }
        epoch.complete(count);
        lastTimeMicros = time;
        epochsRead++;
        return epoch;
    }

    /**
     * Reads the trailer (after any epochs not yet read), checks the checksum and that the stream
     * ends there.
     */
    public void finish() throws IOException {
        while (section != Section.TRAILER && section != Section.DONE) {
            nextEpoch();
        }
        if (section == Section.DONE) {
            return;
        }
        expectTag(TAG_END, "END0");
        long computed = input.finishChecksum();
        long at = input.offset();
        long stored = input.u64("the checksum");
        if (stored != computed) {
            throw new TraceFormatException(at, String.format(
                    "expected checksum %016x (XXH64 of header through END0), found %016x", computed, stored));
        }
        input.expectEnd();
        section = Section.DONE;
    }

    /** The reused epoch buffer (tests look at how far it grew). */
    TraceEpoch epochBuffer() {
        return epoch;
    }

    /** Whether the input is zstd-compressed. */
    public boolean compressed() {
        return input.compressed();
    }

    @Override
    public void close() throws IOException {
        input.close();
    }

    private long pageIndex(long previous, String where) throws IOException {
        long at = input.offset();
        long index = input.u64("a page index");
        if (Long.compareUnsigned(index, pageCount) >= 0) {
            throw new TraceFormatException(at, "expected a page index below the page count " + pageCount
                    + " in the " + where + ", found " + Long.toUnsignedString(index));
        }
        if (index <= previous) {
            throw new TraceFormatException(at, "expected page indices strictly increasing in the " + where
                    + ": " + index + " follows " + previous);
        }
        return index;
    }

    private void expectTag(int expected, String name) throws IOException {
        long at = input.offset();
        int tag = input.u32("the " + name + " tag");
        if (tag != expected) {
            throw new TraceFormatException(at, "expected section tag \"" + name + "\", found " + ascii(tag, 4));
        }
    }

    private static int tag(String name) {
        byte[] b = name.getBytes(StandardCharsets.US_ASCII);
        return (b[0] & 0xFF) | (b[1] & 0xFF) << 8 | (b[2] & 0xFF) << 16 | (b[3] & 0xFF) << 24;
    }

    /** Little-endian bytes shown as text when printable, else as hex. */
    private static String ascii(long value, int length) {
        StringBuilder text = new StringBuilder("\"");
        StringBuilder hex = new StringBuilder();
        boolean printable = true;
        for (int i = 0; i < length; i++) {
            int b = (int) (value >>> (8 * i)) & 0xFF;
            printable &= b >= 0x20 && b < 0x7F;
            text.append((char) b);
            hex.append(String.format("%02x", b));
        }
        return printable ? text.append('"').toString() : "0x" + hex;
    }
}
