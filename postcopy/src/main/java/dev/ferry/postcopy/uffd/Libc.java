package dev.ferry.postcopy.uffd;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The libc calls userfaultfd needs, as ordinary (non-critical) FFM downcalls: the calling thread
 * is "in native" for the whole call, so a call that blocks in the kernel, including one that
 * faults on a userfaultfd-registered page, never holds up a JVM safepoint.
 *
 * <p>Calls that can fail take a {@code capture} segment ({@link #newCapture}) first, into which
 * the linker saves {@code errno} right after the call; read it with {@link #errno}.
 */
final class Libc {
    static final long SYS_USERFAULTFD = 323; // x86_64
    static final long SYS_PIDFD_OPEN = 434;
    static final long SYS_PROCESS_MADVISE = 440;
    static final int EPERM = 1;
    static final int O_NONBLOCK = 0x800;
    static final int O_CLOEXEC = 0x80000;
    static final int EINTR = 4;
    static final int EAGAIN = 11;
    static final int EEXIST = 17;
    static final int EINVAL = 22;
    static final int ENOSYS = 38;
    static final int MADV_DONTNEED = 4;
    static final short POLLIN = 0x1;

    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO =
            CAPTURE.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    private static final MethodHandle SYSCALL;
    private static final MethodHandle IOCTL;
    private static final MethodHandle READ;
    private static final MethodHandle WRITE;
    private static final MethodHandle POLL;
    private static final MethodHandle MADVISE;
    private static final MethodHandle EVENTFD;
    private static final MethodHandle CLOSE;
    private static final MethodHandle MEMCPY;
    private static final MethodHandle STRERROR;

    static {
        Linker linker = Linker.nativeLinker();
        Linker.Option errno = Linker.Option.captureCallState("errno");
        // long syscall(long number, ...): the arguments are passed as longs because glibc reads
        // every variadic syscall argument as a long; five of them, as many as any call here takes.
        SYSCALL = downcall(linker, "syscall",
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
                errno, Linker.Option.firstVariadicArg(1));
        // int ioctl(int fd, unsigned long request, ...): the struct pointer is the variadic argument.
        IOCTL = downcall(linker, "ioctl",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                        ValueLayout.ADDRESS),
                errno, Linker.Option.firstVariadicArg(2));
        READ = downcall(linker, "read",
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.JAVA_LONG),
                errno);
        WRITE = downcall(linker, "write",
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                        ValueLayout.JAVA_LONG),
                errno);
        POLL = downcall(linker, "poll",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_INT),
                errno);
        MADVISE = downcall(linker, "madvise",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                        ValueLayout.JAVA_INT),
                errno);
        EVENTFD = downcall(linker, "eventfd",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
                errno);
        CLOSE = downcall(linker, "close",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
                errno);
        // The return value (dst) is not needed; ignoring it is ABI-safe.
        MEMCPY = downcall(linker, "memcpy",
                FunctionDescriptor.ofVoid(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        STRERROR = downcall(linker, "strerror",
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
    }

    private Libc() {
    }

    private static MethodHandle downcall(Linker linker, String name, FunctionDescriptor descriptor,
            Linker.Option... options) {
        return linker.downcallHandle(linker.defaultLookup().findOrThrow(name), descriptor, options);
    }

    /** A segment for {@code errno}, valid as long as {@code arena}. */
    static MemorySegment newCapture(Arena arena) {
        return arena.allocate(CAPTURE);
    }

    /** The {@code errno} the last call given {@code capture} left behind. */
    static int errno(MemorySegment capture) {
        return (int) ERRNO.get(capture, 0L);
    }

    /** {@code errno} as "errno 17 (File exists)": the number and libc's description. */
    static String describe(int errno) {
        try {
            MemorySegment text = (MemorySegment) STRERROR.invokeExact(errno);
            return "errno " + errno + " (" + text.reinterpret(256).getString(0) + ")";
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }

    /** {@code syscall(number, a1 .. a5)}: a call that takes fewer arguments ignores the rest. */
    static long syscall(MemorySegment capture, long number, long a1, long a2, long a3, long a4, long a5) {
        try {
            return (long) SYSCALL.invokeExact(capture, number, a1, a2, a3, a4, a5);
        } catch (Throwable t) {
            throw new IllegalStateException("syscall " + number + " failed", t);
        }
    }

    static int ioctl(MemorySegment capture, int fd, long request, MemorySegment arg) {
        try {
            return (int) IOCTL.invokeExact(capture, fd, request, arg);
        } catch (Throwable t) {
            throw new IllegalStateException("ioctl 0x" + Long.toHexString(request) + " failed", t);
        }
    }

    static long read(MemorySegment capture, int fd, MemorySegment buffer, long count) {
        try {
            return (long) READ.invokeExact(capture, fd, buffer, count);
        } catch (Throwable t) {
            throw new IllegalStateException("read failed", t);
        }
    }

    static long write(MemorySegment capture, int fd, MemorySegment buffer, long count) {
        try {
            return (long) WRITE.invokeExact(capture, fd, buffer, count);
        } catch (Throwable t) {
            throw new IllegalStateException("write failed", t);
        }
    }

    static int poll(MemorySegment capture, MemorySegment fds, long count, int timeoutMillis) {
        try {
            return (int) POLL.invokeExact(capture, fds, count, timeoutMillis);
        } catch (Throwable t) {
            throw new IllegalStateException("poll failed", t);
        }
    }

    static int madvise(MemorySegment capture, MemorySegment range, long length, int advice) {
        try {
            return (int) MADVISE.invokeExact(capture, range, length, advice);
        } catch (Throwable t) {
            throw new IllegalStateException("madvise failed", t);
        }
    }

    static int eventfd(MemorySegment capture, int initial, int flags) {
        try {
            return (int) EVENTFD.invokeExact(capture, initial, flags);
        } catch (Throwable t) {
            throw new IllegalStateException("eventfd failed", t);
        }
    }

    static int close(MemorySegment capture, int fd) {
        try {
            return (int) CLOSE.invokeExact(capture, fd);
        } catch (Throwable t) {
            throw new IllegalStateException("close failed", t);
        }
    }

    /** memcpy(dst, src, length); both segments must be native and at least {@code length} long. */
    static void memcpy(MemorySegment dst, MemorySegment src, long length) {
        try {
            MEMCPY.invokeExact(dst, src, length);
        } catch (Throwable t) {
            throw new IllegalStateException("memcpy failed", t);
        }
    }
}
