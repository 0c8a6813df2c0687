package dev.ferry.engine;

import dev.ferry.core.Configuration;
import dev.ferry.dedup.GangIndex;
import dev.ferry.stream.HeldGuest;
import dev.ferry.transport.BandwidthLimiter;
import dev.ferry.transport.Link;
import dev.ferry.transport.LinkException;
import dev.ferry.transport.LinkServer;
import io.netty.channel.ChannelHandler;
import io.netty.channel.EventLoopGroup;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Guests that migrate together, as a host is evacuated (gang migration; QEMU has none). Each
 * member is still a migration of its own, with its rounds, downtime limit, hand-over (each when
 * it converges) and report. What they share is the session's connections: one control
 * connection, one connection a page channel and one request connection, each carrying every
 * member's frames in GUEST frames that name the member, and one listening socket on the
 * destination; on the source, one {@code max-bandwidth} and, with dedup, one content index, so a
 * page whose contents another member already sent crosses as a reference to that member's copy;
 * on the destination, the members' memories, which such a reference reads from (and checks,
 * since the members' channels are in no order with each other: a copy not there yet, or changed,
 * is a stale reference and the page crosses in full).
 *
 * <p>A shared connection lost is lost to every member on it: each fails, or, in post-copy,
 * recovers, and the first member to reconnect opens the new connection the others then share.
 * One member failing otherwise fails it alone: its connections close inside the shared ones.
 *
 * <p>Both sides number the members alike, from 1, as a manager gives both sides the migration
 * ids: {@code SourceBuilder.gang(gang, 2)} on one host migrates into
 * {@code DestinationBuilder.gang(gang, 2)} on the other. On the destination the first member
 * started opens the listening socket (with its address, TLS and timeouts), and every member
 * started while it is open is received on it.
 */
public final class Gang {
    /** The most members a gang has: a reference names its guest in 16 bits. */
    public static final int MAX_MEMBERS = 0xFFFF;

    private final BandwidthLimiter limiter;
    /** Bytes of the shared content index, 0 for none; it is made when a member's dedup first asks. */
    private final long indexBytes;
    /** Guarded by this: a destination, or a gang without dedup, never holds one. */
    private GangIndex index;
    private final Map<Integer, HeldGuest> members = new ConcurrentHashMap<>();
    /** The source's connections the members share, by {@link #CONTROL}, {@link #REQUEST} or page channel; guarded by itself. */
    private final Map<Integer, Link> connections = new java.util.HashMap<>();
    /** The destination's members received on {@link #listener}, by number: their connections' handler. */
    private final Map<Integer, ChannelHandler> handlers = new ConcurrentHashMap<>();
    /** Guarded by this: the source's event loops, which its shared connections run on, while a member migrates. */
    private EventLoopGroup sourceLoops;
    private int sourceMembers;
    /** Guarded by this: the destination's listening socket, while a member is received on it. */
    private Listener listener;

    /** A shared connection's role: the control connection. */
    static final int CONTROL = -1;
    /** A shared connection's role: the request connection of post-copy. */
    static final int REQUEST = -2;

    /** Opens a connection of the source's. */
    @FunctionalInterface
    interface Connector {
        Link connect() throws LinkException;
    }

    /** Binds the destination's listening socket, on event loops of its own. */
    @FunctionalInterface
    interface Binder {
        Listener bind() throws LinkException;
    }

    /**
     * The destination's listening socket and its event loops: the socket closes when no member is
     * waiting for its connections any more, the loops when no member is open.
     */
    static final class Listener {
        private final LinkServer server;
        private final EventLoopGroup group;
        private int listening;
        private int open;

        Listener(LinkServer server, EventLoopGroup group) {
            this.server = server;
            this.group = group;
        }

        java.net.InetSocketAddress address() {
            return server.localAddress();
        }

        /** Stops accepting connections. */
        void stopListening() {
            server.close();
        }

