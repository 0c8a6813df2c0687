package dev.ferry.engine;

import dev.ferry.core.MigrationProgress;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A running migration out of this host: what QMP offers a manager on the source ({@code
 * query-migrate}, {@code migrate-set-parameters}, {@code migrate_cancel},
 * {@code migrate-start-postcopy}). Closing it cancels it if it has not handed over yet and waits,
 * bounded, for its end.
 */
public final class OutgoingMigration implements AutoCloseable {
    /** How long {@link #close()} waits for a migration it cancelled to end. */
    private static final Duration CLOSE_WAIT = Duration.ofSeconds(30);

    private final SourceSession migration;
    private final CompletableFuture<MigrationReport> result = new CompletableFuture<>();

    /** Runs {@code migration} on a thread of its own; {@code release} gives its event loops back when it ends. */
    OutgoingMigration(SourceSession migration, Runnable release) {
        this.migration = migration;
        Thread thread = new Thread(() -> {
            try {
                result.complete(migration.run());
            } catch (Throwable t) {
                result.completeExceptionally(t);
            } finally {
                release.run();
            }
        }, "ferry-source");
        thread.start();
    }

    /** The state machine's current state. */
    public MigrationState state() {
        return migration.state();
    }

    /**
     * A snapshot of the migration at this moment ({@code query-migrate}); cheap enough to poll
     * every few milliseconds. Within a round (between two dirty-log syncs) its remaining bytes
     * never grow.
     */
    public MigrationProgress progress() {
        return migration.progress();
    }

    /**
     * {@code migrate-set-parameters max-bandwidth}: bytes per second on the wire from now on,
     * 0 for unlimited. Every channel obeys from its next frame, a channel waiting at the old rate
     * stops waiting; the rounds still to end measure their bandwidth, and the estimate, at the new rate.
     *
     * @throws IllegalArgumentException for a negative rate
     */
    public void maxBandwidth(long bytesPerSecond) {
        migration.maxBandwidth(bytesPerSecond);
    }

    /** The {@code max-bandwidth} in force. */
    public long maxBandwidth() {
        return migration.maxBandwidth();
    }

    /**
     * {@code migrate-set-parameters downtime-limit}: the rounds still to end switch over once
     * their estimate fits {@code millis}.
     *
     * @throws IllegalArgumentException unless it is at least 1
     */
    public void downtimeLimitMillis(long millis) {
        migration.downtimeLimitMillis(millis);
    }

    /** The {@code downtime-limit} in force. */
    public long downtimeLimitMillis() {
        return migration.downtimeLimitMillis();
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
     *
     * @throws IllegalStateException when post-copy was not offered
     */
    public void startPostcopy() {
        migration.startPostcopy();
    }

    /** Completes with the report when the migration ends, whatever the outcome. */
    public CompletableFuture<MigrationReport> result() {
        return result;
    }

    /**
     * Waits at most {@code timeout} for the migration to end and returns its report, whatever the
     * outcome.
     *
     * @throws MigrationTimeoutException if it is still running then (it goes on)
     * @throws InterruptedException      if the waiting thread is interrupted
     */
    public MigrationReport await(Duration timeout) throws MigrationException, InterruptedException {
        return awaitReport(result, timeout, "source");
    }

    /** Cancels the migration unless it handed over already, and waits up to 30 s for its end. */
    @Override
    public void close() throws MigrationException, InterruptedException {
        if (!result.isDone()) {
            try {
                migration.cancel();
            } catch (IllegalStateException e) {
                // post-copy: the guest runs on the destination, only the end can be waited for
            }
        }
        await(CLOSE_WAIT);
    }

    static MigrationReport awaitReport(CompletableFuture<MigrationReport> result, Duration timeout, String side)
            throws MigrationException, InterruptedException {
        try {
            return result.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw new MigrationTimeoutException("the " + side + " migration did not end within " + timeout.toMillis()
                    + " ms");
        } catch (ExecutionException e) {
            throw new MigrationException("the " + side + " migration broke: " + e.getCause(), e.getCause());
        }
    }
}
