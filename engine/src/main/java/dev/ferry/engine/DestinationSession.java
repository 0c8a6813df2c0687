package dev.ferry.engine;

import dev.ferry.compression.MalformedPayloadException;
import dev.ferry.core.Capability;
import dev.ferry.core.DedupReport;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MemoryDigest;
import dev.ferry.core.MigrationListener;
import dev.ferry.core.MigrationMetrics;
import dev.ferry.core.MigrationMode;
import dev.ferry.core.MigrationProgress;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.NanoClock;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageDigest;
import dev.ferry.core.PageGate;
import dev.ferry.core.PostcopyReport;
import dev.ferry.core.VmControl;
import dev.ferry.core.FaultMechanism;
import dev.ferry.postcopy.PostcopyDestination;
import dev.ferry.protocol.PageEncoding;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.Wire;
import dev.ferry.stream.HeldGuest;
import dev.ferry.stream.PageApplier;
import io.micrometer.core.instrument.MeterRegistry;
import java.lang.foreign.MemorySegment;
import java.security.SecureRandom;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.LongFunction;

/**
 * The destination side of one migration session, as an explicit state machine that knows no
 * Netty: {@link DestinationHandler} turns frames into calls here, and this answers through a
 * {@link SourcePeer}.
 *
 * <pre>
 * AWAIT_HELLO ──> RECEIVING ──┬──> COMPLETED                (verified END: resumed)
 *      │             │        └──> POSTCOPY ──> COMPLETED    (resumed at POSTCOPY_START)
 *      │             │               │  ↑
 *      │             │               ↓  │ RECOVER
 *      │             │            RECOVERING
 *      └─────────────┴───────────────┴──> FAILED            (never resumed before POSTCOPY)
 * </pre>
 *
 * <p>Threads: control frames run on one control thread, in order; each page channel's frames run
 * on its connection's thread, into that channel's {@link PageApplier}. The control connection's
 * ROUND_END is the barrier between them: the control thread goes on only once every page channel
 * has ended that round, so the device state, DISCARD and END are applied after every page of the
 * rounds before them.
 */
final class DestinationSession {
    /** The session's states. */
    enum State {
        AWAIT_HELLO, RECEIVING, POSTCOPY, RECOVERING, COMPLETED, FAILED;

        boolean canBecome(State next) {
            return switch (this) {
                case AWAIT_HELLO -> next == RECEIVING || next == FAILED;
                case RECEIVING -> next == POSTCOPY || next == COMPLETED || next == FAILED;
                case POSTCOPY -> next == RECOVERING || next == COMPLETED || next == FAILED;
                case RECOVERING -> next == POSTCOPY || next == FAILED;
                case COMPLETED, FAILED -> false;
            };
        }
    }

    /** How the session answers the source and manages its connections. */
    interface SourcePeer {
        void welcome(Wire.Welcome welcome);

        void postcopyRunning(long resumeNanos);

        /** RESUMED, then every connection of the session closes. */
        void resumed(long digest, long resumeNanos);

        /** The MISSING runs of {@code postcopy} and RECOVERED, on the new control connection. */
        void missing(PostcopyDestination postcopy);

        /** A PAGE_REQUEST on the request channel; dropped while it is down (the fault path asks again). */
        void requestPage(long page);

        /** ERROR on the control connection, then every connection closes. */
        void fail(String reason);

        /** Closes every connection of the session: a lost post-copy session waits for new ones. */
        void closeAll();

        /** The STALE frames answering round {@code round}'s barrier: the pages of {@code pages}. */
        void stale(int round, PageBitmap pages);
    }

