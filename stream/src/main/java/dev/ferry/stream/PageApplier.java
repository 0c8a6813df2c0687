package dev.ferry.stream;

import dev.ferry.compression.MalformedPayloadException;
import dev.ferry.compression.PageDecoder;
import dev.ferry.dedup.ContentHash;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MemoryDigest;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageDigest;
import dev.ferry.protocol.PageEncoding;
import dev.ferry.protocol.PageRecords;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.Wire;
import java.lang.foreign.MemorySegment;
import java.util.function.IntFunction;

/**
 * One channel's receive path on the destination: applies the records of its PAGES frames to guest
 * memory and records each page in the channel's part of the applied digest. One applier per
 * channel, called only on that channel's thread.
 *
 * <p>Before post-copy every page of a page channel must lie in that channel's stripe: the stripes
 * are what keep two channels from ever writing the same page, or the same word of the shared
 * {@code written} set. Once post-copy starts ({@link #postcopy}) pages go through the fault path
 * instead, which takes the first copy of each page from whichever channel it came.
 */
public final class PageApplier implements AutoCloseable {
    private final int channel;
    private final int channels;
    private final GuestMemory memory;
    /** Guest memory, unchecked: the session lets no frame be applied once it is over. */
    private final MemorySegment ram;
    private final PageBitmap written;
    private final MemoryDigest.Part digest;
    private final int allowedEncodings;
    private final PageDecoder decoder = new PageDecoder();
    private final PageRecords records = new PageRecords();
    private final long[] pagesByEncoding = new long[PageEncoding.COUNT];
    /** The pages that ever held content here (never cleared), or null without dedup. */
    private final PageBitmap held;
    private final ContentHash hash = new ContentHash();
    /** Pages whose reference was stale since the last {@link #drainStale}; grows only when one is. */
    private long[] stale = new long[16];
    private int staleCount;
    private long references;
    private long acrossGuests;
    private long staleReferences;
    private GuestMemory aside;
    private final IntFunction<HeldGuest> members;
    private volatile PostcopyTarget postcopy;
    private long pagesThisRound;
    private long pages;
    private long bytes;

    /**
     * @param channel          this channel's index; {@code channels} for the request channel
     * @param written          the pages written since the guest memory was fresh (zero-filled),
     *                         shared by every channel, each touching only its stripe's words
     * @param allowedEncodings the codes the handshake accepted ({@link PageEncoding#allowedBy})
     */
    public PageApplier(int channel, int channels, GuestMemory memory, PageBitmap written, MemoryDigest.Part digest,
            int allowedEncodings) {
        this(channel, channels, memory, written, digest, allowedEncodings, null);
    }

    /**
     * @param held the pages that ever held content here, shared as {@code written} is; null
     *             unless the handshake accepted dedup
     */
    public PageApplier(int channel, int channels, GuestMemory memory, PageBitmap written, MemoryDigest.Part digest,
            int allowedEncodings, PageBitmap held) {
        this(channel, channels, memory, written, digest, allowedEncodings, held, member -> null);
    }

    /**
     * @param members guest {@code n} of this destination's gang (from 1), or null for a number
     *                that is no member: where a reference to another guest reads from
     */
    public PageApplier(int channel, int channels, GuestMemory memory, PageBitmap written, MemoryDigest.Part digest,
            int allowedEncodings, PageBitmap held, IntFunction<HeldGuest> members) {
        this.members = members;
        this.held = held;
        this.channel = channel;
        this.channels = channels;
        this.memory = memory;
        this.ram = memory.unchecked();
        this.written = written;
        this.digest = digest;
        this.allowedEncodings = allowedEncodings;
    }

