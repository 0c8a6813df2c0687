package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Capability;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.SourceVmState;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The source against a destination that lies: it speaks the protocol on real sockets, takes the
 * whole stream and answers RESUMED with a digest that is not the one sent. Nobody can then know
 * what runs there, so the source must keep its guest paused and say the hand-over is in doubt,
 * never report it STOPPED (the guest would run nowhere).
 */
class SourceHandOverTest {
    private static final long SIZE = 4L << 20;

    @Test
    void aResumedWithAnotherDigestIsAHandOverInDoubt() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress());
             TestGuest source = new TestGuest(SIZE, 3, false)) {
            List<Socket> accepted = new ArrayList<>();
            Thread liar = Thread.ofPlatform().daemon().start(() -> lie(server, accepted));
            MigrationReport report = Migration.source(source.memory, source.dirty, source)
                    .parameters(MigrationParameters.builder().channels(2).peerTimeoutMillis(5000).build())
                    .connect((InetSocketAddress) server.getLocalSocketAddress()).start().result()
                    .get(60, TimeUnit.SECONDS);
            liar.join(10_000);
            for (Socket s : accepted) {
                s.close();
            }
            assertEquals(MigrationState.FAILED, report.outcome(), "not COMPLETED: " + report.error());
            assertFalse(report.verified());
            assertEquals(SourceVmState.PAUSED, report.sourceVmState(), "the guest must not run nowhere");
            assertTrue(report.error().contains("hand-over in doubt"), report.error());
            assertTrue(report.error().contains("RESUMED with digest"), report.error());
            assertEquals(0, source.resumes, "the source's guest was not resumed");
        }
    }

    /** Accepts the control connection and two page channels, reads to END, answers a wrong RESUMED. */
    private static void lie(ServerSocket server, List<Socket> accepted) {
        try {
            server.setSoTimeout(20_000);
            Socket control = server.accept();
            accepted.add(control);
            ByteBuf hello = HandSource.readFrame(control);
            assertEquals(Wire.HELLO, hello.readUnsignedByte());
            Wire.Hello h = Wire.readHello(hello);
            // it accepts every stage but dedup, whose barriers it would have to answer with STALE
            int stages = h.capabilities() & ~Wire.mask(EnumSet.of(Capability.DEDUP));
            HandSource.send(control, out -> Wire.writeWelcome(out, new Wire.Welcome(stages, 42)));
            for (int c = 0; c < h.channels(); c++) {
                Socket channel = server.accept();
                accepted.add(channel);
                ByteBuf join = HandSource.readFrame(channel);
                join.readUnsignedByte();
                int index = Wire.readJoin(join).channel();
                HandSource.send(channel, out -> Wire.writeJoined(out, index));
                // drain the channel so the source never blocks on it
                Thread.ofPlatform().daemon().start(() -> {
                    try {
                        while (HandSource.readFrame(channel) != null) {
                            // every page is taken and dropped
                        }
                    } catch (IOException closed) {
                        // the test is over
                    }
                });
            }
            for (ByteBuf frame = HandSource.readFrame(control); frame != null; frame = HandSource.readFrame(control)) {
                if (frame.readUnsignedByte() == Wire.END) {
                    long sent = Wire.readEnd(frame).digest();
                    HandSource.send(control, out -> Wire.writeResumed(out, sent + 1, 7));
                    return;
                }
            }
        } catch (IOException | ProtocolException e) {
            throw new IllegalStateException(e);
        }
    }
}
