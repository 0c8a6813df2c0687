package dev.ferry.core;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A guest's RAM: one contiguous native segment of 4 KiB pages.
 *
 * <p>Anonymous memory is an {@code mmap(MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE)} region, so a
 * large guest costs only the pages it touches. File-backed memory maps a file read-write and
 * shared, the way QEMU's {@code memory-backend-file,share=on} exposes guest RAM in
 * {@code /dev/shm}; a hypervisor that does so lets Ferry read the guest's pages in place.
 */
public final class GuestMemory implements AutoCloseable {
    /** Bytes in one page; the only page size Ferry knows. */
    public static final int PAGE_SIZE = 4096;
    /** log2 of {@link #PAGE_SIZE}. */
    public static final int PAGE_SHIFT = 12;

    private static final int PROT_READ_WRITE = 0x1 | 0x2;
    private static final int MAP_PRIVATE_ANONYMOUS_NORESERVE = 0x02 | 0x20 | 0x4000;
    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;
    private static final MethodHandle MADVISE;
    private static final int MADV_POPULATE_WRITE = 23;

    static {
        Linker linker = Linker.nativeLinker();
        MMAP = linker.downcallHandle(linker.defaultLookup().findOrThrow("mmap"),
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG));
        MUNMAP = linker.downcallHandle(linker.defaultLookup().findOrThrow("munmap"),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        MADVISE = linker.downcallHandle(linker.defaultLookup().findOrThrow("madvise"),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    }

    private final Arena arena;
    private final MemorySegment segment;
    private final MemorySegment unchecked;
    private final long pageCount;
    private final String description;
    /** Private anonymous memory: a page never touched (neither resident nor swapped) reads as zeros. */
    private final boolean anonymous;

    private GuestMemory(Arena arena, MemorySegment segment, String description, boolean anonymous) {
        this.anonymous = anonymous;
        this.arena = arena;
        this.segment = segment;
        this.unchecked = MemorySegment.ofAddress(segment.address()).reinterpret(segment.byteSize());
        this.pageCount = segment.byteSize() >>> PAGE_SHIFT;
        this.description = description;
    }

    /** Zero-filled anonymous memory of {@code bytes} (a positive multiple of {@link #PAGE_SIZE}). */
    public static GuestMemory anonymous(long bytes) {
        checkSize(bytes);
        MemorySegment base;
        try {
            base = (MemorySegment) MMAP.invokeExact(MemorySegment.NULL, bytes, PROT_READ_WRITE,
                    MAP_PRIVATE_ANONYMOUS_NORESERVE, -1, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("mmap failed", t);
        }
        if (base.address() == -1L) {
            throw new IllegalStateException("mmap of " + bytes + " bytes failed");
        }
        Arena arena = Arena.ofShared();
        MemorySegment segment = base.reinterpret(bytes, arena, GuestMemory::unmap);
        return new GuestMemory(arena, segment, "anonymous " + bytes + " bytes", true);
    }

    /**
     * Memory mapped shared from {@code file}, created or extended (sparsely) to {@code bytes}.
     * Writes go to the file, so another process mapping it sees them.
     */
    public static GuestMemory mapFile(Path file, long bytes) throws IOException {
        checkSize(bytes);
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE)) {
            if (channel.size() < bytes) {
                channel.write(java.nio.ByteBuffer.allocate(1), bytes - 1);
            }
            MemorySegment segment = channel.map(FileChannel.MapMode.READ_WRITE, 0, bytes, arena);
            return new GuestMemory(arena, segment, "file " + file + " " + bytes + " bytes", false);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static void checkSize(long bytes) {
        if (bytes <= 0 || (bytes & (PAGE_SIZE - 1)) != 0) {
            throw new IllegalArgumentException("guest memory size must be a positive multiple of "
                    + PAGE_SIZE + ", got " + bytes);
        }
    }

    private static void unmap(MemorySegment segment) {
        try {
            int ignored = (int) MUNMAP.invokeExact(MemorySegment.ofAddress(segment.address()), segment.byteSize());
        } catch (Throwable t) {
            throw new IllegalStateException("munmap failed", t);
        }
    }

    /**
     * Faults every page in now, writable (QEMU's {@code -mem-prealloc}): the kernel's zeroing of
     * fresh memory, which is most of what a destination's first touch costs, happens here rather
     * than while pages arrive.
     */
    public void prealloc() {
        if (madvise(segment, segment.byteSize(), MADV_POPULATE_WRITE) != 0) {
            // a kernel before 5.14: touch a byte of every page, which faults it in the same way
            for (long offset = 0; offset < segment.byteSize(); offset += PAGE_SIZE) {
                segment.set(ValueLayout.JAVA_BYTE, offset, segment.get(ValueLayout.JAVA_BYTE, offset));
            }
        }
    }

    private static int madvise(MemorySegment base, long bytes, int advice) {
        try {
            return (int) MADVISE.invokeExact(MemorySegment.ofAddress(base.address()), bytes, advice);
        } catch (Throwable t) {
            throw new IllegalStateException("madvise failed", t);
        }
    }

    /** Whether this is private anonymous memory, whose never-touched pages are zeros without being read. */
    public boolean isAnonymous() {
        return anonymous;
    }

    /** The whole of guest RAM; page {@code i} starts at byte {@code i << PAGE_SHIFT}. */
    public MemorySegment segment() {
        return segment;
    }

    /**
     * The same memory without its lifetime checks, for the page loops only: every access through
     * {@link #segment()} first acquires the shared arena, an atomic that the channels' threads
     * then fight over (measured: 11% of a destination channel's time). The caller must stop using
     * it before {@link #close()}; the migration's senders and appliers do.
     */
    public MemorySegment unchecked() {
        return unchecked;
    }

    /** Number of 4 KiB pages. */
    public long pageCount() {
        return pageCount;
    }

    /** Size in bytes. */
    public long byteSize() {
        return segment.byteSize();
    }

    /** Copies page {@code index} into {@code dst} at {@code dstOffset}. */
    public void readPage(long index, MemorySegment dst, long dstOffset) {
        MemorySegment.copy(segment, index << PAGE_SHIFT, dst, dstOffset, PAGE_SIZE);
    }

    /** Copies a page's worth of bytes from {@code src} at {@code srcOffset} into page {@code index}. */
    public void writePage(long index, MemorySegment src, long srcOffset) {
        MemorySegment.copy(src, srcOffset, segment, index << PAGE_SHIFT, PAGE_SIZE);
    }

    /** Releases the memory; any segment obtained from it becomes unusable. */
    @Override
    public void close() {
        arena.close();
    }

    @Override
    public String toString() {
        return "GuestMemory[" + description + "]";
    }
}
