package dev.ferry.postcopy;

import dev.ferry.core.GuestMemory;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageGate;
import dev.ferry.postcopy.uffd.GuestAccess;
import dev.ferry.postcopy.uffd.MissingPageRegion;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

/**
 * The fault path with real page faults: destination memory is registered with userfaultfd, the
 * pages still missing are dropped, and any load or store to one of them blocks in the kernel. A
 * handler thread reads the fault events and requests the pages; each arriving page is installed
 * atomically with UFFDIO_COPY, which wakes the threads waiting for it.
 *
 * <p>The whole fault path runs without a Java thread touching registered memory: guest stores go
 * through {@link #store} (a native memcpy, so a faulting guest thread waits "in native" and
 * safepoints proceed), the handler only makes downcalls, and pages are installed from a private
 * buffer. A page that is present but was never written here is a zero page the kernel has not
 * populated: its fault is answered with UFFDIO_ZEROPAGE without asking the source.
 */
public final class UserfaultFaults implements PageGate, AutoCloseable {
    /** A request older than this is sent again (it may have been lost with a broken link). */
    static final long RETRY_NANOS = 1_000_000_000L;
    private static final long POLL_NANOS = 100_000_000L;

    private final MissingPageRegion region;
    private final GuestAccess access;
    private final PresentPages present;
    private final PageRequester requester;
    private final FaultLatency latency;
    private final NanoClock clock;
    private final ConcurrentHashMap<Long, Long> pending = new ConcurrentHashMap<>();
    private final LongAdder faults = new LongAdder();
    private final Thread handler;

    private UserfaultFaults(MissingPageRegion region, PresentPages present, PageRequester requester,
            FaultLatency latency, NanoClock clock) {
        this.region = region;
        this.access = new GuestAccess(region.memory());
        this.present = present;
        this.requester = requester;
        this.latency = latency;
        this.clock = clock;
        this.handler = new Thread(this::handle, "ferry-userfaultfd");
        this.handler.setDaemon(true);
    }

    /**
     * Registers {@code memory}, drops every page {@code present} lacks, and starts the handler.
     *
     * @throws dev.ferry.postcopy.uffd.UserfaultfdException when the kernel refuses
     */
    public static UserfaultFaults start(GuestMemory memory, PresentPages present, PageRequester requester,
            FaultLatency latency, NanoClock clock) {
        MissingPageRegion region = MissingPageRegion.register(memory);
        try (MissingPageRegion.Discards discards = region.discards()) {
            for (long page = present.nextMissing(0); page >= 0; ) {
                long end = present.nextPresent(page);
                discards.add(page, end - page);
                page = present.nextMissing(end);
            }
        }
        UserfaultFaults faults = new UserfaultFaults(region, present, requester, latency, clock);
        faults.handler.start();
        return faults;
    }

    /**
     * Links every native call of the fault path on a page of its own. The first call of each costs
     * tens of milliseconds, which must not fall into the switch-over's downtime: a destination
     * that may enter post-copy calls this at the handshake.
     */
    public static void warmUp() {
        try (GuestMemory pages = GuestMemory.anonymous(2L * GuestMemory.PAGE_SIZE);
             MissingPageRegion region = MissingPageRegion.register(pages);
             java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            MemorySegment page = arena.allocate(GuestMemory.PAGE_SIZE);
            try (MissingPageRegion.Discards discards = region.discards()) {
                // two runs, so the batched call is the one linked, as a switch-over makes it
                discards.add(0, 1);
                discards.add(1, 1);
            }
            region.awaitFault(0);
            region.install(0, page, 0);
            region.installZero(1);
            new GuestAccess(pages).write(0, 0, page, 0, 8);
        }
    }

    /** The kernel blocks an access to a missing page; nothing to check here. */
    @Override
    public void awaitPresent(long page) {
    }

    @Override
    public void store(MemorySegment src, long srcOffset, GuestMemory memory, long dstOffset, int length) {
        access.write(dstOffset >>> GuestMemory.PAGE_SHIFT, (int) (dstOffset & (GuestMemory.PAGE_SIZE - 1)), src,
                srcOffset, length);
    }

    /** Installs an arrived page from {@code src} and wakes its waiters; false if it was already present. */
    public boolean install(long page, MemorySegment src, long srcOffset) {
        boolean installed = region.install(page, src, srcOffset);
        arrived(page);
        return installed;
    }

    /** Installs an arrived zero page and wakes its waiters; false if it was already present. */
    public boolean installZero(long page) {
        boolean installed = region.installZero(page);
        arrived(page);
        return installed;
    }

    private void arrived(long page) {
        present.markPresent(page);
        Long started = pending.remove(page);
        if (started != null) {
            latency.record((clock.nanoTime() - started) / 1000);
        }
    }

    private void handle() {
        long lastRetry = clock.nanoTime();
        while (true) {
            long page = region.awaitFault(POLL_NANOS);
            if (page == MissingPageRegion.CLOSED) {
                return;
            }
            long now = clock.nanoTime();
            if (page >= 0) {
                if (present.isPresent(page)) {
                    region.installZero(page);
                } else if (pending.putIfAbsent(page, now) == null) {
                    faults.increment();
                    requester.request(page);
                    if (present.isPresent(page)) {
                        // it arrived between the check and the request: nobody will remove it
                        pending.remove(page);
                    }
                }
            }
            if (now - lastRetry >= RETRY_NANOS) {
                lastRetry = now;
                pending.forEach((p, since) -> {
                    if (now - since >= RETRY_NANOS) {
                        requester.request(p);
                    }
                });
            }
        }
    }

    /** Guest accesses that faulted on a missing page. */
    public long faults() {
        return faults.sum();
    }

    /**
     * Unregisters the memory and stops the handler. Once every page is present this only hands
     * memory back to plain Java access; before that, blocked guest threads go on over zero pages,
     * so call it early only when the guest is lost anyway.
     */
    @Override
    public void close() {
        region.close();
        try {
            handler.join(TimeUnit.SECONDS.toMillis(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
