package dev.ferry.postcopy.uffd;

import dev.ferry.core.GuestMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * Guest memory under userfaultfd in MISSING mode: the destination side of post-copy with real
 * page faults, as QEMU does it.
 *
 * <p>Once {@link #register registered}, every page of the guest that has no page table entry
 * (never written, or {@link #discard discarded}) is missing: a load or store to it by any thread,
 * or by the kernel on a thread's behalf (a {@code write(2)} from guest memory, say), blocks in the
 * kernel and {@link #awaitFault} reports the page. The fault handler fetches the page and
 * {@link #install installs} it atomically with {@code UFFDIO_COPY}, which wakes every thread
 * waiting on it. Pages that are present never fault again until discarded.
 *
 * <h2>The JVM hazard: never touch registered memory from Java code</h2>
 *
 * <p>A thread that faults while executing Java code (a {@code MemorySegment.get}/{@code set}/
 * {@code copy} on {@link GuestMemory#segment()}, or {@link GuestMemory#readPage}/
 * {@link GuestMemory#writePage}) blocks in the kernel while the JVM believes it is running Java.
 * The next safepoint (a GC, a deoptimisation, a periodic cleanup) then waits for that thread
 * forever, while the handler thread that would install the page stops at that same safepoint as
 * soon as it returns from its own native call: the process deadlocks, rarely and silently.
 * Hence, while any page of the region can be missing:
 * <ul>
 *   <li>guest accesses go through {@link GuestAccess}, whose copies are ordinary FFM downcalls to
 *       {@code memcpy}: the thread is "in native" when it faults, and safepoints proceed without
 *       it;</li>
 *   <li>nothing reads or writes {@code memory.segment()} directly, and nothing passes it to a
 *       {@code Linker.Option.critical} downcall (critical calls stay "in Java");</li>
 *   <li>guest accesses and fault handling run on platform threads: a downcall pins a virtual
 *       thread's carrier, so a carrier blocked in a fault is lost to the scheduler, and a
 *       virtual-thread handler may never get a carrier to run on.</li>
 * </ul>
 * Fault handling itself ({@link #awaitFault}, {@link #install}) is downcalls too, so a handler
 * blocked in {@code poll(2)} never holds up a safepoint either.
 *
 * <h2>Threads and closing</h2>
 *
 * <p>All methods may be called from any thread, concurrently; several handler threads may call
 * {@link #awaitFault}, and each fault is reported to one of them (two threads faulting on the
 * same page may each be reported). {@link #close} makes a blocked {@link #awaitFault} return
 * {@link #CLOSED}, waits for calls in progress to return, unregisters the memory (which wakes any
 * thread still blocked on a missing page: it then sees a zero page) and closes the descriptor.
 * Close the region before the {@link GuestMemory}.
 */
public final class MissingPageRegion implements AutoCloseable {
    /** {@link #awaitFault} result: no fault arrived before the timeout. */
    public static final long NO_FAULT = -1;
    /** {@link #awaitFault} result: the region is closed; fault handling should stop. */
    public static final long CLOSED = -2;

    private static final int PAGE_SIZE = GuestMemory.PAGE_SIZE;
    private static final int PAGE_SHIFT = GuestMemory.PAGE_SHIFT;

    // ioctl numbers from linux/userfaultfd.h, checked against the header with gcc.
    /** {@code _IOWR(0xAA, 0x00, struct uffdio_register)}. */
    private static final long UFFDIO_REGISTER = 0xC020AA00L;
    /** {@code _IOR(0xAA, 0x01, struct uffdio_range)}. */
    private static final long UFFDIO_UNREGISTER = 0x8010AA01L;
    /** {@code _IOWR(0xAA, 0x03, struct uffdio_copy)}. */
    private static final long UFFDIO_COPY = 0xC028AA03L;
    /** {@code _IOWR(0xAA, 0x04, struct uffdio_zeropage)}. */
    private static final long UFFDIO_ZEROPAGE = 0xC020AA04L;
    private static final long UFFDIO_REGISTER_MODE_MISSING = 1;
    /** Bits of {@code uffdio_register.ioctls} this class needs: 1 << _UFFDIO_COPY (3) and _ZEROPAGE (4). */
    private static final long NEEDED_RANGE_IOCTLS = 1L << 3 | 1L << 4;

    // struct uffdio_range { u64 start; u64 len; }: 16 bytes, at the start of the structs below.
    private static final long RANGE_START = 0;
    private static final long RANGE_LEN = 8;
    private static final long RANGE_SIZE = 16;
    // struct uffdio_register { struct uffdio_range range; u64 mode; u64 ioctls; }: 32 bytes
    private static final long REGISTER_MODE = 16;
    private static final long REGISTER_IOCTLS = 24;
    private static final long REGISTER_SIZE = 32;
    // struct uffdio_copy { u64 dst; u64 src; u64 len; u64 mode; s64 copy; }: 40 bytes
    private static final long COPY_DST = 0;
    private static final long COPY_SRC = 8;
    private static final long COPY_LEN = 16;
    private static final long COPY_MODE = 24;
    private static final long COPY_SIZE = 40;
    // struct uffdio_zeropage { struct uffdio_range range; u64 mode; s64 zeropage; }: 32 bytes
    private static final long ZEROPAGE_MODE = 16;
    private static final long ZEROPAGE_SIZE = 32;
    // struct uffd_msg { u8 event; u8 reserved[7]; union { struct { u64 flags; u64 address; ... }
    // pagefault; ... } arg; }: 32 bytes, packed
    private static final long MSG_EVENT = 0;
    private static final long MSG_PAGEFAULT_ADDRESS = 16;
    private static final long MSG_SIZE = 32;
    private static final byte UFFD_EVENT_PAGEFAULT = 0x12;
    // struct pollfd { int fd; short events; short revents; }: 8 bytes; [0] the uffd, [1] the wake-up eventfd
    private static final long POLLFD_FD = 0;
    private static final long POLLFD_EVENTS = 4;
    private static final long POLLFD_REVENTS = 6;
    private static final long POLLFD_SIZE = 8;

    private final GuestMemory memory;
    private final long base;
    private final int uffd;
    /** An eventfd that close() makes readable, so a handler blocked in poll(2) returns. */
    private final int wakeFd;
    private final AtomicBoolean closed = new AtomicBoolean();
    /** Calls in progress that use the descriptors; close() waits for them before closing those. */
    private final AtomicInteger activeCalls = new AtomicInteger();

    private MissingPageRegion(GuestMemory memory, int uffd, int wakeFd) {
        this.memory = memory;
        this.base = memory.segment().address();
        this.uffd = uffd;
        this.wakeFd = wakeFd;
    }

    /**
     * Registers all of {@code memory} with a new userfaultfd in MISSING mode. From here on, pages
     * not yet present fault; see the class comment for how the memory may then be accessed.
     * The memory must be anonymous (or shmem); it stays owned by the caller.
     *
     * @throws UserfaultfdException if userfaultfd is unavailable or the memory cannot be registered
     */
    public static MissingPageRegion register(GuestMemory memory) {
        int uffd = Userfaultfd.open();
        try (Arena frame = Arena.ofConfined()) {
            MemorySegment capture = Libc.newCapture(frame);
            int wakeFd = Libc.eventfd(capture, 0, Libc.O_CLOEXEC | Libc.O_NONBLOCK);
            if (wakeFd < 0) {
                int errno = Libc.errno(capture);
                Libc.close(capture, uffd);
                throw new UserfaultfdException("eventfd", errno);
            }
            MemorySegment register = frame.allocate(REGISTER_SIZE, 8);
            register.set(ValueLayout.JAVA_LONG, RANGE_START, memory.segment().address());
            register.set(ValueLayout.JAVA_LONG, RANGE_LEN, memory.byteSize());
            register.set(ValueLayout.JAVA_LONG, REGISTER_MODE, UFFDIO_REGISTER_MODE_MISSING);
            if (Libc.ioctl(capture, uffd, UFFDIO_REGISTER, register) != 0) {
                throw closeAndFail(capture, uffd, wakeFd,
                        new UserfaultfdException("UFFDIO_REGISTER of " + memory, Libc.errno(capture)));
            }
            long ioctls = register.get(ValueLayout.JAVA_LONG, REGISTER_IOCTLS);
            if ((ioctls & NEEDED_RANGE_IOCTLS) != NEEDED_RANGE_IOCTLS) {
                throw closeAndFail(capture, uffd, wakeFd, new IllegalStateException(memory
                        + " registered without UFFDIO_COPY/UFFDIO_ZEROPAGE; ioctls 0x" + Long.toHexString(ioctls)));
            }
            return new MissingPageRegion(memory, uffd, wakeFd);
        }
    }

    /** Closes both descriptors (dropping any registration) and returns {@code failure} to throw. */
    private static RuntimeException closeAndFail(MemorySegment capture, int uffd, int wakeFd,
            RuntimeException failure) {
        Libc.close(capture, wakeFd);
        Libc.close(capture, uffd);
        return failure;
    }

    /** The registered memory. */
    public GuestMemory memory() {
        return memory;
    }

    /**
     * Waits up to {@code timeoutNanos} (0: just checks) for a thread to fault on a missing page.
     *
     * @return the faulting page's index; {@link #NO_FAULT} on timeout; {@link #CLOSED} once
     *         {@link #close} has been called (also when it is called during the wait)
     */
    public long awaitFault(long timeoutNanos) {
        if (!enter()) {
            return CLOSED;
        }
        try (Arena frame = Arena.ofConfined()) {
            MemorySegment capture = Libc.newCapture(frame);
            MemorySegment fds = frame.allocate(2 * POLLFD_SIZE, 8);
            fds.set(ValueLayout.JAVA_INT, POLLFD_FD, uffd);
            fds.set(ValueLayout.JAVA_SHORT, POLLFD_EVENTS, Libc.POLLIN);
            fds.set(ValueLayout.JAVA_INT, POLLFD_SIZE + POLLFD_FD, wakeFd);
            fds.set(ValueLayout.JAVA_SHORT, POLLFD_SIZE + POLLFD_EVENTS, Libc.POLLIN);
            MemorySegment msg = frame.allocate(MSG_SIZE, 8);
            // Capped so that the deadline cannot overflow.
            long deadline = System.nanoTime() + Math.min(Math.max(timeoutNanos, 0), Long.MAX_VALUE >>> 2);
            while (true) {
                long remaining = deadline - System.nanoTime();
                int ready = Libc.poll(capture, fds, 2, remaining <= 0 ? 0 : pollMillis(remaining));
                if (ready < 0) {
                    int errno = Libc.errno(capture);
                    if (errno != Libc.EINTR) {
                        throw new UserfaultfdException("poll on userfaultfd", errno);
                    }
                } else if (fds.get(ValueLayout.JAVA_SHORT, POLLFD_SIZE + POLLFD_REVENTS) != 0) {
                    return CLOSED;
                } else if (fds.get(ValueLayout.JAVA_SHORT, POLLFD_REVENTS) != 0) {
                    long read = Libc.read(capture, uffd, msg, MSG_SIZE);
                    if (read == MSG_SIZE) {
                        return faultingPage(msg);
                    }
                    int errno = Libc.errno(capture);
                    // EAGAIN: another handler thread read this fault first.
                    if (read >= 0 || errno != Libc.EAGAIN) {
                        throw new UserfaultfdException("read of uffd_msg (" + read + " bytes)", errno);
                    }
                }
                if (remaining <= 0) {
                    return NO_FAULT;
                }
            }
        } finally {
            exit();
        }
    }

    private static int pollMillis(long nanos) {
        return (int) Math.min(TimeUnit.NANOSECONDS.toMillis(nanos + 999_999), Integer.MAX_VALUE);
    }

    private long faultingPage(MemorySegment msg) {
        byte event = msg.get(ValueLayout.JAVA_BYTE, MSG_EVENT);
        if (event != UFFD_EVENT_PAGEFAULT) {
            // No optional features were asked for in UFFDIO_API, so the kernel sends no other event.
            throw new IllegalStateException("unexpected userfaultfd event 0x" + Integer.toHexString(event));
        }
        long offset = msg.get(ValueLayout.JAVA_LONG, MSG_PAGEFAULT_ADDRESS) - base;
        if (offset < 0 || offset >= memory.byteSize()) {
            throw new IllegalStateException("fault at 0x" + Long.toHexString(offset + base) + " outside " + memory);
        }
        return offset >>> PAGE_SHIFT;
    }

    /**
     * Atomically fills missing page {@code page} with the {@link GuestMemory#PAGE_SIZE} bytes of
     * {@code src} at {@code srcOff} ({@code UFFDIO_COPY}) and wakes every thread faulting on it.
     * {@code src} must be native memory that no userfaultfd watches, and stay alive during the call.
     *
     * @return true if installed; false if the page was already present (then it is left as it was)
     * @throws UserfaultfdException on any failure other than EEXIST
     */
    public boolean install(long page, MemorySegment src, long srcOff) {
        Objects.checkIndex(page, memory.pageCount());
        MemorySegment source = src.asSlice(srcOff, PAGE_SIZE);
        if (!source.isNative()) {
            throw new IllegalArgumentException("UFFDIO_COPY needs a native source, got " + src);
        }
        enterOrThrow();
        try (Arena frame = Arena.ofConfined()) {
            MemorySegment capture = Libc.newCapture(frame);
            MemorySegment copy = frame.allocate(COPY_SIZE, 8);
            copy.set(ValueLayout.JAVA_LONG, COPY_DST, base + (page << PAGE_SHIFT));
            copy.set(ValueLayout.JAVA_LONG, COPY_SRC, source.address());
            copy.set(ValueLayout.JAVA_LONG, COPY_LEN, PAGE_SIZE);
            copy.set(ValueLayout.JAVA_LONG, COPY_MODE, 0L);
            return fill(capture, UFFDIO_COPY, copy, "UFFDIO_COPY", page);
        } finally {
            exit();
        }
    }

    /**
     * Atomically maps missing page {@code page} as zeros ({@code UFFDIO_ZEROPAGE}) and wakes every
     * thread faulting on it; cheaper than {@link #install} for pages the source knows are zero.
     *
     * @return true if installed; false if the page was already present (then it is left as it was)
     * @throws UserfaultfdException on any failure other than EEXIST
     */
    public boolean installZero(long page) {
        Objects.checkIndex(page, memory.pageCount());
        enterOrThrow();
        try (Arena frame = Arena.ofConfined()) {
            MemorySegment capture = Libc.newCapture(frame);
            MemorySegment zeropage = frame.allocate(ZEROPAGE_SIZE, 8);
            zeropage.set(ValueLayout.JAVA_LONG, RANGE_START, base + (page << PAGE_SHIFT));
            zeropage.set(ValueLayout.JAVA_LONG, RANGE_LEN, PAGE_SIZE);
            zeropage.set(ValueLayout.JAVA_LONG, ZEROPAGE_MODE, 0L);
            return fill(capture, UFFDIO_ZEROPAGE, zeropage, "UFFDIO_ZEROPAGE", page);
        } finally {
            exit();
        }
    }

    /**
     * Runs a page-filling ioctl until it settles. No wake-up is needed on EEXIST: a thread only
     * sleeps on a page that was missing, and whatever made it present woke it.
     */
    private boolean fill(MemorySegment capture, long request, MemorySegment arg, String name, long page) {
        while (Libc.ioctl(capture, uffd, request, arg) != 0) {
            int errno = Libc.errno(capture);
            if (errno == Libc.EEXIST) {
                return false;
            }
            if (errno != Libc.EAGAIN) {
                throw new UserfaultfdException(name + " of page " + page, errno);
            }
            // EAGAIN: the address space is changing under the call (a racing fork or mremap);
            // nothing was filled for a single page, so the same call can be repeated.
            Thread.onSpinWait();
        }
        return true;
    }

    /**
     * Makes page {@code page} missing again ({@code madvise(MADV_DONTNEED)}), so that the next
     * access faults; for pages the source reports dirty at switch-over. The page's contents are
     * dropped, so no guest thread may be accessing it.
     */
    public void discard(long page) {
        discard(page, 1);
    }

    /** Makes {@code count} pages from {@code first} on missing again. */
    public void discard(long first, long count) {
        try (Discards discards = discards()) {
            discards.add(first, count);
        }
    }

    /**
     * A batch of discards for one thread: {@link Discards#add} collects runs of pages and the
     * batch makes them missing {@value #IOV_MAX} runs a system call, with {@code process_madvise(2)}
     * on this process. {@code madvise(2)} flushes the TLB of every core the process ran on once per
     * run, an inter-processor interrupt each; a switch-over that discards 160 000 scattered pages
     * spent 0.24-0.45 s of downtime on that on this project's 2-core VM (perf: the IPIs,
     * {@code smp_call_function_many_cond} and the x2APIC MSR writes, took most of it). From Linux
     * 6.16 {@code process_madvise} flushes once per call; from 6.13 it takes {@code MADV_DONTNEED}
     * for the calling process; before that it refuses, and the batch falls back to a
     * {@code madvise(2)} per run.
     */
    public Discards discards() {
        return new Discards();
    }

    /** The most ranges one {@code process_madvise(2)} takes ({@code UIO_MAXIOV}). */
    private static final int IOV_MAX = 1024;
    // struct iovec { void *iov_base; size_t iov_len; }: 16 bytes
    private static final long IOV_BASE = 0;
    private static final long IOV_LEN = 8;
    private static final long IOV_SIZE = 16;
    /** Cleared once the kernel refuses {@code process_madvise(MADV_DONTNEED)} on this process: it will again. */
    private static volatile boolean processMadvise = true;

    /**
     * Whether batches use {@code process_madvise(2)}; false makes them fall back to a
     * {@code madvise(2)} per run, as on a kernel that refuses it: for the tests of that path on a
     * kernel that has the call.
     */
    static void batchedDiscards(boolean value) {
        processMadvise = value;
    }

    /** Runs of pages to make missing, sent to the kernel a batch at a time; see {@link #discards()}. */
    public final class Discards implements AutoCloseable {
        private final Arena arena = Arena.ofConfined();
        private final MemorySegment capture = Libc.newCapture(arena);
        private final MemorySegment ranges = arena.allocate(IOV_SIZE * IOV_MAX, 8);
        private int count;
        private long bytes;
        /** A pidfd of this process, or -1 while none is open (or none can be). */
        private int pidfd = -1;

        private Discards() {
        }

        /** Makes {@code pages} pages from {@code first} on missing again, by the end of {@link #close}. */
        public void add(long first, long pages) {
            Objects.checkFromIndexSize(first, pages, memory.pageCount());
            if (pages == 0) {
                return;
            }
            long at = count * IOV_SIZE;
            ranges.set(ValueLayout.JAVA_LONG, at + IOV_BASE, base + (first << PAGE_SHIFT));
            ranges.set(ValueLayout.JAVA_LONG, at + IOV_LEN, pages << PAGE_SHIFT);
            bytes += pages << PAGE_SHIFT;
            if (++count == IOV_MAX) {
                flush();
            }
        }

        /** Makes every run added so far missing. */
        private void flush() {
            if (count == 0) {
                return;
            }
            enterOrThrow();
            try {
                // one run is one flush either way: no pidfd for it
                if (count == 1 || !processMadvise()) {
                    for (int i = 0; i < count; i++) {
                        long address = ranges.get(ValueLayout.JAVA_LONG, i * IOV_SIZE + IOV_BASE);
                        long length = ranges.get(ValueLayout.JAVA_LONG, i * IOV_SIZE + IOV_LEN);
                        if (Libc.madvise(capture, MemorySegment.ofAddress(address), length, Libc.MADV_DONTNEED) != 0) {
                            throw new UserfaultfdException("madvise(MADV_DONTNEED) of " + (length >>> PAGE_SHIFT)
                                    + " pages at " + ((address - base) >>> PAGE_SHIFT), Libc.errno(capture));
                        }
                    }
                }
            } finally {
                count = 0;
                bytes = 0;
                exit();
            }
        }

        /** The batch in one call, if the kernel takes it; false to do it a run at a time. */
        private boolean processMadvise() {
            if (!MissingPageRegion.processMadvise) {
                return false;
            }
            if (pidfd < 0) {
                long fd = Libc.syscall(capture, Libc.SYS_PIDFD_OPEN, ProcessHandle.current().pid(), 0, 0, 0, 0);
                if (fd < 0) {
                    MissingPageRegion.processMadvise = false;
                    return false;
                }
                pidfd = (int) fd;
            }
            long done = Libc.syscall(capture, Libc.SYS_PROCESS_MADVISE, pidfd, ranges.address(), count,
                    Libc.MADV_DONTNEED, 0);
            if (done == bytes) {
                return true;
            }
            int errno = Libc.errno(capture);
            if (done < 0 && (errno == Libc.EINVAL || errno == Libc.ENOSYS || errno == Libc.EPERM)) {
                MissingPageRegion.processMadvise = false;
            }
            // a short count leaves some ranges as they were: a madvise per run does them all, again
            // for the ones already done, which a discard allows
            return false;
        }

        /** Flushes what is left and releases the batch. */
        @Override
        public void close() {
            try {
                flush();
            } finally {
                if (pidfd >= 0) {
                    Libc.close(capture, pidfd);
                }
                arena.close();
            }
        }
    }

    /** True once {@link #close} has been called. */
    public boolean isClosed() {
        return closed.get();
    }

    /**
     * Stops fault handling and releases the userfaultfd: wakes handlers blocked in
     * {@link #awaitFault} (they return {@link #CLOSED}), waits for calls in progress, unregisters
     * the memory (threads still blocked on a missing page wake and see a zero page) and closes the
     * descriptors. Idempotent.
     *
     * @throws UserfaultfdException if unregistering fails (the descriptors are closed regardless)
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        try (Arena frame = Arena.ofConfined()) {
            MemorySegment capture = Libc.newCapture(frame);
            MemorySegment one = frame.allocate(ValueLayout.JAVA_LONG);
            one.set(ValueLayout.JAVA_LONG, 0, 1L);
            if (Libc.write(capture, wakeFd, one, Long.BYTES) != Long.BYTES) {
                throw new UserfaultfdException("eventfd write", Libc.errno(capture));
            }
            // Every call in progress is bounded now: a waiting awaitFault sees the eventfd.
            while (activeCalls.get() != 0) {
                LockSupport.parkNanos(50_000);
            }
            MemorySegment range = frame.allocate(RANGE_SIZE, 8);
            range.set(ValueLayout.JAVA_LONG, RANGE_START, base);
            range.set(ValueLayout.JAVA_LONG, RANGE_LEN, memory.byteSize());
            int unregisterErrno = Libc.ioctl(capture, uffd, UFFDIO_UNREGISTER, range) == 0 ? 0 : Libc.errno(capture);
            Libc.close(capture, uffd);
            Libc.close(capture, wakeFd);
            if (unregisterErrno != 0) {
                throw new UserfaultfdException("UFFDIO_UNREGISTER of " + memory, unregisterErrno);
            }
        }
    }

    /** Counts a call in; false (and not counted) once closed. Pairs with close()'s flag-then-count check. */
    private boolean enter() {
        activeCalls.incrementAndGet();
        if (closed.get()) {
            activeCalls.decrementAndGet();
            return false;
        }
        return true;
    }

    private void enterOrThrow() {
        if (!enter()) {
            throw new IllegalStateException("closed: " + this);
        }
    }

    private void exit() {
        activeCalls.decrementAndGet();
    }

    @Override
    public String toString() {
        return "MissingPageRegion[" + memory + ", uffd " + uffd + "]";
    }
}
