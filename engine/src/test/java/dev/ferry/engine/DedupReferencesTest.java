package dev.ferry.engine;

import static dev.ferry.engine.HandSource.randomPage;
import static dev.ferry.engine.HandSource.readUntilClosed;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Capability;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.PageBitmap;
import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Dedup references against a real destination, sent by hand on real sockets ({@link HandSource})
 * so that each case happens for sure: a reference to a copy that still holds the content is
 * installed; one whose copy changed since is left alone and named in the round's STALE, and once
 * the page crossed again in full the migration ends verified; a reference to a page the
 * destination never held, to a page of another channel's stripe, or to a guest of no gang here,
 * fails the migration. In post-copy a stale reference's page is requested at once on the request
 * channel, and a reference naming a discarded page never held fails the migration.
 */
class DedupReferencesTest {
    private static final int PAGES = 3 * PageBitmap.STRIPE_PAGES;
    private static final long BYTES = (long) PAGES * GuestMemory.PAGE_SIZE;
    private static final int CAPABILITIES = Wire.bit(Capability.ZERO_PAGES) | Wire.bit(Capability.DEDUP);

    private GuestMemory memory;
    private RecordingVm vm;
    private IncomingMigration in;

    @BeforeEach
    void startDestination() throws Exception {
        memory = GuestMemory.anonymous(BYTES);
        vm = new RecordingVm();
        in = Migration.destination(vm).memory(memory).peerTimeoutMillis(10_000).start();
    }

    @AfterEach
    void stopDestination() {
        in.close();
        memory.close();
    }

    /** Page {@code page} of the destination's memory holds {@code content}. */
    private void assertPage(long page, byte[] content, String why) {
        assertEquals(-1, memory.segment().asSlice(page * GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE)
                .mismatch(MemorySegment.ofArray(content)), why);
    }

    /** The migration failed, and its error says {@code reason}; its report. */
    private MigrationReport assertFailedWith(String reason) throws Exception {
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
        assertEquals(MigrationState.FAILED, report.outcome());
        assertTrue(report.error().contains(reason), report.error());
        return report;
    }

    /** The XXH3-128 of {@code page}, low half first, as zero-allocation-hashing gives it. */
    private static long[] hash(byte[] page) {
        return net.openhft.hashing.LongTupleHashFunction.xx128().hashBytes(page);
    }

