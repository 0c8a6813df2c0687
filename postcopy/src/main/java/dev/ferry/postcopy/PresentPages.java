package dev.ferry.postcopy;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.TimeUnit;

/**
 * Which pages the destination holds during post-copy, shared by the thread that installs
 * arriving pages and every guest thread that waits for one.
 *
 * <p>A page is published by storing its bytes, then setting its bit with a volatile atomic OR:
 * a guest thread that sees the bit also sees the bytes. Waiters park on one monitor that is
 * notified only when a page somebody waits for arrives, so the background push costs no wake-ups.
 */
public final class PresentPages {
    private static final VarHandle WORDS = MethodHandles.arrayElementVarHandle(long[].class);

    private final long[] words;
    private final long pageCount;
    private final Object arrivals = new Object();
    private volatile int waiters;
    private volatile String failure;
    private final java.util.concurrent.atomic.AtomicLong missing = new java.util.concurrent.atomic.AtomicLong();

    private final dev.ferry.core.NanoClock clock;

    /** All {@code pageCount} pages present; {@code clock} bounds the waits for a page. */
    public PresentPages(long pageCount, dev.ferry.core.NanoClock clock) {
        this.clock = clock;
        if (pageCount <= 0 || pageCount > (long) Integer.MAX_VALUE * 64) {
            throw new IllegalArgumentException("page count out of range: " + pageCount);
        }
        this.pageCount = pageCount;
        this.words = new long[(int) ((pageCount + 63) >>> 6)];
        for (int w = 0; w < words.length; w++) {
            long left = pageCount - ((long) w << 6);
            words[w] = left >= 64 ? -1L : (1L << left) - 1;
        }
    }

    /** Pages covered. */
    public long pageCount() {
        return pageCount;
    }

    /** Whether {@code page} is present. */
    public boolean isPresent(long page) {
        return ((long) WORDS.getVolatile(words, (int) (page >>> 6)) & (1L << page)) != 0;
    }

    /** Marks {@code page} missing (before the guest resumes); returns whether it was present. Installer thread only. */
    public boolean markMissing(long page) {
        check(page);
        long bit = 1L << page;
        long before = (long) WORDS.getAndBitwiseAnd(words, (int) (page >>> 6), ~bit);
        if ((before & bit) != 0) {
            missing.incrementAndGet();
            return true;
        }
        return false;
    }

    /**
     * Publishes {@code page} after its bytes were stored; returns whether it was missing (false:
     * a duplicate, to be ignored). Any installing thread.
     */
    public boolean markPresent(long page) {
        check(page);
        long bit = 1L << page;
        long before = (long) WORDS.getAndBitwiseOr(words, (int) (page >>> 6), bit);
        if ((before & bit) != 0) {
            return false;
        }
        missing.decrementAndGet();
        if (waiters > 0) {
            synchronized (arrivals) {
                arrivals.notifyAll();
            }
        }
        return true;
    }

    /** Pages still missing. */
    public long missing() {
        return missing.get();
    }

    /** The first missing page at or after {@code from}, or -1. */
    public long nextMissing(long from) {
        return nextMissing(from, pageCount);
    }

    /** The first missing page in {@code [from, to)}, or -1: a scan of that range's words only. */
    public long nextMissing(long from, long to) {
        long end = Math.min(to, pageCount);
        for (long page = from; page < end; page++) {
            int w = (int) (page >>> 6);
            long absent = ~(long) WORDS.getVolatile(words, w) & (-1L << page);
            if (absent != 0) {
                long found = ((long) w << 6) + Long.numberOfTrailingZeros(absent);
                return found < end ? found : -1;
            }
            page = ((long) w << 6) + 63;
        }
        return -1;
    }

    /** The first present page at or after {@code from}, or {@link #pageCount()}: where a run of missing pages ends. */
    public long nextPresent(long from) {
        for (long page = from; page < pageCount; page++) {
            int w = (int) (page >>> 6);
            long here = (long) WORDS.getVolatile(words, w) & (-1L << page);
            if (here != 0) {
                return Math.min(pageCount, ((long) w << 6) + Long.numberOfTrailingZeros(here));
            }
            page = ((long) w << 6) + 63;
        }
        return pageCount;
    }

    /**
     * Waits until {@code page} is present, at most {@code timeoutNanos}; returns whether it is.
     *
     * @throws PageLostException once the migration has failed for good: the page will never come
     */
    public boolean awaitPresent(long page, long timeoutNanos) {
        if (isPresent(page)) {
            return true;
        }
        long deadline = clock.nanoTime() + timeoutNanos;
        synchronized (arrivals) {
            waiters++;
            try {
                while (!isPresent(page)) {
                    if (failure != null) {
                        throw new PageLostException(page, failure);
                    }
                    long left = deadline - clock.nanoTime();
                    if (left <= 0) {
                        return false;
                    }
                    TimeUnit.NANOSECONDS.timedWait(arrivals, left);
                }
                return true;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new PageLostException(page, "interrupted while waiting");
            } finally {
                waiters--;
            }
        }
    }

    /** The migration failed for good: every waiter, now and later, gets a {@link PageLostException}. */
    public void fail(String reason) {
        failure = reason;
        synchronized (arrivals) {
            arrivals.notifyAll();
        }
    }

    private void check(long page) {
        if (page < 0 || page >= pageCount) {
            throw new IndexOutOfBoundsException("page " + page + " of " + pageCount);
        }
    }
}
