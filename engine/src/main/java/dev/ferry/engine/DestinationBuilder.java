package dev.ferry.engine;

import dev.ferry.core.Capability;
import dev.ferry.core.Configuration;
import dev.ferry.core.FaultMechanism;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationListener;
import dev.ferry.core.NanoClock;
import dev.ferry.core.TlsProvider;
import dev.ferry.core.VmControl;
import dev.ferry.transport.LinkException;
import dev.ferry.transport.GuestMux;
import dev.ferry.transport.PendingConnections;
import dev.ferry.transport.LinkServer;
import dev.ferry.transport.Tls;
import dev.ferry.transport.Transports;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.EventLoopGroup;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.function.Consumer;
import java.util.Objects;
import java.util.Set;
import java.util.function.LongFunction;

/**
 * Configures and starts an {@link IncomingMigration}. Its settings start from
 * {@link Configuration}; each has a getter named as its setter.
 */
public final class DestinationBuilder {
    private final VmControl vm;
    private LongFunction<GuestMemory> memoryForSize;
    private InetSocketAddress address = Configuration.LISTEN.value();
    private Set<Capability> capabilities = EnumSet.allOf(Capability.class);
    private long peerTimeoutMillis = Configuration.PEER_TIMEOUT.value();
    private int largestRead = LinkServer.MAX_READ;
    private NanoClock clock = NanoClock.SYSTEM;
    private FaultMechanism faultMechanism = Configuration.FAULT_MECHANISM.value();
    private long recoverTimeoutMillis = Configuration.RECOVER_TIMEOUT.value();
    private boolean prealloc = Configuration.PREALLOC.value();
    private long maxMemory = Configuration.MAX_MEMORY.value();
    private int maxPending = Configuration.MAX_PENDING.value();
    private Optional<Path> tlsCert = Configuration.TLS_CERT.value();
    private Optional<Path> tlsKey = Configuration.TLS_KEY.value();
    private Optional<Path> tlsCa = Configuration.TLS_CA.value();
    private List<String> tlsAllow = Configuration.TLS_ALLOW.value();
    private TlsProvider tlsProvider = Configuration.TLS_PROVIDER.value();
    private UUID migrationId = Configuration.MIGRATION_ID.value();
    private boolean insecure = Configuration.INSECURE.value();
    private Consumer<String> refusals = reason -> { };
    private long handshakeTimeoutMillis = Configuration.HANDSHAKE_TIMEOUT.value();
    private long acceptTimeoutMillis = Configuration.ACCEPT_TIMEOUT.value();
    private GuestMemory given;
    private MeterRegistry registry = new SimpleMeterRegistry();
    private String guest = SourceBuilder.DEFAULT_GUEST;
    private MigrationListener listener = MigrationListener.NONE;
    private Gang gang;
    private int member;

    DestinationBuilder(VmControl vm) {
        this.vm = Objects.requireNonNull(vm);
    }

    /**
     * Receive into {@code memory} (zero-filled, as a fresh guest's is); a source announcing
     * another size is refused.
     */
    public DestinationBuilder memory(GuestMemory memory) {
        Objects.requireNonNull(memory);
        this.given = memory;
        this.memoryForSize = bytes -> {
            if (bytes != memory.byteSize()) {
                throw new IllegalArgumentException("source memory is " + bytes + " bytes, destination has " + memory.byteSize());
            }
            return memory;
        };
        return this;
    }

    /**
     * Receives member {@code member} (from 1) of {@code gang}: a reference the source sends to a
     * page of another member reads that member's memory here. Every member of a gang on this host
     * is received with the same {@code gang}.
     */
    public DestinationBuilder gang(Gang gang, int member) {
        this.gang = Objects.requireNonNull(gang);
        this.member = Gang.checkMember(member);
        return this;
    }

    /** Allocate anonymous memory of the size the source announces. */
    public DestinationBuilder memoryFromHandshake() {
        this.given = null;
        this.memoryForSize = bytes -> {
            GuestMemory memory = GuestMemory.anonymous(bytes);
            if (prealloc) {
                memory.prealloc();
            }
            return memory;
        };
        return this;
    }

    /**
     * {@link Configuration#PREALLOC}: fault the guest memory in before the migration (QEMU's
     * {@code -mem-prealloc}): memory given to {@link #memory} at {@link #start()}, memory sized by
     * the handshake as soon as it is allocated.
     */
    public DestinationBuilder prealloc(boolean value) {
        this.prealloc = value;
        return this;
    }

    public boolean prealloc() {
        return prealloc;
    }

    /** {@link Configuration#LISTEN}: where to listen. */
    public DestinationBuilder listen(InetSocketAddress value) {
        this.address = Configuration.LISTEN.check(value);
        return this;
    }

    public InetSocketAddress listen() {
        return address;
    }

    /** What this destination accepts (default everything it knows). */
    public DestinationBuilder capabilities(Set<Capability> value) {
        this.capabilities = EnumSet.copyOf(value);
        return this;
    }

    /** {@link Configuration#MAX_MEMORY}: the largest guest this destination accepts from a handshake. */
    public DestinationBuilder maxMemory(long value) {
        this.maxMemory = Configuration.MAX_MEMORY.check(value);
        return this;
    }

