package dev.ferry.engine;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A tiny TCP proxy on 127.0.0.1 for tests: every accepted connection is forwarded to
 * {@code target} by two threads, and the bytes each carries from the client (the source) are
 * counted and recorded. It can cut one connection, the {@code cutIndex}-th accepted (0 first), once it has
 * carried {@code cutAfterBytes} from the client: both of its sockets are closed, as a network
 * that drops the connection would.
 */
final class TcpProxy implements AutoCloseable {
    /** One forwarded connection. */
    static final class Connection {
        final AtomicLong upstreamBytes = new AtomicLong();
        /** Every byte the client sent, in order: a recording of the source's side of the connection. */
        final java.io.ByteArrayOutputStream recorded = new java.io.ByteArrayOutputStream();
        final java.util.concurrent.atomic.AtomicInteger ended = new java.util.concurrent.atomic.AtomicInteger();
        final Socket client;
        final Socket server;

        Connection(Socket client, Socket server) {
            this.client = client;
            this.server = server;
        }

        void close() {
            try {
                client.close();
            } catch (IOException ignored) {
                // closing
            }
            try {
                server.close();
            } catch (IOException ignored) {
                // closing
            }
        }
    }

    private final InetSocketAddress target;
    private final ServerSocket listener;
    private final int cutIndex;
    private final long cutAfterBytes;
    private final List<Connection> connections = new CopyOnWriteArrayList<>();
    /** Completes with the number of client bytes the cut connection had carried when it was cut. */
    final CompletableFuture<Long> cut = new CompletableFuture<>();

    /** A proxy that forwards everything and cuts nothing. */
    TcpProxy(InetSocketAddress target) throws IOException {
        this(target, -1, Long.MAX_VALUE);
    }

    TcpProxy(InetSocketAddress target, int cutIndex, long cutAfterBytes) throws IOException {
        this.target = target;
        this.cutIndex = cutIndex;
        this.cutAfterBytes = cutAfterBytes;
        this.listener = new ServerSocket(0, 16, InetAddress.getLoopbackAddress());
        Thread acceptor = new Thread(this::accept, "test-proxy-accept");
        acceptor.setDaemon(true);
        acceptor.start();
    }

    /** Where the source connects. */
    InetSocketAddress address() {
        return new InetSocketAddress(InetAddress.getLoopbackAddress(), listener.getLocalPort());
    }

    /** The connections accepted so far, in order. */
    List<Connection> connections() {
        return List.copyOf(connections);
    }

    private void accept() {
        try {
            while (true) {
                Socket client = listener.accept();
                Socket server = new Socket();
                try {
                    server.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), target.getPort()), 10_000);
                } catch (IOException e) {
                    client.close();
                    continue;
                }
                client.setTcpNoDelay(true);
                server.setTcpNoDelay(true);
                Connection c = new Connection(client, server);
                boolean cutThis = connections.size() == cutIndex;
                connections.add(c);
                pump(c, client, server, true, cutThis);
                pump(c, server, client, false, false);
            }
        } catch (IOException closed) {
            // the listener was closed
        }
    }

    private void pump(Connection c, Socket from, Socket to, boolean upstream, boolean cutThis) {
        Thread t = new Thread(() -> {
            byte[] buffer = new byte[16 << 10];
            // not try-with-resources: closing a socket's stream closes the socket, and a half-close must not
            try {
                InputStream in = from.getInputStream();
                OutputStream out = to.getOutputStream();
                while (true) {
                    int n = in.read(buffer);
                    if (n < 0) {
                        // pass the half-close on; the connection goes once both directions ended
                        to.shutdownOutput();
                        if (c.ended.incrementAndGet() == 2) {
                            c.close();
                        }
                        return;
                    }
                    out.write(buffer, 0, n);
                    if (upstream) {
                        synchronized (c.recorded) {
                            c.recorded.write(buffer, 0, n);
                        }
                        long total = c.upstreamBytes.addAndGet(n);
                        if (cutThis && total >= cutAfterBytes) {
                            cut.complete(total);
                            c.close();
                            return;
                        }
                    }
                }
            } catch (IOException e) {
                // a side broke: break the other too
                c.close();
            }
        }, upstream ? "test-proxy-up" : "test-proxy-down");
        t.setDaemon(true);
        t.start();
    }

    @Override
    public void close() {
        try {
            listener.close();
        } catch (IOException ignored) {
            // closing
        }
        for (Connection c : connections) {
            c.close();
        }
    }
}