    @Test
    void aFreshReferenceIsInstalledAStaleOneIsAskedForAgainAndTheMigrationEndsVerified() throws Exception {
        byte[] a = randomPage(1);
        byte[] c = randomPage(2);
        byte[] deviceState = "state".getBytes();
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            assertEquals(CAPABILITIES, source.hello(2, CAPABILITIES).capabilities(), "dedup is accepted in pre-copy");
            source.joinAll(2);
            // round 1: page 3 in full, pages 5 and 1024 + 9 (channel 0's stripes 0 and 2) as references to it
            source.raw(0, 3, a);
            source.reference(0, 5, 3, hash(a), true);
            source.reference(0, 1024 + 9, 3, hash(a), true);
            source.raw(1, 512 + 1, c);
            source.reference(1, 512 + 2, 512 + 1, hash(c), true);
            source.endRound(2);
            assertEquals(List.of(), source.awaitStale(1), "every reference of round 1 was fresh");
            // round 2: page 3 changed; a reference to its old content is stale, so page 6 keeps what it had
            source.raw(0, 3, c);
            source.reference(0, 6, 3, hash(a), false);
            source.endRound(2);
            assertEquals(List.of(6L), source.awaitStale(2), "the stale reference's page is asked for again");
            // round 3: the page asked for crosses in full
            source.raw(0, 6, a);
            source.endRound(2);
            assertEquals(List.of(), source.awaitStale(3));
            source.finish(deviceState, 1_000);
            long sealed = source.sealed(deviceState);
            assertEquals(sealed, source.awaitResumed().digest());
            readUntilClosed(source.channel(0));
            assertEquals(-1, source.expected.segment().mismatch(memory.segment()), "the memory as meant, byte for byte");
        }
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
        assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
        assertTrue(report.verified() && report.destinationResumed());
        assertEquals(4, report.pagesByKind().get("dedup"), "three references installed, one found stale: " + report.pagesByKind());
        assertPage(5, a, "page 5 holds the referenced content");
    }

    @Test
    void aReferenceToAPageNeverHeldIsAProtocolError() throws Exception {
        byte[] a = randomPage(1);
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(2, CAPABILITIES);
            source.joinAll(2);
            source.raw(0, 3, a);
            // page 4 is channel 0's, but nothing was ever installed there
            source.reference(0, 5, 4, hash(a), true);
            readUntilClosed(source.control);
        }
        MigrationReport report = assertFailedWith("names page 4, which this destination never held");
        assertFalse(report.destinationResumed());
        assertEquals(0, vm.resumes.get());
    }

    @Test
    void aReferenceToAPageOfAnotherChannelIsAProtocolError() throws Exception {
        byte[] a = randomPage(1);
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(2, CAPABILITIES);
            source.joinAll(2);
            source.raw(0, 3, a);
            source.endRound(2);
            source.awaitStale(1);
            // page 3 is held, but on channel 0: channel 1 cannot know it arrived
            source.reference(1, 512 + 4, 3, hash(a), true);
            readUntilClosed(source.control);
        }
        assertFailedWith("names page 3, which travels on channel 0");
        assertEquals(0, vm.resumes.get());
    }

    @Test
    void aReferenceToAGuestOfNoGangHereIsAProtocolError() throws Exception {
        byte[] a = randomPage(1);
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            source.hello(2, CAPABILITIES);
            source.joinAll(2);
            source.raw(0, 3, a);
            // this destination receives one guest, in no gang: guest 2 is nobody's
            source.reference(0, 2, 5, 3, hash(a));
            readUntilClosed(source.control);
        }
        assertFailedWith("names guest 2, which is no member of this destination's gang");
        assertEquals(0, vm.resumes.get());
    }

    // ---- post-copy: the guest runs here, so a missing copy is stale and the page is asked for at once ----

    private static final int WITH_POSTCOPY = CAPABILITIES | Wire.bit(Capability.POSTCOPY);

    /**
     * Round 1 on page channel 0 carries page 3 ({@code a}) and pages 5 and 6; then DISCARD of
     * pages 5, 6 and 7 (7 never held), DEVICE_STATE and POSTCOPY_START; returns once the
     * destination runs the guest.
     */
    private static void intoPostcopy(HandSource source, byte[] a, byte[] deviceState) throws Exception {
        assertEquals(WITH_POSTCOPY, source.hello(1, WITH_POSTCOPY).capabilities(), "dedup is accepted with post-copy");
        source.join(0);
        source.join(1);
        source.raw(0, 3, a);
        source.raw(0, 5, randomPage(5));
        source.raw(0, 6, randomPage(6));
        source.endRound(1);
        assertEquals(List.of(), source.awaitStale(1));
        HandSource.send(source.control, out -> {
            Wire.writeHeader(out, Wire.DISCARD, dev.ferry.protocol.PageRuns.RUN);
            out.writeLong(5).writeInt(3);
            Wire.writeDeviceState(out, deviceState);
            Wire.writePostcopyStart(out, 1);
        });
        ByteBuf running = HandSource.readFrame(source.control);
        assertEquals(Wire.typeName(Wire.POSTCOPY_RUNNING), Wire.typeName(running.readUnsignedByte()));
    }

    @Test
    void inPostcopyAFreshReferenceIsInstalledAndAStaleOneIsRequestedAtOnceAndAnsweredInFull() throws Exception {
        byte[] a = randomPage(1);
        byte[] c = randomPage(2);
        byte[] deviceState = "state".getBytes();
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            intoPostcopy(source, a, deviceState);
            // page 6 refers to page 3, which holds a: installed; page 5 names content page 3 does not hold: stale
            source.reference(0, 6, 3, hash(a), true);
            source.reference(0, 5, 3, hash(c), false);
            ByteBuf request = HandSource.readFrame(source.channel(1));
            assertEquals(Wire.typeName(Wire.PAGE_REQUEST), Wire.typeName(request.readUnsignedByte()),
                    "the stale page is asked for at once");
            List<Long> asked = new java.util.ArrayList<>();
            Wire.readPageRequest(request, PAGES, asked::add);
            assertEquals(List.of(5L), asked);
            // answered in full on the request channel, the last discarded page pushed, then the
            // post-copy barrier: nothing is still missing
            source.raw(1, 5, c);
            source.raw(0, 7, randomPage(7));
            source.endRound(2);
            assertEquals(List.of(), source.awaitStale(2), "page 5 arrived before the barrier");
            long sealed = source.sealed(deviceState);
            HandSource.send(source.control, out -> Wire.writeEnd(out, sealed, 1_000));
            assertEquals(sealed, source.awaitResumed().digest());
        }
        MigrationReport report = in.result().get(10, TimeUnit.SECONDS);
        assertEquals(MigrationState.COMPLETED, report.outcome(), report.error());
        assertTrue(report.verified());
        assertEquals(2, report.dedup().hits(), report.dedup().toString());
        assertEquals(1, report.dedup().stale(), report.dedup().toString());
        assertPage(6, a, "page 6 holds the referenced content");
        assertPage(5, c, "page 5 holds what came in full");
    }

    @Test
    void inPostcopyAReferenceToAPageNeverHeldIsAProtocolError() throws Exception {
        byte[] a = randomPage(1);
        try (HandSource source = new HandSource(in.address(), BYTES)) {
            intoPostcopy(source, a, "state".getBytes());
            // page 7 was discarded without ever holding content: no copy of anything is there
            source.reference(0, 5, 7, hash(a), false);
            readUntilClosed(source.control);
        }
        assertFailedWith("names page 7, which this destination never held");
    }
}