    private final LongFunction<GuestMemory> memoryForSize;
    private final VmControl vm;
    private final NanoClock clock;
    private final Set<Capability> supported;
    /** With dedup, the pages of a round's stale references, gathered at its barrier; else null. */
    private PageBitmap stalePages;
    private final FaultMechanism faultMechanism;
    private final long peerTimeoutMillis;
    private final long recoverTimeoutMillis;
    private final long maxMemory;
    /** The gang this guest is received in and its number there, or null and 0. */
    private Gang gang;
    private int member;
    private final MeterRegistry registry;
    private final CompletableFuture<MigrationReport> result = new CompletableFuture<>();
    private final long sessionId = new SecureRandom().nextLong();
    /** The id the manager gave this side ({@link Wire#NO_MIGRATION}: none, so the HELLO's); then the session's. */
    private volatile UUID migration;
    /** The id meters and progress carry: the migration's, or the session's when it has none; fixed at HELLO. */
    private volatile String meterId = "";
    private final String guest;
    private final MigrationListener listener;
    private volatile MigrationMetrics metrics;
    private SourcePeer peer;
    /** The last round the control connection's barrier passed. */
    private volatile int roundsDone;
    private volatile long setupNanos = -1;
    private volatile double downtimeMs = -1;

    private volatile State state = State.AWAIT_HELLO;
    private volatile GuestMemory memory;
    private MemoryDigest digest;
    private PageBitmap written;
    private Set<Capability> negotiated = EnumSet.noneOf(Capability.class);
    private MigrationMode mode = MigrationMode.PRECOPY;
    private int channels;
    private PageApplier[] appliers = new PageApplier[0];
    /** Per channel, the request channel last: the last round it ended; guarded by this. */
    private int[] roundsEnded = new int[0];
    /** Per channel (the request channel last): whether it joined since the session (re)connected; guarded by this. */
    private boolean[] joined = new boolean[0];
    private byte[] deviceState;
    private volatile PostcopyDestination postcopy;
    private volatile PageGate gate;
    private long startNanos;
    private long pauseNanos = -1;
    private long resumeNanos = -1;
    /** Bytes of every frame but PAGES, from any connection's thread. */
    private final java.util.concurrent.atomic.LongAdder frameBytes = new java.util.concurrent.atomic.LongAdder();
    /** Frames being applied now, on any channel's thread. */
    private final java.util.concurrent.atomic.AtomicInteger applying = new java.util.concurrent.atomic.AtomicInteger();
    private int recoveries;
    private String failure;
    /** Why the last connection that never became part of the session was refused, or null. */
    private volatile String lastRefusal;
    /** A connection of the session was lost and the control thread has not dealt with it yet; guarded by this. */
    private boolean connectionGone;

    DestinationSession(LongFunction<GuestMemory> memoryForSize, VmControl vm, NanoClock clock, Set<Capability> supported,
            FaultMechanism faultMechanism, long peerTimeoutMillis, long recoverTimeoutMillis, long maxMemory,
            UUID migration, MeterRegistry registry, String guest, MigrationListener listener) {
        this.maxMemory = maxMemory;
        this.migration = migration;
        this.memoryForSize = memoryForSize;
        this.vm = vm;
        this.clock = clock;
        this.supported = EnumSet.copyOf(supported);
        this.faultMechanism = faultMechanism;
        this.peerTimeoutMillis = peerTimeoutMillis;
        this.recoverTimeoutMillis = recoverTimeoutMillis;
        this.registry = registry;
        this.startNanos = clock.nanoTime();
        this.guest = guest;
        this.listener = listener;
    }

    /** Receives member {@code member} of {@code gang}, before any connection comes. */
    void gang(Gang gang, int member) {
        this.gang = gang;
        this.member = member;
    }

    /** The id of a migration's meters: the manager's, else the session's, so both sides agree either way. */
    static String meterId(UUID migration, long session) {
        return migration.equals(Wire.NO_MIGRATION) ? String.format("%016x", session) : migration.toString();
    }

