package dev.ferry.bench.jmh;

import dev.ferry.bench.workload.Fill;
import dev.ferry.core.Capability;
import dev.ferry.core.Configuration;
import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.VmControl;
import dev.ferry.engine.IncomingMigration;
import dev.ferry.engine.Migration;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.EnumSet;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * A whole pre-copy migration through the public facade ({@link Migration}), both sides in this
 * JVM over a real loopback socket: an idle guest of {@code memoryMib} MiB of random bytes. One
 * operation is one verified migration, handshake to resume. {@link #loopbackCopy} sends the same
 * bytes through a plain blocking socket in the same run, the floor a migration cannot beat.
 * {@link Allocation#allocatedBytesPerPage} reports what one migration allocated on every thread of
 * this JVM (both sides, every channel) divided by its pages: what {@code -prof gc}
 * shows per operation, per page, so a per-page allocation shows as a figure near or above 1.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
public class MigrationBenchmark {
    /** Guest size: a larger guest shows what is allocated per page rather than per migration. */
    @Param({"64"})
    public int memoryMib;
    /** Far above a migration's time here; only a hang reaches it. */
    private static final long WAIT_SECONDS = 60;
    private static final int CHUNK = 1 << 20;

    /** {@code auto} as {@code ferry bench} (zero, XBZRLE, adaptive LZ4), or {@code none}. */
    @Param({"auto", "none"})
    public String stages;

    /** Page channels. */
    @Param({"1", "2"})
    public int channels;

    /** What the last migration of an iteration allocated, per page. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Allocation {
        public double allocatedBytesPerPage;
    }

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();

    private GuestMemory source;
    private GuestMemory destination;
    private MigrationParameters parameters;
    private ServerSocketChannel sink;
    private Thread drain;
    private final BlockingQueue<Long> drained = new ArrayBlockingQueue<>(1);


    @Setup
    public void start() throws IOException {
        source = GuestMemory.anonymous((long) memoryMib << 20);
        Fill.RANDOM.apply(source, 1);
        parameters = MigrationParameters.builder()
                .capabilities(stages.equals("auto") ? Configuration.STAGES_DEFAULT : EnumSet.noneOf(Capability.class))
                .channels(channels)
                .build();
        sink = ServerSocketChannel.open().bind(new InetSocketAddress("127.0.0.1", 0));
        drain = Thread.ofPlatform().daemon().name("loopback-sink").start(this::drainConnections);
    }

    /** Reads each connection to its end and hands over how many bytes came. */
    private void drainConnections() {
        ByteBuffer buffer = ByteBuffer.allocateDirect(CHUNK);
        while (sink.isOpen()) {
            try (SocketChannel in = sink.accept()) {
                long received = 0;
                for (int n; (n = in.read(buffer.clear())) >= 0; ) {
                    received += n;
                }
                drained.put(received);
            } catch (IOException | InterruptedException e) {
                return;
            }
        }
    }

    @TearDown
    public void stop() throws IOException, InterruptedException {
        sink.close();
        drain.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
        source.close();
    }

    /** A destination's memory starts zero-filled, as a fresh guest's does. */
    @Setup(Level.Invocation)
    public void freshDestination() {
        destination = GuestMemory.anonymous(source.byteSize());
    }

    @TearDown(Level.Invocation)
    public void dropDestination() {
        destination.close();
    }

    @Benchmark
    public MigrationReport migrate(Allocation allocation) throws Exception {
        long before = THREADS.getTotalThreadAllocatedBytes();
        MigrationReport report = migrateOnce();
        allocation.allocatedBytesPerPage = (double) (THREADS.getTotalThreadAllocatedBytes() - before) / source.pageCount();
        return report;
    }

    private MigrationReport migrateOnce() throws Exception {
        try (IncomingMigration in = Migration.destination(VmControl.idle()).memory(destination).start()) {
            MigrationReport sent = Migration.source(source, new DirtyBitmap(source.pageCount()), VmControl.idle()).parameters(parameters)
                    .connect(in.address()).start().result().get(WAIT_SECONDS, TimeUnit.SECONDS);
            MigrationReport received = in.result().get(WAIT_SECONDS, TimeUnit.SECONDS);
            if (!sent.succeeded() || !received.succeeded()) {
                throw new IllegalStateException("migration did not complete verified: " + sent.error() + " / "
                        + received.error());
            }
            return sent;
        }
    }

    /** The guest's bytes through a plain blocking loopback socket, connect included. */
    @Benchmark
    public long loopbackCopy() throws IOException, InterruptedException {
        try (SocketChannel out = SocketChannel.open(sink.getLocalAddress())) {
            for (long at = 0; at < source.byteSize(); at += CHUNK) {
                ByteBuffer chunk = source.segment().asSlice(at, Math.min(CHUNK, source.byteSize() - at)).asByteBuffer();
                while (chunk.hasRemaining()) {
                    out.write(chunk);
                }
            }
        }
        Long received = drained.poll(WAIT_SECONDS, TimeUnit.SECONDS);
        if (received == null || received != source.byteSize()) {
            throw new IOException("loopback sink received " + received + " of " + source.byteSize() + " bytes");
        }
        return received;
    }
}
