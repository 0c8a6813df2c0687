package dev.ferry.bench.trace;

import com.github.luben.zstd.ZstdException;
import com.github.luben.zstd.ZstdIOException;
import com.github.luben.zstd.ZstdInputStream;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import net.jpountz.xxhash.StreamingXXHash64;
import net.jpountz.xxhash.XXHashFactory;

/**
 * The decompressed byte stream of a trace: tracks the offset of every byte, feeds the checksum,
 * and turns end of stream and zstd errors into {@link TraceFormatException}s that say what was
 * being read. Reads go through one fixed buffer; nothing is allocated per read.
 */
final class TraceInput implements AutoCloseable {
    private static final VarHandle INT_LE = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LONG_LE = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final int ZSTD_MAGIC = 0xFD2FB528;
    /** log2 of the largest zstd window a trace may use (128 MiB, {@code zstd --long=27}). */
    private static final int ZSTD_WINDOW_LOG_MAX = 27;

    private final InputStream in;
    private final boolean compressed;
    private final byte[] buffer = new byte[1 << 16];
    /** XXH64 over the stream, as it arrives: a trace is hundreds of megabytes read in chunks. */
    private final StreamingXXHash64 checksum = XXHashFactory.fastestInstance().newStreamingHash64(0);
    private int position;
    private int limit;
    /** Stream offset of {@code buffer[0]}. */
    private long bufferStart;
    private boolean checksumming = true;

    private TraceInput(InputStream in, boolean compressed) {
        this.in = in;
        this.compressed = compressed;
    }

    /** Wraps {@code source}, decompressing it when it starts with the zstd magic. */
    static TraceInput open(InputStream source) throws IOException {
        BufferedInputStream buffered = new BufferedInputStream(source, 1 << 16);
        buffered.mark(4);
        byte[] head = buffered.readNBytes(4);
        buffered.reset();
        if (head.length == 4 && (int) INT_LE.get(head, 0) == ZSTD_MAGIC) {
            try {
                ZstdInputStream zstd = new ZstdInputStream(buffered);
                zstd.setLongMax(ZSTD_WINDOW_LOG_MAX);
                return new TraceInput(zstd, true);
            } catch (ZstdIOException | ZstdException e) {
                throw new TraceFormatException(0, "zstd stream does not decompress: " + e.getMessage(), e);
            }
        }
        return new TraceInput(buffered, false);
    }

    boolean compressed() {
        return compressed;
    }

    /** Offset in the decompressed stream of the next byte to be read. */
    long offset() {
        return bufferStart + position;
    }

    /** Stops feeding the checksum: the trailer's checksum field is not part of what it covers. */
    long finishChecksum() {
        checksumming = false;
        return checksum.getValue();
    }

    int u32(String what) throws IOException {
        require(4, what);
        int value = (int) INT_LE.get(buffer, position);
        consume(4);
        return value;
    }

    long u64(String what) throws IOException {
        require(8, what);
        long value = (long) LONG_LE.get(buffer, position);
        consume(8);
        return value;
    }

    /** Reads {@code length} bytes into {@code dst}. */
    void bytes(byte[] dst, int dstOffset, int length, String what) throws IOException {
        while (length > 0) {
            require(1, what);
            int n = Math.min(length, limit - position);
            System.arraycopy(buffer, position, dst, dstOffset, n);
            consume(n);
            dstOffset += n;
            length -= n;
        }
    }

    /** Reads {@code length} bytes into {@code dst} at {@code dstOffset}. */
    void bytes(MemorySegment dst, long dstOffset, int length, String what) throws IOException {
        while (length > 0) {
            require(1, what);
            int n = Math.min(length, limit - position);
            MemorySegment.copy(buffer, position, dst, ValueLayout.JAVA_BYTE, dstOffset, n);
            consume(n);
            dstOffset += n;
            length -= n;
        }
    }

    /** Fails unless the stream has ended. */
    void expectEnd() throws IOException {
        if (position < limit || fill() > 0) {
            throw new TraceFormatException(offset(), String.format(
                    "expected end of stream after the trailer, found byte 0x%02x", buffer[position] & 0xFF));
        }
    }

    /** Makes at least {@code n} bytes available in the buffer, or fails saying the stream was truncated. */
    private void require(int n, String what) throws IOException {
        while (limit - position < n) {
            if (fill() < 0) {
                throw new TraceFormatException(offset(), "stream ends before the trailer: expected " + n
                        + " more byte(s) of " + what + ", found " + (limit - position));
            }
        }
    }

    /** Reads more bytes after those still buffered; returns how many, or -1 at end of stream. */
    private int fill() throws IOException {
        if (position > 0) {
            System.arraycopy(buffer, position, buffer, 0, limit - position);
            bufferStart += position;
            limit -= position;
            position = 0;
        }
        int n;
        try {
            n = in.read(buffer, limit, buffer.length - limit);
        } catch (ZstdIOException | ZstdException e) {
            throw new TraceFormatException(bufferStart + limit, "zstd stream does not decompress ("
                    + e.getMessage() + "): expected more trace bytes", e);
        }
        if (n > 0) {
            limit += n;
        }
        return n;
    }

    private void consume(int n) {
        if (checksumming) {
            checksum.update(buffer, position, n);
        }
        position += n;
    }

    @Override
    public void close() throws IOException {
        try (checksum) {
            in.close();
        }
    }
}
