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

    /**
     * Runs one small migration of a synthetic 8 MiB guest within this process over 127.0.0.1,
     * once per process, so that the JIT has seen every branch of the page path before a real
     * migration. It takes 0.7-0.9 s here, most of it loading classes and native libraries that
     * the first migration would otherwise load inside its own time. Call it at startup, before
     * the first migration (Ferry's CLI does): otherwise the first switch-over recompiles the code
     * its bulk round compiled without deltas or sparse rounds, and the guest waits for it (15-30 ms
     * more downtime on a 512 MiB guest, measured).
     *
     * @throws IllegalStateException if a warm-up migration fails (nothing on this host works then)
     */
    public static void warmUp() {
        WarmUp.run();
    }
}
