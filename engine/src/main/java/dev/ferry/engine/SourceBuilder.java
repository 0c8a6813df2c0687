package dev.ferry.engine;

import dev.ferry.compression.PageEncoder;
import dev.ferry.core.Capability;
import dev.ferry.core.DirtyLog;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationListener;
import dev.ferry.core.ConvergencePolicy;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.NanoClock;
import dev.ferry.core.VmControl;
import dev.ferry.transport.Transports;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.EventLoopGroup;
import java.net.InetSocketAddress;
import java.util.Objects;

/** Configures and starts an {@link OutgoingMigration}. */
public final class SourceBuilder {
    private final GuestMemory memory;
    private final DirtyLog dirtyLog;
    private final VmControl vm;
    private MigrationParameters parameters = MigrationParameters.defaults();
    private InetSocketAddress destination;
    private MigrationListener listener = MigrationListener.NONE;
    private MeterRegistry registry = new SimpleMeterRegistry();
    private NanoClock clock = NanoClock.SYSTEM;
    private String guest = DEFAULT_GUEST;
    private Gang gang;
    private int member;

    /** The guest tag of meters when none is given. */
    static final String DEFAULT_GUEST = "default";

    SourceBuilder(GuestMemory memory, DirtyLog dirtyLog, VmControl vm) {
        this.memory = Objects.requireNonNull(memory);
        this.dirtyLog = Objects.requireNonNull(dirtyLog);
        this.vm = Objects.requireNonNull(vm);
    }

    /** The migration parameters (default {@link MigrationParameters#defaults()}). */
    public SourceBuilder parameters(MigrationParameters value) {
        this.parameters = Objects.requireNonNull(value);
        return this;
    }

    /** The destination's address. */
    public SourceBuilder connect(InetSocketAddress value) {
        this.destination = Objects.requireNonNull(value);
        return this;
    }

    /** Progress events, on the migration's thread. */
    public SourceBuilder listener(MigrationListener value) {
        this.listener = Objects.requireNonNull(value);
        return this;
    }

    /** Where the {@code ferry.*} meters go (default: a private registry). */
    public SourceBuilder meterRegistry(MeterRegistry value) {
        this.registry = Objects.requireNonNull(value);
        return this;
    }

    /** The guest this migration moves, as its meters' {@code guest} tag (default {@code default}): a gang's guests differ. */
    public SourceBuilder guest(String value) {
        this.guest = Objects.requireNonNull(value);
        return this;
    }

    /**
     * Migrates as member {@code member} (from 1) of {@code gang}: the gang's {@code max-bandwidth}
     * replaces the parameters', and with dedup a page another member sent crosses as a reference
     * to it. The destination must be the same member of the gang there.
     */
    public SourceBuilder gang(Gang gang, int member) {
        this.gang = Objects.requireNonNull(gang);
        this.member = Gang.checkMember(member);
        return this;
    }

    /** The time source (default the monotonic system clock). */
    public SourceBuilder clock(NanoClock value) {
        this.clock = Objects.requireNonNull(value);
        return this;
    }

    /** Connects and starts migrating on a thread of its own. */
    public OutgoingMigration start() {
        if (destination == null) {
            throw new IllegalStateException("no destination: call connect(address) first");
        }
        if (parameters.convergence() == ConvergencePolicy.POSTCOPY
                && !parameters.capabilities().contains(Capability.POSTCOPY)) {
            throw new IllegalStateException("convergence postcopy needs the postcopy capability in the parameters");
        }
        if (parameters.capabilities().contains(Capability.LZ4) || parameters.capabilities().contains(Capability.ZSTD)) {
            PageEncoder.loadCodecs();
        }
        // the control connection, every page channel and the request channel on a loop of its own
        int loops = parameters.channels() + 2;
        // a gang's members share its connections, so their loops too: they outlive any one member
        EventLoopGroup group = gang == null ? Transports.group(loops) : gang.sourceLoops(loops);
        SourceSession migration = new SourceSession(memory, dirtyLog, vm, parameters, destination, group, clock,
                registry, guest, listener, gang, member);
        return new OutgoingMigration(migration, gang == null
                ? () -> group.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS)
                : () -> gang.releaseSourceLoops(group));
    }
}
