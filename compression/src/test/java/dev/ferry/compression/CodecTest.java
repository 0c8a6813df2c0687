package dev.ferry.compression;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class CodecTest {
    private final Arena arena = Arena.ofShared();
    private final Lz4Codec lz4 = new Lz4Codec();
    private final ZstdCodec zstd = new ZstdCodec(3);
    private final MemorySegment src = arena.allocate(Pages.PAGE);
    private final MemorySegment packed = arena.allocate(ZstdCodec.maxCompressedLength(Pages.PAGE) + 64);
    private final MemorySegment out = arena.allocate(Pages.PAGE);

    @AfterEach
    void close() {
        lz4.close();
        zstd.close();
        arena.close();
    }

    interface Codec {
        int compress(int length);

        void decompress(int length, int expected) throws MalformedPayloadException;
    }

    private Codec lz4() {
        return new Codec() {
            public int compress(int length) {
                return lz4.compress(src, 0, length, packed, 0);
            }

            public void decompress(int length, int expected) throws MalformedPayloadException {
                lz4.decompress(packed, 0, length, out, 0, expected);
            }
        };
    }

    private Codec zstd() {
        return new Codec() {
            public int compress(int length) {
                return zstd.compress(src, 0, length, packed, 0);
            }

            public void decompress(int length, int expected) throws MalformedPayloadException {
                zstd.decompress(packed, 0, length, out, 0, expected);
            }
        };
    }

    @Test
    void lz4RoundTripsPagesAndDeltas() throws MalformedPayloadException {
        roundTrips(lz4());
    }

    @Test
    void zstdRoundTripsPagesAndDeltas() throws MalformedPayloadException {
        roundTrips(zstd());
    }

    @Test
    void lz4RejectsTruncatedCorruptedAndMissizedBlocks() throws MalformedPayloadException {
        rejects(lz4());
    }

    @Test
    void zstdRejectsTruncatedCorruptedAndMissizedFrames() throws MalformedPayloadException {
        rejects(zstd());
    }

    private void roundTrips(Codec codec) throws MalformedPayloadException {
        Random rnd = new Random(17);
        for (int iter = 0; iter < 2000; iter++) {
            byte[] page = Pages.anyPage(rnd);
            int length = rnd.nextInt(3) == 0 ? 1 + rnd.nextInt(Pages.PAGE) : Pages.PAGE;
            MemorySegment.copy(page, 0, src, ValueLayout.JAVA_BYTE, 0, Pages.PAGE);
            int n = codec.compress(length);
            codec.decompress(n, length);
            assertArrayEquals(java.util.Arrays.copyOf(page, length), Pages.bytes(out, 0, length), "iteration " + iter);
        }
    }

    private void rejects(Codec codec) throws MalformedPayloadException {
        Random rnd = new Random(19);
        for (int iter = 0; iter < 300; iter++) {
            byte[] page = Pages.page(rnd.nextBoolean() ? Pages.Kind.TEXT : Pages.Kind.SPARSE, rnd);
            MemorySegment.copy(page, 0, src, ValueLayout.JAVA_BYTE, 0, Pages.PAGE);
            int whole = codec.compress(Pages.PAGE);
            int cut = rnd.nextInt(whole);
            assertThrows(MalformedPayloadException.class, () -> codec.decompress(cut, Pages.PAGE), "cut at " + cut);
            assertThrows(MalformedPayloadException.class, () -> codec.decompress(whole, Pages.PAGE - 1), "too small");
            int shorter = codec.compress(Pages.PAGE - 1);
            assertThrows(MalformedPayloadException.class, () -> codec.decompress(shorter, Pages.PAGE), "too big");
            int n = codec.compress(Pages.PAGE);
            byte[] good = Pages.bytes(packed, 0, n);
            for (int flips = 0; flips < 8; flips++) {
                int at = rnd.nextInt(n);
                packed.set(ValueLayout.JAVA_BYTE, at, (byte) (good[at] ^ (1 + rnd.nextInt(255))));
                try {
                    codec.decompress(n, Pages.PAGE);
                } catch (MalformedPayloadException expected) {
                    assertTrue(expected.getMessage().contains("bytes"), expected.getMessage());
                }
                MemorySegment.copy(good, 0, packed, ValueLayout.JAVA_BYTE, 0, n);
            }
        }
    }
}
