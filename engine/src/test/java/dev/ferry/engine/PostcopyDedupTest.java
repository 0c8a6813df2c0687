package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Capability;
import dev.ferry.core.FaultMechanism;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationMode;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.PageGate;
import dev.ferry.core.VmControl;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.EnumSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * Dedup references in post-copy over real connections: the push sends pages as references to
 * copies the destination kept from pre-copy; a copy the guest changed on the destination after it
 * resumed there makes its references stale, and those pages are asked for again and arrive in full;
 * a requested page crosses as a reference to a page requested before; a gang member in post-copy
 * refers to another member's pages. Every case ends verified.
 *
 * <p>The mode is post-copy: the bulk round sends every page, then the switch. The source's pause
 * (the switch) rewrites pages so that post-copy has them to push: which references they make is
 * fixed by the contents, and what the destination changes it changes in its resume, before any
 * post-copy page crosses.
 */
class PostcopyDedupTest {
    private static final long SIZE = 16L << 20;
    private static final int PAGES = (int) (SIZE / GuestMemory.PAGE_SIZE);
    /** The kept copies: pages 0..1023, sent in the bulk round and never again. */
    private static final int KEPT = 0;
    /** Rewritten at the switch with the kept pages' contents: the same stripes (2 channels), 4 stripes on. */
    private static final int TWINS = 2048;
    private static final int COUNT = 1024;

    private static MigrationParameters postcopy(long maxBandwidth) {
        return MigrationParameters.builder().mode(MigrationMode.POSTCOPY).channels(2).maxBandwidth(maxBandwidth)
                .capabilities(EnumSet.of(Capability.ZERO_PAGES, Capability.POSTCOPY, Capability.DEDUP)).build();
    }

    /** A VM whose pause (the switch) runs {@code atPause} first and whose resume runs {@code atResume} first. */
    private static VmControl hooked(TestGuest guest, Runnable atPause, Runnable atResume) {
        return new ForwardingVm(guest) {
            @Override
            public void pause() {
                atPause.run();
                super.pause();
            }

            @Override
            public void resume() {
                atResume.run();
                super.resume();
            }
        };
    }

    /** Copies the kept pages' contents over the twins' and marks the twins dirty. */
    private static void rewriteTwins(TestGuest guest) {
        MemorySegment ram = guest.memory.segment();
        MemorySegment.copy(ram, (long) KEPT * GuestMemory.PAGE_SIZE, ram, (long) TWINS * GuestMemory.PAGE_SIZE,
                (long) COUNT * GuestMemory.PAGE_SIZE);
        for (int p = TWINS; p < TWINS + COUNT; p++) {
            guest.dirty.mark(p);
        }
    }

    /** Changes a word of every eighth kept page that is not zero (TestGuest keeps every fourth page zero); returns how many. */
    private static int changeKept(TestGuest target) {
        int changed = 0;
        for (int p = KEPT + 1; p < KEPT + COUNT; p += 8) {
            target.memory.segment().set(ValueLayout.JAVA_LONG, (long) p * GuestMemory.PAGE_SIZE + 64, ~(long) p);
            changed++;
        }
        return changed;
    }

    private static void assertSameTwins(TestGuest source, TestGuest target) {
        long at = (long) TWINS * GuestMemory.PAGE_SIZE;
        long length = (long) COUNT * GuestMemory.PAGE_SIZE;
        assertEquals(-1, source.memory.segment().asSlice(at, length).mismatch(target.memory.segment().asSlice(at, length)),
                "the twins arrived as the source has them");
    }

    @Test
    void thePushRefersToKeptCopiesAndOneTheGuestChangedThereIsStaleAndComesInFull() throws Exception {
        int[] changed = {0};
        try (TestGuest source = new TestGuest(SIZE, 21, false); TestGuest target = new TestGuest(SIZE, 0, false)) {
            target.memory.segment().fill((byte) 0);
            try (IncomingMigration in = Migration.destination(hooked(target, () -> { }, () -> changed[0] = changeKept(target)))
                    .memory(target.memory).start();
                 OutgoingMigration out = Migration.source(source.memory, source.dirty,
                         hooked(source, () -> rewriteTwins(source), () -> { }))
                         .parameters(postcopy(0)).connect(in.address()).start()) {
                MigrationReport sent = out.await(Duration.ofSeconds(60));
                MigrationReport received = in.await(Duration.ofSeconds(10));
                assertEquals(MigrationState.COMPLETED, sent.outcome(), sent.error());
                assertTrue(sent.verified() && received.verified(), sent.error() + " / " + received.error());
                assertTrue(sent.postcopy() != null, "it switched to post-copy");
                // every twin that is not zero refers to its kept copy: three in four
                long twins = COUNT * 3 / 4;
                assertEquals(twins, sent.dedup().hits(), sent.dedup().toString());
                assertEquals(twins, received.dedup().hits(), received.dedup().toString());
                assertEquals(changed[0], received.dedup().stale(), "each twin of a changed copy was stale");
                assertSameTwins(source, target);
            }
        }
    }

