package dev.ferry.transport;

import dev.ferry.protocol.Wire;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.NanoClock;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.EventLoopGroup;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.SplittableRandom;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Link and LinkServer over real loopback sockets. */
class LinkTest {
    private static final long WAIT = TimeUnit.SECONDS.toNanos(10);
    private static final InetSocketAddress ANY_PORT = new InetSocketAddress(InetAddress.getLoopbackAddress(), 0);

    private final EventLoopGroup group = Transports.group(1);

    @AfterEach
    void shutDown() {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5000);
    }

    @Test
    void framesCrossBothWays() throws Exception {
        BlockingQueue<byte[]> atServer = new LinkedBlockingQueue<>();
        try (LinkServer server = LinkServer.bind(group, ANY_PORT, 5000, () -> new Echo(atServer));
                Link link = Link.connect(group, server.localAddress(), new BandwidthLimiter(0), 5000, NanoClock.SYSTEM)) {
            byte[] state = new byte[1 << 20];
            new SplittableRandom(1).nextBytes(state);

            ByteBuf out = link.buffer(64);
            Wire.writeHello(out, new Wire.Hello(Wire.VERSION, 4096, 1L << 30, 1, 0, 1, Wire.NO_MIGRATION));
            link.sendNow(out);
            ByteBuf big = link.buffer(state.length + Wire.FRAME_HEADER);
            Wire.writeDeviceState(big, state);
            link.send(big);
            ByteBuf end = link.buffer(32);
            Wire.writeEnd(end, 42, 7);
            link.sendNow(end);
            assertEquals((Wire.FRAME_HEADER + 45) + (Wire.FRAME_HEADER + state.length) + (Wire.FRAME_HEADER + 16), link.bytesSent());

            Wire.Hello hello = Wire.readHello(body(atServer.poll(10, TimeUnit.SECONDS), Wire.HELLO));
            assertEquals(1L << 30, hello.memoryBytes());
            assertArrayEquals(state, ByteBufUtil.getBytes(body(atServer.poll(10, TimeUnit.SECONDS), Wire.DEVICE_STATE)));

            // the echo comes back through the Link's own framing
            ByteBuf helloBack = link.receive(WAIT);
            assertEquals(Wire.HELLO, helloBack.readUnsignedByte());
            assertEquals(hello, Wire.readHello(helloBack));
            helloBack.release();
            ByteBuf stateBack = link.receive(WAIT);
            assertEquals(Wire.DEVICE_STATE, stateBack.readUnsignedByte());
            assertArrayEquals(state, ByteBufUtil.getBytes(stateBack));
            stateBack.release();
            ByteBuf endBack = link.receive(WAIT);
            assertEquals(Wire.END, endBack.readUnsignedByte());
            assertEquals(42, endBack.readLong());
            endBack.release();
            assertNull(link.poll());
            assertTrue(link.isOpen());
        }
    }

    @Test
    void anErrorFromThePeerBecomesTheCloseReason() throws Exception {
        try (LinkServer server = LinkServer.bind(group, ANY_PORT, 5000, Refuse::new);
                Link link = Link.connect(group, server.localAddress(), new BandwidthLimiter(0), 5000, NanoClock.SYSTEM)) {
            ByteBuf error = link.receive(WAIT);
            assertNotNull(error, "no ERROR frame");
            assertEquals(Wire.ERROR, error.readUnsignedByte());
            assertEquals("go away", Wire.readError(error));
            error.release();
            LinkException closed = assertThrows(LinkException.class, () -> link.receive(WAIT));
            assertEquals("peer reported: go away", closed.getMessage());
            assertThrows(LinkException.class, link::poll, "a closed link stays closed");
        }
    }

    /**
     * A peer that accepts and never reads must fail the sender within the peer timeout, not hang
     * it, even while it sends heartbeats (so the read timeout does not fire first).
     */
    @Test
    void aPeerThatStopsReadingFailsTheSender() throws Exception {
        try (ServerSocket listener = new ServerSocket()) {
            listener.setReceiveBufferSize(64 << 10);
            listener.bind(ANY_PORT);
            Link link = Link.connect(group, (InetSocketAddress) listener.getLocalSocketAddress(), new BandwidthLimiter(0), 500, NanoClock.SYSTEM);
            try (Socket stuck = listener.accept()) {
                Thread beats = heartbeats(stuck, 100);
                LinkException e = assertTimeoutPreemptively(Duration.ofSeconds(30), () -> assertThrows(LinkException.class,
                        () -> {
                            // far more than the socket buffers and Netty's high-water mark together
                            for (int i = 0; i < 1024; i++) {
                                ByteBuf frame = link.buffer((1 << 20) + Wire.FRAME_HEADER);
                                Wire.writeDeviceState(frame, new byte[1 << 20]);
                                link.send(frame);
                            }
                        }));
                assertTrue(e.getMessage().startsWith("peer stopped reading"), e.getMessage());
                assertTrue(link.waitedNanos() >= 500_000_000L,
                        "the sender's wait for the socket is counted: " + link.waitedNanos() + " ns");
                beats.interrupt();
            } finally {
                link.close();
            }
        }
    }

    @Test
    void aFrameLongerThanMaxFrameClosesTheLinkAsMalformed() throws Exception {
        try (ServerSocket listener = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
                Link link = Link.connect(group, (InetSocketAddress) listener.getLocalSocketAddress(), new BandwidthLimiter(0), 5000, NanoClock.SYSTEM);
                Socket peer = listener.accept()) {
            OutputStream out = peer.getOutputStream();
            out.write(new byte[] {0x01, 0x00, 0x00, 0x01, Wire.PAGES}); // length MAX_FRAME + 1
            out.flush();
            LinkException e = assertThrows(LinkException.class, () -> link.receive(WAIT));
            assertTrue(e.getMessage().startsWith("link failed: malformed frame"), e.getMessage());
            assertTrue(waitClosed(link), "the channel stays open after a malformed frame");
        }
    }

    @Test
    void aSilentSourceIsDroppedAfterThePeerTimeout() throws Exception {
        BlockingQueue<String> failures = new LinkedBlockingQueue<>();
        try (LinkServer server = LinkServer.bind(group, ANY_PORT, 200, () -> new ChannelInboundHandlerAdapter() {
                    @Override
                    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                        failures.add(Frames.describe(cause));
                        ctx.close();
                    }
                });
                Socket silent = new Socket(server.localAddress().getAddress(), server.localAddress().getPort())) {
            String reason = failures.poll(10, TimeUnit.SECONDS);
            assertEquals("peer silent past the peer timeout: it is dead or stuck", reason);
            assertEquals(-1, silent.getInputStream().read(), "the server closes the connection");
        }
    }

    /** A destination that accepted and then says nothing, not even a heartbeat, fails the source's link. */
    @Test
    void aSilentPeerFailsTheLinkWithinThePeerTimeout() throws Exception {
        try (ServerSocket listener = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
                Link link = Link.connect(group, (InetSocketAddress) listener.getLocalSocketAddress(), new BandwidthLimiter(0), 300, NanoClock.SYSTEM);
                Socket silent = listener.accept()) {
            long began = System.nanoTime();
            LinkException e = assertThrows(LinkException.class, () -> link.receive(WAIT));
            assertEquals("link failed: peer silent past the peer timeout: it is dead or stuck", e.getMessage());
            assertTrue(System.nanoTime() - began < WAIT, "noticed by the read timeout, not by the wait's own bound");
            // the link said it is alive meanwhile: a HEARTBEAT, the type byte after a length of 1
            byte[] beat = silent.getInputStream().readNBytes(5);
            assertArrayEquals(new byte[] {0, 0, 0, 1, Wire.HEARTBEAT}, beat);
        }
    }

    /**
     * Both ends quiet for five peer timeouts: the heartbeats of each keep the other's read
     * timeout from firing, and none reaches the receiver as a frame.
     */
    @Test
    void heartbeatsKeepAQuietConnectionAliveBothWays() throws Exception {
        BlockingQueue<String> atServer = new LinkedBlockingQueue<>();
        try (LinkServer server = LinkServer.bind(group, ANY_PORT, 200, () -> new ChannelInboundHandlerAdapter() {
                    @Override
                    public void channelActive(ChannelHandlerContext ctx) {
                        Liveness.heartbeat(ctx.channel(), 200);
                        ctx.fireChannelActive();
                    }

                    @Override
                    public void channelRead(ChannelHandlerContext ctx, Object msg) {
                        ByteBuf frame = (ByteBuf) msg;
                        atServer.add(Wire.typeName(frame.getUnsignedByte(frame.readerIndex())));
                        frame.release();
                    }

                    @Override
                    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                        atServer.add(Frames.describe(cause));
                        ctx.close();
                    }
                });
                Link link = Link.connect(group, server.localAddress(), new BandwidthLimiter(0), 200, NanoClock.SYSTEM)) {
            assertNull(link.receive(TimeUnit.MILLISECONDS.toNanos(1000)), "a heartbeat is no frame for the receiver");
            assertTrue(link.isOpen(), "the link was kept alive by the server's heartbeats");
            ByteBuf end = link.buffer(32);
            Wire.writeEnd(end, 1, 2);
            link.sendNow(end);
            assertEquals("HEARTBEAT", atServer.poll(10, TimeUnit.SECONDS), "the link's own heartbeats reach the server's handler");
            String next;
            while ((next = atServer.poll(10, TimeUnit.SECONDS)).equals("HEARTBEAT")) {
                // the server's handler here sees heartbeats; a session's drops them
            }
            assertEquals("END", next, "the server was not timed out meanwhile");
        }
    }

    /** A frame whose bytes trickle in for longer than the peer timeout is not silence: any byte resets it. */
    @Test
    void aLongFrameArrivingSlowlyIsNotSilence() throws Exception {
        BlockingQueue<String> atServer = new LinkedBlockingQueue<>();
        try (LinkServer server = LinkServer.bind(group, ANY_PORT, 300, () -> new ChannelInboundHandlerAdapter() {
                    @Override
                    public void channelRead(ChannelHandlerContext ctx, Object msg) {
                        ByteBuf frame = (ByteBuf) msg;
                        atServer.add(Wire.typeName(frame.readUnsignedByte()) + " of " + frame.readableBytes());
                        frame.release();
                    }

                    @Override
                    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                        atServer.add(Frames.describe(cause));
                        ctx.close();
                    }
                });
                Socket slow = new Socket(server.localAddress().getAddress(), server.localAddress().getPort())) {
            OutputStream out = slow.getOutputStream();
            out.write(new byte[] {0, 0, 0, 21, Wire.DEVICE_STATE});
            // 20 bytes, one each 100 ms: 2 s, more than six peer timeouts, for one frame
            for (int i = 0; i < 20; i++) {
                assertNull(atServer.poll(100, TimeUnit.MILLISECONDS), "nothing before the frame is whole");
                out.write(i);
                out.flush();
            }
            assertEquals("DEVICE_STATE of 20", atServer.poll(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void connectingToNothingFailsWithTheAddress() throws Exception {
        InetSocketAddress nobody;
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            nobody = (InetSocketAddress) probe.getLocalSocketAddress();
        }
        LinkException e = assertThrows(LinkException.class, () -> Link.connect(group, nobody, new BandwidthLimiter(0), 2000, NanoClock.SYSTEM));
        assertTrue(e.getMessage().startsWith("cannot connect to " + nobody), e.getMessage());
    }

    /** Writes a HEARTBEAT on {@code socket} every {@code millis} until interrupted or the socket breaks. */
    private static Thread heartbeats(Socket socket, long millis) {
        Thread beats = new Thread(() -> {
            try {
                while (!Thread.currentThread().isInterrupted()) {
                    socket.getOutputStream().write(new byte[] {0, 0, 0, 1, Wire.HEARTBEAT});
                    Thread.sleep(millis);
                }
            } catch (java.io.IOException | InterruptedException e) {
                // the test is over
            }
        }, "test-heartbeats");
        beats.setDaemon(true);
        beats.start();
        return beats;
    }

    private static ByteBuf body(byte[] frame, int type) {
        assertNotNull(frame, "no frame arrived");
        ByteBuf buf = io.netty.buffer.Unpooled.wrappedBuffer(frame);
        assertEquals(type, buf.readUnsignedByte());
        return buf;
    }

    private static boolean waitClosed(Link link) throws InterruptedException {
        for (int i = 0; i < 100 && link.isOpen(); i++) {
            Thread.sleep(50);
        }
        return !link.isOpen();
    }

    /** Keeps a copy of every frame and sends it back re-framed. */
    /**
     * A link's frames handed over as they arrive: on the event loop, in order, queued ones first,
     * answered from there (sendUrgent cannot wait on the loop); then queued again for receive once
     * let go; and the callee hears the close.
     */
    @Test
    void arrivalsAreHandedFramesOnTheEventLoopAndAnswerFromThere() throws Exception {
        BlockingQueue<byte[]> atServer = new LinkedBlockingQueue<>();
        try (LinkServer server = LinkServer.bind(group, ANY_PORT, 5000, () -> new Echo(atServer));
                Link link = Link.connect(group, server.localAddress(), new BandwidthLimiter(0), 5000, NanoClock.SYSTEM)) {
            for (int n = 1; n <= 3; n++) {
                sendEnd(link, n);
            }
            BlockingQueue<String> seen = new LinkedBlockingQueue<>();
            java.util.concurrent.CountDownLatch closed = new java.util.concurrent.CountDownLatch(1);
            link.onArrival(new Link.Arrivals() {
                @Override
                public void frame(ByteBuf frame) {
                    try {
                        int type = frame.readUnsignedByte();
                        String where = group.next().inEventLoop() ? "loop" : Thread.currentThread().getName();
                        if (type == Wire.END) {
                            long n = frame.readLong();
                            seen.add("END " + n + " " + where);
                            ByteBuf answer = link.buffer(Wire.FRAME_HEADER + 12);
                            Wire.writeRoundEnd(answer, (int) n, n);
                            link.sendUrgent(answer);
                        } else {
                            seen.add(Wire.typeName(type) + " " + frame.readInt() + " " + where);
                        }
                    } catch (LinkException e) {
                        seen.add("failed: " + e.getMessage());
                    } finally {
                        frame.release();
                    }
                }

                @Override
                public void closed(String reason) {
                    closed.countDown();
                }
            });
            for (int n = 4; n <= 5; n++) {
                sendEnd(link, n);
            }
            java.util.List<String> ends = new java.util.ArrayList<>();
            java.util.List<String> answers = new java.util.ArrayList<>();
            for (int i = 0; i < 10; i++) {
                String s = seen.poll(10, TimeUnit.SECONDS);
                assertNotNull(s, "frame " + i + " of 10 did not arrive: " + ends + answers);
                (s.startsWith("END") ? ends : answers).add(s);
            }
            assertEquals(java.util.List.of("END 1 loop", "END 2 loop", "END 3 loop", "END 4 loop", "END 5 loop"), ends);
            assertEquals(java.util.List.of("ROUND_END 1 loop", "ROUND_END 2 loop", "ROUND_END 3 loop",
                    "ROUND_END 4 loop", "ROUND_END 5 loop"), answers);

            link.onArrival(null);
            sendEnd(link, 9);
            ByteBuf queued = link.receive(WAIT);
            assertNotNull(queued, "let go, the link queues its frames again");
            assertEquals(Wire.END, queued.readUnsignedByte());
            assertEquals(9, queued.readLong());
            queued.release();
            assertNull(seen.poll(), "nothing more reached the callee: " + seen);

            link.onArrival(new Link.Arrivals() {
                @Override
                public void frame(ByteBuf frame) {
                    frame.release();
                }

                @Override
                public void closed(String reason) {
                    closed.countDown();
                }
            });
            link.close();
            assertTrue(closed.await(10, TimeUnit.SECONDS), "the callee heard the close");
        }
    }

    private static void sendEnd(Link link, long n) throws LinkException {
        ByteBuf end = link.buffer(Wire.FRAME_HEADER + 16);
        Wire.writeEnd(end, n, 0);
        link.sendNow(end);
    }

    private static final class Echo extends ChannelInboundHandlerAdapter {
        private final BlockingQueue<byte[]> received;

        Echo(BlockingQueue<byte[]> received) {
            this.received = received;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            ByteBuf frame = (ByteBuf) msg;
            received.add(ByteBufUtil.getBytes(frame));
            ByteBuf out = ctx.alloc().buffer(frame.readableBytes() + 4);
            out.writeInt(frame.readableBytes()).writeBytes(frame);
            frame.release();
            ctx.writeAndFlush(out);
        }
    }

    /** Answers every connection with an ERROR and closes, as a busy destination does. */
    private static final class Refuse extends ChannelInboundHandlerAdapter {
        @Override
        public void channelActive(ChannelHandlerContext ctx) {
            ByteBuf error = ctx.alloc().buffer(16);
            Wire.writeError(error, "go away");
            ctx.writeAndFlush(error).addListener(io.netty.channel.ChannelFutureListener.CLOSE);
        }
    }
}