        /** Stops accepting connections and shuts the event loops down, closing every connection on them. */
        void close() {
            server.close();
            group.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS).awaitUninterruptibly(5000);
        }
    }

    private Gang(long maxBandwidth, long indexBytes) {
        this.limiter = new BandwidthLimiter(Configuration.MAX_BANDWIDTH.check(maxBandwidth));
        this.indexBytes = indexBytes;
    }

    /**
     * A gang whose members share {@code maxBandwidth} bytes a second (0: unlimited) and a content
     * index of {@code dedupIndexBytes}, made when a member's dedup first needs it (the
     * destination's side uses neither).
     */
    public static Gang create(long maxBandwidth, long dedupIndexBytes) {
        return new Gang(maxBandwidth, Configuration.DEDUP_INDEX_SIZE.check(dedupIndexBytes));
    }

    /** A gang with the default {@code max-bandwidth} and {@code dedup-index-size}. */
    public static Gang create() {
        return create(Configuration.MAX_BANDWIDTH.value(), Configuration.DEDUP_INDEX_SIZE.value());
    }

    /**
     * A gang whose members share {@code maxBandwidth} but no content index: with dedup, each
     * refers only to its own pages, as if it migrated alone (what the shared index saves is
     * measured against this).
     */
    public static Gang withinGuests(long maxBandwidth) {
        return new Gang(maxBandwidth, 0);
    }

    /** Entries the shared content index replaced to make room so far; 0 without one. */
    public synchronized long indexEvictions() {
        return index == null ? 0 : index.evictions();
    }

    /** Bytes of the shared content index; 0 while no member's dedup made one. */
    public synchronized long indexBytes() {
        return index == null ? 0 : index.bytes();
    }

    static int checkMember(int member) {
        if (member < 1 || member > MAX_MEMBERS) {
            throw new IllegalArgumentException("a gang member's number is 1.." + MAX_MEMBERS + ", got " + member);
        }
        return member;
    }

    BandwidthLimiter limiter() {
        return limiter;
    }

    /** The shared content index, made on first use, or null when the members refer only to their own pages. */
    synchronized GangIndex index() {
        if (index == null && indexBytes > 0) {
            index = new GangIndex(indexBytes);
        }
        return index;
    }

    /**
     * Member {@code member}'s link in the connection of {@code role} its members share, opened by
     * {@code connect} when there is none or the one there closed.
     */
    Link link(int member, int role, Connector connect) throws LinkException {
        synchronized (connections) {
            Link connection = connections.get(role);
            Link link = connection == null ? null : connection.guest(member);
            if (link == null) {
                connection = connect.connect();
                connections.put(role, connection);
                link = connection.guest(member);
                if (link == null) {
                    connection.close();
                    throw new LinkException("the connection closed as it opened");
                }
            }
            return link;
        }
    }

    /** The source's event loops, {@code threads} of them when made, for a member that starts migrating. */
    synchronized EventLoopGroup sourceLoops(int threads) {
        if (sourceLoops == null) {
            sourceLoops = dev.ferry.transport.Transports.group(threads);
        }
        sourceMembers++;
        return sourceLoops;
    }

    /** A member's migration ended: the last one's end shuts the source's event loops down, with every connection on them. */
    void releaseSourceLoops(EventLoopGroup loops) {
        synchronized (this) {
            if (--sourceMembers > 0 || loops != sourceLoops) {
                return;
            }
            sourceLoops = null;
        }
        loops.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS);
    }

    /**
     * Receives member {@code member} with {@code handler} on the gang's listening socket, bound by
     * {@code bind} when none is open.
     */
    synchronized Listener receive(int member, ChannelHandler handler, Binder bind) throws LinkException {
        if (handlers.putIfAbsent(member, handler) != null) {
            throw new IllegalStateException("gang member " + member + " is already received here");
        }
        if (listener == null) {
            try {
                listener = bind.bind();
            } catch (LinkException | RuntimeException e) {
                handlers.remove(member);
                throw e;
            }
        }
        listener.listening++;
        listener.open++;
        return listener;
    }

    /** Member {@code member}'s migration ended: its new connections are refused, and the last one's end closes the socket. */
    synchronized void received(int member, Listener by) {
        handlers.remove(member);
        if (--by.listening == 0) {
            by.stopListening();
            if (listener == by) {
                listener = null;
            }
        }
    }

    /** Member {@code member} was closed: the last one closed shuts the event loops down. */
    void closed(Listener by) {
        boolean last;
        synchronized (this) {
            last = --by.open == 0;
        }
        if (last) {
            by.close();
        }
    }

    /** The handler of member {@code member}'s connections, or null when it is not received here. */
    ChannelHandler handler(int member) {
        return handlers.get(member);
    }

    /** Member {@code member} on this destination, from its handshake on. */
    void hold(int member, HeldGuest guest) {
        HeldGuest before = members.putIfAbsent(member, guest);
        if (before != null && before.memory() != guest.memory()) {
            throw new IllegalStateException("gang member " + member + " already has its memory here");
        }
    }

    /** Member {@code member} here, or null: where a reference to that guest reads from. */
    HeldGuest member(int member) {
        return members.get(member);
    }
}
