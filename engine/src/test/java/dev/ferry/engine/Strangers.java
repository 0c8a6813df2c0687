package dev.ferry.engine;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.ArrayList;
import java.util.List;

/**
 * Silent connections to a destination's listening socket: which it closed as they came, and
 * which it still holds open as pending.
 */
record Strangers(List<Socket> all, int closedAtOnce, List<Socket> held) implements AutoCloseable {
    /**
     * Opens {@code count} connections to {@code address} that send nothing, then waits up to
     * {@code waitMillis} on each for the destination to close it.
     */
    static Strangers open(InetSocketAddress address, int count, int waitMillis) throws IOException {
        List<Socket> all = new ArrayList<>();
        try {
            for (int i = 0; i < count; i++) {
                all.add(new Socket(address.getAddress(), address.getPort()));
            }
            int closed = 0;
            List<Socket> held = new ArrayList<>();
            for (Socket s : all) {
                s.setSoTimeout(waitMillis);
                try {
                    if (s.getInputStream().read() == -1) {
                        closed++;
                    }
                } catch (SocketTimeoutException pending) {
                    held.add(s);
                }
                s.setSoTimeout(10_000);
            }
            return new Strangers(all, closed, held);
        } catch (IOException | RuntimeException e) {
            for (Socket s : all) {
                s.close();
            }
            throw e;
        }
    }

    @Override
    public void close() throws IOException {
        for (Socket s : all) {
            s.close();
        }
    }
}
