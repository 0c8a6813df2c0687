package dev.ferry.precopy;

import dev.ferry.compression.PageEncoder;
import dev.ferry.protocol.PageEncoding;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MemoryDigest;
import dev.ferry.core.MigrationListener;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageDigest;
import dev.ferry.transport.Frames;
import dev.ferry.transport.Link;
import dev.ferry.transport.LinkException;
import dev.ferry.protocol.PageRecords;
import dev.ferry.protocol.PageRuns;
import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Turns a set of pages into PAGES frames: each page is copied once out of guest memory (a stable
 * snapshot the guest can no longer change under us), hashed into the sent digest, encoded
 * straight into the frame buffer, and its record header written in front. Consecutive zero pages
 * merge into one run record. Nothing is allocated per page; one buffer per frame.
 */
final class PageStreamWriter implements AutoCloseable {
    private static final int FRAME_CAPACITY = Wire.PAGES_FRAME_TARGET + Wire.FRAME_HEADER
            + Wire.RECORD_HEADER + PageEncoder.MAX_PAYLOAD;
    private static final long PROGRESS_EVERY = 8 << 20;
    /** Pages between two calls of a round's chunk hook: 8 MiB of guest memory, so a probe of the slower way costs little. */
    static final int CHUNK_PAGES = 2048;

    private Link link;
    private final GuestMemory memory;
    private final PageEncoder encoder;
    private final MemoryDigest digest;
    private final MigrationListener listener;
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment scratch = arena.allocate(GuestMemory.PAGE_SIZE, 64);

    private ByteBuf frame;
    private MemorySegment frameSegment;
    private int frameStart;
    /** The open frame's writer index, kept here while pages go in through {@link #frameSegment}. */
    private int writeAt;
    /** Where the open zero run's record header starts, or -1. */
    private int zeroRunAt = -1;
    private long zeroRunNext;
    private int zeroRun;
    private long records;
    private long nextProgress = PROGRESS_EVERY;

    PageStreamWriter(Link link, GuestMemory memory, PageEncoder encoder, MemoryDigest digest, MigrationListener listener) {
        this.link = link;
        this.memory = memory;
        this.encoder = encoder;
        this.digest = digest;
        this.listener = listener;
    }

    /**
     * Sends the pages of {@code pages}, removing each as it goes, then a ROUND_END, and flushes.
     * {@code control} is asked between frames; {@link RoundControl#afterChunk} runs every
     * {@link #CHUNK_PAGES} pages. A round stopped early leaves its unsent pages in {@code pages}.
     *
     * @return pages sent (a zero run counts its pages)
     */
    long sendRound(PageBitmap pages, int round, RoundControl control) throws LinkException, CancelledException {
        long sent = 0;
        MemorySegment guest = memory.segment();
        for (long page = pages.nextSetBit(0); page >= 0; page = pages.nextSetBit(page + 1)) {
            if (frame == null) {
                if (control.cancelled()) {
                    throw new CancelledException();
                }
                if (control.stopEarly()) {
                    break;
                }
                openFrame();
            }
            pages.clear(page);
            MemorySegment.copy(guest, page << GuestMemory.PAGE_SHIFT, scratch, 0, GuestMemory.PAGE_SIZE);
            appendPage(page);
            sent++;
            boolean chunkDone = sent % CHUNK_PAGES == 0;
            if (chunkDone || writeAt - frameStart >= Wire.PAGES_FRAME_TARGET) {
                sendFrame();
                if (link.bytesSent() >= nextProgress) {
                    nextProgress = link.bytesSent() + PROGRESS_EVERY;
                    listener.onProgress(link.bytesSent(), round, pages.cardinality());
                }
            }
            if (chunkDone) {
                control.afterChunk();
            }
        }
        if (frame != null) {
            sendFrame();
        }
        ByteBuf end = link.buffer(Wire.FRAME_HEADER + 12);
        Wire.writeRoundEnd(end, round, sent);
        link.sendNow(end);
        records += sent;
        return sent;
    }

