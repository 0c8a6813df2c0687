package dev.ferry.engine;

import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.TlsProvider;
import java.net.InetSocketAddress;
import java.util.concurrent.CompletableFuture;

/** A destination waiting for, or receiving, one migration. */
public final class IncomingMigration implements AutoCloseable {
    private final InetSocketAddress address;
    private final Runnable closeEventLoops;
    private final java.util.concurrent.atomic.AtomicBoolean closed = new java.util.concurrent.atomic.AtomicBoolean();
    private final DestinationSession migration;
    private final TlsProvider tls;

    /**
     * A migration received on {@code address}: {@code stopListening} runs once when it ends,
     * {@code closeEventLoops} once when it is closed.
     */
    IncomingMigration(InetSocketAddress address, Runnable stopListening, Runnable closeEventLoops,
            DestinationSession migration, TlsProvider tls) {
        this.address = address;
        this.closeEventLoops = closeEventLoops;
        this.tls = tls;
        this.migration = migration;
        migration.result().whenComplete((report, error) -> stopListening.run());
    }

    /** A snapshot of this side at this moment: bytes received, rounds ended, pages missing in post-copy. */
    public dev.ferry.core.MigrationProgress progress() {
        return migration.progress();
    }

    /**
     * Waits at most {@code timeout} for the migration to end and returns this side's report.
     *
     * @throws MigrationTimeoutException if it is still running then
     */
    public MigrationReport await(java.time.Duration timeout) throws MigrationException, InterruptedException {
        return OutgoingMigration.awaitReport(migration.result(), timeout, "destination");
    }

    /** The address sources connect to. */
    public InetSocketAddress address() {
        return address;
    }

    /** The TLS implementation every connection runs on (OpenSSL or the JDK's); empty for plaintext. */
    public java.util.Optional<TlsProvider> tlsProvider() {
        return java.util.Optional.ofNullable(tls);
    }

    /** Completes with this side's report when the migration ends, either way. */
    public CompletableFuture<MigrationReport> result() {
        return migration.result();
    }

    /**
     * What guest threads on this side call before touching a page: open until post-copy starts,
     * then the fault path that fetches missing pages. Ask for it when resuming the guest.
     */
    public dev.ferry.core.PageGate pageGate() {
        return migration.pageGate();
    }

    /** The guest memory being received, once a source's handshake fixed it; else null. */
    public GuestMemory memory() {
        return migration.memory();
    }

    /**
     * Stops listening and releases the event loop. A migration not ended by then fails here, so
     * its {@link #result()} completes at once; before post-copy the guest still runs on the
     * source, after it the pages it lacks can no longer arrive.
     */
    @Override
    public void close() {
        migration.fail("the destination was closed before the migration ended");
        if (closed.compareAndSet(false, true)) {
            closeEventLoops.run();
        }
    }
}
