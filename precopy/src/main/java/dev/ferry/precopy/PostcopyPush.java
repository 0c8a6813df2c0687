package dev.ferry.precopy;

import dev.ferry.core.PageBitmap;
import dev.ferry.transport.Link;
import dev.ferry.transport.LinkException;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;

/**
 * The source's half of post-copy: pushes every page the destination lacks, a small batch at a
 * time, and between batches serves the destination's page requests first. After a request the
 * push continues from the page after it, since a guest that touched a page tends to touch its
 * neighbours next.
 */
final class PostcopyPush {
    /**
     * Pages per pushed frame: 32 KiB raw, so that a request waits behind little of ours (at
     * 100 MB/s a queued batch costs a request 0.3 ms).
     */
    static final int BATCH = 8;

    private Link link;
    private final PageStreamWriter writer;
    private final PageBitmap remaining;
    private long cursor;
    private long pagesRequested;
    private long pagesPushed;
    private long resumeNanos = -1;

    PostcopyPush(Link link, PageStreamWriter writer, PageBitmap remaining) {
        this.link = link;
        this.writer = writer;
        this.remaining = remaining;
    }

    /** Serves the destination over {@code replacement} from now on (a recovered link). */
    void relink(Link replacement) {
        this.link = replacement;
    }

    /** Pushes until no page is left. */
    void run() throws LinkException, ProtocolException {
        while (!remaining.isEmpty()) {
            serveRequests();
            long before = remaining.cardinality();
            cursor = writer.sendBatch(remaining, cursor, BATCH);
            pagesPushed += before - remaining.cardinality();
        }
    }

    /** Handles every frame the destination sent meanwhile; requests for pages already sent are in flight and ignored. */
    void serveRequests() throws LinkException, ProtocolException {
        ByteBuf frame;
        while ((frame = link.poll()) != null) {
            try {
                handle(frame);
            } finally {
                frame.release();
            }
        }
    }

    /** One frame from the destination during post-copy. */
    void handle(ByteBuf frame) throws LinkException, ProtocolException {
        if (!frame.isReadable()) {
            throw new ProtocolException("empty frame from the destination");
        }
        int type = frame.readUnsignedByte();
        switch (type) {
            case Wire.PAGE_REQUEST -> {
                long[] requested = new long[frame.readableBytes() / 8];
                int[] n = {0};
                Wire.readPageRequest(frame, remaining.pageCount(), page -> requested[n[0]++] = page);
                for (int i = 0; i < n[0]; i++) {
                    long page = requested[i];
                    if (remaining.get(page)) {
                        writer.sendRequested(remaining, page);
                        pagesRequested++;
                        cursor = page + 1 < remaining.pageCount() ? page + 1 : 0;
                    }
                }
            }
            case Wire.POSTCOPY_RUNNING -> {
                resumeNanos = Wire.readPostcopyRunning(frame);
            }
            case Wire.ERROR -> throw new ProtocolException("destination failed: " + Wire.readError(frame));
            default -> throw new ProtocolException("unexpected " + Wire.typeName(type) + " from the destination during post-copy");
        }
    }

    long pagesRequested() {
        return pagesRequested;
    }

    long pagesPushed() {
        return pagesPushed;
    }

    /** When the destination resumed the guest, or -1 if it has not said yet. */
    long resumeNanos() {
        return resumeNanos;
    }
}
