package dev.ferry.postcopy.uffd;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Whether this process can use userfaultfd, and the opening of one.
 *
 * <p>A userfaultfd is opened with {@code userfaultfd(O_CLOEXEC|O_NONBLOCK)} and made usable
 * with the {@code UFFDIO_API} handshake ({@code api = UFFD_API}, no optional features: Ferry
 * needs only MISSING-mode page faults on anonymous memory, which every kernel since 4.3 has).
 */
public final class Userfaultfd {
    /** {@code UFFD_API}: the only API version there is. */
    private static final long UFFD_API = 0xAA;
    /** {@code _IOWR(0xAA, 0x3F, struct uffdio_api)}. */
    private static final long UFFDIO_API = 0xC018AA3FL;

    // struct uffdio_api { u64 api; u64 features; u64 ioctls; }: 24 bytes
    private static final long API_API = 0;
    private static final long API_FEATURES = 8;
    private static final long API_SIZE = 24;

    private Userfaultfd() {
    }

    /** True if a userfaultfd can be opened and handshaken here; else see {@link #unavailableReason()}. */
    public static boolean available() {
        return Probe.REASON == null;
    }

    /** Why {@link #available()} is false, or {@code null} when it is true. Probed once per process. */
    public static String unavailableReason() {
        return Probe.REASON;
    }

    /** Runs the probe once, on first use. */
    private static final class Probe {
        static final String REASON = probe();

        private static String probe() {
            try {
                int fd = open();
                try (Arena frame = Arena.ofConfined()) {
                    Libc.close(Libc.newCapture(frame), fd);
                }
                return null;
            } catch (UserfaultfdException e) {
                return e.getMessage() + (e.errno() == 1
                        ? "; unprivileged userfaultfd needs CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1"
                        : "");
            } catch (RuntimeException | LinkageError e) {
                return "userfaultfd unusable: " + e;
            }
        }
    }

    /**
     * A new userfaultfd, non-blocking and close-on-exec, past the {@code UFFDIO_API} handshake.
     * The caller owns the descriptor.
     *
     * @throws UserfaultfdException if the system call or the handshake fails
     */
    static int open() {
        try (Arena frame = Arena.ofConfined()) {
            MemorySegment capture = Libc.newCapture(frame);
            long fd = Libc.syscall(capture, Libc.SYS_USERFAULTFD, Libc.O_CLOEXEC | Libc.O_NONBLOCK, 0, 0, 0, 0);
            if (fd < 0) {
                throw new UserfaultfdException("userfaultfd(O_CLOEXEC|O_NONBLOCK)", Libc.errno(capture));
            }
            MemorySegment api = frame.allocate(API_SIZE, 8);
            api.set(ValueLayout.JAVA_LONG, API_API, UFFD_API);
            api.set(ValueLayout.JAVA_LONG, API_FEATURES, 0L);
            if (Libc.ioctl(capture, (int) fd, UFFDIO_API, api) != 0) {
                int errno = Libc.errno(capture);
                Libc.close(capture, (int) fd);
                throw new UserfaultfdException("UFFDIO_API handshake", errno);
            }
            return (int) fd;
        }
    }
}
