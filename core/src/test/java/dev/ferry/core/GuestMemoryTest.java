package dev.ferry.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class GuestMemoryTest {
    /** Larger than the test JVM's heap and than any sane RSS budget: only sparse backing survives it. */
    private static final long LARGE = 6L << 30;
    /** Touching two pages may fault in a few neighbours, never gigabytes. */
    private static final long TOUCH_BUDGET = 64L << 20;

    @TempDir
    Path dir;

    @Test
    void preallocFaultsEveryPageInAndLeavesItZero() {
        try (GuestMemory memory = GuestMemory.anonymous(64L << 20)) {
            assertTrue(residentKib(memory) < 1024, "fresh anonymous memory costs only what it touches");
            memory.prealloc();
            assertEquals(64L << 10, residentKib(memory), "every page resident after prealloc");
            for (long offset = 0; offset < memory.byteSize(); offset += GuestMemory.PAGE_SIZE) {
                assertEquals(0, memory.segment().get(ValueLayout.JAVA_LONG, offset), "zero at " + offset);
            }
        }
    }

    /** KiB of {@code memory} resident now, by mincore(2): exact for the range, whatever mapping it merged into. */
    private static long residentKib(GuestMemory memory) {
        java.lang.foreign.Linker linker = java.lang.foreign.Linker.nativeLinker();
        java.lang.invoke.MethodHandle mincore = linker.downcallHandle(linker.defaultLookup().findOrThrow("mincore"),
                java.lang.foreign.FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                        ValueLayout.ADDRESS));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment vec = arena.allocate(memory.pageCount());
            int rc = (int) mincore.invokeExact(MemorySegment.ofAddress(memory.segment().address()), memory.byteSize(), vec);
            assertEquals(0, rc, "mincore");
            long resident = 0;
            for (long i = 0; i < memory.pageCount(); i++) {
                resident += vec.get(ValueLayout.JAVA_BYTE, i) & 1;
            }
            return resident * GuestMemory.PAGE_SIZE / 1024;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    @Test
    void anonymousMemoryIsSparseAndZeroFilled() throws IOException {
        long rssBefore = residentBytes();
        try (GuestMemory memory = GuestMemory.anonymous(LARGE); Arena arena = Arena.ofConfined()) {
            assertEquals(LARGE, memory.byteSize());
            assertEquals(LARGE / GuestMemory.PAGE_SIZE, memory.pageCount());

            long last = memory.pageCount() - 1;
            writeAndReadBack(memory, arena, last, 1);
            writeAndReadBack(memory, arena, 0, 2);
            assertEquals(0L, memory.segment().get(ValueLayout.JAVA_LONG, (last - 1) << GuestMemory.PAGE_SHIFT),
                    "untouched page must read as zeros");

            long grown = residentBytes() - rssBefore;
            assertTrue(grown < TOUCH_BUDGET, "RSS grew by " + grown + " bytes for two touched pages");
        }
    }

    @Test
    void fileMappedMemoryIsSparseSharedAndPersistent() throws IOException {
        Path file = dir.resolve("guest.ram");
        long rssBefore = residentBytes();
        long last = LARGE / GuestMemory.PAGE_SIZE - 1;
        try (GuestMemory memory = GuestMemory.mapFile(file, LARGE); Arena arena = Arena.ofConfined()) {
            writeAndReadBack(memory, arena, last, 3);
            writeAndReadBack(memory, arena, 0, 4);
            assertEquals(LARGE, Files.size(file));
            assertTrue(allocatedBytes(file) < TOUCH_BUDGET, "file not sparse: " + allocatedBytes(file) + " bytes allocated");
            assertTrue(residentBytes() - rssBefore < TOUCH_BUDGET, "RSS grew by gigabytes");

            // A second mapping of the same file is what another process (the hypervisor) sees.
            try (GuestMemory other = GuestMemory.mapFile(file, LARGE)) {
                assertEquals(pattern(last, 3), other.segment().get(ValueLayout.JAVA_LONG, last << GuestMemory.PAGE_SHIFT));
            }
        }
        try (GuestMemory reopened = GuestMemory.mapFile(file, LARGE)) {
            assertEquals(pattern(0, 4), reopened.segment().get(ValueLayout.JAVA_LONG, 0));
            assertEquals(LARGE, Files.size(file), "reopening must not grow the file");
        }
    }

    @ParameterizedTest
    @ValueSource(longs = {0, -4096, 1, 4095, 4097, 8191})
    void rejectsSizesThatAreNotPositivePageMultiples(long bytes) {
        IllegalArgumentException anonymous = assertThrows(IllegalArgumentException.class, () -> GuestMemory.anonymous(bytes));
        assertTrue(anonymous.getMessage().contains(Long.toString(bytes)), anonymous.getMessage());
        IllegalArgumentException mapped = assertThrows(IllegalArgumentException.class,
                () -> GuestMemory.mapFile(dir.resolve("bad.ram"), bytes));
        assertTrue(mapped.getMessage().contains("multiple of 4096"), mapped.getMessage());
    }

    @Test
    void writePageAndReadPageCopyExactlyOnePage() {
        try (GuestMemory memory = GuestMemory.anonymous(4 * GuestMemory.PAGE_SIZE); Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(3 * GuestMemory.PAGE_SIZE);
            byte[] bytes = new byte[(int) src.byteSize()];
            new SplittableRandom(1).nextBytes(bytes);
            MemorySegment.copy(bytes, 0, src, ValueLayout.JAVA_BYTE, 0, bytes.length);

            memory.writePage(2, src, GuestMemory.PAGE_SIZE);
            MemorySegment page2 = memory.segment().asSlice(2L * GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE);
            assertEquals(-1, page2.mismatch(src.asSlice(GuestMemory.PAGE_SIZE, GuestMemory.PAGE_SIZE)));
            assertEquals(0L, memory.segment().get(ValueLayout.JAVA_LONG, GuestMemory.PAGE_SIZE * 2L - 8), "page 1 untouched");
            assertEquals(0L, memory.segment().get(ValueLayout.JAVA_LONG, GuestMemory.PAGE_SIZE * 3L), "page 3 untouched");

            MemorySegment dst = arena.allocate(2 * GuestMemory.PAGE_SIZE);
            memory.readPage(2, dst, 7);
            assertEquals(-1, dst.asSlice(7, GuestMemory.PAGE_SIZE).mismatch(page2));
            assertEquals(0, dst.get(ValueLayout.JAVA_BYTE, 6));
            assertEquals(0, dst.get(ValueLayout.JAVA_BYTE, 7 + GuestMemory.PAGE_SIZE));

            assertThrows(IndexOutOfBoundsException.class, () -> memory.readPage(4, dst, 0));
            assertThrows(IndexOutOfBoundsException.class, () -> memory.writePage(4, src, 0));
        }
    }

    @Test
    void closedMemoryCannotBeTouched() {
        GuestMemory memory = GuestMemory.anonymous(GuestMemory.PAGE_SIZE);
        MemorySegment segment = memory.segment();
        memory.close();
        assertThrows(IllegalStateException.class, () -> segment.get(ValueLayout.JAVA_BYTE, 0));
    }

    private static void writeAndReadBack(GuestMemory memory, Arena arena, long page, int seed) {
        MemorySegment src = arena.allocate(GuestMemory.PAGE_SIZE, 8);
        for (int i = 0; i < GuestMemory.PAGE_SIZE / 8; i++) {
            src.setAtIndex(ValueLayout.JAVA_LONG, i, i == 0 ? pattern(page, seed) : seed * 31L + i);
        }
        memory.writePage(page, src, 0);
        MemorySegment back = arena.allocate(GuestMemory.PAGE_SIZE, 8);
        memory.readPage(page, back, 0);
        assertEquals(-1, back.mismatch(src), "page " + page + " did not read back");
    }

    private static long pattern(long page, int seed) {
        return page * 0x100000001L + seed;
    }

    /** VmRSS of this process, from /proc. */
    private static long residentBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
            }
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }

    /** Bytes of disk the file really occupies ({@code stat -c '%b %B'}), as {@code du} reports. */
    private static long allocatedBytes(Path file) throws IOException {
        Process stat = new ProcessBuilder("stat", "-c", "%b %B", file.toString()).redirectErrorStream(true).start();
        String out = new String(stat.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).trim();
        try {
            assertEquals(0, stat.waitFor(), out);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
        String[] fields = out.split(" ");
        return Long.parseLong(fields[0]) * Long.parseLong(fields[1]);
    }
}
