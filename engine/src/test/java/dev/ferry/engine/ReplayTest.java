package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Issue 12's replay: a migration recorded by a proxy on 127.0.0.1, then played into a new
 * destination, even by an attacker who reads the new session's id from WELCOME and writes it into
 * the recorded JOIN. The END's digest is sealed with the session the first destination chose, so
 * the new one refuses to resume (it once replayed 3 of 3 times).
 */
class ReplayTest {
    private static final long SIZE = 4L << 20;

    @Test
    void aRecordedMigrationDoesNotReplayIntoAnotherDestination() throws Exception {
        byte[] control;
        byte[] channel;
        try (TestGuest source = new TestGuest(SIZE, 5, false); TestGuest target = new TestGuest(SIZE, 0, false)) {
            target.memory.segment().fill((byte) 0);
            try (IncomingMigration in = Migration.destination(target).memory(target.memory).start();
                    TcpProxy proxy = new TcpProxy(in.address())) {
                MigrationReport out = Migration.source(source.memory, source.dirty, source)
                        .parameters(MigrationParameters.builder().channels(1).build())
                        .connect(proxy.address()).start().result().get(60, TimeUnit.SECONDS);
                assertTrue(out.succeeded(), out.error());
                List<TcpProxy.Connection> recorded = proxy.connections();
                assertEquals(2, recorded.size(), "the control connection and one page channel");
                control = recorded.get(0).recorded.toByteArray();
                channel = recorded.get(1).recorded.toByteArray();
            }
        }
        RecordingVm vm = new RecordingVm();
        try (TestGuest victim = new TestGuest(SIZE, 0, false);
                IncomingMigration in = Migration.destination(vm).memory(victim.memory).peerTimeoutMillis(3000).start();
                HandSource attacker = new HandSource(in.address(), SIZE)) {
            victim.memory.segment().fill((byte) 0);
            // the recorded HELLO first, then the new session's id read from WELCOME
            int helloLength = ByteBuffer.wrap(control).getInt(0) + 4;
            HandSource.write(attacker.control, java.util.Arrays.copyOf(control, helloLength));
            ByteBuf welcome = HandSource.readFrame(attacker.control);
            assertEquals(Wire.WELCOME, welcome.readUnsignedByte());
            long session = Wire.readWelcome(welcome).session();
            // the recorded JOIN, its session field (after length, type and magic) rewritten
            ByteBuffer.wrap(channel).putLong(4 + 1 + 8, session);
            try (Socket page = attacker.connect()) {
                OutputStream o = page.getOutputStream();
                o.write(channel);
                o.flush();
                HandSource.write(attacker.control, java.util.Arrays.copyOfRange(control, helloLength, control.length));
                MigrationReport report = in.result().get(30, TimeUnit.SECONDS);
                assertEquals(MigrationState.FAILED, report.outcome());
                assertTrue(report.error().contains("digest mismatch"), report.error());
                assertFalse(report.destinationResumed());
                assertEquals(0, vm.resumes.get(), "the replayed guest was resumed");
                assertNull(vm.loadedState, "the replayed device state was loaded");
            }
        }
    }
}