    public long maxMemory() {
        return maxMemory;
    }

    /** {@link Configuration#MAX_PENDING}: connections held open before their first frame. */
    public DestinationBuilder maxPendingConnections(int value) {
        this.maxPending = Configuration.MAX_PENDING.check(value);
        return this;
    }

    public int maxPendingConnections() {
        return maxPending;
    }

    /**
     * {@link Configuration#HANDSHAKE_TIMEOUT}: a connection that has not sent its first whole
     * frame (HELLO, JOIN or RECOVER) this long after it opened is closed, and fails nothing.
     */
    public DestinationBuilder handshakeTimeoutMillis(long value) {
        this.handshakeTimeoutMillis = Configuration.HANDSHAKE_TIMEOUT.check(value);
        return this;
    }

    public long handshakeTimeoutMillis() {
        return handshakeTimeoutMillis;
    }

    /**
     * {@link Configuration#ACCEPT_TIMEOUT}: the migration fails unless a source's HELLO was taken
     * this long after {@link #start()}; connections refused meanwhile do not end the wait.
     */
    public DestinationBuilder acceptTimeoutMillis(long value) {
        this.acceptTimeoutMillis = Configuration.ACCEPT_TIMEOUT.check(value);
        return this;
    }

    public long acceptTimeoutMillis() {
        return acceptTimeoutMillis;
    }

    /** {@link Configuration#PEER_TIMEOUT}: a source silent this long is dead. */
    public DestinationBuilder peerTimeoutMillis(long value) {
        this.peerTimeoutMillis = Configuration.PEER_TIMEOUT.check(value);
        return this;
    }

    public long peerTimeoutMillis() {
        return peerTimeoutMillis;
    }

    /**
     * {@link Configuration#FAULT_MECHANISM}: how post-copy catches guest accesses to missing pages.
     * With userfaultfd, guest threads must store through {@link IncomingMigration#pageGate()} and
     * never load or store guest memory from Java directly.
     */
    public DestinationBuilder faultMechanism(FaultMechanism value) {
        this.faultMechanism = Configuration.FAULT_MECHANISM.check(value);
        return this;
    }

    public FaultMechanism faultMechanism() {
        return faultMechanism;
    }

    /**
     * {@link Configuration#RECOVER_TIMEOUT}: how long a link lost during post-copy may stay lost
     * (QEMU's postcopy recovery): the guest waits on its missing pages meanwhile, and is given up
     * only after it.
     */
    public DestinationBuilder recoverTimeoutMillis(long value) {
        this.recoverTimeoutMillis = Configuration.RECOVER_TIMEOUT.check(value);
        return this;
    }

    public long recoverTimeoutMillis() {
        return recoverTimeoutMillis;
    }

    /**
     * Mutual TLS 1.3 on every connection: this side's certificate chain and key, and the
     * authorities a source's certificate must chain to (PEM files). Sources are allowed by name
     * with {@link #tlsAllow}; without it, none is.
     */
    public DestinationBuilder tls(Path cert, Path key, Path ca) {
        return tlsCert(Optional.of(cert)).tlsKey(Optional.of(key)).tlsCa(Optional.of(ca));
    }

    /** {@link Configuration#TLS_CERT}. */
    public DestinationBuilder tlsCert(Optional<Path> value) {
        this.tlsCert = Configuration.TLS_CERT.check(value);
        return this;
    }

    public Optional<Path> tlsCert() {
        return tlsCert;
    }

    /** {@link Configuration#TLS_KEY}. */
    public DestinationBuilder tlsKey(Optional<Path> value) {
        this.tlsKey = Configuration.TLS_KEY.check(value);
        return this;
    }

    public Optional<Path> tlsKey() {
        return tlsKey;
    }

    /** {@link Configuration#TLS_CA}. */
    public DestinationBuilder tlsCa(Optional<Path> value) {
        this.tlsCa = Configuration.TLS_CA.check(value);
        return this;
    }

    public Optional<Path> tlsCa() {
        return tlsCa;
    }

    /**
     * {@link Configuration#TLS_ALLOW}: the source certificate names (DNS or IP subject alternative
     * names) allowed; empty, the default, allows no one (QEMU's tls-authz).
     */
    public DestinationBuilder tlsAllow(List<String> value) {
        this.tlsAllow = List.copyOf(Configuration.TLS_ALLOW.check(value));
        return this;
    }

    public List<String> tlsAllow() {
        return tlsAllow;
    }

    /** {@link Configuration#TLS_PROVIDER}. */
    public DestinationBuilder tlsProvider(TlsProvider value) {
        this.tlsProvider = Configuration.TLS_PROVIDER.check(value);
        return this;
    }

    public TlsProvider tlsProvider() {
        return tlsProvider;
    }

    /**
     * {@link Configuration#MIGRATION_ID}: the id the manager gave this migration; a source saying
     * another is refused. The nil UUID (the default) accepts any, and the session then keeps the
     * source's.
     */
    public DestinationBuilder migrationId(UUID value) {
        this.migrationId = Configuration.MIGRATION_ID.check(value);
        return this;
    }

