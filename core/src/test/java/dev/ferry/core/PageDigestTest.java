package dev.ferry.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class PageDigestTest {
    private static final long PAGES = 256;

    @Test
    void runningDigestEqualsAFullScanAfterRandomUpdates() {
        try (GuestMemory memory = GuestMemory.anonymous(PAGES * GuestMemory.PAGE_SIZE);
                MemoryDigest digest = new MemoryDigest(PAGES)) {
            SplittableRandom random = new SplittableRandom(7);
            for (int i = 0; i < 5_000; i++) {
                long page = random.nextLong(PAGES);
                if (random.nextInt(4) == 0) {
                    pageOf(memory, page).fill((byte) 0);
                    digest.updateZero(page);
                } else {
                    pageOf(memory, page).set(ValueLayout.JAVA_LONG, 8L * random.nextInt(512), random.nextLong());
                    digest.update(page, PageDigest.contentHash(memory.segment(), page << GuestMemory.PAGE_SHIFT));
                }
                if (i % 500 == 0) {
                    assertEquals(PageDigest.scan(memory), digest.value(), "after update " + i);
                }
            }
            assertEquals(PageDigest.scan(memory), digest.value());
        }
    }

    /** Post-copy delivers pages in any order; the digest must not care. */
    @Test
    void digestIsIndependentOfArrivalOrder() {
        SplittableRandom random = new SplittableRandom(11);
        long[] contentHashes = new long[(int) PAGES];
        for (int i = 0; i < contentHashes.length; i++) {
            contentHashes[i] = random.nextLong();
        }
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < PAGES; i++) {
            order.add(i);
        }
        try (MemoryDigest inOrder = new MemoryDigest(PAGES); MemoryDigest shuffled = new MemoryDigest(PAGES)) {
            for (int i : order) {
                inOrder.update(i, contentHashes[i]);
            }
            Collections.shuffle(order, new Random(3));
            for (int i : order) {
                // an earlier, superseded copy of the page first: only the last update may count
                shuffled.update(i, contentHashes[i] ^ 1);
            }
            Collections.shuffle(order, new Random(4));
            for (int i : order) {
                shuffled.update(i, contentHashes[i]);
            }
            assertEquals(inOrder.value(), shuffled.value());
        }
    }

    @Test
    void movingContentToAnotherIndexChangesTheDigest() {
        try (GuestMemory a = GuestMemory.anonymous(PAGES * GuestMemory.PAGE_SIZE);
                GuestMemory b = GuestMemory.anonymous(PAGES * GuestMemory.PAGE_SIZE)) {
            pageOf(a, 3).fill((byte) 0x5A);
            pageOf(b, 4).fill((byte) 0x5A);
            assertNotEquals(PageDigest.scan(a), PageDigest.scan(b));

            // swapping two distinct pages keeps the multiset of contents but not the binding
            pageOf(a, 4).fill((byte) 0x33);
            pageOf(b, 3).fill((byte) 0x33);
            assertNotEquals(PageDigest.scan(a), PageDigest.scan(b));
        }
    }

    @Test
    void zeroMemoryMatchesAScanOfFreshMemory() {
        try (GuestMemory fresh = GuestMemory.anonymous(PAGES * GuestMemory.PAGE_SIZE);
                MemoryDigest digest = new MemoryDigest(PAGES)) {
            assertEquals(PageDigest.scan(fresh), PageDigest.zeroMemory(PAGES));
            assertEquals(PageDigest.zeroMemory(PAGES), digest.value());
            assertEquals(halves(new byte[GuestMemory.PAGE_SIZE]), PageDigest.ZERO_CONTENT_HASH);
        }
    }

    /**
     * The rule as docs/protocol.md states it, written out independently: the wrapping sum over pages
     * of fmix64((crc32c(first half) << 32 | crc32c(second half)) ^ index * 0x9E3779B97F4A7C15). Both sides of a
     * migration must agree on it.
     */
    @Test
    void digestFollowsTheDocumentedRule() {
        try (GuestMemory memory = GuestMemory.anonymous(PAGES * GuestMemory.PAGE_SIZE)) {
            SplittableRandom random = new SplittableRandom(5);
            for (long p = 0; p < PAGES; p += 3) {
                pageOf(memory, p).set(ValueLayout.JAVA_LONG, 8L * random.nextInt(512), random.nextLong());
            }
            long expected = 0;
            byte[] page = new byte[GuestMemory.PAGE_SIZE];
            for (long p = 0; p < PAGES; p++) {
                MemorySegment.copy(memory.segment(), ValueLayout.JAVA_BYTE, p << GuestMemory.PAGE_SHIFT, page, 0, page.length);
                expected += fmix64(halves(page) ^ (p * 0x9E3779B97F4A7C15L));
            }
            assertEquals(expected, PageDigest.scan(memory));
        }
    }

    /** A flipped bit anywhere in the page, in either half, changes its content hash. */
    @Test
    void everyFlippedBitChangesTheContentHash() {
        try (GuestMemory memory = GuestMemory.anonymous(GuestMemory.PAGE_SIZE)) {
            MemorySegment page = memory.segment();
            SplittableRandom random = new SplittableRandom(11);
            for (long off = 0; off < GuestMemory.PAGE_SIZE; off += 8) {
                page.set(ValueLayout.JAVA_LONG, off, random.nextLong());
            }
            long original = PageDigest.contentHash(page, 0);
            for (long bit = 0; bit < 8L * GuestMemory.PAGE_SIZE; bit += 7) {
                byte b = page.get(ValueLayout.JAVA_BYTE, bit / 8);
                page.set(ValueLayout.JAVA_BYTE, bit / 8, (byte) (b ^ 1 << (bit % 8)));
                assertNotEquals(original, PageDigest.contentHash(page, 0), "bit " + bit + " flipped");
                page.set(ValueLayout.JAVA_BYTE, bit / 8, b);
            }
            assertEquals(original, PageDigest.contentHash(page, 0));
        }
    }

    /** The seal as docs/protocol.md states it, written out: it moves with the state and with the session. */
    @Test
    void sealFollowsTheDocumentedRule() {
        byte[] state = "registers and queues".getBytes(java.nio.charset.StandardCharsets.UTF_8);
        long digest = 0x1234_5678_9abc_def0L;
        long session = 0x9e1f_4c2a_b7d0_3865L;
        long expected = digest + fmix64(crcs(state) ^ (session * 0x9E3779B97F4A7C15L));
        assertEquals(expected, PageDigest.seal(digest, state, session));
        byte[] flipped = state.clone();
        flipped[3] ^= 1;
        assertNotEquals(expected, PageDigest.seal(digest, flipped, session), "a changed device state");
        assertNotEquals(expected, PageDigest.seal(digest, state, session + 1), "another session");
        assertNotEquals(expected, PageDigest.seal(digest, new byte[0], session), "an emptied device state");
    }

    /** A page's content hash as documented: CRC-32C of each half. */
    private static long halves(byte[] page) {
        java.util.zip.CRC32C first = new java.util.zip.CRC32C();
        first.update(page, 0, page.length / 2);
        java.util.zip.CRC32C second = new java.util.zip.CRC32C();
        second.update(page, page.length / 2, page.length / 2);
        return first.getValue() << 32 | second.getValue();
    }

    /** The device state's CRCs as documented: CRC-32C and CRC-32 of all of it. */
    private static long crcs(byte[] bytes) {
        java.util.zip.CRC32C c = new java.util.zip.CRC32C();
        c.update(bytes);
        java.util.zip.CRC32 d = new java.util.zip.CRC32();
        d.update(bytes);
        return c.getValue() << 32 | d.getValue();
    }

    private static long fmix64(long h) {
        h ^= h >>> 33;
        h *= 0xff51afd7ed558ccdL;
        h ^= h >>> 33;
        h *= 0xc4ceb9fe1a85ec53L;
        return h ^ (h >>> 33);
    }

    private static MemorySegment pageOf(GuestMemory memory, long page) {
        return memory.segment().asSlice(page << GuestMemory.PAGE_SHIFT, GuestMemory.PAGE_SIZE);
    }
}
