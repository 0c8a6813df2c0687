package dev.ferry.postcopy;

import dev.ferry.core.NanoClock;
import dev.ferry.core.PageGate;
import java.util.concurrent.atomic.LongAdder;

/**
 * The fault path where the guest's own access path checks for missing pages (no userfaultfd): a
 * guest thread about to touch a missing page requests it and blocks until it is installed. A
 * request lost with a broken link is repeated every {@link #RETRY_NANOS} until the page arrives
 * or the migration fails for good ({@link PageLostException}).
 */
public final class SoftwareFaults implements PageGate {
    static final long RETRY_NANOS = 1_000_000_000L;

    private final PresentPages present;
    private final PageRequester requester;
    private final FaultLatency latency;
    private final NanoClock clock;
    private final LongAdder faults = new LongAdder();

    public SoftwareFaults(PresentPages present, PageRequester requester, FaultLatency latency, NanoClock clock) {
        this.present = present;
        this.requester = requester;
        this.latency = latency;
        this.clock = clock;
    }

    @Override
    public void awaitPresent(long page) {
        if (present.isPresent(page)) {
            return;
        }
        long start = clock.nanoTime();
        faults.increment();
        requester.request(page);
        while (!present.awaitPresent(page, RETRY_NANOS)) {
            requester.request(page);
        }
        latency.record((clock.nanoTime() - start) / 1000);
    }

    /** Guest accesses that found their page missing. */
    public long faults() {
        return faults.sum();
    }
}
