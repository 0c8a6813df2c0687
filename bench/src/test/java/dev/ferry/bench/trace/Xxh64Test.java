package dev.ferry.bench.trace;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import net.openhft.hashing.LongHashFunction;
import org.junit.jupiter.api.Test;

class Xxh64Test {
    @Test
    void matchesOneShotXxh64OnRandomInputsFedInRandomChunks() {
        SplittableRandom random = new SplittableRandom(7);
        for (int trial = 0; trial < 500; trial++) {
            byte[] data = new byte[random.nextInt(trial < 100 ? 80 : 20_000)];
            random.nextBytes(data);
            Xxh64 hash = new Xxh64(0);
            for (int offset = 0; offset < data.length; ) {
                int n = Math.min(data.length - offset, random.nextInt(1, 100));
                hash.update(data, offset, n);
                offset += n;
            }
            assertEquals(LongHashFunction.xx().hashBytes(data), hash.digest(), "length " + data.length);
        }
    }

    @Test
    void knownVectorOfEmptyInput() {
        assertEquals(0xEF46DB3751D8E999L, new Xxh64(0).digest());
    }
}
