package dev.ferry.postcopy;

import dev.ferry.core.FaultMechanism;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageGate;
import dev.ferry.core.PostcopyReport;
import dev.ferry.postcopy.uffd.Userfaultfd;
import dev.ferry.protocol.PageRuns;
import dev.ferry.protocol.Wire;
import dev.ferry.stream.PostcopyTarget;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.buffer.ByteBuf;
import java.lang.foreign.MemorySegment;
import java.util.function.IntFunction;

/**
 * The destination's half of post-copy: which pages are missing (DISCARD), the fault path that
 * catches the guest's accesses to them (userfaultfd, or the software gate), installing pages as
 * they arrive on any channel, and what is still missing when a lost session reconnects.
 */
public final class PostcopyDestination implements PostcopyTarget, AutoCloseable {
    private final GuestMemory memory;
    private final PageBitmap written;
    private final FaultMechanism mechanism;
    private final NanoClock clock;
    private final FaultLatency latency;
    private final PresentPages present;
    private UserfaultFaults userfault;
    private SoftwareFaults software;
    private String softwareReason;
    private volatile PageRequester requester;
    private volatile boolean recovered;

    /**
     * @param written the pages written before post-copy (a page never written is still zero here),
     *                read only from now on
     */
    public PostcopyDestination(GuestMemory memory, PageBitmap written, FaultMechanism mechanism, NanoClock clock,
            MeterRegistry registry) {
        this.memory = memory;
        this.written = written;
        this.mechanism = mechanism;
        this.clock = clock;
        this.latency = new FaultLatency(registry);
        this.present = new PresentPages(memory.pageCount(), clock);
    }

    /**
     * Links userfaultfd's native calls now, at the handshake, if the fault path will use them: the
     * first call of each costs tens of milliseconds that must not fall into the switch-over.
     */
    public static void prepare(FaultMechanism mechanism) {
        if (mechanism != FaultMechanism.SOFTWARE && Userfaultfd.available()) {
            UserfaultFaults.warmUp();
        }
    }

    /** A run of DISCARD: those pages are stale here until they come again. */
    public void discard(long first, long count) {
        for (long p = first; p < first + count; p++) {
            present.markMissing(p);
        }
    }

    /**
     * Starts the fault path before the guest resumes: from now on an access to a missing page
     * asks {@code requester} for it and waits.
     *
     * @return where the guest's threads must check pages
     */
    public PageGate start(PageRequester requester) {
        this.requester = requester;
        if (mechanism != FaultMechanism.SOFTWARE) {
            String unavailable = Userfaultfd.unavailableReason();
            if (unavailable == null) {
                try {
                    userfault = UserfaultFaults.start(memory, present, requester, latency, clock);
                    return userfault;
                } catch (RuntimeException e) {
                    unavailable = e.getMessage();
                }
            }
            if (mechanism == FaultMechanism.USERFAULTFD) {
                throw new IllegalStateException("userfaultfd was asked for and cannot be used: " + unavailable);
            }
            softwareReason = unavailable;
        }
        software = new SoftwareFaults(present, requester, latency, clock);
        return software;
    }

    @Override
    public boolean isPresent(long page) {
        return present.isPresent(page);
    }

    @Override
    public long nextMissing(long from, long to) {
        return present.nextMissing(from, to);
    }

    @Override
    public boolean install(long page, MemorySegment src, long offset) {
        if (userfault != null) {
            // registered memory is never touched from Java: the kernel installs it atomically
            return userfault.install(page, src, offset);
        }
        MemorySegment.copy(src, offset, memory.segment(), page << GuestMemory.PAGE_SHIFT, GuestMemory.PAGE_SIZE);
        return present.markPresent(page);
    }

    @Override
    public boolean installZero(long page) {
        if (userfault != null) {
            return userfault.installZero(page);
        }
        if (written.get(page)) {
            memory.segment().asSlice(page << GuestMemory.PAGE_SHIFT, GuestMemory.PAGE_SIZE).fill((byte) 0);
        }
        return present.markPresent(page);
    }

    @Override
    public void requestAgain(long page) {
        requester.request(page);
    }

    @Override
    public boolean recovered() {
        return recovered;
    }

    /** A lost connection was recovered: what it carried may never have arrived. */
    public void markRecovered() {
        recovered = true;
    }

    /** Pages still missing. */
    public long missing() {
        return present.missing();
    }

    /** The pages still missing as MISSING frames, each in a buffer from {@code buffers}, to {@code sink}. */
    public <E extends Exception> void writeMissing(IntFunction<ByteBuf> buffers, PageRuns.FrameSink<E> sink) throws E {
        PageRuns.write(Wire.MISSING, new PageRuns.Pages() {
            @Override
            public long nextIn(long from) {
                return present.nextMissing(from);
            }

            @Override
            public long nextOut(long from) {
                return present.nextPresent(from);
            }
        }, buffers, sink);
    }

    /** The migration failed for good: every guest thread waiting for a page, now and later, gives up. */
    public void fail(String reason) {
        present.fail(reason);
        close();
    }

    /** The destination's post-copy figures; 0 for the source's. */
    public PostcopyReport report(int recoveries) {
        long faults = userfault != null ? userfault.faults() : software != null ? software.faults() : 0;
        String how = userfault != null ? "userfaultfd"
                : softwareReason == null ? "software" : "software (userfaultfd: " + softwareReason + ")";
        return new PostcopyReport(0, faults, 0, 0, 0, recoveries, how, latency.quantile(0.5), latency.quantile(0.99),
                latency.max(), latency.histogram());
    }

    /** Every page is here (or the guest is lost): memory goes back to plain access. */
    @Override
    public void close() {
        if (userfault != null) {
            userfault.close();
        }
    }
}