    /** A snapshot of this side, from any thread. */
    MigrationProgress progress() {
        State now = state;
        MigrationState shown = switch (now) {
            case AWAIT_HELLO -> MigrationState.SETUP;
            case RECEIVING -> roundsDone == 0 ? MigrationState.BULK : MigrationState.ITERATE;
            case POSTCOPY, RECOVERING -> MigrationState.POSTCOPY;
            case COMPLETED -> MigrationState.COMPLETED;
            case FAILED -> MigrationState.FAILED;
        };
        PageApplier[] all;
        synchronized (this) {
            all = appliers;
        }
        long bytes = bytesReceived(all);
        Map<String, Long> kinds = pagesByKind(all);
        PostcopyDestination post = postcopy;
        long remaining = now == State.COMPLETED ? 0
                : (now == State.POSTCOPY || now == State.RECOVERING) && post != null ? post.missing() * GuestMemory.PAGE_SIZE
                : -1;
        GuestMemory m = memory;
        double elapsedMs = (clock.nanoTime() - startNanos) / 1e6;
        return new MigrationProgress("destination", meterId, shown, setupNanos < 0 ? -1 : setupNanos / 1e6,
                elapsedMs, bytes, remaining, m == null ? 0 : m.byteSize(), -1,
                elapsedMs > 0 ? bytes * 1000.0 / elapsedMs : 0, -1, roundsDone, kinds, 0, 0, downtimeMs);
    }

    /** The listener hears one call at a time, whichever thread of the session makes it. */
    private void tell() {
        synchronized (listener) {
            listener.onProgress(progress());
        }
    }

    void peer(SourcePeer value) {
        this.peer = value;
    }

    CompletableFuture<MigrationReport> result() {
        return result;
    }

    State state() {
        return state;
    }

    GuestMemory memory() {
        return memory;
    }

    PageGate pageGate() {
        PageGate g = gate;
        return g != null ? g : PageGate.OPEN;
    }

    /** Page channels of the session (0 before HELLO). */
    int channels() {
        return channels;
    }

    /** Whether a connection opening with HELLO may be the session's control connection. */
    boolean awaitingHello() {
        return state == State.AWAIT_HELLO;
    }

    /**
     * Why a HELLO is for another migration than this destination was given, or null when it is
     * not: such a connection is refused on its own and the destination waits on for its source.
     */
    String helloRefusal(Wire.Hello hello) {
        UUID expected = migration;
        if (expected.equals(Wire.NO_MIGRATION) || expected.equals(hello.migration())) {
            return null;
        }
        return "HELLO for migration " + name(hello.migration()) + ", this destination serves migration " + name(expected);
    }

    private static String name(UUID id) {
        return id.equals(Wire.NO_MIGRATION) ? "none (no migration-id given)" : id.toString();
    }

    private void expectMigration(String frame, UUID given) throws ProtocolException {
        if (!given.equals(migration)) {
            throw new ProtocolException(frame + " for migration " + name(given) + ", this session is migration "
                    + name(migration));
        }
    }

    // ---- control thread ----

