package dev.ferry.stream;

import dev.ferry.compression.CompressionChooser;
import dev.ferry.compression.PageEncoder;
import dev.ferry.compression.StageStats;
import dev.ferry.compression.ZeroPages;
import dev.ferry.dedup.ContentHash;
import dev.ferry.dedup.DedupChooser;
import dev.ferry.dedup.DedupIndex;
import dev.ferry.dedup.GangIndex;
import dev.ferry.core.ClaimablePages;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.DirtyLog;
import dev.ferry.core.MemoryDigest;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.UntouchedPages;
import dev.ferry.core.PageDigest;
import dev.ferry.protocol.PageEncoding;
import dev.ferry.protocol.PageRecords;
import dev.ferry.protocol.Wire;
import dev.ferry.transport.Frames;
import dev.ferry.transport.Link;
import dev.ferry.transport.LinkException;
import io.netty.buffer.ByteBuf;
import java.lang.foreign.MemorySegment;

/**
 * One channel's sender: turns pages into PAGES frames on its own connection. Each page is copied
 * once out of guest memory, straight into the frame buffer where its payload goes (a stable
 * snapshot the guest can no longer change under us), hashed into the channel's part of the sent
 * digest, encoded in place, and its record header written in front; a page never touched
 * ({@link UntouchedPages}) is a zero page without being read. Consecutive zero pages merge into
 * one run record. Nothing is allocated per page; one pooled buffer per frame.
 *
 * <p>A page always travels on the channel of its stripe ({@link PageBitmap#stripeOf}), so one
 * connection's ordering keeps every copy of a page in order, and this channel's XBZRLE cache is
 * the only one that ever holds the page. The one exception is post-copy, when the guest is paused
 * for good here: a requested page may cross on the request channel, and being final it cannot be
 * older than another copy.
 *
 * <p>With dedup, a page that is not zero is looked up by its content in this channel's
 * {@link DedupIndex} first, ahead of XBZRLE and compression; a hit crosses as a reference to the
 * page the content was last sent to in full. The index holds only pages sent in full on this
 * channel, so a reference names a page that arrived on this same connection before it: the
 * destination holds it whatever the other channels are doing (docs/protocol.md, Dedup references).
 * In post-copy the request channel has an index of its own pages, and no reference names a page
 * the destination discarded unless it came again since ({@link #postcopy}).
 *
 * <p>The adaptive compression choice is made per channel, chunk by chunk, from this channel's own
 * figures: each channel has its own link and its own share of the cores.
 */
public final class PageSender implements AutoCloseable {
    private static final int FRAME_CAPACITY = Wire.PAGES_FRAME_TARGET + Wire.FRAME_HEADER
            + Wire.RECORD_HEADER + PageEncoder.MAX_PAYLOAD;
    /** A PAGES frame of one page, whatever it encodes to. */
    private static final int ONE_PAGE_FRAME = Wire.FRAME_HEADER + Wire.RECORD_HEADER + PageEncoder.MAX_PAYLOAD;
    /** A frame this many times shorter than its buffer is copied out of it. */
    private static final int SHORT_FRAME_RATIO = 4;
    /** Pages between two adaptive choices: 8 MiB of guest memory, so a probe of the slower way costs little. */
    public static final int CHUNK_PAGES = 2048;
    /** The sampled contents' table: 1024 entries, room for any sample the estimate takes. */
    private static final long SAMPLED_BYTES = 16L << 10;

    private final int channel;
    private Link link;
    /** Guest memory, unchecked: the session stops every sender before the caller may close the memory. */
    private final MemorySegment guest;
    /** Pages never touched, sent as zeros without being read. */
    private final UntouchedPages untouched;
    private final PageEncoder encoder;
    private final CompressionChooser chooser;
    private final MemoryDigest.Part digest;
    /** Told of each copy before it is encoded in place: a scanning log compares with what was sent. */
    private final DirtyLog dirtyLog;
    private final NanoClock clock;
    /** This channel's share of the content index, or null without dedup. */
    private final DedupIndex dedup;
    /** With dedup, the contents of the pages sampled so far by the estimate between rounds. */
    private final DedupIndex sampled;
    /** With dedup on a page channel of a guest alone, whether pages are looked up at all; else null. */
    private final DedupChooser dedupChooser;
    /** Whether the chooser has the index on for this chunk (always, without a chooser). */
    private boolean indexing = true;
    /** The index's lookups and hits when the chunk began. */
    private long chunkLookups;
    private long chunkHits;
    /** Pages the destination found a stale reference for: they cross in full the next time. */
    private final PageBitmap inFull;
    /** With a gang, the index its guests share and this guest's number in it (1 up); else null and 0. */
    private final GangIndex gang;
    private final int member;
    /** References this channel sent that name a page of another guest of the gang. */
    private long acrossGuests;
    private final ContentHash hash = new ContentHash();
    private boolean dedupActive;
    /** In post-copy: the pages sent as references since it started (any channel's); else null. */
    private ClaimablePages referenced;
    /** In post-copy: the pages the destination discarded at its start; else null. */
    private PageBitmap discarded;
    /** In post-copy with dedup: the pages this channel sent in full since it started; else null. */
    private PageBitmap sentInPostcopy;
    /** The page being appended goes in full whatever the index holds. */
    private boolean forceFull;

