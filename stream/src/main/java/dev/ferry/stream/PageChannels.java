package dev.ferry.stream;

import dev.ferry.compression.StageStats;
import dev.ferry.core.ClaimablePages;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import dev.ferry.transport.LinkException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The source's page channels, each a {@link PageSender} on a thread of its own. A round is dealt
 * out by stripe ({@link PageBitmap#takeStripe}) and sent on every channel at once; the round ends
 * when every channel has sent its share and its ROUND_END, which is the drain the session needs
 * before it sends anything that must follow the round's pages (the barrier frame, DISCARD, END).
 *
 * <p>A channel that fails stops the others at their next frame and closes every connection, so
 * the round fails within one peer timeout whatever the other channels were waiting for.
 */
public final class PageChannels implements AutoCloseable {
    /** How often the waiting session thread reports progress and looks at the control connection. */
    private static final long POLL_NANOS = 50_000_000L;

    private final PageSender[] senders;
    private final PageBitmap[] shares;
    private final ExecutorService threads;
    private final NanoClock clock;
    private volatile Throwable failure;

    /** What the session thread does while the channels send: progress, the peer's ERROR frames. */
    @FunctionalInterface
    public interface Watcher {
        void poll() throws LinkException, dev.ferry.protocol.ProtocolException;
    }

    /** The figures of one round over every channel. */
    public record Round(long pages, long bytes, long nanos, StageStats stats) {
    }

    public PageChannels(List<PageSender> senders, long pageCount, NanoClock clock) {
        this.senders = senders.toArray(PageSender[]::new);
        this.shares = new PageBitmap[this.senders.length];
        for (int c = 0; c < shares.length; c++) {
            shares[c] = new PageBitmap(pageCount);
        }
        this.clock = clock;
        AtomicInteger next = new AtomicInteger();
        this.threads = Executors.newFixedThreadPool(this.senders.length, r -> {
            Thread t = new Thread(r, "ferry-channel-" + next.getAndIncrement());
            t.setDaemon(true);
            return t;
        });
    }

    /** Number of page channels. */
    public int count() {
        return senders.length;
    }

    /** Channel {@code c}'s sender. */
    public PageSender sender(int c) {
        return senders[c];
    }

    /**
     * Sends the pages of {@code pages} (emptied into the channels' shares) as round {@code round}
     * on every channel, and waits until each has sent its ROUND_END. Pages a round stopped early
     * left unsent go back into {@code pages}.
     */
    public Round sendRound(PageBitmap pages, int round, RoundControl control, Watcher watcher)
            throws LinkException, CancelledException, dev.ferry.protocol.ProtocolException {
        for (int c = 0; c < senders.length; c++) {
            shares[c].takeStripe(pages, c, senders.length);
        }
        long bytesBefore = bytesSent();
        StageStats statsBefore = stats();
        long began = clock.nanoTime();
        RoundControl guarded = new RoundControl() {
            @Override
            public boolean cancelled() {
                return failure != null || control.cancelled();
            }

            @Override
            public boolean stopEarly() {
                return control.stopEarly();
            }
        };
        List<Future<Long>> sent = new ArrayList<>();
        for (int c = 0; c < senders.length; c++) {
            PageSender sender = senders[c];
            PageBitmap share = shares[c];
            sent.add(threads.submit(() -> guard(() -> sender.sendRound(share, round, guarded))));
        }
        long total = 0;
        for (Future<Long> f : sent) {
            total += await(f, watcher);
        }
        for (PageBitmap share : shares) {
            pages.or(share);
            share.clearAll();
        }
        return new Round(total, bytesSent() - bytesBefore, clock.nanoTime() - began, stats().minus(statsBefore));
    }

    /**
     * The post-copy push: every channel sends the pages of its stripes it claims from
     * {@code remaining}, {@code batch} pages a frame, until none is left.
     */
    public void push(ClaimablePages remaining, int batch, Watcher watcher)
            throws LinkException, CancelledException, dev.ferry.protocol.ProtocolException {
        List<Future<Long>> pushed = new ArrayList<>();
        for (int c = 0; c < senders.length; c++) {
            PageSender sender = senders[c];
            int stripe = c;
            pushed.add(threads.submit(() -> guard(() -> {
                long n = 0;
                for (int sent; failure == null && (sent = sender.pushBatch(remaining, stripe, senders.length, batch)) > 0; ) {
                    n += sent;
                }
                return n;
            })));
        }
        for (Future<Long> f : pushed) {
            await(f, watcher);
        }
    }

    /**
     * What a page of {@code pages} would take if sent now, averaged over up to {@code samples} of
     * them spread over the set, each asked of the channel its stripe goes to
     * ({@link PageSender#trialBytes}): its wire bytes, and the time its encoding took on this
     * thread (an XBZRLE delta's, mostly); null when the set is empty. Only between rounds.
     */
    public PageSample sample(PageBitmap pages, int samples) {
        long count = pages.cardinality();
        if (count == 0) {
            return null;
        }
        long step = Math.max(1, count / samples);
        for (PageSender s : senders) {
            s.startSample();
        }
        long bytes = 0;
        long sampled = 0;
        long seen = 0;
        long began = clock.nanoTime();
        for (long p = pages.nextSetBit(0); p >= 0 && sampled < samples; p = pages.nextSetBit(p + 1), seen++) {
            if (seen % step == 0) {
                bytes += senders[(int) ((p / PageBitmap.STRIPE_PAGES) % senders.length)].trialBytes(p);
                sampled++;
            }
        }
        return new PageSample((double) bytes / sampled, (double) (clock.nanoTime() - began) / sampled);
    }

    /** A sample's figures per page: wire bytes, and nanoseconds of encoding. */
    public record PageSample(double bytesPerPage, double encodeNanosPerPage) {
    }

    /** Pages of the round in progress sent so far, over every channel. */
    public long roundSent() {
        long pages = 0;
        for (PageSender s : senders) {
            pages += s.roundSent();
        }
        return pages;
    }

    /** Pages the rounds sent so far over every channel, as frames went out; it never decreases. */
    public long totalSent() {
        long pages = 0;
        for (PageSender s : senders) {
            pages += s.totalSent();
        }
        return pages;
    }

    /** Bytes sent on the page connections that their peer has not acknowledged yet (see {@code Link#queuedBytes}). */
    public long queuedBytes() {
        long bytes = 0;
        for (PageSender s : senders) {
            bytes += s.link().queuedBytes();
        }
        return bytes;
    }

    /** Bytes handed to the page connections so far. */
    public long bytesSent() {
        long bytes = 0;
        for (PageSender s : senders) {
            bytes += s.link().bytesSent();
        }
        return bytes;
    }

    /** Every channel's encoder figures together. */
    public StageStats stats() {
        StageStats sum = StageStats.empty();
        for (PageSender s : senders) {
            sum = sum.plus(s.stats());
        }
        return sum;
    }

    /** XBZRLE on every channel: on after the bulk round, off in post-copy. */
    public void xbzrleActive(boolean on) {
        for (PageSender s : senders) {
            s.xbzrleActive(on);
        }
    }

    /** Dedup references on every channel, or not. */
    public void dedupActive(boolean on) {
        for (PageSender s : senders) {
            s.dedupActive(on);
        }
    }

    /** Post-copy from now on, on every channel ({@link PageSender#postcopy}). */
    public void postcopy(ClaimablePages referenced, PageBitmap discarded) {
        for (PageSender s : senders) {
            s.postcopy(referenced, discarded);
        }
    }

    /** Whether the channels send dedup references (the handshake accepted dedup). */
    public boolean dedup() {
        return senders[0].dedup() != null;
    }

    /**
     * The dedup figures over every channel's index and the request channel's ({@code requests},
     * or null without post-copy), with {@code stale} references as the destination reported them,
     * or null without dedup.
     */
    public dev.ferry.core.DedupReport dedupReport(long references, long stale, PageSender requests) {
        if (!dedup()) {
            return null;
        }
        long misses = 0;
        long evictions = 0;
        long bytes = 0;
        long acrossGuests = 0;
        List<PageSender> all = new ArrayList<>(List.of(senders));
        if (requests != null) {
            all.add(requests);
        }
        for (PageSender s : all) {
            misses += s.dedup().misses();
            evictions += s.dedup().evictions();
            bytes += s.dedup().bytes();
            acrossGuests += s.acrossGuests();
        }
        return new dev.ferry.core.DedupReport(references, acrossGuests, misses, evictions, stale, bytes);
    }

    /** The next round is the stop-and-copy, on every channel. */
    public void lastRound() {
        for (PageSender s : senders) {
            s.lastRound();
        }
    }

    /** Channel 0's reason for compressing or not (each channel decides alone; the report shows one). */
    public String compressionReason() {
        return senders[0].compressionReason();
    }

    /**
     * Sends on {@code links} from now on, one per channel in order, and forgets the failure that
     * lost the old ones (post-copy recovered the session).
     */
    public void relink(List<dev.ferry.transport.Link> links) {
        for (int c = 0; c < senders.length; c++) {
            senders[c].relink(links.get(c));
        }
        failure = null;
    }

    /** Closes every page connection (a failure, or the end). */
    public void closeLinks() {
        for (PageSender s : senders) {
            s.link().close();
        }
    }

    private interface Work {
        long run() throws Exception;
    }

    /** Runs a channel's work; the first failure stops every other channel and closes the connections. */
    private long guard(Work work) throws Exception {
        try {
            return work.run();
        } catch (Exception | Error e) {
            if (failure == null) {
                failure = e;
                if (!(e instanceof CancelledException)) {
                    closeLinks();
                }
            }
            throw e;
        }
    }

    private long await(Future<Long> future, Watcher watcher)
            throws LinkException, CancelledException, dev.ferry.protocol.ProtocolException {
        while (true) {
            try {
                return future.get(POLL_NANOS, TimeUnit.NANOSECONDS);
            } catch (TimeoutException e) {
                watcher.poll();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new LinkException("interrupted while the channels were sending");
            } catch (ExecutionException e) {
                Throwable cause = failure != null ? failure : e.getCause();
                switch (cause) {
                    case LinkException link -> throw link;
                    case CancelledException cancelled -> throw cancelled;
                    case RuntimeException runtime -> throw runtime;
                    case Error error -> throw error;
                    default -> throw new IllegalStateException(cause);
                }
            }
        }
    }

    @Override
    public void close() {
        closeLinks();
        threads.shutdownNow();
        try {
            // a sender still in a frame must be out of it before its buffers are freed
            threads.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (PageSender s : senders) {
            s.close();
        }
    }
}
