package dev.ferry.bench.trace;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import net.openhft.hashing.LongHashFunction;

/**
 * The figures {@code traces.md} gives for a trace, computed by reading (and so fully validating)
 * it: pages, zero and duplicate fractions of the image, epochs, duration and dirty rates.
 *
 * @param name             the meta's {@code name}, or the file name
 * @param pageCount        pages of guest RAM
 * @param nonZeroPages     pages listed in the image
 * @param duplicatePages   non-zero image pages whose content equals at least one other's
 * @param redundantPages   non-zero image pages beyond the first copy of each content
 * @param epochs           epochs
 * @param epochPages       pages over all epochs
 * @param durationMicros   the last epoch's end
 * @param dirtyRateP50     median over epochs of the dirty rate, MB/s (10^6 bytes)
 * @param dirtyRateMax     largest epoch dirty rate, MB/s
 * @param compressed       whether the file was zstd-compressed
 */
public record TraceSummary(String name, long pageCount, long nonZeroPages, long duplicatePages, long redundantPages,
                           int epochs, long epochPages, long durationMicros, double dirtyRateP50, double dirtyRateMax,
                           boolean compressed) {
    private static final LongHashFunction CONTENT = LongHashFunction.xx3();

    /** Reads and validates the trace at {@code path} and summarises it. */
    public static TraceSummary of(Path path) throws IOException {
        try (TraceReader reader = TraceReader.open(path)) {
            String name = reader.meta().name() != null ? reader.meta().name() : String.valueOf(path.getFileName());
            return of(reader, name);
        }
    }

    /** Summarises what remains of {@code reader}, which must not have read its image yet. */
    public static TraceSummary of(TraceReader reader, String name) throws IOException {
        ImageHashes image = new ImageHashes();
        long listed = reader.readImage(image);
        long[] sorted = Arrays.copyOf(image.hashes, image.count);
        Arrays.sort(sorted);
        long duplicates = 0;
        long distinct = 0;
        for (int i = 0; i < sorted.length; ) {
            int j = i + 1;
            while (j < sorted.length && sorted[j] == sorted[i]) {
                j++;
            }
            distinct++;
            if (j - i > 1) {
                duplicates += j - i;
            }
            i = j;
        }
        double[] rates = new double[Math.max(reader.epochCount(), 0)];
        int epochs = 0;
        long epochPages = 0;
        long end = 0;
        for (TraceEpoch epoch = reader.nextEpoch(); epoch != null; epoch = reader.nextEpoch()) {
            // bytes per microsecond is 10^6 bytes per second: MB/s
            rates[epochs++] = (double) epoch.count() * TraceReader.PAGE_SIZE
                    / (epoch.timeMicros() - epoch.previousTimeMicros());
            epochPages += epoch.count();
            end = epoch.timeMicros();
        }
        reader.finish();
        Arrays.sort(rates, 0, epochs);
        double p50 = epochs == 0 ? 0 : epochs % 2 == 1 ? rates[epochs / 2]
                : (rates[epochs / 2 - 1] + rates[epochs / 2]) / 2;
        double max = epochs == 0 ? 0 : rates[epochs - 1];
        return new TraceSummary(name, reader.pageCount(), listed, duplicates, sorted.length - distinct, epochs,
                epochPages, end, p50, max, reader.compressed());
    }

    /** 1 - non-zero pages / pages. */
    public double zeroFraction() {
        return 1 - (double) nonZeroPages / pageCount;
    }

    /** Share of non-zero image pages whose content equals at least one other non-zero image page. */
    public double duplicateFraction() {
        return nonZeroPages == 0 ? 0 : (double) duplicatePages / nonZeroPages;
    }

    /** Share of non-zero image pages beyond the first copy of each content. */
    public double redundantFraction() {
        return nonZeroPages == 0 ? 0 : (double) redundantPages / nonZeroPages;
    }

    /** A human summary, as {@code ferry trace-info} prints it. */
    public String format() {
        return String.format(Locale.ROOT, """
                trace            %s%s
                RAM              %d MiB (%d pages of 4 KiB)
                non-zero pages   %d (zero fraction %.4f)
                duplicates       %.4f of non-zero pages (redundant %.4f)
                epochs           %d over %.2f s, %d pages in total
                dirty rate       p50 %.2f MB/s, max %.2f MB/s
                """, name, compressed ? " (zstd)" : "", pageCount * TraceReader.PAGE_SIZE >> 20, pageCount,
                nonZeroPages, zeroFraction(), duplicateFraction(), redundantFraction(), epochs,
                durationMicros / 1e6, epochPages, dirtyRateP50, dirtyRateMax);
    }

    /** Collects the content hash of every non-zero image page. */
    private static final class ImageHashes implements PageSink {
        private static final MemorySegment ZERO_PAGE = MemorySegment.ofArray(new byte[TraceReader.PAGE_SIZE]);

        private long[] hashes = new long[1024];
        private int count;
        private MemorySegment viewed;
        private ByteBuffer view;

        @Override
        public void page(long index, MemorySegment page) {
            // A listed page of zeros is not a duplicate candidate: zero pages are excluded.
            if (MemorySegment.mismatch(page, 0, TraceReader.PAGE_SIZE, ZERO_PAGE, 0, TraceReader.PAGE_SIZE) < 0) {
                return;
            }
            if (page != viewed) { // the reader reuses one segment, so this view is made once
                viewed = page;
                view = page.asByteBuffer();
            }
            if (count == hashes.length) {
                hashes = Arrays.copyOf(hashes, count * 2);
            }
            hashes[count++] = CONTENT.hashBytes(view, 0, TraceReader.PAGE_SIZE);
        }
    }
}
