package dev.ferry.compression;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.protocol.PageEncoding;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Records {@code PageDecoderFuzzTest}'s XBZRLE seeds from a real guest: (old, new) pairs of pages
 * of the guest-redis trace as its epochs changed them, encoded by Ferry's own stages as XBZRLE,
 * xbzrle+lz4 and xbzrle+zstd (a small migration's stop-and-copy round rarely sends a delta, so
 * the recorded streams hold few). Runs only when asked ({@code scripts/fuzz.sh --record-seeds},
 * i.e. {@code -Dferry.seeds=DIR} naming the repository).
 */
@EnabledIfSystemProperty(named = "ferry.seeds", matches = ".+")
class SeedPayloads {
    private static final int PAGE = 4096;
    private static final int SEEDS = 4;

    @Test
    void record() throws IOException {
        Path repo = Path.of(System.getProperty("ferry.seeds"));
        Path inputs = repo.resolve("compression/src/test/resources/dev/ferry/compression/PageDecoderFuzzTestInputs");
        Path decode = Files.createDirectories(inputs.resolve("decode"));
        Path xbzrle = Files.createDirectories(inputs.resolve("xbzrle"));
        List<byte[][]> pairs = TracePages.epochPairs(97, 20);
        int written = 0;
        try (Arena arena = Arena.ofConfined(); Lz4Codec lz4 = new Lz4Codec(); ZstdCodec zstd = new ZstdCodec(3)) {
            MemorySegment old = arena.allocate(PAGE);
            MemorySegment now = arena.allocate(PAGE);
            MemorySegment delta = arena.allocate(PAGE);
            MemorySegment packed = arena.allocate(2 * PAGE);
            for (byte[][] pair : pairs) {
                old.copyFrom(MemorySegment.ofArray(pair[0]));
                now.copyFrom(MemorySegment.ofArray(pair[1]));
                int n = Xbzrle.encode(old, 0, now, 0, delta, 0, PAGE / 2);
                if (n <= 0) {
                    continue; // unchanged, or a delta larger than the encoder would send
                }
                byte[] d = delta.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
                byte[] before = trimmed(pair[0]);
                String name = "redis-" + written;
                Files.write(xbzrle.resolve(name), concat(new byte[] {(byte) (n >>> 8), (byte) n}, d, before));
                Files.write(decode.resolve(name + "-xbzrle"), concat(header(PageEncoding.XBZRLE, n), d, before));
                int l = lz4.compress(delta, 0, n, packed, 2);
                packed.set(ValueLayout.JAVA_BYTE, 0, (byte) n);
                packed.set(ValueLayout.JAVA_BYTE, 1, (byte) (n >>> 8));
                byte[] withLz4 = packed.asSlice(0, 2 + l).toArray(ValueLayout.JAVA_BYTE);
                Files.write(decode.resolve(name + "-xbzrle-lz4"), concat(header(PageEncoding.XBZRLE_LZ4, withLz4.length), withLz4, before));
                int z = zstd.compress(delta, 0, n, packed, 2);
                byte[] withZstd = packed.asSlice(0, 2 + z).toArray(ValueLayout.JAVA_BYTE);
                Files.write(decode.resolve(name + "-xbzrle-zstd"), concat(header(PageEncoding.XBZRLE_ZSTD, withZstd.length), withZstd, before));
                if (++written == SEEDS) {
                    break;
                }
            }
        }
        assertTrue(written > 0, "no page of the trace changed by a small delta");
    }

    /** {@code PageDecoderFuzzTest}'s header: encoding, page 1 of native payload, the payload's length. */
    private static byte[] header(int encoding, int length) {
        return new byte[] {(byte) encoding, 1, (byte) (length >>> 8), (byte) length};
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    private static byte[] trimmed(byte[] page) {
        int end = page.length;
        while (end > 0 && page[end - 1] == 0) {
            end--;
        }
        return java.util.Arrays.copyOf(page, end);
    }
}