    void hello(Wire.Hello hello) throws ProtocolException {
        if (state != State.AWAIT_HELLO) {
            throw new ProtocolException("HELLO on a session that already began");
        }
        String refusal = helloRefusal(hello);
        if (refusal != null) {
            throw new ProtocolException(refusal);
        }
        migration = hello.migration();
        meterId = meterId(migration, sessionId);
        metrics = new MigrationMetrics(registry, "destination", meterId, guest, this::progress);
        if (hello.version() != Wire.VERSION) {
            throw new ProtocolException("source speaks protocol version " + hello.version() + ", this destination " + Wire.VERSION);
        }
        if (hello.pageSize() != GuestMemory.PAGE_SIZE) {
            throw new ProtocolException("source page size " + hello.pageSize() + ", this destination supports only " + GuestMemory.PAGE_SIZE);
        }
        if (hello.mode() >= MigrationMode.values().length) {
            throw new ProtocolException("unknown migration mode " + hello.mode());
        }
        if (hello.channels() < 1 || hello.channels() > Wire.MAX_CHANNELS) {
            throw new ProtocolException("source asks for " + hello.channels() + " page channels; 1.." + Wire.MAX_CHANNELS
                    + " are allowed");
        }
        if (hello.memoryBytes() <= 0 || hello.memoryBytes() % GuestMemory.PAGE_SIZE != 0) {
            throw new ProtocolException("source memory of " + hello.memoryBytes() + " bytes is not a positive number of "
                    + GuestMemory.PAGE_SIZE + "-byte pages");
        }
        if (hello.memoryBytes() > maxMemory) {
            throw new ProtocolException("source memory of " + hello.memoryBytes() + " bytes is above this destination's"
                    + " max-memory of " + maxMemory + " bytes");
        }
        startNanos = clock.nanoTime();
        try {
            memory = memoryForSize.apply(hello.memoryBytes());
        } catch (IllegalArgumentException e) {
            throw new ProtocolException(e.getMessage());
        }
        mode = MigrationMode.values()[hello.mode()];
        EnumSet<Capability> accepted = Wire.capabilities(hello.capabilities());
        accepted.retainAll(supported);
        negotiated = accepted;
        if (gang != null) {
            gang.hold(member, heldGuest());
        }
        digest = new MemoryDigest(memory.pageCount());
        written = new PageBitmap(memory.pageCount());
        PageBitmap held = accepted.contains(Capability.DEDUP) ? new PageBitmap(memory.pageCount()) : null;
        stalePages = held == null ? null : new PageBitmap(memory.pageCount());
        int allowed = PageEncoding.allowedBy(accepted);
        synchronized (this) {
            channels = hello.channels();
            appliers = new PageApplier[channels + 1];
            java.util.function.IntFunction<HeldGuest> members = gang == null ? n -> null : gang::member;
            for (int c = 0; c <= channels; c++) {
                appliers[c] = new PageApplier(c, channels, memory, written, digest.part(), allowed, held, members);
            }
            roundsEnded = new int[channels + 1];
            joined = new boolean[channels + 1];
        }
        if (accepted.contains(Capability.POSTCOPY)) {
            PostcopyDestination.prepare(faultMechanism);
        }
        enter(State.RECEIVING);
        setupNanos = clock.nanoTime() - startNanos;
        peer.welcome(new Wire.Welcome(Wire.mask(accepted), sessionId));
        // a source's channels join at once: a HELLO whose channels never come does not hold this destination
        timer("ferry-join-timer", () -> {
            awaitWhile(() -> state == State.RECEIVING && !pageChannelsJoined(), peerTimeoutMillis);
            if (!pageChannelsJoined()) {
                failIn(State.RECEIVING, "the source's page channels did not all join within the peer timeout of "
                        + peerTimeoutMillis + " ms of WELCOME");
            }
        });
    }

    /**
     * Fails the session unless a source's HELLO is taken within {@code timeoutMillis}; connections
     * refused or closed meanwhile do not end the wait.
     */
    void awaitSource(long timeoutMillis) {
        timer("ferry-accept-timer", () -> {
            awaitWhile(() -> state == State.AWAIT_HELLO, timeoutMillis);
            String last = lastRefusal;
            failIn(State.AWAIT_HELLO, "no source's HELLO was taken within the accept timeout of " + timeoutMillis + " ms"
                    + (last == null ? "" : "; the last connection refused: " + last));
        });
    }

    /** A connection was refused before it became part of the session, for {@code reason}: the last one is reported. */
    void refused(String reason) {
        lastRefusal = reason;
    }

    private synchronized boolean pageChannelsJoined() {
        for (int c = 0; c < channels; c++) {
            if (!joined[c]) {
                return false;
            }
        }
        return true;
    }

    private static void timer(String name, Runnable body) {
        Thread timer = new Thread(body, name);
        timer.setDaemon(true);
        timer.start();
    }