    /**
     * Applies the records in bytes {@code [from, to)} of {@code frame} (a native view of a PAGES
     * frame's buffer). A record the protocol does not allow here fails the whole migration, so a
     * frame applied in part does no harm: nothing resumes on it.
     */
    public void apply(MemorySegment frame, long from, long to) throws ProtocolException, MalformedPayloadException {
        bytes += to - from + Wire.FRAME_HEADER;
        PostcopyTarget target = postcopy;
        records.reset(frame, from, to, memory.pageCount());
        while (records.next()) {
            long index = records.index();
            int encoding = records.encoding();
            int length = records.length();
            if ((allowedEncodings & 1 << encoding) == 0) {
                throw new ProtocolException(PageEncoding.name(encoding) + " page " + index
                        + " but the handshake accepted no stage that produces it");
            }
            int count = encoding == PageEncoding.ZERO ? length : 1;
            if (target == null) {
                checkStripe(index, count);
                applyPrecopy(frame, index, encoding, length);
            } else {
                applyPostcopy(target, frame, index, encoding, length);
            }
            pagesByEncoding[encoding] += count;
            pagesThisRound += count;
            pages += count;
        }
    }

    private void applyPrecopy(MemorySegment frame, long index, int encoding, int length)
            throws MalformedPayloadException, ProtocolException {
        if (encoding == PageEncoding.ZERO) {
            // only pages written here need work: the rest are zero in memory and in the digest
            // already, so a run over never-written pages costs a scan of its bitmap words (a
            // frame's work stays bounded by its bytes) and a sparse guest stays sparse
            long end = index + length;
            for (long p = written.nextSetBit(index, end); p >= 0; p = written.nextSetBit(p + 1, end)) {
                written.clear(p);
                decoder.decode(PageEncoding.ZERO, p, frame, 0, 0, ram);
                digest.updateZero(p);
            }
            return;
        }
        if (encoding == PageEncoding.DEDUP) {
            applyReference(index);
            return;
        }
        decoder.decode(encoding, index, frame, records.payloadOffset(), length, ram);
        digest.update(index, PageDigest.contentHash(ram, index << GuestMemory.PAGE_SHIFT));
        written.set(index);
        if (held != null) {
            held.set(index);
        }
    }

    /**
     * A reference: page {@code index} takes the content of the page it names, if that copy's bytes
     * still have the reference's XXH3-128; else the page is left as it was and asked for again
     * ({@link #drainStale}). The named page must have come on this channel (so it is here), and
     * must have held content here once: anything else is a broken stream.
     */
    private void applyReference(long index) throws ProtocolException {
        int guest = records.referenceGuest();
        long source = records.referencePage();
        if (guest != 0) {
            applyAcrossGuests(index, guest, source);
            return;
        }
        checkOwnReference(index, source);
        if (!held.get(source)) {
            throw new ProtocolException("dedup reference for page " + index + " names page " + source
                    + ", which this destination never held");
        }
        references++;
        if (!hash.matches(ram, source << GuestMemory.PAGE_SHIFT, records.referenceHigh(), records.referenceLow())) {
            staleReferences++;
            addStale(index);
            return;
        }
        if (source != index) {
            MemorySegment.copy(ram, source << GuestMemory.PAGE_SHIFT, ram, index << GuestMemory.PAGE_SHIFT,
                    GuestMemory.PAGE_SIZE);
        }
        digest.update(index, PageDigest.contentHash(ram, index << GuestMemory.PAGE_SHIFT));
        written.set(index);
        held.set(index);
    }

    /**
     * A reference to page {@code source} of guest {@code guest} of the gang: that guest's pages
     * come over its own connections, in no order with this one's, so a copy that does not (or no
     * longer, or not yet) hold the content is stale, not an error; a guest that is no member is.
     * The page is copied first and the copy here checked, since that guest may be writing its
     * page meanwhile; a member whose memory was closed reads as stale, never as freed memory
     * (its checked segment refuses).
     */
    private void applyAcrossGuests(long index, int guest, long source) throws ProtocolException {
        long at = index << GuestMemory.PAGE_SHIFT;
        if (!copyFromMember(index, guest, source, ram, at)) {
            // it crosses in full before END, which sets its digest then
            staleReferences++;
            addStale(index);
            return;
        }
        digest.update(index, PageDigest.contentHash(ram, at));
    }

