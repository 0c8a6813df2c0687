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
     * then four of 128 MiB with zero pages and, every other one, dedup, once per process, so that
     * the JIT has seen every branch of the page path, and compiled the raw path and Netty's
     * per-frame calls, before a real migration. It takes about 2 s here, loading classes and
     * native libraries that the first migration would otherwise load inside its own time, and
     * compiling what it would otherwise compile during its bulk round. Call it at startup, after
     * preparing anything else the process compiles (Ferry's CLI calls it after filling its guests,
     * so that their generators' compilation does not run during the migration) and before the
     * first migration: otherwise the first switch-over recompiles the code
     * its bulk round compiled without deltas or sparse rounds, and the guest waits for it (15-30 ms
     * more downtime on a 512 MiB guest, measured).
     *
     * @throws IllegalStateException if a warm-up migration fails (nothing on this host works then)
     */
    public static void warmUp() {
        WarmUp.run();
    }
}