    /**
     * The control connection's barrier: waits until every page channel has ended {@code round}
     * (and in post-copy the request channel too: it carries pages then).
     */
    void roundEnd(Wire.RoundEnd end) throws ProtocolException {
        notAbandoned();
        State now = state;
        if (now != State.RECEIVING && now != State.POSTCOPY) {
            throw new ProtocolException("ROUND_END while the session is " + now);
        }
        long deadline = clock.nanoTime() + TimeUnit.MILLISECONDS.toNanos(peerTimeoutMillis);
        synchronized (this) {
            while (!allEnded(end.round(), now == State.POSTCOPY)) {
                if (connectionGone) {
                    // the queued loss decides what happens: failure, or in post-copy the wait for a reconnection
                    throw new Abandoned();
                }
                if (state != now) {
                    throw new ProtocolException("session ended while waiting for the channels to end round " + end.round());
                }
                long left = deadline - clock.nanoTime();
                if (left <= 0) {
                    throw new ProtocolException("the page channels did not end round " + end.round() + " within "
                            + peerTimeoutMillis + " ms of the control connection");
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new ProtocolException("interrupted at the barrier of round " + end.round());
                }
            }
        }
        if (stalePages != null) {
            // every channel applied the round: each stale reference of it is in an applier (the
            // request channel's too in post-copy, where only pages still missing need coming again)
            for (PageApplier applier : appliers) {
                applier.drainStale(stalePages);
            }
            PostcopyDestination post = postcopy;
            if (now == State.POSTCOPY) {
                for (long p = stalePages.nextSetBit(0); p >= 0; p = stalePages.nextSetBit(p + 1)) {
                    if (post.isPresent(p)) {
                        stalePages.clear(p);
                    }
                }
            }
            peer.stale(end.round(), stalePages);
            stalePages.clearAll();
        }
        roundsDone = end.round();
        tell();
    }

    /**
     * Before post-copy a lost connection ends the session, as its own task on the control thread
     * decides; the control frames queued ahead of that task are not applied (an END queued behind
     * a barrier the loss abandoned would otherwise be checked without the lost channel's last round).
     */
    private synchronized void notAbandoned() throws Abandoned {
        if (connectionGone && state == State.RECEIVING) {
            throw new Abandoned();
        }
    }

    /** The barrier was left because a connection was lost; not a protocol error of its own. */
    static final class Abandoned extends ProtocolException {
        private static final long serialVersionUID = 1L;

        Abandoned() {
            super("a connection was lost at the barrier");
        }
    }

    private boolean allEnded(int round, boolean requestsToo) {
        for (int c = 0; c < roundsEnded.length; c++) {
            if (roundsEnded[c] < round && (c < channels || requestsToo)) {
                return false;
            }
        }
        return true;
    }

    void deviceState(byte[] state) throws ProtocolException {
        expect("DEVICE_STATE", State.RECEIVING);
        if (deviceState != null) {
            throw new ProtocolException("a second DEVICE_STATE");
        }
        deviceState = state;
    }

    /** A run of a DISCARD frame (checked against the guest by the protocol's reader). */
    void discard(long first, long count) throws ProtocolException {
        expect("DISCARD", State.RECEIVING);
        if (!negotiated.contains(Capability.POSTCOPY)) {
            throw new ProtocolException("DISCARD without the postcopy capability");
        }
        if (postcopy == null) {
            postcopy = new PostcopyDestination(memory, written, faultMechanism, clock, registry);
        }
        postcopy.discard(first, count);
    }

    /** The switch-over to post-copy: the guest runs here from now on, with the discarded pages missing. */
    void postcopyStart(long sourcePauseNanos) throws ProtocolException {
        expect("POSTCOPY_START", State.RECEIVING);
        if (!negotiated.contains(Capability.POSTCOPY)) {
            throw new ProtocolException("POSTCOPY_START without the postcopy capability");
        }
        if (deviceState == null) {
            throw new ProtocolException("POSTCOPY_START before DEVICE_STATE");
        }
        if (postcopy == null) {
            postcopy = new PostcopyDestination(memory, written, faultMechanism, clock, registry);
        }
        pauseNanos = sourcePauseNanos;
        gate = postcopy.start(page -> peer.requestPage(page));
        for (PageApplier applier : appliers) {
            applier.postcopy(postcopy);
        }
        enter(State.POSTCOPY);
        vm.loadDeviceState(deviceState);
        vm.resume();
        resumeNanos = clock.nanoTime();
        peer.postcopyRunning(resumeNanos);
    }