    /**
     * Sends up to {@code max} pages of {@code pages} from {@code from} on (wrapping to the start),
     * removing them, as one flushed frame: the post-copy push, a batch at a time so that page
     * requests can go between batches.
     *
     * @return where the next batch starts
     */
    long sendBatch(PageBitmap pages, long from, int max) throws LinkException {
        return sendBatch(pages, from, max, false);
    }

    /** Sends page {@code page} of {@code pages} now, ahead of any pacing: a guest waits for it. */
    void sendRequested(PageBitmap pages, long page) throws LinkException {
        sendBatch(pages, page, 1, true);
    }

    private long sendBatch(PageBitmap pages, long from, int max, boolean urgent) throws LinkException {
        long page = pages.nextSetBit(from);
        if (page < 0) {
            page = pages.nextSetBit(0);
        }
        openFrame();
        for (int n = 0; n < max && page >= 0; n++) {
            pages.clear(page);
            MemorySegment.copy(memory.segment(), page << GuestMemory.PAGE_SHIFT, scratch, 0, GuestMemory.PAGE_SIZE);
            appendPage(page);
            page = pages.nextSetBit(page + 1);
        }
        if (urgent) {
            link.sendUrgent(closeFrame());
        } else {
            link.sendNow(closeFrame());
        }
        return page < 0 ? 0 : page;
    }

    /**
     * Sends {@code pages} as DISCARD runs: at the switch to post-copy, the pages the destination
     * holds stale copies of (or none at all).
     */
    void sendDiscard(PageBitmap pages) throws LinkException {
        PageRuns.write(Wire.DISCARD, new PageRuns.Pages() {
            @Override
            public long nextIn(long from) {
                return pages.nextSetBit(from);
            }

            @Override
            public long nextOut(long from) {
                long end = pages.nextClearBit(from);
                return end < 0 ? pages.pageCount() : end;
            }
        }, link::buffer, link::send);
    }

    private void appendPage(long page) {
        int headerAt = writeAt;
        int length = encoder.encode(page, scratch, 0, frameSegment, headerAt + Wire.RECORD_HEADER);
        int encoding = encoder.encoding();
        if (encoding == PageEncoding.ZERO) {
            digest.updateZero(page);
            if (zeroRunAt >= 0 && page == zeroRunNext && zeroRun < Wire.MAX_ZERO_RUN) {
                zeroRun++;
                zeroRunNext++;
                PageRecords.putLength(frameSegment, zeroRunAt, zeroRun);
                return;
            }
            PageRecords.putHeader(frameSegment, headerAt, page, encoding, 1);
            zeroRunAt = headerAt;
            zeroRun = 1;
            zeroRunNext = page + 1;
            writeAt = headerAt + Wire.RECORD_HEADER;
            return;
        }
        zeroRunAt = -1;
        digest.update(page, PageDigest.contentHash(scratch, 0));
        PageRecords.putHeader(frameSegment, headerAt, page, encoding, length);
        writeAt = headerAt + Wire.RECORD_HEADER + length;
    }

    private void openFrame() {
        frame = link.buffer(FRAME_CAPACITY);
        frameSegment = Frames.segmentOf(frame);
        frameStart = frame.writerIndex();
        Wire.writeHeader(frame, Wire.PAGES, 0);
        writeAt = frame.writerIndex();
        zeroRunAt = -1;
    }

    private void sendFrame() throws LinkException {
        link.send(closeFrame());
    }

    /** Fills in the open frame's length and hands it over; the next page opens a new one. */
    private ByteBuf closeFrame() {
        frame.writerIndex(writeAt);
        Wire.patchLength(frame, frameStart);
        ByteBuf out = frame;
        frame = null;
        frameSegment = null;
        zeroRunAt = -1;
        return out;
    }

    /** Writes to {@code replacement} from now on (post-copy recovered a lost link). */
    void relink(Link replacement) {
        this.link = replacement;
    }

    /** Page records sent in all rounds. */
    long records() {
        return records;
    }

    @Override
    public void close() {
        if (frame != null) {
            frame.release();
            frame = null;
        }
        arena.close();
    }
}
