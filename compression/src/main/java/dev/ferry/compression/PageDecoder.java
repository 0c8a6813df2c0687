package dev.ferry.compression;

import dev.ferry.protocol.PageEncoding;
import dev.ferry.core.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The destination's page stages: applies one payload (see {@link PageEncoding}) to guest memory.
 *
 * <p>A payload is checked completely before the page is written: compressed payloads are
 * decompressed into a scratch page or delta first, deltas are validated before they patch. So a
 * payload that throws {@link MalformedPayloadException} leaves the page as it was.
 *
 * <p>One decoder per receiving thread. Nothing is allocated per page, provided the caller takes
 * payloads from at most four segments it reuses.
 */
public final class PageDecoder implements AutoCloseable {
    private static final int PAGE = GuestMemory.PAGE_SIZE;
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final MemorySegment ZEROS = Arena.global().allocate(PAGE, 64);

    private final Lz4Codec lz4 = new Lz4Codec();
    private final ZstdCodec zstd = new ZstdCodec(1);
    private final Arena arena = Arena.ofShared();
    private final MemorySegment page = arena.allocate(PAGE, 64);
    private final ByteBuffer pageBuffer = page.asByteBuffer();
    private final MemorySegment delta = arena.allocate(PAGE, 64);
    private final ByteBuffer deltaBuffer = delta.asByteBuffer();
    private final MemorySegment input = arena.allocate(PageEncoder.MAX_PAYLOAD, 64);
    private final ByteBuffer inputBuffer = input.asByteBuffer();
    private final SegmentView payloadView = new SegmentView();

    public PageDecoder() {
    }

    /**
     * Applies a payload of {@code encoding} at {@code payload[off..off + len)} to page
     * {@code index} of {@code ram}, a guest's memory (its {@link GuestMemory#segment()}, or in a
     * page loop its {@link GuestMemory#unchecked()} view). ZERO zero-fills the page; XBZRLE codes patch the page the
     * destination holds.
     *
     * @throws MalformedPayloadException if the payload does not decode to exactly one page (the
     *     page is then unchanged), the code is unknown, or the index is outside {@code memory}
     */
    public void decode(int encoding, long index, MemorySegment payload, long off, int len, MemorySegment ram)
            throws MalformedPayloadException {
        long pageCount = ram.byteSize() >>> GuestMemory.PAGE_SHIFT;
        if (index < 0 || index >= pageCount) {
            throw new MalformedPayloadException("page index " + index + " outside guest memory of "
                    + pageCount + " pages");
        }
        if (len < 0 || len > PageEncoder.MAX_PAYLOAD) {
            throw new MalformedPayloadException(PageEncoding.name(encoding) + " payload of " + len
                    + " bytes, at most " + PageEncoder.MAX_PAYLOAD + " allowed");
        }
        long pageOff = index << GuestMemory.PAGE_SHIFT;
        switch (encoding) {
            case PageEncoding.RAW -> {
                if (len != PAGE) {
                    throw new MalformedPayloadException("raw payload of " + len + " bytes, " + PAGE + " expected");
                }
                MemorySegment.copy(payload, off, ram, pageOff, PAGE);
            }
            case PageEncoding.ZERO -> {
                if (len != 0) {
                    throw new MalformedPayloadException("zero payload of " + len + " bytes, 0 expected");
                }
                MemorySegment.copy(ZEROS, 0, ram, pageOff, PAGE);
            }
            case PageEncoding.XBZRLE -> Xbzrle.decode(payload, off, len, ram, pageOff);
            case PageEncoding.LZ4, PageEncoding.ZSTD -> {
                if (len == 0) {
                    throw new MalformedPayloadException(PageEncoding.name(encoding) + " payload is empty");
                }
                ByteBuffer src = view(payload, off, len);
                int srcOff = src == inputBuffer ? 0 : (int) off;
                if (encoding == PageEncoding.LZ4) {
                    lz4.decompress(src, srcOff, len, pageBuffer, 0, PAGE);
                } else {
                    zstd.decompress(src, srcOff, len, pageBuffer, 0, PAGE);
                }
                MemorySegment.copy(page, 0, ram, pageOff, PAGE);
            }
            case PageEncoding.XBZRLE_LZ4, PageEncoding.XBZRLE_ZSTD -> {
                if (len < 3) {
                    throw new MalformedPayloadException(PageEncoding.name(encoding) + " payload of " + len
                            + " bytes is truncated: a 2-byte delta length and a compressed block expected");
                }
                int deltaLength = Short.toUnsignedInt(payload.get(U16, off));
                if (deltaLength == 0 || deltaLength > PAGE) {
                    throw new MalformedPayloadException(PageEncoding.name(encoding) + " delta length " + deltaLength
                            + " at byte 0 outside 1.." + PAGE);
                }
                ByteBuffer src = view(payload, off, len);
                int srcOff = (src == inputBuffer ? 0 : (int) off) + 2;
                if (encoding == PageEncoding.XBZRLE_LZ4) {
                    lz4.decompress(src, srcOff, len - 2, deltaBuffer, 0, deltaLength);
                } else {
                    zstd.decompress(src, srcOff, len - 2, deltaBuffer, 0, deltaLength);
                }
                Xbzrle.decode(delta, 0, deltaLength, ram, pageOff);
            }
            default -> throw new MalformedPayloadException("unknown page encoding " + encoding);
        }
    }

    /**
     * A buffer the decompressors can read the payload from: a view of the payload segment itself
     * when it is native and small enough to view, else a copy in {@link #input} (read at 0).
     */
    private ByteBuffer view(MemorySegment payload, long off, int len) {
        if (payload.isNative() && payload.byteSize() <= Integer.MAX_VALUE) {
            return payloadView.of(payload);
        }
        MemorySegment.copy(payload, off, input, 0, len);
        return inputBuffer;
    }

    @Override
    public void close() {
        lz4.close();
        zstd.close();
        arena.close();
    }
}
