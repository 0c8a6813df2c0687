package dev.ferry.compression;

import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;

/**
 * zstd frames into caller buffers, through contexts reused across calls. Frames are magicless
 * (the page's encoding code already says it is zstd, so the 4 magic bytes are waste), carry the
 * content size, and no checksum or dictionary id. One instance per thread; segments must be
 * native and at most 2 GiB.
 */
public final class ZstdCodec implements AutoCloseable {
    private final ZstdCompressCtx cctx;
    private final ZstdDecompressCtx dctx;
    private final SegmentView srcView = new SegmentView();
    private final SegmentView dstView = new SegmentView();

    /** A codec compressing at {@code level} (as {@code MigrationParameters.zstdLevel()}). */
    public ZstdCodec(int level) {
        this.cctx = new ZstdCompressCtx().setLevel(level).setMagicless(true).setChecksum(false)
                .setContentSize(true).setDictID(false);
        this.dctx = new ZstdDecompressCtx().setMagicless(true);
    }

    /** The most bytes a frame of {@code length} input bytes can take ({@code ZSTD_COMPRESSBOUND}). */
    public static int maxCompressedLength(int length) {
        return length + (length >>> 8) + (length < (128 << 10) ? ((128 << 10) - length) >>> 11 : 0);
    }

    /**
     * Compresses {@code src[srcOff..srcOff + length)} into {@code dst[dstOff..)}, which must have
     * room for {@link #maxCompressedLength}{@code (length)} bytes.
     *
     * @return the frame's length
     */
    public int compress(MemorySegment src, long srcOff, int length, MemorySegment dst, long dstOff) {
        return compress(srcView.of(src), Math.toIntExact(srcOff), length, dstView.of(dst), Math.toIntExact(dstOff));
    }

    int compress(ByteBuffer src, int srcOff, int length, ByteBuffer dst, int dstOff) {
        return cctx.compressDirectByteBuffer(dst, dstOff, maxCompressedLength(length), src, srcOff, length);
    }

    /**
     * Decompresses the frame {@code src[srcOff..srcOff + length)} into
     * {@code dst[dstOff..dstOff + expected)}. On failure those destination bytes are undefined.
     *
     * @throws MalformedPayloadException if the frame is malformed or does not decompress to
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
            n = dctx.decompressDirectByteBuffer(dst, dstOff, expected, src, srcOff, length);
        } catch (ZstdException e) {
            throw new MalformedPayloadException("zstd frame of " + length + " bytes does not decompress to "
                    + expected + " bytes: " + e.getMessage(), e);
        }
        if (n != expected) {
            throw new MalformedPayloadException("zstd frame of " + length + " bytes decompresses to " + n
                    + " bytes, " + expected + " expected");
        }
    }

    @Override
    public void close() {
        cctx.close();
        dctx.close();
    }
}
