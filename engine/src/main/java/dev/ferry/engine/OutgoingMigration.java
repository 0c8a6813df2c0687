package dev.ferry.engine;

import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import io.netty.channel.EventLoopGroup;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** A running migration out of this host. */
public final class OutgoingMigration {
    private final SourceSession migration;
    private final CompletableFuture<MigrationReport> result = new CompletableFuture<>();

    OutgoingMigration(SourceSession migration, EventLoopGroup group) {
        this.migration = migration;
        Thread thread = new Thread(() -> {
            try {
                result.complete(migration.run());
            } catch (Throwable t) {
                result.completeExceptionally(t);
            } finally {
                group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
            }
        }, "ferry-source");
        thread.start();
    }

    /** The state machine's current state. */
    public MigrationState state() {
        return migration.state();
    }

    /**
     * Asks the migration to stop. Before the switch-over it ends CANCELLED with the guest running
     * here; once the guest is paused for a stop-and-copy the request is ignored.
     *
     * @throws IllegalStateException during post-copy, which cannot give the guest back
     */
    public void cancel() {
        migration.cancel();
    }

    /**
     * Switches a running migration to post-copy at its next frame (QEMU's
     * {@code migrate-start-postcopy}); needs the postcopy capability in the parameters.
     */
    public void startPostcopy() {
        migration.startPostcopy();
    }

    /** Completes with the report when the migration ends, whatever the outcome. */
    public CompletableFuture<MigrationReport> result() {
        return result;
    }
}
