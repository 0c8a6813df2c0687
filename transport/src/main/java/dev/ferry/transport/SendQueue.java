package dev.ferry.transport;

import io.netty.channel.Channel;
import io.netty.channel.epoll.EpollSocketChannel;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Bytes a connection has handed to the kernel that the peer has not acknowledged yet (Linux
 * {@code SIOCOUTQ}): what is queued in the socket, in a shaping qdisc and on the wire. A pause
 * waits for them to drain before the last pages arrive, so the downtime estimate counts them.
 * 0 where the socket is not native epoll's.
 */
final class SendQueue {
    private static final long SIOCOUTQ = 0x5411;
    private static final MethodHandle IOCTL = Linker.nativeLinker().downcallHandle(
            Linker.nativeLinker().defaultLookup().find("ioctl").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS),
            Linker.Option.firstVariadicArg(2));

    private SendQueue() {
    }

    static long unacknowledged(Channel channel) {
        if (!(channel instanceof EpollSocketChannel epoll) || !channel.isOpen()) {
            return 0;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_INT);
            int rc = (int) IOCTL.invokeExact(epoll.fd().intValue(), SIOCOUTQ, out);
            return rc == 0 ? out.get(ValueLayout.JAVA_INT, 0) : 0;
        } catch (Throwable t) {
            return 0;
        }
    }
}
