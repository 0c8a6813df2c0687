package dev.ferry.qemu;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.VmControl;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A QEMU process as Ferry's {@link VmControl}, over QMP: {@code stop} and {@code cont} for the
 * vCPUs, and QEMU's own migration stream for the devices.
 *
 * <p>Guest RAM lives in a shared file ({@code memory-backend-file,share=on}) that Ferry maps and
 * moves itself. Both QEMUs get the {@code x-ignore-shared} capability, so QEMU's stream leaves
 * that RAM out and carries only the device state and the small non-shared blocks (ROMs, VGA): the
 * source, paused, runs {@code migrate} to a Unix socket Ferry listens on, and what arrives is
 * {@link #saveDeviceState()}; the destination, started with {@code -incoming defer}, runs
 * {@code migrate-incoming} on a Unix socket Ferry then writes that stream to. The destination
 * QEMU stays paused after loading it (the source was paused when it was saved) until
 * {@link #resume()}, which it refuses before the load succeeded.
 */
public final class QemuVm implements VmControl, AutoCloseable {
    /** Which end of a migration this QEMU is. */
    public enum Side {
        /** Runs the guest now; started as usual. */
        SOURCE,
        /** Receives it; started with {@code -incoming defer}. */
        DESTINATION
    }

    /** Where this QEMU is in the migration, as Ferry drove it. */
    public enum Step {
        ATTACHED, PAUSED, DEVICES_SAVED, DEVICES_LOADED, RUNNING
    }

    private static final Set<String> SOURCE_STATES = Set.of("running", "paused");
    private static final String DESTINATION_STATE = "inmigrate";

    private final Qmp qmp;
    private final Side side;
    private final Path ramFile;
    private final long ramBytes;
    private volatile Step step = Step.ATTACHED;

    private QemuVm(Qmp qmp, Side side, Path ramFile, long ramBytes) {
        this.qmp = qmp;
        this.side = side;
        this.ramFile = ramFile;
        this.ramBytes = ramBytes;
    }

    /**
     * Attaches to the QEMU whose QMP socket is {@code qmpSocket} and whose guest RAM is the
     * shared file {@code ramFile}: checks that QEMU is in the state {@code side} needs, that one
     * of its memory backends maps that file with {@code share=on}, and sets {@code x-ignore-shared}
     * (and migration events) on it.
     *
     * @param timeoutMillis the bound on every QMP wait, device state included
     * @throws QmpException with what is wrong, QEMU's answer or the missing one
     */
    public static QemuVm attach(Side side, Path qmpSocket, Path ramFile, long timeoutMillis) {
        Qmp qmp = Qmp.connect(qmpSocket, timeoutMillis);
        try {
            String status = qmp.execute("query-status").path("status").asText();
            if (side == Side.SOURCE ? !SOURCE_STATES.contains(status) : !status.equals(DESTINATION_STATE)) {
                throw new QmpException("QEMU at " + qmpSocket + " is " + status + "; a " + side.name().toLowerCase()
                        + " QEMU must be " + (side == Side.SOURCE ? "running or paused" : DESTINATION_STATE
                        + " (started with -incoming defer)"));
            }
            long bytes = sharedBackendSize(qmp, ramFile);
            List<Map<String, Object>> capabilities = new ArrayList<>();
            capabilities.add(Map.of("capability", "x-ignore-shared", "state", true));
            capabilities.add(Map.of("capability", "events", "state", true));
            qmp.execute("migrate-set-capabilities", Map.of("capabilities", capabilities));
            return new QemuVm(qmp, side, ramFile, bytes);
        } catch (RuntimeException e) {
            qmp.close();
            throw e;
        }
    }

    /** The size of the memory backend that maps {@code ramFile}, which must be shared. */
    private static long sharedBackendSize(Qmp qmp, Path ramFile) {
        Path wanted;
        try {
            wanted = ramFile.toRealPath();
        } catch (IOException e) {
            throw new QmpException("guest RAM file " + ramFile + " is not there: " + e.getMessage(), e);
        }
        List<String> seen = new ArrayList<>();
        for (JsonNode backend : qmp.execute("query-memdev")) {
            String id = backend.path("id").asText();
            JsonNode memPath;
            try {
                memPath = qmp.execute("qom-get", Map.of("path", "/objects/" + id, "property", "mem-path"));
            } catch (QmpException notAFile) {
                seen.add(id + " (not a file)");
                continue;
            }
            seen.add(id + " (" + memPath.asText() + ")");
            if (Path.of(memPath.asText()).toAbsolutePath().normalize().equals(wanted)) {
                if (!backend.path("share").asBoolean()) {
                    throw new QmpException("QEMU maps " + ramFile + " without share=on: its writes would not reach"
                            + " the file (memory-backend-file,...,share=on)");
                }
                return backend.path("size").asLong();
            }
        }
        throw new QmpException("no memory backend of this QEMU maps " + ramFile + "; its backends: " + seen);
    }

    /**
     * The guest's RAM: the shared file mapped here, whose size must be the backend's (Ferry
     * never grows or shrinks a file QEMU maps). A destination's must be all zeros, as QEMU leaves
     * a fresh file.
     */
    public GuestMemory mapRam() throws IOException {
        long size = Files.size(ramFile);
        if (size != ramBytes) {
            throw new IOException(ramFile + " has " + size + " bytes, QEMU's backend " + ramBytes);
        }
        GuestMemory memory = GuestMemory.mapFile(ramFile, ramBytes);
        if (side == Side.DESTINATION && step == Step.ATTACHED) {
            long at = firstNonZero(memory.segment());
            if (at >= 0) {
                memory.close();
                // Ferry's destination writes a zero page only where it wrote before: old contents would stay
                throw new IOException("the destination's RAM file " + ramFile + " is not all zeros (byte " + at
                        + "): give the destination QEMU a fresh file");
            }
        }
        return memory;
    }

    /** The offset of the first byte that is not zero, or -1; a sparse file reads as zeros without allocating. */
    private static long firstNonZero(java.lang.foreign.MemorySegment memory) {
        java.lang.foreign.MemorySegment zeros = java.lang.foreign.Arena.ofAuto().allocate(1 << 20);
        for (long at = 0; at < memory.byteSize(); at += zeros.byteSize()) {
            long length = Math.min(zeros.byteSize(), memory.byteSize() - at);
            long mismatch = memory.asSlice(at, length).mismatch(zeros.asSlice(0, length));
            if (mismatch >= 0) {
                return at + mismatch;
            }
        }
        return -1;
    }

    /** Bytes of guest RAM in the shared file. */
    public long ramBytes() {
        return ramBytes;
    }

    /** Where this QEMU is in the migration. */
    public Step step() {
        return step;
    }

    /** The QMP client, for what Ferry's calls do not cover (tests, tools). */
    public Qmp qmp() {
        return qmp;
    }

    @Override
    public void pause() {
        qmp.execute("stop");
        step = Step.PAUSED;
    }

    @Override
    public void resume() {
        if (side == Side.DESTINATION && step != Step.DEVICES_LOADED) {
            throw new QmpException("not resuming the destination QEMU: its device state was not loaded (" + step + ")");
        }
        qmp.execute("cont");
        step = Step.RUNNING;
    }

    /** QEMU's migration stream of the paused source, without the shared RAM. */
    @Override
    public byte[] saveDeviceState() {
        if (side != Side.SOURCE || step != Step.PAUSED) {
            throw new IllegalStateException("device state is saved by a paused source QEMU, this one is " + side + " "
                    + step);
        }
        return withSocket(socket -> {
            try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
                server.bind(UnixDomainSocketAddress.of(socket));
                qmp.execute("migrate", Map.of("uri", "unix:" + socket));
                byte[] stream = bounded(() -> {
                    try (SocketChannel in = server.accept()) {
                        return readAll(in);
                    }
                }, server, "QEMU's device state");
                awaitMigration();
                step = Step.DEVICES_SAVED;
                return stream;
            }
        });
    }

    /** Feeds {@code state}, a source's {@link #saveDeviceState()}, to this destination QEMU. */
    @Override
    public void loadDeviceState(byte[] state) {
        if (side != Side.DESTINATION || step != Step.ATTACHED) {
            throw new IllegalStateException("device state is loaded once by a destination QEMU, this one is " + side
                    + " " + step);
        }
        withSocket(socket -> {
            qmp.execute("migrate-incoming", Map.of("uri", "unix:" + socket));
            try (SocketChannel out = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                bounded(() -> {
                    out.connect(UnixDomainSocketAddress.of(socket));
                    ByteBuffer buffer = ByteBuffer.wrap(state);
                    while (buffer.hasRemaining()) {
                        out.write(buffer);
                    }
                    out.shutdownOutput();
                    return null;
                }, out, "writing the device state to QEMU");
            }
            awaitMigration();
            String status = qmp.execute("query-status").path("status").asText();
            if (!status.equals("paused")) {
                throw new QmpException("the destination QEMU is " + status + " after loading the device state, not"
                        + " paused");
            }
            step = Step.DEVICES_LOADED;
            return null;
        });
    }

    /** Waits for this QEMU's migration to complete; its failure is QEMU's error message. */
    private void awaitMigration() {
        JsonNode event = qmp.awaitEvent("MIGRATION", data -> switch (data.path("status").asText()) {
            case "completed", "failed", "cancelled" -> true;
            default -> false;
        }, qmp.timeoutMillis());
        String status = event.path("status").asText();
        if (!status.equals("completed")) {
            String why = qmp.execute("query-migrate").path("error-desc").asText("no reason given");
            throw new QmpException("QEMU's device-state migration " + status + ": " + why);
        }
    }

    private interface SocketUse<T> {
        T use(Path socket) throws IOException;
    }

    /** Runs {@code use} with a fresh Unix socket path in a directory of its own, removed after. */
    private static <T> T withSocket(SocketUse<T> use) {
        Path dir = null;
        try {
            dir = Files.createTempDirectory("ferry-qemu");
            return use.use(dir.resolve("devices.sock"));
        } catch (IOException e) {
            throw new QmpException("device-state stream failed: " + e.getMessage(), e);
        } finally {
            if (dir != null) {
                try {
                    Files.deleteIfExists(dir.resolve("devices.sock"));
                    Files.deleteIfExists(dir);
                } catch (IOException ignored) {
                    // a leftover empty directory in the temporary directory harms nothing
                }
            }
        }
    }

    /** {@code work} within the QMP timeout; past it, {@code resource} is closed, which ends the work's blocking I/O. */
    private <T> T bounded(Callable<T> work, AutoCloseable resource, String what) throws IOException {
        ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
        Future<T> future = executor.submit(work);
        try {
            return future.get(qmp.timeoutMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new IOException("no progress within " + qmp.timeoutMillis() + " ms: " + what
                    + (qmp.closed() ? " (QEMU is gone)" : ""));
        } catch (ExecutionException e) {
            throw new IOException(what + ": " + e.getCause().getMessage(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted: " + what, e);
        } finally {
            try {
                resource.close();
            } catch (Exception ignored) {
                // closing only to end the work's wait
            }
            executor.shutdownNow();
        }
    }

    private static byte[] readAll(SocketChannel in) throws IOException {
        java.io.ByteArrayOutputStream all = new java.io.ByteArrayOutputStream();
        ByteBuffer buffer = ByteBuffer.allocate(256 * 1024);
        while (in.read(buffer) >= 0) {
            all.write(buffer.array(), 0, buffer.position());
            buffer.clear();
        }
        return all.toByteArray();
    }

    @Override
    public void close() {
        qmp.close();
    }

    @Override
    public String toString() {
        return "QemuVm[" + side + " " + step + ", " + ramFile + "]";
    }
}