    private ByteBuf frame;
    private MemorySegment frameSegment;
    private int frameStart;
    /** The open frame's writer index, kept here while pages go in through {@link #frameSegment}. */
    private int writeAt;
    /** Where the open zero run's record header starts, or -1. */
    private int zeroRunAt = -1;
    private long zeroRunNext;
    private int zeroRun;
    private long pushCursor;
    /** Pages this channel pushed or answered during post-copy, across recovered connections. */
    private long postcopySent;
    /** Pages of the round in progress sent so far, as of the last frame: read by the session's progress. */
    private volatile long roundSent;
    /** Pages of every round so far (not post-copy's): only ever grows, so progress never runs backwards. */
    private volatile long totalSent;

    private StageStats chunkStats;
    private long chunkWaited;
    private long chunkStart;

    /**
     * @param channel      this channel's index, for messages
     * @param chooser      the adaptive compression choice, or null when there is nothing to choose
     * @param dedup        this channel's content index, or null without dedup
     * @param inFull       pages that must cross in full (shared by the page channels, each touching
     *                     only its stripes; written by the session between rounds), or null without
     *                     dedup and on the request channel
     * @param gang         with dedup in a gang, the index the gang's guests share (asked when this
     *                     channel's own index misses; told of every page sent in full); else null
     * @param member       this guest's number in the gang, from 1, as the destination's gang numbers it
     * @param dedupChooser with dedup, what decides chunk by chunk whether pages are looked up at
     *                     all; null to look every page up (a gang's members always do: the others
     *                     may refer to what one sends)
     */
    public PageSender(int channel, Link link, GuestMemory memory, PageEncoder encoder, CompressionChooser chooser,
            MemoryDigest.Part digest, DirtyLog dirtyLog, NanoClock clock, DedupIndex dedup, PageBitmap inFull,
            GangIndex gang, int member, DedupChooser dedupChooser) {
        this.dedupChooser = dedup == null ? null : dedupChooser;
        this.gang = gang;
        this.member = member;
        this.dirtyLog = dirtyLog;
        this.dedup = dedup;
        this.sampled = dedup == null ? null : new DedupIndex(SAMPLED_BYTES);
        this.inFull = inFull;
        this.dedupActive = dedup != null;
        this.channel = channel;
        this.link = link;
        this.guest = memory.unchecked();
        this.untouched = UntouchedPages.of(memory);
        this.encoder = encoder;
        this.chooser = chooser;
        this.digest = digest;
        this.clock = clock;
        encoder.compressOneIn(chooser == null ? 1 : chooser.current().compressOneIn());
    }

    /** This channel's index. */
    public int channel() {
        return channel;
    }

    /** The connection this channel sends on. */
    public Link link() {
        return link;
    }

    /** Sends on {@code replacement} from now on (post-copy recovered a lost connection). */
    public void relink(Link replacement) {
        this.link = replacement;
    }