    void end(Wire.End end) throws ProtocolException {
        notAbandoned();
        State now = state;
        if (now != State.RECEIVING && now != State.POSTCOPY) {
            throw new ProtocolException("END in state " + now);
        }
        if (deviceState == null) {
            throw new ProtocolException("END before DEVICE_STATE");
        }
        boolean post = now == State.POSTCOPY;
        if (post && postcopy.missing() > 0) {
            throw new ProtocolException("END with " + postcopy.missing() + " pages still missing");
        }
        long applied = digest.value();
        long sealed = PageDigest.seal(applied, deviceState, sessionId);
        if (end.digest() != sealed) {
            throw new ProtocolException(String.format("digest mismatch: source %016x, applied %016x (memory and device"
                    + " state, this session); %s", end.digest(), sealed,
                    post ? "the guest runs on corrupt memory" : "not resuming"));
        }
        if (!post) {
            pauseNanos = end.pauseNanos();
            vm.loadDeviceState(deviceState);
            vm.resume();
            resumeNanos = clock.nanoTime();
        } else {
            // every page is present: plain access is safe again
            postcopy.close();
        }
        enter(State.COMPLETED);
        peer.resumed(sealed, resumeNanos);
        complete(MigrationState.COMPLETED, true, (resumeNanos - pauseNanos) / 1e6, null, true);
    }

    /**
     * This guest as the gang's other guests' references read it: a page post-copy still lacks
     * (from DISCARD on) is not held, and is never read, so no other guest's channel waits on this
     * one's fault path.
     */
    private HeldGuest heldGuest() {
        GuestMemory held = memory;
        return new HeldGuest() {
            @Override
            public GuestMemory memory() {
                return held;
            }

            @Override
            public boolean holds(long page) {
                PostcopyDestination post = postcopy;
                return post == null || post.isPresent(page);
            }
        };
    }

    /** Whether a connection opening with RECOVER for {@code session} may take the lost control connection's place. */
    void checkRecover(Wire.Recover recover) throws ProtocolException {
        if (state != State.RECOVERING) {
            throw new ProtocolException("RECOVER while the session is " + state);
        }
        if (recover.session() != sessionId) {
            throw new ProtocolException("RECOVER for another session");
        }
        expectMigration("RECOVER", recover.migration());
    }

    /** The source reconnected: answer with what is still missing; its channels join again. */
    void recover() {
        synchronized (this) {
            java.util.Arrays.fill(joined, false);
            connectionGone = false;
        }
        recoveries++;
        postcopy.markRecovered();
        enter(State.POSTCOPY);
        peer.missing(postcopy);
    }

    // ---- any thread ----

    /** A page or request connection opening with JOIN. */
    synchronized void join(Wire.Join join) throws ProtocolException {
        if (state != State.RECEIVING && state != State.POSTCOPY) {
            throw new ProtocolException("JOIN while the session is " + state);
        }
        if (join.session() != sessionId) {
            throw new ProtocolException("JOIN for another session");
        }
        expectMigration("JOIN", join.migration());
        int c = join.channel();
        if (c > channels || (c == channels && !negotiated.contains(Capability.POSTCOPY))) {
            throw new ProtocolException("channel " + c + " is not one of this session's " + channels
                    + " page channels" + (negotiated.contains(Capability.POSTCOPY) ? " or its request channel" : ""));
        }
        if (joined[c]) {
            throw new ProtocolException("channel " + c + " joined twice");
        }
        joined[c] = true;
        notifyAll();
    }

