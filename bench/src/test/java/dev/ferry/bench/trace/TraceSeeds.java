package dev.ferry.bench.trace;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Records {@link TraceReaderFuzzTest}'s seeds from the real traces: each cut down to its header
 * and meta, its first image pages and first epochs (a few pages each), with the trailer and
 * checksum written again, raw and zstd-compressed, so a seed is a valid trace of a few KiB that
 * says what the real one says. Runs only when asked ({@code scripts/fuzz.sh --record-seeds},
 * i.e. {@code -Dferry.seeds=DIR} naming the repository).
 */
@EnabledIfSystemProperty(named = "ferry.seeds", matches = ".+")
class TraceSeeds {
    private static final int IMAGE_PAGES = 1;
    private static final int EPOCHS = 2;
    private static final int PAGES_PER_EPOCH = 1;

    @Test
    void record() throws IOException {
        Path out = Files.createDirectories(Path.of(System.getProperty("ferry.seeds"))
                .resolve("bench/src/test/resources/dev/ferry/bench/trace/TraceReaderFuzzTestInputs/read"));
        for (String name : new String[] {"guest-idle", "guest-redis", "guest-sort"}) {
            TraceWriter cut;
            try (TraceReader reader = TraceReader.open(TraceSummaryTest.traces().resolve(name + ".mtrace.zst"))) {
                cut = new TraceWriter(reader.pageCount());
                cut.meta = reader.meta().json().getBytes(StandardCharsets.UTF_8);
                TraceWriter image = cut;
                int[] kept = {0};
                reader.readImage((index, page) -> {
                    if (kept[0]++ < IMAGE_PAGES) {
                        image.image(index, page.toArray(ValueLayout.JAVA_BYTE));
                    }
                });
                TraceEpoch epoch;
                for (int e = 0; e < EPOCHS && (epoch = reader.nextEpoch()) != null; e++) {
                    TraceWriter.Epoch copy = cut.epoch(epoch.timeMicros());
                    for (int i = 0; i < Math.min(PAGES_PER_EPOCH, epoch.count()); i++) {
                        copy.page(epoch.pageIndex(i), epoch.data().asSlice(TraceEpoch.dataOffset(i), TraceReader.PAGE_SIZE)
                                .toArray(ValueLayout.JAVA_BYTE));
                    }
                }
            }
            byte[] raw = cut.bytes();
            byte[] zstd = TraceWriter.zstd(raw);
            for (byte[] seed : new byte[][] {raw, zstd}) {
                try (TraceReader check = TraceReader.open(new ByteArrayInputStream(seed))) {
                    check.finish(); // a seed is a valid trace
                }
            }
            Files.write(out.resolve(name + ".mtrace"), raw);
            Files.write(out.resolve(name + ".mtrace.zst"), zstd);
            assertTrue(raw.length < 32 << 10, name + ": a seed of " + raw.length + " bytes");
        }
    }
}