    /**
     * Sends the pages of {@code pages}, removing each as it goes, then this channel's ROUND_END,
     * and flushes. {@code control} is asked between frames; the compression choice is revisited
     * every {@link #CHUNK_PAGES} pages. A round stopped early leaves its unsent pages in
     * {@code pages}.
     *
     * @return pages sent (a zero run counts its pages)
     */
    public long sendRound(PageBitmap pages, int round, RoundControl control) throws LinkException, CancelledException {
        long sent = 0;
        long before = totalSent;
        roundSent = 0;
        // a window read before this round's sync may miss pages written before it: read them anew
        untouched.forget();
        startChunk(clock.nanoTime());
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
            appendPage(page);
            sent++;
            boolean chunkDone = sent % CHUNK_PAGES == 0;
            if (chunkDone || writeAt - frameStart >= Wire.PAGES_FRAME_TARGET) {
                link.send(closeFrame());
                roundSent = sent;
                totalSent = before + sent;
            }
            if (chunkDone) {
                adaptCompression();
                adaptDedup();
            }
        }
        if (frame != null) {
            link.send(closeFrame());
        }
        roundSent = sent;
        totalSent = before + sent;
        adaptCompression();
        ByteBuf end = link.buffer(Wire.FRAME_HEADER + 12);
        Wire.writeRoundEnd(end, round, sent);
        link.sendNow(end);
        return sent;
    }

    /**
     * Sends up to {@code max} pages of this channel's stripe ({@code stripe} of {@code stripes})
     * that it claims from {@code remaining}, as one flushed frame: the post-copy push, a small
     * batch at a time, so that little of it is queued in front of anything.
     *
     * @return pages sent; 0 when none of this stripe is left
     */
    public int pushBatch(ClaimablePages remaining, int stripe, int stripes, int max) throws LinkException {
        int sent = 0;
        long page = nextOfStripe(remaining, pushCursor, stripe, stripes);
        if (page < 0) {
            pushCursor = 0;
            page = nextOfStripe(remaining, 0, stripe, stripes);
        }
        while (sent < max && page >= 0) {
            if (remaining.claim(page)) {
                if (frame == null) {
                    openFrame();
                }
                appendPage(page);
                sent++;
                postcopySent++;
            }
            pushCursor = page + 1;
            page = nextOfStripe(remaining, pushCursor, stripe, stripes);
        }
        if (frame != null) {
            link.sendNow(closeFrame());
        }
        return sent;
    }

    /**
     * Sends page {@code page} now, ahead of any pacing, if this call claims it from
     * {@code remaining}: a guest waits for it.
     *
     * @return whether this call sent it (false: already sent by the push or an earlier request)
     */
    public boolean sendRequested(ClaimablePages remaining, long page) throws LinkException {
        boolean again = false;
        if (!remaining.claim(page)) {
            // one that crossed as a reference may have been stale: it goes again, in full
            if (referenced == null || !referenced.claim(page)) {
                return false;
            }
            again = true;
        }
        // a frame of one page's size: a guest waits for it, and a short frame in a large buffer is copied out
        openFrame(ONE_PAGE_FRAME);
        forceFull = again;
        appendPage(page);
        forceFull = false;
        link.sendUrgent(closeFrame());
        postcopySent++;
        return true;
    }

    /**
     * Ends post-copy on this channel: a ROUND_END of round {@code round} after every page it
     * pushed or answered, so that the destination checks END only once they all were applied.
     */
    public void endPostcopy(int round) throws LinkException {
        ByteBuf end = link.buffer(Wire.FRAME_HEADER + 12);
        Wire.writeRoundEnd(end, round, postcopySent);
        link.sendNow(end);
    }

    /** The next page at or after {@code from} left in {@code remaining} that lies in {@code stripe}, or -1. */
    private static long nextOfStripe(ClaimablePages remaining, long from, int stripe, int stripes) {
        long page = remaining.next(from);
        while (page >= 0 && PageBitmap.stripeOf(page, stripes) != stripe) {
            // skip to the start of this channel's next stripe
            long stripeIndex = page / PageBitmap.STRIPE_PAGES;
            long ahead = Math.floorMod(stripe - stripeIndex, (long) stripes);
            page = remaining.next((stripeIndex + ahead) * PageBitmap.STRIPE_PAGES);
        }
        return page;
    }

    /**
     * The wire bytes page {@code page} would take if it were sent now ({@link PageEncoder#trialLength}
     * and its record's header; a zero page joins a run and takes none). With dedup, a page whose
     * content the index names, or a page sampled before it since {@link #startSample} has, takes
     * a reference: a QEMU guest that writes one pattern to every page had its stop-and-copy of
     * 101 k references predicted at 11.8 s for a pause of 0.15 s, and a migration that must meet
     * its limit would have failed as stalled. Only between rounds: it uses the encoder this
     * channel's thread sends with.
     */
    public int trialBytes(long page) {
        long at = page << GuestMemory.PAGE_SHIFT;
        if (dedupActive && indexing && !(encoder.zeroPages() && ZeroPages.isZero(guest, at))
                && !(inFull != null && inFull.get(page))) {
            long contentHash = PageDigest.contentHash(guest, at);
            boolean known = sampled.holds(contentHash) || dedup.holds(contentHash) || gang != null && gang.holds(contentHash);
            sampled.put(contentHash, page);
            if (known) {
                return Wire.RECORD_HEADER + PageRecords.REFERENCE_BYTES;
            }
        }
        int length = encoder.trialLength(page, guest, at);
        return length == 0 ? 0 : Wire.RECORD_HEADER + length;
    }

    /** A new sample of {@link #trialBytes} begins: the pages sampled before are forgotten. */
    public void startSample() {
        if (sampled != null) {
            sampled.clear();
        }
    }

    /** Pages of the round in progress sent so far (as of the last frame). */
    public long roundSent() {
        return roundSent;
    }

    /** Pages sent by the rounds so far, as frames went out; it never decreases. */
    public long totalSent() {
        return totalSent;
    }

    /** The encoder's figures so far. */
    public StageStats stats() {
        return encoder.stats();
    }

    /** Dedup references from now on, or not; only with an index. */
    public void dedupActive(boolean on) {
        dedupActive = on && dedup != null;
    }

    /**
     * Post-copy from now on, with {@code discarded} the pages the destination dropped at its start
     * (read only, by every channel): a reference names only a page the destination holds (one it
     * kept, or one this channel sent in full since), and every page sent as a reference joins
     * {@code referenced}, shared by the channels, so that a request for it is answered in full.
     */
    public void postcopy(ClaimablePages referenced, PageBitmap discarded) {
        this.referenced = referenced;
        this.discarded = discarded;
        indexing = true;
        if (dedup != null && sentInPostcopy == null) {
            sentInPostcopy = new PageBitmap(discarded.pageCount());
        }
    }

    /** This channel's content index, or null without dedup. */
    public DedupIndex dedup() {
        return dedup;
    }

    /** References this channel sent that name a page of another guest of its gang. */
    public long acrossGuests() {
        return acrossGuests;
    }

    /** XBZRLE caches and deltas from now on: after the bulk round, and off again in post-copy. */
    public void xbzrleActive(boolean on) {
        encoder.xbzrleActive(on);
    }

    /**
     * The round about to start is the stop-and-copy: nothing more is cached, and the compression
     * choice is made afresh for the whole round, without probes.
     */
    public void lastRound() {
        encoder.lastPass();
        if (chooser != null) {
            encoder.compressOneIn(chooser.lastRound().compressOneIn());
        }
    }

    /** Why this channel compresses or not, for the round report. */
    public String compressionReason() {
        return chooser != null ? chooser.current().reason() : "no adaptive choice";
    }

    /**
     * Appends page {@code page}: copied once out of guest memory straight to where its payload
     * goes (a stable snapshot the guest can no longer change under us), then encoded there.
     */
    private void appendPage(long page) {
        int headerAt = writeAt;
        long payloadAt = headerAt + Wire.RECORD_HEADER;
        int length = 0;
        if (!untouched.contains(page) || !encoder.encodeKnownZero(page)) {
            MemorySegment.copy(guest, page << GuestMemory.PAGE_SHIFT, frameSegment, payloadAt, GuestMemory.PAGE_SIZE);
            dirtyLog.sending(page, frameSegment, payloadAt);
            boolean dedupNow = dedupActive && indexing;
            if (dedupNow && encoder.zeroPages() && ZeroPages.isZero(frameSegment, payloadAt)) {
                // found zero here: the encoder need not read it again
                encoder.encodeKnownZero(page);
            } else if (dedupNow) {
                long contentHash = PageDigest.contentHash(frameSegment, payloadAt);
                if (inFull != null && inFull.get(page)) {
                    inFull.clear(page);
                } else if (!forceFull && reference(page, headerAt, payloadAt, contentHash)) {
                    return;
                }
                length = encoder.encodeNonZero(page, frameSegment, payloadAt, frameSegment, payloadAt, contentHash);
                dedup.put(contentHash, DedupIndex.location(0, page));
                if (sentInPostcopy != null) {
                    sentInPostcopy.set(page);
                }
                if (gang != null) {
                    gang.put(contentHash, DedupIndex.location(member, page));
                }
            } else {
                length = encoder.encode(page, frameSegment, payloadAt, frameSegment, payloadAt);
            }
        }
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
        digest.update(page, encoder.contentHash());
        PageRecords.putHeader(frameSegment, headerAt, page, encoding, length);
        writeAt = headerAt + Wire.RECORD_HEADER + length;
    }

    /**
     * Writes page {@code page} as a reference if the index names a copy of a content with its
     * {@code contentHash}; the reference carries the page's XXH3-128, which the destination checks
     * the copy against. A page found at itself is left to XBZRLE when that is on (an unchanged
     * page costs it no payload at all).
     */
    private boolean reference(long page, int headerAt, long payloadAt, long contentHash) {
        long location = dedup.lookup(contentHash);
        if (location == DedupIndex.location(0, page) && encoder.xbzrleActive()) {
            return false;
        }
        if (location >= 0 && discarded != null && discarded.get(DedupIndex.pageOf(location))
                && !sentInPostcopy.get(DedupIndex.pageOf(location))) {
            // post-copy dropped that copy at the destination and it has not come again
            location = -1;
        }
        if (location < 0 && gang != null) {
            // another guest's copy: this guest's own pages on other channels are not ordered with this one
            long elsewhere = gang.lookup(contentHash);
            if (elsewhere >= 0 && DedupIndex.guestOf(elsewhere) != member) {
                location = elsewhere;
                acrossGuests++;
            }
        }
        if (location < 0) {
            return false;
        }
        hash.hash(frameSegment, payloadAt);
        digest.update(page, contentHash);
        encoder.referenced(page, PageRecords.REFERENCE_BYTES);
        PageRecords.putReference(frameSegment, payloadAt, DedupIndex.guestOf(location), DedupIndex.pageOf(location),
                hash.high(), hash.low());
        PageRecords.putHeader(frameSegment, headerAt, page, PageEncoding.DEDUP, PageRecords.REFERENCE_BYTES);
        writeAt = headerAt + Wire.RECORD_HEADER + PageRecords.REFERENCE_BYTES;
        zeroRunAt = -1;
        if (referenced != null) {
            referenced.add(page);
        }
        return true;
    }

    private void openFrame() {
        openFrame(FRAME_CAPACITY);
    }

    private void openFrame(int capacity) {
        frame = link.buffer(capacity);
        frameSegment = Frames.segmentOf(frame);
        frameStart = frame.writerIndex();
        Wire.writeHeader(frame, Wire.PAGES, 0);
        writeAt = frame.writerIndex();
        zeroRunAt = -1;
    }

    /**
     * Fills in the open frame's length and hands it over; the next page opens a new one. A frame
     * far shorter than its buffer (a chunk of zero pages, one requested page) crosses in a buffer
     * of its own size: the socket's flow control counts the bytes queued, not the buffers holding
     * them, and a 64 GiB guest of zeros once queued thousands of 30-byte frames in 132 KiB
     * buffers, 1.8 GiB of direct memory.
     */
    private ByteBuf closeFrame() {
        frame.writerIndex(writeAt);
        Wire.patchLength(frame, frameStart);
        ByteBuf out = frame;
        int length = writeAt - frameStart;
        if (length <= frame.capacity() / SHORT_FRAME_RATIO) {
            out = link.buffer(length).writeBytes(frame, frameStart, length);
            frame.release();
        }
        frame = null;
        frameSegment = null;
        zeroRunAt = -1;
        return out;
    }

    private void startChunk(long now) {
        chunkStart = now;
        chunkWaited = link.waitedNanos();
        chunkStats = encoder.stats();
    }

    /** At a chunk's end: whether the next chunk looks its pages up, from what this one found. */
    private void adaptDedup() {
        if (dedupChooser == null) {
            return;
        }
        long hits = dedup.hits();
        long lookups = hits + dedup.misses();
        indexing = dedupChooser.next(lookups - chunkLookups, hits - chunkHits);
        chunkLookups = lookups;
        chunkHits = hits;
    }

    /**
     * The adaptive choice, made every chunk of a round rather than once a round: the bulk round
     * is most of the bytes, so it must be able to switch compression on (a slow link) or off
     * (loopback) as soon as the first chunks have measured both.
     */
    private void adaptCompression() {
        if (chooser == null) {
            return;
        }
        long now = clock.nanoTime();
        StageStats chunk = encoder.stats().minus(chunkStats);
        if (chunk.pages() == 0) {
            return;
        }
        CompressionChooser.Decision decision = chooser.next(chunk, now - chunkStart,
                Math.max(0, link.waitedNanos() - chunkWaited));
        encoder.compressOneIn(decision.compressOneIn());
        startChunk(now);
    }

    @Override
    public void close() {
        if (frame != null) {
            frame.release();
            frame = null;
        }
        encoder.close();
        untouched.close();
    }
}
