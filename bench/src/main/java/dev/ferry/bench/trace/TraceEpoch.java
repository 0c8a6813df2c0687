package dev.ferry.bench.trace;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * One epoch of a trace: the pages that changed up to {@link #timeMicros()}, with their contents
 * at that instant. The reader refills the same instance for every epoch, growing its buffers only
 * when an epoch is larger than any before.
 */
public final class TraceEpoch {
    private static final int PAGE_SIZE = 4096;

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

    void begin(int ordinal, long previousTimeMicros, long timeMicros, int count) {
        this.ordinal = ordinal;
        this.previousTimeMicros = previousTimeMicros;
        this.timeMicros = timeMicros;
        this.count = count;
        if (indices.length < count) {
            int capacity = (int) Math.min(Integer.MAX_VALUE - 8, Math.max(count, (long) indices.length * 2));
            indices = new long[capacity];
            // Auto arena: the buffer may be filled on one thread and read on another (replay).
            data = Arena.ofAuto().allocate((long) capacity * PAGE_SIZE, PAGE_SIZE);
        }
    }

    void setIndex(int i, long index) {
        indices[i] = index;
    }
}
