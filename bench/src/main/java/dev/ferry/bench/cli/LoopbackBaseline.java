package dev.ferry.bench.cli;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;

/**
 * The yardstick every bench run reports against: how fast a plain blocking TCP copy moves the
 * same number of bytes over 127.0.0.1 on this machine, measured in the same run: the fastest of
 * {@link #COPIES} copies, since one copy alone ranged over 1.8-3.3 GB/s in consecutive runs on a
 * shared 2-core machine, which moved a migration's ratio more than any change to Ferry did.
 */
final class LoopbackBaseline {
    private static final int CHUNK = 1 << 20;
    private static final int COPIES = 3;

    private LoopbackBaseline() {
    }

    /** Bytes per second of copying {@code bytes} from one socket to another on loopback, the best of {@link #COPIES}. */
    static double bytesPerSecond(long bytes) throws IOException, InterruptedException {
        double best = 0;
        for (int copy = 0; copy < COPIES; copy++) {
            best = Math.max(best, copy(bytes));
        }
        return best;
    }

    private static double copy(long bytes) throws IOException, InterruptedException {
        try (ServerSocketChannel server = ServerSocketChannel.open()) {
            server.bind(new InetSocketAddress("127.0.0.1", 0));
            long[] received = new long[1];
            Thread reader = new Thread(() -> {
                try (SocketChannel in = server.accept()) {
                    ByteBuffer buffer = ByteBuffer.allocateDirect(CHUNK);
                    int n;
                    while ((n = in.read(buffer.clear())) >= 0) {
                        received[0] += n;
                    }
                } catch (IOException e) {
                    received[0] = -1;
                }
            }, "loopback-baseline-reader");
            reader.start();
            long start = System.nanoTime();
            try (SocketChannel out = SocketChannel.open(server.getLocalAddress())) {
                ByteBuffer buffer = ByteBuffer.allocateDirect(CHUNK);
                for (long left = bytes; left > 0; ) {
                    buffer.clear().limit((int) Math.min(CHUNK, left));
                    left -= out.write(buffer);
                }
            }
            reader.join(60_000);
            long nanos = System.nanoTime() - start;
            if (received[0] != bytes) {
                throw new IOException("loopback baseline received " + received[0] + " of " + bytes + " bytes");
            }
            return bytes * 1e9 / nanos;
        }
    }
}
