package dev.ferry.bench.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A TCP proxy on 127.0.0.1 between a source and a destination that a test can cut: every
 * connection at once, or the next one after it has carried a number of bytes towards the
 * destination. Its threads are daemons and end when their sockets close.
 */
final class CuttableProxy implements AutoCloseable {
    private final ServerSocket server;
    private final int upstreamPort;
    private final List<Socket> open = new CopyOnWriteArrayList<>();
    private final AtomicLong cutNextAfter = new AtomicLong(-1);
    final AtomicInteger connections = new AtomicInteger();
    /** Bytes carried towards the destination so far, over every connection; guarded by this. */
    private long carriedUp;

    CuttableProxy(int upstreamPort) throws IOException {
        this.upstreamPort = upstreamPort;
        this.server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress());
        daemon(this::accept, "proxy-accept");
    }

    int port() {
        return server.getLocalPort();
    }

    /** Closes every connection now. */
    void cutAll() throws IOException {
        for (Socket s : open) {
            s.close();
        }
    }

    /** The next connection is closed once {@code bytes} bytes went through it towards the destination. */
    void cutNextAfter(long bytes) {
        cutNextAfter.set(bytes);
    }

    /** Bytes carried towards the destination so far. */
    synchronized long carriedUp() {
        return carriedUp;
    }

    /**
     * Waits until {@code bytes} more than {@code since} were carried towards the destination,
     * at most {@code timeoutMillis}; whether they were.
     */
    synchronized boolean awaitCarriedUp(long since, long bytes, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000;
        while (carriedUp - since < bytes) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            java.util.concurrent.TimeUnit.NANOSECONDS.timedWait(this, left);
        }
        return true;
    }

    private synchronized void carried(int n) {
        carriedUp += n;
        notifyAll();
    }

    private void accept() {
        while (!server.isClosed()) {
            try {
                Socket client = server.accept();
                Socket upstream = new Socket(InetAddress.getLoopbackAddress(), upstreamPort);
                connections.incrementAndGet();
                open.add(client);
                open.add(upstream);
                long limit = cutNextAfter.getAndSet(-1);
                daemon(() -> pump(client, upstream, limit, true), "proxy-up");
                daemon(() -> pump(upstream, client, -1, false), "proxy-down");
            } catch (IOException e) {
                return;
            }
        }
    }

    private void pump(Socket from, Socket to, long limit, boolean up) {
        byte[] buffer = new byte[64 << 10];
        long carried = 0;
        try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
            int n;
            while ((n = in.read(buffer, 0, limit < 0 ? buffer.length : (int) Math.min(buffer.length, limit - carried))) > 0) {
                out.write(buffer, 0, n);
                out.flush();
                carried += n;
                if (up) {
                    carried(n);
                }
                if (limit >= 0 && carried >= limit) {
                    break;
                }
            }
        } catch (IOException e) {
            // the other direction or a cut closed it
        } finally {
            close(from);
            close(to);
        }
    }

    private static void close(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // already closed
        }
    }

    private static void daemon(Runnable body, String name) {
        Thread t = new Thread(body, name);
        t.setDaemon(true);
        t.start();
    }

    @Override
    public void close() throws IOException {
        server.close();
        cutAll();
    }
}
