package dev.ferry.core;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Which pages of anonymous guest memory were never touched, so read as zeros without being read:
 * those {@code /proc/self/pagemap} shows neither present nor swapped (CRIU reads it the same
 * way). Reading such a page would fault in the shared zero page, one fault per 4 KiB, and copy and
 * scan it: for a large, mostly empty guest that was nearly all of a migration's time (a 64 GiB
 * guest of 256 written pages took 33 to 46 s, most of it in faults and the zero scan).
 *
 * <p>One per thread: it reads the pagemap a window of {@link #WINDOW} pages (one stripe) at a
 * time, into a buffer of its own, and answers from it until asked about a page outside it or told
 * to {@link #forget} it. An answer may be as old as its window, so a window must not outlive the
 * round it was read in: a page written after the round's dirty-log sync is dirty again and sent
 * again, but one written before the sync (and after an older window was read) would be taken for
 * untouched and sent as zeros. Memory that is not anonymous, or a pagemap this process cannot
 * read, has no untouched pages.
 */
public final class UntouchedPages implements AutoCloseable {
    /** Pages per pagemap read: one stripe, 4 KiB of pagemap entries. */
    static final int WINDOW = PageBitmap.STRIPE_PAGES;
    private static final long PRESENT = 1L << 63;
    private static final long SWAPPED = 1L << 62;
    private static final Path PAGEMAP = Path.of("/proc/self/pagemap");

    private final FileChannel pagemap;
    private final long firstEntry;
    private final long pageCount;
    private final ByteBuffer window;
    private long windowStart = -1;
    private int windowPages;

    private UntouchedPages(FileChannel pagemap, GuestMemory memory) {
        this.pagemap = pagemap;
        this.firstEntry = memory.segment().address() >>> GuestMemory.PAGE_SHIFT;
        this.pageCount = memory.pageCount();
        this.window = pagemap == null ? null
                : ByteBuffer.allocateDirect(WINDOW * Long.BYTES).order(ByteOrder.nativeOrder());
    }

    /** The untouched pages of {@code memory} (none unless it is anonymous and the pagemap readable). */
    public static UntouchedPages of(GuestMemory memory) {
        if (!memory.isAnonymous()) {
            return new UntouchedPages(null, memory);
        }
        try {
            return new UntouchedPages(FileChannel.open(PAGEMAP, StandardOpenOption.READ), memory);
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            return new UntouchedPages(null, memory);
        }
    }

    /** Whether page {@code page} was never touched, as of the read of its window. */
    public boolean contains(long page) {
        if (pagemap == null) {
            return false;
        }
        if (page < windowStart || page >= windowStart + windowPages) {
            if (!read(page - page % WINDOW)) {
                return false;
            }
        }
        long entry = window.getLong((int) (page - windowStart) * Long.BYTES);
        return (entry & (PRESENT | SWAPPED)) == 0;
    }

    /** Drops the window read so far: the next answer reads the pagemap again (a new round began). */
    public void forget() {
        windowStart = -1;
        windowPages = 0;
    }

    private boolean read(long start) {
        int pages = (int) Math.min(WINDOW, pageCount - start);
        window.clear().limit(pages * Long.BYTES);
        try {
            long at = (firstEntry + start) * Long.BYTES;
            while (window.hasRemaining()) {
                if (pagemap.read(window, at + window.position()) < 0) {
                    windowStart = -1;
                    return false;
                }
            }
        } catch (IOException e) {
            windowStart = -1;
            return false;
        }
        windowStart = start;
        windowPages = pages;
        return true;
    }

    @Override
    public void close() {
        if (pagemap != null) {
            try {
                pagemap.close();
            } catch (IOException e) {
                // a read-only procfs file: nothing to flush or lose
            }
        }
    }
}
