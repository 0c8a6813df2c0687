package dev.ferry.bench.cli;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.function.LongFunction;

/**
 * The yardsticks every bench run reports against, measured in the same run: how fast a plain
 * blocking TCP copy over 127.0.0.1 moves bytes on this machine, the fastest of {@link #COPIES}
 * copies, since one copy alone ranged over 1.8-3.3 GB/s in consecutive runs on a shared 2-core
 * machine, which moved a migration's ratio more than any change to Ferry did.
 *
 * <p>Two copies: {@link #bytesPerSecond} sends the same 1 MiB buffer again and again into another
 * one, both in cache, the kernel's socket path alone; {@link #memoryToMemory} sends the source
 * guest's memory itself into the destination guest's memory, every byte read from and written to
 * DRAM once, as a migration must: what the machine allows for those bytes without any framing,
 * hashing or encoding. On a 2-core machine the first ran at 4.6-6.5 GB/s and the second at
 * 2.0-4.1 GB/s in the same minutes.
 */
final class LoopbackBaseline {
    private static final int CHUNK = 1 << 20;
    private static final int COPIES = 3;

    private LoopbackBaseline() {
    }

    /** Bytes per second of copying {@code bytes} from one buffer to another over loopback, the best of {@link #COPIES}. */
    static double bytesPerSecond(long bytes) throws IOException, InterruptedException {
        ByteBuffer from = ByteBuffer.allocateDirect(CHUNK);
        ByteBuffer into = ByteBuffer.allocateDirect(CHUNK);
        return best(bytes, at -> from.clear().limit((int) Math.min(CHUNK, bytes - at)),
                at -> into.clear().limit((int) Math.min(CHUNK, bytes - at)));
    }

    /**
     * Bytes per second of copying all of {@code from} into {@code into}, of the same size, over
     * loopback, the best of {@link #COPIES}; {@code into} ends holding {@code from}'s bytes.
     */
    static double memoryToMemory(MemorySegment from, MemorySegment into) throws IOException, InterruptedException {
        long bytes = from.byteSize();
        if (into.byteSize() != bytes) {
            throw new IllegalArgumentException("memory copy of " + bytes + " bytes into " + into.byteSize());
        }
        return best(bytes, at -> from.asSlice(at, Math.min(CHUNK, bytes - at)).asByteBuffer(),
                at -> into.asSlice(at, Math.min(CHUNK, bytes - at)).asByteBuffer());
    }

    private static double best(long bytes, LongFunction<ByteBuffer> source, LongFunction<ByteBuffer> target)
            throws IOException, InterruptedException {
        double best = 0;
        for (int copy = 0; copy < COPIES; copy++) {
            best = Math.max(best, copy(bytes, source, target));
        }
        return best;
    }

    /**
     * One copy of {@code bytes}: the sender writes {@code source.apply(sent)}, the reader reads into
     * {@code target.apply(received)}, each buffer at most {@link #CHUNK} and never past {@code bytes}.
     */
    private static double copy(long bytes, LongFunction<ByteBuffer> source, LongFunction<ByteBuffer> target)
            throws IOException, InterruptedException {
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress("127.0.0.1", 0));
            long[] received = new long[1];
            Exception[] failed = new Exception[1];
            Thread reader = new Thread(() -> {
                try (SocketChannel in = server.accept()) {
                    while (received[0] < bytes) {
                        int n = in.read(target.apply(received[0]));
                        if (n < 0) {
                            break;
                        }
                        received[0] += n;
                    }
                } catch (IOException | RuntimeException e) {
                    failed[0] = e;
                }
            }, "loopback-baseline-reader");
            reader.start();
            long start = System.nanoTime();
            try (SocketChannel out = SocketChannel.open(server.getLocalAddress())) {
                for (long sent = 0; sent < bytes; ) {
                    ByteBuffer chunk = source.apply(sent);
                    while (chunk.hasRemaining()) {
                        sent += out.write(chunk);
                    }
                }
            } catch (IOException e) {
                reader.join(60_000);
                throw failed[0] != null ? new IOException("loopback baseline reader failed", failed[0]) : e;
            }
            reader.join(60_000);
            long nanos = System.nanoTime() - start;
            if (failed[0] != null) {
                throw new IOException("loopback baseline reader failed", failed[0]);
            }
            if (received[0] != bytes) {
                throw new IOException("loopback baseline received " + received[0] + " of " + bytes + " bytes");
            }
            return bytes * 1e9 / nanos;
        }
    }
}
