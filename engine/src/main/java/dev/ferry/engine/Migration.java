package dev.ferry.engine;

import dev.ferry.core.DirtyLog;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.VmControl;

/**
 * Where a hypervisor manager starts: {@link #source} migrates a running guest out,
 * {@link #destination} receives one.
 *
 * <pre>{@code
 * try (IncomingMigration in = Migration.destination(vm).memory(destRam).listen(address).start()) {
 *     OutgoingMigration out = Migration.source(srcRam, dirtyLog, srcVm).connect(in.address()).start();
 *     MigrationReport report = out.result().join();
 * }
 * }</pre>
 */
public final class Migration {
    private Migration() {
    }

    /** A migration of {@code memory} out of this host; the guest keeps running until the switch-over. */
    public static SourceBuilder source(GuestMemory memory, DirtyLog dirtyLog, VmControl vm) {
        return new SourceBuilder(memory, dirtyLog, vm);
    }

    /** A migration into this host; {@code vm} is resumed only after verified memory. */
    public static DestinationBuilder destination(VmControl vm) {
        return new DestinationBuilder(vm);
    }
}