    /**
     * Copies page {@code source} of gang member {@code guest} to {@code to[at..)} and checks the
     * copy against the reference's XXH3-128; false when that guest does not hold the page, its
     * memory is gone, or the copy does not match. Counts the reference.
     */
    private boolean copyFromMember(long index, int guest, long source, MemorySegment to, long at)
            throws ProtocolException {
        HeldGuest other = members.apply(guest);
        if (other == null) {
            throw new ProtocolException("dedup reference for page " + index + " names guest " + guest
                    + ", which is no member of this destination's gang");
        }
        if (source >= other.memory().pageCount()) {
            throw new ProtocolException("dedup reference for page " + index + " names page " + source + " of guest "
                    + guest + ", out of range (it has " + other.memory().pageCount() + " pages)");
        }
        references++;
        acrossGuests++;
        if (!other.holds(source)) {
            return false;
        }
        try {
            MemorySegment.copy(other.memory().segment(), source << GuestMemory.PAGE_SHIFT, to, at,
                    GuestMemory.PAGE_SIZE);
        } catch (IllegalStateException closed) {
            return false;
        }
        if (to == ram) {
            // no longer fresh, whatever it holds: a zero run must write it
            written.set(index);
            held.set(index);
        }
        return hash.matches(to, at, records.referenceHigh(), records.referenceLow());
    }

    /**
     * A reference in post-copy: the named copy is taken aside, checked, and installed like any
     * arriving page. A copy not here (discarded by post-copy, or in another guest still missing)
     * or changed since (the guest runs here now) is stale: the page is asked for again at once,
     * since a guest may wait for it, and named at the post-copy barrier's STALE if still missing.
     * An own page this destination never held is a broken stream, unless a recovered loss may
     * have taken it.
     */
    private void applyReferencePostcopy(PostcopyTarget target, long index) throws ProtocolException {
        int guest = records.referenceGuest();
        long source = records.referencePage();
        MemorySegment copy = aside.segment();
        boolean good;
        if (guest == 0) {
            checkOwnReference(index, source);
            references++;
            if (target.isPresent(source)) {
                MemorySegment.copy(ram, source << GuestMemory.PAGE_SHIFT, copy, 0, GuestMemory.PAGE_SIZE);
                good = hash.matches(copy, 0, records.referenceHigh(), records.referenceLow());
            } else if (held.get(source) || target.recovered()) {
                good = false;
            } else {
                throw new ProtocolException("dedup reference for page " + index + " names page " + source
                        + ", which this destination never held");
            }
        } else {
            good = copyFromMember(index, guest, source, copy, 0);
        }
        if (!good) {
            staleReferences++;
            addStale(index);
            target.requestAgain(index);
            return;
        }
        if (target.install(index, copy, 0)) {
            digest.update(index, PageDigest.contentHash(copy, 0));
        }
    }

    /** An own page a reference may name: in range, and on this page channel when it is one. */
    private void checkOwnReference(long index, long source) throws ProtocolException {
        if (source >= memory.pageCount()) {
            throw new ProtocolException("dedup reference for page " + index + " names page " + source
                    + " out of range (guest has " + memory.pageCount() + " pages)");
        }
        // the request channel's references name pages it sent itself, of any stripe
        if (channel < channels && PageBitmap.stripeOf(source, channels) != channel) {
            throw new ProtocolException("dedup reference on channel " + channel + " for page " + index + " names page "
                    + source + ", which travels on channel " + PageBitmap.stripeOf(source, channels));
        }
    }

    private synchronized void addStale(long page) {
        if (staleCount == stale.length) {
            stale = java.util.Arrays.copyOf(stale, staleCount * 2);
        }
        stale[staleCount++] = page;
    }

