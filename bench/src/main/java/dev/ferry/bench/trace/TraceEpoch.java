package dev.ferry.bench.trace;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * One epoch of a trace: the pages that changed up to {@link #timeMicros()}, with their contents
 * at that instant. The reader refills the same instance for every epoch. Its buffers grow as pages
 * arrive, never from the epoch's declared count: a trace that claims 2^28 pages and then ends costs
 * only what it actually held.
 */
public final class TraceEpoch {
    private static final int PAGE_SIZE = 4096;
    /** Pages the buffers first hold; they then double. */
    private static final int INITIAL_CAPACITY = 16;

    private int ordinal = -1;
    private long timeMicros;
    private long previousTimeMicros;
    private int count;
    private long[] indices = new long[0];
    private MemorySegment data = MemorySegment.NULL;

    /** The epoch's position in the trace, from 0. */
    public int ordinal() {
        return ordinal;
    }

    /** The end of this epoch, in microseconds since the image was taken. */
    public long timeMicros() {
        return timeMicros;
    }

    /** The end of the previous epoch (0 for the first). */
    public long previousTimeMicros() {
        return previousTimeMicros;
    }

    /** Pages changed in this epoch. */
    public int count() {
        return count;
    }

    /** The page index of the {@code i}th changed page (indices increase with {@code i}). */
    public long pageIndex(int i) {
        return indices[i];
    }

    /** The contents of all changed pages: the {@code i}th at byte {@code i * 4096}. */
    public MemorySegment data() {
        return data;
    }

    /** The byte offset in {@link #data()} of the {@code i}th changed page. */
    public static long dataOffset(int i) {
        return (long) i * PAGE_SIZE;
    }

    /** How many pages the buffers hold now: at most twice the largest epoch read so far (or 16). */
    int capacity() {
        return indices.length;
    }

    void begin(int ordinal, long previousTimeMicros, long timeMicros) {
        this.ordinal = ordinal;
        this.previousTimeMicros = previousTimeMicros;
        this.timeMicros = timeMicros;
        this.count = 0;
    }

    /**
     * Records that the {@code i}th page (the next one: {@code i} pages were added since
     * {@link #begin}) is page {@code index}, and returns the buffer to read its contents into at
     * {@link #dataOffset(int) dataOffset(i)}. Grows the buffers, doubling them up to
     * {@code declared}, only when this page does not fit.
     */
    MemorySegment add(int i, long index, int declared) {
        if (i == indices.length) {
            int capacity = (int) Math.min(declared, Math.max(INITIAL_CAPACITY, 2L * indices.length));
            // Auto arena: the buffer may be filled on one thread and read on another (replay).
            MemorySegment grown = Arena.ofAuto().allocate((long) capacity * PAGE_SIZE, PAGE_SIZE);
            if (i > 0) {
                MemorySegment.copy(data, 0, grown, 0, dataOffset(i));
            }
            data = grown;
            indices = Arrays.copyOf(indices, capacity);
        }
        indices[i] = index;
        return data;
    }

    /** Ends the epoch once all of its {@code count} pages were added. */
    void complete(int count) {
        this.count = count;
    }
}
