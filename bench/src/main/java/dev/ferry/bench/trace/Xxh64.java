package dev.ferry.bench.trace;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Streaming XXH64: the trace checksum covers hundreds of megabytes that arrive in chunks, and the
 * hashing library only offers one-shot hashes.
 */
final class Xxh64 {
    private static final VarHandle LONG_LE = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INT_LE = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final long P1 = 0x9E3779B185EBCA87L;
    private static final long P2 = 0xC2B2AE3D27D4EB4FL;
    private static final long P3 = 0x165667B19E3779F9L;
    private static final long P4 = 0x85EBCA77C2B2AE63L;
    private static final long P5 = 0x27D4EB2F165667C5L;

    private final long seed;
    private final byte[] pending = new byte[32];
    private int pendingLength;
    private long total;
    private long v1;
    private long v2;
    private long v3;
    private long v4;

    Xxh64(long seed) {
        this.seed = seed;
        reset();
    }

    void reset() {
        v1 = seed + P1 + P2;
        v2 = seed + P2;
        v3 = seed;
        v4 = seed - P1;
        total = 0;
        pendingLength = 0;
    }

    void update(byte[] bytes, int offset, int length) {
        total += length;
        if (pendingLength + length < 32) {
            System.arraycopy(bytes, offset, pending, pendingLength, length);
            pendingLength += length;
            return;
        }
        int end = offset + length;
        if (pendingLength > 0) {
            int take = 32 - pendingLength;
            System.arraycopy(bytes, offset, pending, pendingLength, take);
            stripe(pending, 0);
            offset += take;
            pendingLength = 0;
        }
        for (; offset + 32 <= end; offset += 32) {
            stripe(bytes, offset);
        }
        pendingLength = end - offset;
        System.arraycopy(bytes, offset, pending, 0, pendingLength);
    }

    long digest() {
        long h;
        if (total >= 32) {
            h = Long.rotateLeft(v1, 1) + Long.rotateLeft(v2, 7) + Long.rotateLeft(v3, 12) + Long.rotateLeft(v4, 18);
            h = merge(h, v1);
            h = merge(h, v2);
            h = merge(h, v3);
            h = merge(h, v4);
        } else {
            h = seed + P5;
        }
        h += total;
        int i = 0;
        for (; i + 8 <= pendingLength; i += 8) {
            h ^= round(0, (long) LONG_LE.get(pending, i));
            h = Long.rotateLeft(h, 27) * P1 + P4;
        }
        if (i + 4 <= pendingLength) {
            h ^= ((int) INT_LE.get(pending, i) & 0xFFFFFFFFL) * P1;
            h = Long.rotateLeft(h, 23) * P2 + P3;
            i += 4;
        }
        for (; i < pendingLength; i++) {
            h ^= (pending[i] & 0xFFL) * P5;
            h = Long.rotateLeft(h, 11) * P1;
        }
        h ^= h >>> 33;
        h *= P2;
        h ^= h >>> 29;
        h *= P3;
        return h ^ (h >>> 32);
    }

    private void stripe(byte[] bytes, int offset) {
        v1 = round(v1, (long) LONG_LE.get(bytes, offset));
        v2 = round(v2, (long) LONG_LE.get(bytes, offset + 8));
        v3 = round(v3, (long) LONG_LE.get(bytes, offset + 16));
        v4 = round(v4, (long) LONG_LE.get(bytes, offset + 24));
    }

    private static long round(long acc, long input) {
        return Long.rotateLeft(acc + input * P2, 31) * P1;
    }

    private static long merge(long acc, long value) {
        return (acc ^ round(0, value)) * P1 + P4;
    }
}