    /** Moves the pages whose reference was stale into {@code into}, and forgets them here. */
    public synchronized void drainStale(PageBitmap into) {
        for (int i = 0; i < staleCount; i++) {
            into.set(stale[i]);
        }
        staleCount = 0;
    }

    /** References this channel applied or found stale. */
    public long references() {
        return references;
    }

    /** References this channel applied or found stale that named a page of another guest of the gang. */
    public long acrossGuests() {
        return acrossGuests;
    }

    /** References this channel found stale. */
    public long staleReferences() {
        return staleReferences;
    }

    private void applyPostcopy(PostcopyTarget target, MemorySegment frame, long index, int encoding, int length)
            throws MalformedPayloadException, ProtocolException {
        if (encoding == PageEncoding.ZERO) {
            // only missing pages need work, found by a scan of the run's words: a frame's work stays bounded by its bytes
            long end = index + length;
            for (long p = target.nextMissing(index, end); p >= 0; p = target.nextMissing(p + 1, end)) {
                if (target.installZero(p)) {
                    digest.updateZero(p);
                }
            }
            return;
        }
        if (target.isPresent(index)) {
            // a requested page that the push had already sent, or the reverse: the first copy won
            return;
        }
        if (encoding == PageEncoding.DEDUP) {
            applyReferencePostcopy(target, index);
            return;
        }
        if (encoding == PageEncoding.XBZRLE || encoding >= PageEncoding.XBZRLE_LZ4) {
            throw new ProtocolException(PageEncoding.name(encoding) + " page " + index
                    + " during post-copy: a delta needs the stale copy post-copy discarded");
        }
        // the guest may be running on this page: decode aside, install in one step
        decoder.decode(encoding, 0, frame, records.payloadOffset(), length, aside.segment());
        long hash = PageDigest.contentHash(aside.segment(), 0);
        if (target.install(index, aside.segment(), 0)) {
            digest.update(index, hash);
        }
    }

    private void checkStripe(long index, int count) throws ProtocolException {
        if (channel == channels) {
            throw new ProtocolException("page " + index + " on the request channel before post-copy");
        }
        long last = index + count - 1;
        if (PageBitmap.stripeOf(index, channels) != channel
                || (channels > 1 && index / PageBitmap.STRIPE_PAGES != last / PageBitmap.STRIPE_PAGES)) {
            throw new ProtocolException("pages " + index + ".." + last + " on channel " + channel
                    + ", which carries only its own stripes of " + PageBitmap.STRIPE_PAGES + " pages");
        }
    }

    /**
     * This channel's end of a round: before post-copy the count it announces must be what arrived
     * on it since the previous one (a record lost or added in between is a broken stream).
     */
    public void roundEnd(Wire.RoundEnd end) throws ProtocolException {
        // in post-copy a lost connection may have carried pages that never arrived: they are asked for again
        if (postcopy == null && end.pages() != pagesThisRound) {
            throw new ProtocolException("channel " + channel + " ended round " + end.round() + " with " + end.pages()
                    + " pages, " + pagesThisRound + " arrived on it");
        }
        pagesThisRound = 0;
    }

    /**
     * Pages go through {@code target} from now on. Called while no frame is being applied: the
     * source sends no page between the last pre-copy round and the destination's POSTCOPY_RUNNING.
     */
    public void postcopy(PostcopyTarget target) {
        if (aside == null) {
            aside = GuestMemory.anonymous(GuestMemory.PAGE_SIZE);
        }
        this.postcopy = target;
    }

    /** Pages applied on this channel, by encoding code. */
    public long pagesOf(int encoding) {
        return pagesByEncoding[encoding];
    }

    /** Pages applied on this channel (a zero run counts its pages). */
    public long pages() {
        return pages;
    }

    /** Frame bytes received on this channel (headers included). */
    public long bytes() {
        return bytes;
    }

    @Override
    public void close() {
        decoder.close();
        if (aside != null) {
            aside.close();
        }
    }
}
