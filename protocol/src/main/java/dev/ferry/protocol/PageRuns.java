package dev.ferry.protocol;

import io.netty.buffer.ByteBuf;
import java.util.function.IntFunction;

/**
 * The run format of DISCARD and MISSING bodies, written and read here only: runs of
 * {@code first u64, count u32} to the end of the frame, each naming {@code count} consecutive
 * pages from {@code first}.
 */
public final class PageRuns {
    /** Bytes of one run. */
    public static final int RUN = 12;
    /** Runs in one frame: a frame stays near {@link Wire#PAGES_FRAME_TARGET} bytes. */
    static final int RUNS_PER_FRAME = Wire.PAGES_FRAME_TARGET / RUN;
    private static final long MAX_COUNT = 0xFFFF_FFFFL;

    private PageRuns() {
    }

    /** A set of pages as the writer walks it: where the next run starts, and where it ends. */
    public interface Pages {
        /** The first page in the set at or after {@code from}, or -1. */
        long nextIn(long from);

        /** The first page not in the set at or after {@code from} ({@code pageCount} when none). */
        long nextOut(long from);
    }

    /** The pages of {@code bitmap}, as the writer walks them. */
    public static Pages of(dev.ferry.core.PageBitmap bitmap) {
        return new Pages() {
            @Override
            public long nextIn(long from) {
                return bitmap.nextSetBit(from);
            }

            @Override
            public long nextOut(long from) {
                long end = bitmap.nextClearBit(from);
                return end < 0 ? bitmap.pageCount() : end;
            }
        };
    }

    /** What a reader hands each run to. */
    @FunctionalInterface
    public interface RunConsumer {
        void run(long first, long count) throws ProtocolException;
    }

    /** Where the writer sends each frame it fills. */
    @FunctionalInterface
    public interface FrameSink<E extends Exception> {
        void send(ByteBuf frame) throws E;
    }

    /**
     * Writes the set {@code pages} as frames of {@code type} (DISCARD or MISSING), each in a
     * buffer from {@code buffers}, handed to {@code sink} as it fills; nothing when the set is empty.
     */
    public static <E extends Exception> void write(int type, Pages pages, IntFunction<ByteBuf> buffers,
            FrameSink<E> sink) throws E {
        long page = pages.nextIn(0);
        while (page >= 0) {
            ByteBuf out = buffers.apply(Wire.FRAME_HEADER + RUNS_PER_FRAME * RUN);
            int start = out.writerIndex();
            Wire.writeHeader(out, type, 0);
            for (int runs = 0; runs < RUNS_PER_FRAME && page >= 0; runs++) {
                long count = Math.min(pages.nextOut(page) - page, MAX_COUNT);
                out.writeLong(page);
                out.writeInt((int) count);
                page = pages.nextIn(page + count);
            }
            Wire.patchLength(out, start);
            sink.send(out);
        }
    }

    /**
     * Writes the set {@code pages} as the STALE frames answering round {@code round}'s barrier:
     * each holds the round and its runs, the last one says so; an empty set is one STALE without
     * runs.
     */
    public static <E extends Exception> void writeStale(int round, Pages pages, IntFunction<ByteBuf> buffers,
            FrameSink<E> sink) throws E {
        long page = pages.nextIn(0);
        do {
            ByteBuf out = buffers.apply(Wire.FRAME_HEADER + Wire.STALE_HEAD + RUNS_PER_FRAME * RUN);
            int start = out.writerIndex();
            Wire.writeHeader(out, Wire.STALE, 0);
            out.writeInt(round);
            int lastAt = out.writerIndex();
            out.writeByte(0);
            for (int runs = 0; runs < RUNS_PER_FRAME && page >= 0; runs++) {
                long count = Math.min(pages.nextOut(page) - page, MAX_COUNT);
                out.writeLong(page);
                out.writeInt((int) count);
                page = pages.nextIn(page + count);
            }
            if (page < 0) {
                out.setByte(lastAt, 1);
            }
            Wire.patchLength(out, start);
            sink.send(out);
        } while (page >= 0);
    }

    /**
     * Reads a DISCARD or MISSING body (after its type byte), checking every run lies in a guest of
     * {@code pageCount} pages (without overflow: a first near 2^63 is refused, not wrapped).
     */
    public static void read(String frame, ByteBuf body, long pageCount, RunConsumer consumer) throws ProtocolException {
        if (body.readableBytes() % RUN != 0) {
            throw new ProtocolException("malformed " + frame + " frame: " + body.readableBytes()
                    + " bytes is not a whole number of runs");
        }
        while (body.isReadable()) {
            long first = body.readLong();
            long count = body.readUnsignedInt();
            if (first < 0 || count == 0 || first >= pageCount || count > pageCount - first) {
                throw new ProtocolException(frame.toLowerCase(java.util.Locale.ROOT) + " run of " + count + " pages at "
                        + first + " does not fit " + pageCount + " pages");
            }
            consumer.run(first, count);
        }
    }
}