    /**
     * A PAGES frame on channel {@code channel}, on that channel's thread. Counted while it is
     * applied: the appliers write guest memory without its lifetime checks, so the session ends
     * (and hands the memory back) only once no frame is being applied.
     */
    void pages(int channel, MemorySegment frame, long from, long to) throws ProtocolException, MalformedPayloadException {
        applying.incrementAndGet();
        try {
            State now = state;
            if (now == State.COMPLETED || now == State.FAILED) {
                return;
            }
            PageApplier applier = appliers[channel];
            long before = applier.bytes();
            applier.apply(frame, from, to);
            if ((before ^ applier.bytes()) >>> PROGRESS_SHIFT != 0) {
                tell();
            }
        } finally {
            if (applying.decrementAndGet() == 0 && state.ordinal() >= State.COMPLETED.ordinal()) {
                synchronized (this) {
                    notifyAll();
                }
            }
        }
    }

    /** A channel tells the listener each time it received another 2^23 bytes (8 MiB). */
    private static final int PROGRESS_SHIFT = 23;

    /** Waits, within the peer timeout, until no channel applies a frame: the session is over. */
    private void awaitAppliersIdle() {
        awaitWhile(() -> applying.get() > 0, peerTimeoutMillis);
    }

    /**
     * Waits on this session's monitor while {@code waiting} holds, at most {@code timeoutMillis}
     * (every change it waits for notifies the monitor; a short poll bounds a missed one).
     */
    private void awaitWhile(java.util.function.BooleanSupplier waiting, long timeoutMillis) {
        long deadline = clock.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        synchronized (this) {
            while (waiting.getAsBoolean()) {
                long left = deadline - clock.nanoTime();
                if (left <= 0) {
                    return;
                }
                try {
                    TimeUnit.NANOSECONDS.timedWait(this, Math.min(left, 10_000_000L));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    /** A page channel's ROUND_END, on that channel's thread. */
    void channelRoundEnd(int channel, Wire.RoundEnd end) throws ProtocolException {
        boolean requests = channel == channels;
        // in RECOVERING it was read off a lost connection before the control thread closed it
        if (requests && state != State.POSTCOPY && state != State.RECOVERING) {
            throw new ProtocolException("ROUND_END on the request channel before post-copy");
        }
        appliers[channel].roundEnd(end);
        synchronized (this) {
            // a page channel ends every round in order; in post-copy a recovered session ends its round
            // again on every channel (and the request channel ends only that one)
            boolean again = state == State.POSTCOPY && end.round() == roundsEnded[channel];
            if (requests ? end.round() < roundsEnded[channel] : end.round() != roundsEnded[channel] + 1 && !again) {
                throw new ProtocolException("channel " + channel + " ended round " + end.round() + " after round "
                        + roundsEnded[channel]);
            }
            roundsEnded[channel] = end.round();
            notifyAll();
        }
    }

    /** Counts a frame other than PAGES (those its channel's applier counts), length field included. */
    void frameBytes(long bytes) {
        frameBytes.add(bytes);
    }

    /**
     * A connection of the session is gone, said at once from its own thread: a barrier waiting for
     * channels that will not come stops waiting, and the loss itself follows on the control thread.
     */
    synchronized void connectionGone() {
        connectionGone = true;
        notifyAll();
    }

    /**
     * A connection of the session closed or broke. Before post-copy that ends the session; during
     * post-copy the guest waits on its missing pages while the source reconnects.
     */
    void connectionLost(String reason) {
        State now = state;
        if (now == State.POSTCOPY) {
            enter(State.RECOVERING);
            peer.closeAll();
            timer("ferry-recover-timer", () -> awaitRecovery(reason));
            return;
        }
        if (now == State.AWAIT_HELLO || now == State.RECEIVING) {
            fail(now == State.AWAIT_HELLO ? "connection closed before the handshake"
                    : "connection lost before the end of the stream (" + pagesReceived() + " pages received; " + reason
                    + "); not resuming");
        }
    }

    private void awaitRecovery(String reason) {
        awaitWhile(() -> state == State.RECOVERING, recoverTimeoutMillis);
        failIn(State.RECOVERING, "the session was lost (" + reason + ") and the source did not reconnect within "
                + recoverTimeoutMillis + " ms");
    }

    /** The session fails for good: the reason goes to the source, the guest is never resumed here (or given up). */
    void fail(String reason) {
        failIn(null, reason);
    }

    /** Fails the session if it is in {@code only} (any state but an end when null), as one step. */
    private void failIn(State only, String reason) {
        State now;
        synchronized (this) {
            now = state;
            if (now == State.COMPLETED || now == State.FAILED || (only != null && now != only)) {
                return;
            }
            state = State.FAILED;
            failure = reason;
            notifyAll();
        }
        boolean resumed = now == State.POSTCOPY || now == State.RECOVERING;
        if (resumed) {
            reason = "post-copy failed with " + postcopy.missing() + " pages never received, so the guest cannot"
                    + " continue here: " + reason;
            postcopy.fail(reason);
        }
        peer.fail(reason);
        complete(MigrationState.FAILED, false, resumed ? (resumeNanos - pauseNanos) / 1e6 : -1, reason, resumed);
    }

    private void expect(String frame, State wanted) throws ProtocolException {
        notAbandoned();
        if (state != wanted) {
            throw new ProtocolException(frame + " while the session is " + state);
        }
    }

    private void enter(State next) {
        synchronized (this) {
            if (!state.canBecome(next)) {
                throw new IllegalStateException("destination session cannot go from " + state + " to " + next);
            }
            state = next;
            notifyAll();
        }
        tell();
    }

    /** Bytes received: the channels' PAGES frames and every other frame, length fields included. */
    private long bytesReceived(PageApplier[] all) {
        long bytes = frameBytes.sum();
        for (PageApplier a : all) {
            bytes += a.bytes();
        }
        return bytes;
    }

    /** Pages received by encoding, over every channel, the encodings that never came left out. */
    private static Map<String, Long> pagesByKind(PageApplier[] all) {
        Map<String, Long> kinds = new LinkedHashMap<>();
        for (int code = 0; code < PageEncoding.COUNT; code++) {
            long n = 0;
            for (PageApplier a : all) {
                n += a.pagesOf(code);
            }
            if (n > 0) {
                kinds.put(PageEncoding.name(code), n);
            }
        }
        return kinds;
    }

    /** The references the channels met, or null without dedup (the destination keeps no index). */
    private DedupReport dedupReport() {
        if (stalePages == null) {
            return null;
        }
        long references = 0;
        long across = 0;
        long stale = 0;
        for (PageApplier a : appliers) {
            references += a.references();
            across += a.acrossGuests();
            stale += a.staleReferences();
        }
        return new DedupReport(references, across, 0, 0, stale, 0);
    }

    private long pagesReceived() {
        long pages = 0;
        for (PageApplier a : appliers) {
            pages += a.pages();
        }
        return pages;
    }

    private void complete(MigrationState outcome, boolean verified, double downtimeMs, String error, boolean resumed) {
        this.downtimeMs = downtimeMs;
        MigrationMetrics m = metrics;
        if (m != null) {
            m.switchover(-1, downtimeMs);
        }
        long bytes = bytesReceived(appliers);
        Map<String, Long> kinds = pagesByKind(appliers);
        PostcopyReport post = postcopy != null && gate != null ? postcopy.report(recoveries) : null;
        MigrationReport report = new MigrationReport("destination", mode, memory == null ? 0 : memory.byteSize(),
                GuestMemory.PAGE_SIZE, outcome, verified, (clock.nanoTime() - startNanos) / 1e6, downtimeMs, -1, bytes,
                pagesReceived(), List.of(), kinds, negotiated, error, null, resumed,
                digest == null ? 0 : digest.value(), post, dedupReport(), meterId, setupNanos < 0 ? -1 : setupNanos / 1e6,
                null);
        awaitAppliersIdle();
        release();
        tell();
        result.complete(report);
    }

    private void release() {
        for (PageApplier a : appliers) {
            a.close();
        }
        if (digest != null) {
            digest.close();
        }
    }
}
