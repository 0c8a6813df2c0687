package dev.ferry.compression;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import net.jpountz.lz4.LZ4Compressor;
import net.jpountz.lz4.LZ4Exception;
import net.jpountz.lz4.LZ4Factory;
import net.jpountz.lz4.LZ4JNIFastResetCompressor;
import net.jpountz.lz4.LZ4SafeDecompressor;

/**
 * LZ4 blocks (no frame, no length header) into caller buffers. The native fast-reset compressor
 * keeps its hash table between calls instead of clearing 16 KiB per 4 KiB page. One instance
 * per thread; segments must be native and at most 2 GiB.
 */
public final class Lz4Codec implements AutoCloseable {
    private final LZ4Compressor compressor;
    private final LZ4SafeDecompressor decompressor;
    private final SegmentView srcView = new SegmentView();
    private final SegmentView dstView = new SegmentView();

    public Lz4Codec() {
        LZ4Factory factory = LZ4Factory.fastestInstance();
        LZ4Compressor fast;
        try {
            fast = LZ4Factory.nativeInstance().fastResetCompressor();
        } catch (RuntimeException | LinkageError nativeUnavailable) {
            fast = factory.fastCompressor();
        }
        this.compressor = fast;
        this.decompressor = factory.safeDecompressor();
    }

    /** The most bytes a block of {@code length} input bytes can take ({@code LZ4_COMPRESSBOUND}). */
    public static int maxCompressedLength(int length) {
        return length + length / 255 + 16;
    }

    /**
     * Compresses {@code src[srcOff..srcOff + length)} into {@code dst[dstOff..)}, which must have
     * room for {@link #maxCompressedLength}{@code (length)} bytes.
     *
     * @return the block's length
     */
    public int compress(MemorySegment src, long srcOff, int length, MemorySegment dst, long dstOff) {
        return compress(srcView.of(src), Math.toIntExact(srcOff), length, dstView.of(dst), Math.toIntExact(dstOff));
    }

    int compress(ByteBuffer src, int srcOff, int length, ByteBuffer dst, int dstOff) {
        return compressor.compress(src, srcOff, length, dst, dstOff, maxCompressedLength(length));
    }

    /**
     * Decompresses the block {@code src[srcOff..srcOff + length)} into
     * {@code dst[dstOff..dstOff + expected)}. On failure those destination bytes are undefined.
     *
     * @throws MalformedPayloadException if the block is malformed or does not decompress to
     *     exactly {@code expected} bytes
     */
    public void decompress(MemorySegment src, long srcOff, int length, MemorySegment dst, long dstOff, int expected)
            throws MalformedPayloadException {
        decompress(srcView.of(src), Math.toIntExact(srcOff), length, dstView.of(dst), Math.toIntExact(dstOff),
                expected);
    }

    void decompress(ByteBuffer src, int srcOff, int length, ByteBuffer dst, int dstOff, int expected)
            throws MalformedPayloadException {
        int n;
        try {
            n = decompressor.decompress(src, srcOff, length, dst, dstOff, expected);
        } catch (LZ4Exception e) {
            throw new MalformedPayloadException("lz4 block of " + length + " bytes does not decompress to "
                    + expected + " bytes: " + e.getMessage(), e);
        }
        if (n != expected) {
            throw new MalformedPayloadException("lz4 block of " + length + " bytes decompresses to " + n
                    + " bytes, " + expected + " expected");
        }
    }

    @Override
    public void close() {
        if (compressor instanceof LZ4JNIFastResetCompressor stateful) {
            stateful.close();
        }
    }
}
