package dev.ferry.transport;

import io.netty.channel.Channel;
import io.netty.util.AttributeKey;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The connections of one listening socket that have not yet said what they are: at most
 * {@code max} at once, each given {@code timeoutMillis} to say it, so that a stranger's cost is
 * bounded by their number whatever it sends, or trickles, or keeps back.
 */
public final class PendingConnections {
    private static final AttributeKey<Boolean> PENDING = AttributeKey.valueOf("ferry.pending");

    private final AtomicInteger count = new AtomicInteger();
    private final int max;
    private final long timeoutMillis;

    /** At most {@code max} pending at once, each for at most {@code timeoutMillis}. */
    public PendingConnections(int max, long timeoutMillis) {
        this.max = max;
        this.timeoutMillis = timeoutMillis;
    }

    /**
     * Counts {@code channel}, just active, as pending, and runs {@code expired} on its event loop
     * if it still is after the timeout.
     *
     * @return false, counting nothing, when {@code max} are pending already: the caller closes it
     */
    public boolean admit(Channel channel, Runnable expired) {
        if (count.incrementAndGet() > max) {
            count.decrementAndGet();
            return false;
        }
        channel.attr(PENDING).set(Boolean.TRUE);
        channel.eventLoop().schedule(() -> {
            if (isPending(channel)) {
                expired.run();
            }
        }, timeoutMillis, TimeUnit.MILLISECONDS);
        return true;
    }

    /** Whether {@code channel} was admitted and has not settled. */
    public boolean isPending(Channel channel) {
        return channel.attr(PENDING).get() != null;
    }

    /** {@code channel} said what it is, or closed: it no longer counts. Idempotent. */
    public void settle(Channel channel) {
        if (channel.attr(PENDING).getAndSet(null) != null) {
            count.decrementAndGet();
        }
    }

    /** How long a connection may stay pending, for messages. */
    public long timeoutMillis() {
        return timeoutMillis;
    }
}
