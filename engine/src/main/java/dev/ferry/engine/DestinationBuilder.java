package dev.ferry.engine;

import dev.ferry.core.Capability;
import dev.ferry.core.FaultMechanism;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.NanoClock;
import dev.ferry.core.VmControl;
import dev.ferry.precopy.DestinationMigration;
import dev.ferry.transport.LinkException;
import dev.ferry.transport.LinkServer;
import dev.ferry.transport.Transports;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.EventLoopGroup;
import java.net.InetSocketAddress;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Set;
import java.util.function.LongFunction;

/** Configures and starts an {@link IncomingMigration}. */
public final class DestinationBuilder {
    private final VmControl vm;
    private LongFunction<GuestMemory> memoryForSize;
    private InetSocketAddress address = new InetSocketAddress("127.0.0.1", 0);
    private Set<Capability> capabilities = EnumSet.allOf(Capability.class);
    private long peerTimeoutMillis = 10_000;
    private NanoClock clock = NanoClock.SYSTEM;
    private FaultMechanism faultMechanism = FaultMechanism.AUTO;
    private long recoverTimeoutMillis = 60_000;
    private MeterRegistry registry = new SimpleMeterRegistry();

    DestinationBuilder(VmControl vm) {
        this.vm = Objects.requireNonNull(vm);
    }

    /**
     * Receive into {@code memory} (zero-filled, as a fresh guest's is); a source announcing
     * another size is refused.
     */
    public DestinationBuilder memory(GuestMemory memory) {
        Objects.requireNonNull(memory);
        this.memoryForSize = bytes -> {
            if (bytes != memory.byteSize()) {
                throw new IllegalArgumentException("source memory is " + bytes + " bytes, destination has " + memory.byteSize());
            }
            return memory;
        };
        return this;
    }

    /** Allocate anonymous memory of the size the source announces. */
    public DestinationBuilder memoryFromHandshake() {
        this.memoryForSize = GuestMemory::anonymous;
        return this;
    }

    /** Where to listen (default 127.0.0.1 on a free port). */
    public DestinationBuilder listen(InetSocketAddress value) {
        this.address = Objects.requireNonNull(value);
        return this;
    }

    /** What this destination accepts (default everything it knows). */
    public DestinationBuilder capabilities(Set<Capability> value) {
        this.capabilities = EnumSet.copyOf(value);
        return this;
    }

    /** A source silent this long is dead (default 10 s). */
    public DestinationBuilder peerTimeoutMillis(long value) {
        this.peerTimeoutMillis = value;
        return this;
    }

    /**
     * How post-copy catches guest accesses to missing pages (default {@link FaultMechanism#AUTO}:
     * userfaultfd where the kernel allows it). With userfaultfd, guest threads must store through
     * {@link IncomingMigration#pageGate()} and never load or store guest memory from Java directly.
     */
    public DestinationBuilder faultMechanism(FaultMechanism value) {
        this.faultMechanism = Objects.requireNonNull(value);
        return this;
    }

    /**
     * How long a link lost during post-copy may stay lost (QEMU's postcopy recovery; default 60 s):
     * the guest waits on its missing pages meanwhile, and is given up only after it.
     */
    public DestinationBuilder recoverTimeoutMillis(long value) {
        if (value <= 0) {
            throw new IllegalArgumentException("recover-timeout must be > 0, got " + value);
        }
        this.recoverTimeoutMillis = value;
        return this;
    }

    /** Where the {@code ferry.*} meters of this side go (default: a private registry). */
    public DestinationBuilder meterRegistry(MeterRegistry value) {
        this.registry = Objects.requireNonNull(value);
        return this;
    }

    /** The time source (default the monotonic system clock). */
    public DestinationBuilder clock(NanoClock value) {
        this.clock = Objects.requireNonNull(value);
        return this;
    }

    /**
     * Listens and serves exactly one migration: another connection is refused, unless it resumes
     * a post-copy migration whose link was lost.
     */
    public IncomingMigration start() throws LinkException {
        if (memoryForSize == null) {
            throw new IllegalStateException("no memory: call memory(...) or memoryFromHandshake() first");
        }
        EventLoopGroup group = Transports.group(1);
        DestinationMigration migration = new DestinationMigration(memoryForSize, vm, clock, capabilities, faultMechanism,
                recoverTimeoutMillis, registry);
        try {
            // one handler for every connection: the source's, a reconnection during post-copy, or a refusal
            LinkServer server = LinkServer.bind(group, address, peerTimeoutMillis, () -> migration);
            return new IncomingMigration(server, group, migration);
        } catch (LinkException | RuntimeException e) {
            group.shutdownGracefully();
            throw e;
        }
    }
}