    @Test
    void aRequestedPageCrossesAsAReferenceToAPageRequestedBefore() throws Exception {
        long first = PAGES - 100;
        long second = PAGES - 50;
        AtomicReference<OutgoingMigration> handle = new AtomicReference<>();
        CountDownLatch resumed = new CountDownLatch(1);
        try (TestGuest source = new TestGuest(SIZE, 22, false); TestGuest target = new TestGuest(SIZE, 0, false)) {
            Runnable atPause = () -> {
                // every page goes again, the push at 100 kB/s from the lowest: it cannot reach the
                // last pages before the destination asks for them
                MemorySegment ram = source.memory.segment();
                MemorySegment.copy(ram, first * GuestMemory.PAGE_SIZE + GuestMemory.PAGE_SIZE, ram,
                        first * GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE);
                MemorySegment.copy(ram, first * GuestMemory.PAGE_SIZE, ram, second * GuestMemory.PAGE_SIZE,
                        GuestMemory.PAGE_SIZE);
                for (int p = 0; p < PAGES; p++) {
                    source.dirty.mark(p);
                }
                // the handle is set right after start(); the switch comes after a whole bulk round
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (handle.get() == null && System.nanoTime() < deadline) {
                    Thread.onSpinWait();
                }
                handle.get().maxBandwidth(100_000);
            };
            try (IncomingMigration in = Migration.destination(hooked(target, () -> { }, resumed::countDown))
                    .memory(target.memory).faultMechanism(FaultMechanism.SOFTWARE).start();
                 OutgoingMigration out = Migration.source(source.memory, source.dirty, hooked(source, atPause, () -> { }))
                         .parameters(postcopy(0)).connect(in.address()).start()) {
                handle.set(out);
                assertTrue(resumed.await(60, TimeUnit.SECONDS), "the destination resumed");
                PageGate gate = in.pageGate();
                gate.awaitPresent(first);
                gate.awaitPresent(second);
                out.maxBandwidth(0);
                MigrationReport sent = out.await(Duration.ofSeconds(60));
                MigrationReport received = in.await(Duration.ofSeconds(10));
                assertTrue(sent.verified() && received.verified(), sent.error() + " / " + received.error());
                assertTrue(sent.postcopy().pagesRequested() >= 2, "both were requested: " + sent.postcopy());
                assertEquals(1, received.dedup().hits(), "the second referred to the first: " + received.dedup());
                assertEquals(0, received.dedup().stale(), received.dedup().toString());
                assertEquals(-1, source.memory.segment().asSlice(second * GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE)
                        .mismatch(target.memory.segment().asSlice(second * GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE)));
            }
        }
    }

    @Test
    void aGangMemberInPostcopyRefersToAnotherMembersPagesAndOneChangedThereIsStale() throws Exception {
        Gang sources = Gang.create();
        Gang destinations = Gang.create();
        int[] changed = {0};
        try (TestGuest first = new TestGuest(SIZE, 23, false); TestGuest second = new TestGuest(SIZE, 23, false);
             TestGuest firstTarget = new TestGuest(SIZE, 0, false); TestGuest secondTarget = new TestGuest(SIZE, 0, false)) {
            try (IncomingMigration in = Migration.destination(firstTarget).memory(firstTarget.memory)
                    .gang(destinations, 1).start();
                 OutgoingMigration out = Migration.source(first.memory, first.dirty, first)
                         .parameters(MigrationParameters.builder()
                                 .capabilities(EnumSet.of(Capability.ZERO_PAGES, Capability.DEDUP)).build())
                         .gang(sources, 1).connect(in.address()).start()) {
                assertTrue(out.await(Duration.ofSeconds(60)).verified());
                assertTrue(in.await(Duration.ofSeconds(10)).verified());
            }
            // the second member has the first's contents: its bulk round refers to the first's pages,
            // and so does its post-copy push of the twins (its own copies crossed as references, so
            // only the first member's are in any index); the first member, running on the
            // destination, changes some of them as the second resumes there
            try (IncomingMigration in = Migration.destination(hooked(secondTarget, () -> { },
                            () -> changed[0] = changeKept(firstTarget)))
                    .memory(secondTarget.memory).faultMechanism(FaultMechanism.SOFTWARE).gang(destinations, 2).start();
                 OutgoingMigration out = Migration.source(second.memory, second.dirty,
                         hooked(second, () -> rewriteTwins(second), () -> { }))
                         .parameters(postcopy(0)).gang(sources, 2).connect(in.address()).start()) {
                MigrationReport sent = out.await(Duration.ofSeconds(60));
                MigrationReport received = in.await(Duration.ofSeconds(10));
                assertTrue(sent.verified() && received.verified(), sent.error() + " / " + received.error());
                long nonZero = PAGES * 3 / 4;
                long twins = COUNT * 3 / 4;
                assertEquals(nonZero + twins, received.dedup().acrossGuests(), received.dedup().toString());
                assertEquals(changed[0], received.dedup().stale(), received.dedup().toString());
                assertSameTwins(second, secondTarget);
            }
        }
    }
}