    public UUID migrationId() {
        return migrationId;
    }

    /**
     * {@link Configuration#INSECURE}: allow listening on an address other than loopback without
     * TLS, where anyone who can reach it can send a guest or read one.
     */
    public DestinationBuilder insecure(boolean value) {
        this.insecure = value;
        return this;
    }

    public boolean insecure() {
        return insecure;
    }

    /**
     * Told of every connection refused before it became part of the session: its peer address and
     * why (a TLS handshake that failed, a certificate name not allowed, another migration's id, a
     * stranger's first frame). On an event loop: return quickly.
     */
    public DestinationBuilder onRefused(Consumer<String> value) {
        this.refusals = Objects.requireNonNull(value);
        return this;
    }

    /** Where the {@code ferry.*} meters of this side go (default: a private registry). */
    public DestinationBuilder meterRegistry(MeterRegistry value) {
        this.registry = Objects.requireNonNull(value);
        return this;
    }

    /** The guest, as the meters' {@code guest} tag (default {@code default}). */
    public DestinationBuilder guest(String value) {
        this.guest = Objects.requireNonNull(value);
        return this;
    }

    /** Progress events of this side, one call at a time on the session's threads. */
    public DestinationBuilder listener(MigrationListener value) {
        this.listener = Objects.requireNonNull(value);
        return this;
    }

    /** The time source (default the monotonic system clock). */
    public DestinationBuilder clock(NanoClock value) {
        this.clock = Objects.requireNonNull(value);
        return this;
    }

    /**
     * Listens and serves exactly one migration: another connection is refused, unless it resumes
     * a post-copy migration whose link was lost. A gang's member is received on the gang's
     * listening socket instead, which the first member started opens, with its address, TLS and
     * timeouts.
     */
    public IncomingMigration start() throws MigrationException {
        if (memoryForSize == null) {
            throw new IllegalStateException("no memory: call memory(...) or memoryFromHandshake() first");
        }
        Tls tls;
        try {
            tls = new TlsCredentials(tlsCert, tlsKey, tlsCa, tlsAllow, tlsProvider).forDestination();
        } catch (LinkException e) {
            throw new MigrationException(e.getMessage(), e);
        }
        java.net.InetAddress host = address.getAddress();
        if (tls == null && !insecure && (host == null || !host.isLoopbackAddress())) {
            throw new MigrationException("refusing to listen on " + address.getHostString() + " without TLS: anyone who can"
                    + " reach it could read the guest's memory or send a guest of their own; give "
                    + Configuration.TLS_CERT.name() + ", " + Configuration.TLS_KEY.name() + " and "
                    + Configuration.TLS_CA.name() + ", or " + Configuration.INSECURE.name() + " to accept that");
        }
        if (prealloc && given != null) {
            given.prealloc();
        }
        DestinationSession session = new DestinationSession(memoryForSize, vm, clock, capabilities, faultMechanism,
                peerTimeoutMillis, recoverTimeoutMillis, maxMemory, migrationId, registry, guest, listener);
        DestinationHandler handler = new DestinationHandler(session, maxPending, handshakeTimeoutMillis, peerTimeoutMillis,
                refusals);
        TlsProvider provider = tls == null ? null : tls.provider();
        if (gang != null) {
            session.gang(gang, member);
            try {
                Gang.Listener shared = gang.receive(member, handler, () -> {
                    PendingConnections pending = new PendingConnections(maxPending, handshakeTimeoutMillis);
                    return bind(tls, () -> new GuestMux(gang::handler, refusals, peerTimeoutMillis, pending));
                });
                session.awaitSource(acceptTimeoutMillis);
                return new IncomingMigration(shared.address(), () -> gang.received(member, shared), () -> gang.closed(shared),
                        session, provider);
            } catch (LinkException e) {
                throw new MigrationException(e.getMessage(), e);
            }
        }
        try {
            // one handler for every connection: the control connection, the channels, a recovery, or a refusal
            Gang.Listener own = bind(tls, () -> handler);
            session.awaitSource(acceptTimeoutMillis);
            return new IncomingMigration(own.address(), own::stopListening, own::close, session, provider);
        } catch (LinkException e) {
            throw new MigrationException(e.getMessage(), e);
        }
    }

    /** Reads at most {@code bytes} at a time from each connection: only the warm-up's small reads. */
    DestinationBuilder largestRead(int bytes) {
        this.largestRead = bytes;
        return this;
    }

    /** The listening socket, on event loops of its own: page channels apply in parallel, each on a loop of its own as far as the cores go. */
    private Gang.Listener bind(Tls tls, java.util.function.Supplier<io.netty.channel.ChannelHandler> handlers)
            throws LinkException {
        EventLoopGroup group = Transports.group(Math.max(4, 2 * Runtime.getRuntime().availableProcessors()));
        try {
            return new Gang.Listener(LinkServer.bind(group, address, peerTimeoutMillis, tls, refusals, largestRead, handlers), group);
        } catch (LinkException | RuntimeException e) {
            group.shutdownGracefully();
            throw e;
        }
    }
}
