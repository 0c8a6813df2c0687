package dev.ferry.postcopy;

import dev.ferry.core.ClaimablePages;
import dev.ferry.core.MemoryDigest;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import dev.ferry.protocol.PageRuns;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.Wire;
import dev.ferry.stream.CancelledException;
import dev.ferry.stream.PageChannels;
import dev.ferry.stream.PageSender;
import dev.ferry.stream.SourceControl;
import dev.ferry.transport.Link;
import dev.ferry.transport.LinkException;
import io.netty.buffer.ByteBuf;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The source's half of post-copy, with the guest paused here for good: tell the destination which
 * pages it holds stale copies of (DISCARD), hand it the device state and let it resume
 * (POSTCOPY_START); then push every page it lacks over the page channels, a small batch at a time,
 * while the request channel's event loop answers the destination's page requests as they are
 * read, so that a request never waits behind the push (QEMU's postcopy-preempt), nor for a thread
 * to be woken. A page goes once: the push and the answers claim pages from one set.
 *
 * <p>With dedup a page may cross as a reference to a copy the destination holds. One it finds
 * stale (the guest runs there and may have changed the copy) it asks for at once, and a request
 * for a page sent as a reference is answered in full; the post-copy barrier's STALE names any
 * still missing, and those cross once more, in full, before END.
 *
 * <p>A lost connection loses nothing (QEMU's postcopy recovery): until {@code recover-timeout}
 * runs out, the session is connected anew, the destination says what it still lacks (MISSING),
 * and the push goes on from there.
 */
public final class PostcopySource {
    /**
     * Pages per pushed frame: 32 KiB raw, so that little of ours is queued on a connection (at
     * 100 MB/s a queued batch is 0.3 ms).
     */
    static final int BATCH = 8;
    private static final long RECOVER_RETRY_NANOS = 200_000_000L;

    private final PageChannels channels;
    private final PageSender requests;
    private final SourceControl control;
    private final NanoClock clock;
    private final long recoverTimeoutMillis;
    private final Reconnector reconnector;
    private final Runnable progress;
    private volatile long pagesRequested;
    private volatile ClaimablePages claimable;
    private long pagesPushed;
    private int recoveries;
    private long bytesOnLostLinks;
    private long staleReferences;

    /** Connects the whole session anew after a loss: the control connection with RECOVER, every channel with JOIN. */
    @FunctionalInterface
    public interface Reconnector {
        /**
         * @param missing filled with the pages the destination still lacks, as its MISSING runs say
         * @return the new connections, control first, then the page channels in order, then the request channel
         */
        List<Link> reconnect(PageBitmap missing) throws LinkException, ProtocolException;
    }

    /**
     * What post-copy did; {@code resumeNanos} is when POSTCOPY_RUNNING said the destination resumed,
     * or -1 when the connection was lost before it came (RESUMED says it too); {@code staleReferences}
     * are the pages the post-copy barrier's STALE named, sent once more in full.
     */
    public record Result(Wire.Resumed resumed, long resumeNanos, long pagesRequested, long pagesPushed, int recoveries,
            long bytesOnLostLinks, long staleReferences) {
    }

    /**
     * @param progress called as the push goes (every 50 ms or so), as pre-copy's rounds call it:
     *                 a listener hears post-copy's progress without polling
     */
    public PostcopySource(PageChannels channels, PageSender requests, SourceControl control, NanoClock clock,
            long recoverTimeoutMillis, Reconnector reconnector, Runnable progress) {
        this.progress = progress;
        this.channels = channels;
        this.requests = requests;
        this.control = control;
        this.clock = clock;
        this.recoverTimeoutMillis = recoverTimeoutMillis;
        this.reconnector = reconnector;
    }

    /**
     * Switches over and pushes to the end. The guest is paused and {@code toSend} holds every page
     * the destination lacks or holds stale.
     *
     * @param round  the post-copy round's number: the rounds before it plus one
     * @param digest  the sent digest, read for END once every page went
     * @param session the session END's digest is sealed to, with the device state
     */
    public Result run(PageBitmap toSend, int round, long pauseNanos, byte[] deviceState, MemoryDigest digest,
            long session) throws LinkException, ProtocolException {
        try {
            control.discard(toSend);
            control.deviceState(deviceState);
            control.postcopyStart(pauseNanos);
        } catch (LinkException e) {
            control.refusalOr(e);
        }
        // the destination may drop its stale copies: deltas against them are no use
        channels.xbzrleActive(false);
        requests.xbzrleActive(false);
        boolean dedup = channels.dedup();
        ClaimablePages referenced = new ClaimablePages(new PageBitmap(toSend.pageCount()));
        channels.postcopy(referenced, toSend);
        requests.postcopy(referenced, toSend);
        lowLatency();
        ClaimablePages remaining = new ClaimablePages(toSend);
        claimable = remaining;
        long total = remaining.remaining();
        long resumeNanos = -1;
        try {
            // no page may cross before the destination switched its channels to the fault path
            resumeNanos = control.awaitPostcopyRunning();
        } catch (LinkException e) {
            // lost with the switch-over: the destination may run the guest already, so it is
            // recovered like any loss (a destination that never switched refuses the RECOVER)
            recover(e, remaining);
        }
        boolean references = dedup;
        int barrier = round;
        while (true) {
            RequestServer server = new RequestServer(remaining);
            try {
                channels.push(remaining, BATCH, () -> {
                    server.check();
                    control.checkPeer();
                    progress.run();
                });
                server.finish();
                // the barrier: END is checked only after every page pushed or answered was applied
                for (int c = 0; c < channels.count(); c++) {
                    channels.sender(c).endPostcopy(barrier);
                }
                requests.endPostcopy(barrier);
                control.roundEnd(barrier, total);
                if (dedup) {
                    PageBitmap stale = new PageBitmap(toSend.pageCount());
                    long count = control.awaitStale(barrier, stale);
                    if (count > 0) {
                        if (!references) {
                            throw new ProtocolException("the destination reported pages stale that crossed in full");
                        }
                        // the pages still missing for a stale reference cross once more, in full
                        staleReferences += count;
                        references = false;
                        channels.dedupActive(false);
                        requests.dedupActive(false);
                        remaining.replaceWith(stale);
                        total += count;
                        barrier++;
                        continue;
                    }
                }
                control.end(dev.ferry.core.PageDigest.seal(digest.value(), deviceState, session), pauseNanos);
                Wire.Resumed resumed = control.awaitResumed();
                pagesPushed = total - pagesRequested;
                return new Result(resumed, resumeNanos, pagesRequested, pagesPushed, recoveries, bytesOnLostLinks,
                        staleReferences);
            } catch (LinkException | CancelledException e) {
                server.stop();
                recover(e, remaining);
            } finally {
                // the server reads guest memory and the digest without their lifetime checks: it
                // must be gone before the session hands them back
                server.stop();
            }
        }
    }

    /** Pages not sent yet, pushed or requested, from any thread; only decreases between barriers (all of them before the push). */
    public long remaining() {
        ClaimablePages c = claimable;
        return c == null ? -1 : c.remaining();
    }

    /** Pages the destination asked for so far. */
    public long pagesRequested() {
        return pagesRequested;
    }

    private void lowLatency() {
        control.link().lowLatency();
        requests.link().lowLatency();
        for (int c = 0; c < channels.count(); c++) {
            channels.sender(c).link().lowLatency();
        }
    }

    /** Reconnects until {@code recover-timeout}; the destination's MISSING pages are what is left to push. */
    private void recover(Exception cause, ClaimablePages remaining) throws LinkException {
        bytesOnLostLinks += channels.bytesSent() + requests.link().bytesSent() + control.link().bytesSent();
        channels.closeLinks();
        requests.link().close();
        control.link().close();
        long deadline = clock.nanoTime() + TimeUnit.MILLISECONDS.toNanos(recoverTimeoutMillis);
        String last = cause.getMessage();
        while (clock.nanoTime() < deadline) {
            PageBitmap missing = new PageBitmap(remaining.pageCount());
            try {
                List<Link> links = reconnector.reconnect(missing);
                control.relink(links.getFirst());
                channels.relink(links.subList(1, 1 + channels.count()));
                requests.relink(links.getLast());
                lowLatency();
                remaining.replaceWith(missing);
                recoveries++;
                return;
            } catch (LinkException | ProtocolException e) {
                // the destination may not have noticed the old connections are gone yet, or the new ones broke too
                last = e.getMessage();
                LockSupport.parkNanos(Math.max(0, Math.min(RECOVER_RETRY_NANOS, deadline - clock.nanoTime())));
            }
        }
        throw new LinkException("post-copy connection lost (" + cause.getMessage() + ") and not recovered within "
                + recoverTimeoutMillis + " ms; last attempt: " + last);
    }

    /**
     * Reads MISSING runs into {@code missing} until RECOVERED, which must count the same pages:
     * the destination's answer to RECOVER, on {@code link}.
     */
    public static void readMissing(Link link, PageBitmap missing, long timeoutMillis)
            throws LinkException, ProtocolException {
        missing.clearAll();
        while (true) {
            ByteBuf frame = SourceControl.awaitOn(link, "RECOVERED", timeoutMillis);
            try {
                int type = frame.readUnsignedByte();
                switch (type) {
                    case Wire.MISSING -> PageRuns.read("MISSING", frame, missing.pageCount(), (first, count) -> {
                        for (long p = first; p < first + count; p++) {
                            missing.set(p);
                        }
                    });
                    case Wire.RECOVERED -> {
                        long count = Wire.readRecovered(frame);
                        if (count != missing.cardinality()) {
                            throw new ProtocolException("RECOVERED counts " + count + " missing pages, the runs "
                                    + missing.cardinality());
                        }
                        return;
                    }
                    case Wire.ERROR -> throw new ProtocolException("destination refused the recovery: " + Wire.readError(frame));
                    default -> throw new ProtocolException("unexpected " + Wire.typeName(type) + " in answer to RECOVER");
                }
            } finally {
                frame.release();
            }
        }
    }

    /**
     * Answers PAGE_REQUESTs on the request channel's event loop as they arrive, until stopped. The
     * request sender is used by that loop alone meanwhile: {@link #stop} returns once the loop has
     * let go of it.
     *
     * <p>It was a thread of its own, woken by each request and handing each answer back to the
     * loop to write: two scheduler wake-ups per fault on top of the two the destination needs.
     */
    private final class RequestServer implements Link.Arrivals {
        private final ClaimablePages remaining;
        private final Link link;
        private volatile boolean stopping;
        private volatile Exception failure;

        RequestServer(ClaimablePages remaining) {
            this.remaining = remaining;
            this.link = requests.link();
            link.onArrival(this);
        }

        @Override
        public void frame(ByteBuf frame) {
            try {
                if (!stopping && failure == null) {
                    serve(frame);
                }
            } catch (LinkException | ProtocolException | RuntimeException e) {
                if (!stopping) {
                    failure = e;
                }
            } finally {
                frame.release();
            }
        }

        @Override
        public void closed(String reason) {
            if (!stopping && failure == null) {
                failure = new LinkException(reason);
            }
        }

        private void serve(ByteBuf frame) throws LinkException, ProtocolException {
            if (!frame.isReadable()) {
                throw new ProtocolException("empty frame on the request channel");
            }
            int type = frame.readUnsignedByte();
            if (type == Wire.ERROR) {
                throw new ProtocolException("destination failed: " + Wire.readError(frame));
            }
            if (type != Wire.PAGE_REQUEST) {
                throw new ProtocolException("unexpected " + Wire.typeName(type) + " on the request channel");
            }
            long[] pages = new long[frame.readableBytes() / 8];
            int[] n = {0};
            Wire.readPageRequest(frame, remaining.pageCount(), page -> pages[n[0]++] = page);
            for (int i = 0; i < n[0]; i++) {
                // a page already claimed by the push, or asked twice, is on its way
                if (requests.sendRequested(remaining, pages[i])) {
                    pagesRequested++;
                }
            }
        }

        /** Surfaces a failure of the request channel on the pushing side. */
        void check() throws LinkException, ProtocolException {
            Exception e = failure;
            if (e instanceof LinkException link) {
                throw link;
            }
            if (e instanceof ProtocolException protocol) {
                throw protocol;
            }
            if (e != null) {
                throw new IllegalStateException(e);
            }
        }

        /** Every page went: stop answering (late requests are for pages in flight) and hand over its digest part. */
        void finish() throws LinkException, ProtocolException {
            stop();
            check();
        }

        /**
         * Stops answering; returns once the loop is done with the request sender (or after
         * {@link Link#onArrival}'s bound, a loop that long stuck being lost anyway). Late requests
         * stay queued, unread.
         */
        void stop() {
            stopping = true;
            link.onArrival(null);
        }
    }
}
