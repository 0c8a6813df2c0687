package dev.ferry.bench.trace;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.lang.management.ManagementFactory;

/**
 * Coverage-guided fuzzing of the trace reader: any bytes, raw or zstd (the reader tells them apart
 * by the first four bytes), read front to back as the trace workload reads them. Invariants:
 * nothing but {@link TraceFormatException} is thrown; every page handed out lies in the guest, in
 * strictly increasing order within the image and each epoch; epoch times strictly increase; and
 * the heap one input costs is bounded by what it decompresses to, never by what it declares (a
 * declared count allocates nothing).
 *
 * <p>Regression inputs, real traces cut down to a few pages by {@link TraceSeeds} and every input
 * that ever failed, are in {@code src/test/resources/dev/ferry/bench/trace/TraceReaderFuzzTestInputs/read/}.
 */
class TraceReaderFuzzTest {
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    @FuzzTest(maxDuration = "10m")
    void read(byte[] input) {
        // the first run loads (and instruments) classes; the second, on the same bytes, is what one input costs
        readOnce(input);
        long stream = streamBytes(input);
        long before = THREADS.getCurrentThreadAllocatedBytes();
        readOnce(input);
        long allocated = THREADS.getCurrentThreadAllocatedBytes() - before;
        // the reader's buffers (64 KiB in, 64 KiB zstd, one page) and, grown by doubling, the pages that arrived
        long bound = (1L << 20) + 3L * stream;
        assertTrue(allocated < bound, allocated + " bytes of heap for " + input.length + " bytes of input ("
                + stream + " decompressed)");
    }

    /** The bytes of the stream the reader sees: the input, or as much as its zstd frames decompress to. */
    private static long streamBytes(byte[] input) {
        if (input.length < 4 || (input[0] & 0xFF) != 0x28 || (input[1] & 0xFF) != 0xB5 || (input[2] & 0xFF) != 0x2F
                || (input[3] & 0xFF) != 0xFD) {
            return input.length;
        }
        long n = 0;
        try (com.github.luben.zstd.ZstdInputStream in = new com.github.luben.zstd.ZstdInputStream(new ByteArrayInputStream(input))) {
            in.setLongMax(27);
            byte[] buffer = new byte[1 << 16];
            int r;
            while ((r = in.read(buffer)) > 0) {
                n += r;
            }
        } catch (IOException | RuntimeException e) {
            // what decompressed before the error is what the reader could see
        }
        return n;
    }

    /** Reads the whole trace as the trace workload does. */
    private static void readOnce(byte[] input) {
        long[] pages = {0};
        try (TraceReader reader = TraceReader.open(new ByteArrayInputStream(input))) {
            long pageCount = reader.pageCount();
            assertTrue(pageCount >= 1 && pageCount <= TraceReader.MAX_PAGE_COUNT, "page count " + pageCount);
            long[] previous = {-1};
            long listed = reader.readImage((index, data) -> {
                assertTrue(index > previous[0] && index < pageCount, "image page " + index + " after " + previous[0]);
                assertEquals(TraceReader.PAGE_SIZE, data.byteSize());
                previous[0] = index;
                pages[0]++;
            });
            assertEquals(pages[0], listed, "the image's count is the pages it handed out");
            long lastTime = 0;
            int epochs = 0;
            TraceEpoch epoch;
            while ((epoch = reader.nextEpoch()) != null) {
                assertEquals(epochs++, epoch.ordinal());
                assertTrue(Long.compareUnsigned(epoch.timeMicros(), lastTime) > 0, "epoch time " + epoch.timeMicros());
                assertEquals(lastTime, epoch.previousTimeMicros());
                lastTime = epoch.timeMicros();
                long before = -1;
                for (int i = 0; i < epoch.count(); i++) {
                    long index = epoch.pageIndex(i);
                    assertTrue(index > before && index < pageCount, "epoch page " + index + " after " + before);
                    before = index;
                }
                assertTrue(epoch.data().byteSize() >= (long) epoch.count() * TraceReader.PAGE_SIZE, "an epoch holds its pages");
                pages[0] += epoch.count();
            }
            assertEquals(reader.epochCount(), epochs, "epochs read");
            reader.finish();
        } catch (TraceFormatException refused) {
            assertTrue(refused.getMessage() != null && !refused.getMessage().isEmpty(), "a refusal says why");
        } catch (IOException e) {
            throw new AssertionError("not a TraceFormatException: " + e, e);
        }
    }
}
