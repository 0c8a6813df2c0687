package dev.ferry.stream;

import dev.ferry.core.PageBitmap;
import dev.ferry.protocol.PageRuns;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.protocol.Wire;
import dev.ferry.transport.Link;
import dev.ferry.transport.LinkException;
import io.netty.buffer.ByteBuf;
import java.util.concurrent.TimeUnit;

/**
 * The source's end of the control connection: the frames that order the session (the handshake,
 * each round's barrier, the device state, DISCARD, the hand-over) and the destination's answers.
 * Every wait for an answer is bounded by the peer timeout.
 */
public final class SourceControl implements AutoCloseable {
    private Link link;
    private final long peerTimeoutMillis;

    public SourceControl(Link link, long peerTimeoutMillis) {
        this.link = link;
        this.peerTimeoutMillis = peerTimeoutMillis;
    }

    /** The control connection. */
    public Link link() {
        return link;
    }

    /** Uses {@code replacement} from now on (post-copy recovered the session). */
    public void relink(Link replacement) {
        this.link = replacement;
    }

    /** Sends HELLO and reads WELCOME (or the destination's refusal). */
    public Wire.Welcome hello(Wire.Hello hello) throws LinkException, ProtocolException {
        ByteBuf out = link.buffer(64);
        Wire.writeHello(out, hello);
        link.sendNow(out);
        ByteBuf reply = expect(link, Wire.WELCOME, "destination refused the migration: ", peerTimeoutMillis, false);
        try {
            return Wire.readWelcome(reply);
        } finally {
            reply.release();
        }
    }

    /**
     * The barrier after a round: every page channel has sent its ROUND_END, and the destination
     * applies nothing sent on this connection after this frame before every channel's ROUND_END
     * of the round has been applied there.
     */
    public void roundEnd(int round, long pages) throws LinkException {
        ByteBuf out = link.buffer(Wire.FRAME_HEADER + 12);
        Wire.writeRoundEnd(out, round, pages);
        link.sendNow(out);
    }

    /**
     * Waits for the STALE frames answering round {@code round}'s barrier and adds their pages to
     * {@code stale}.
     *
     * @return the pages they named
     */
    public long awaitStale(int round, PageBitmap stale) throws LinkException, ProtocolException {
        long[] pages = new long[1];
        while (true) {
            ByteBuf frame = expect(link, Wire.STALE, "destination failed: ", peerTimeoutMillis, false);
            try {
                Wire.Stale answer = Wire.readStale(frame);
                if (answer.round() != round) {
                    throw new ProtocolException("STALE of round " + answer.round() + " at the barrier of round " + round);
                }
                PageRuns.read("STALE", frame, stale.pageCount(), (first, count) -> {
                    for (long p = first; p < first + count; p++) {
                        stale.set(p);
                    }
                    pages[0] += count;
                });
                if (answer.last()) {
                    return pages[0];
                }
            } finally {
                frame.release();
            }
        }
    }

    /** The device state, flushed. */
    public void deviceState(byte[] state) throws LinkException {
        ByteBuf out = link.buffer(Wire.FRAME_HEADER + state.length);
        Wire.writeDeviceState(out, state);
        link.sendNow(out);
    }

    /** The end of the stream: the digest at the pause and the pause instant. */
    public void end(long digest, long pauseNanos) throws LinkException {
        ByteBuf out = link.buffer(Wire.FRAME_HEADER + 16);
        Wire.writeEnd(out, digest, pauseNanos);
        link.sendNow(out);
    }

    /** The pages the destination must treat as missing, as DISCARD runs (nothing when none). */
    public void discard(PageBitmap pages) throws LinkException {
        PageRuns.write(Wire.DISCARD, PageRuns.of(pages), link::buffer, link::send);
    }

    /** POSTCOPY_START, flushed: the destination resumes on it. */
    public void postcopyStart(long pauseNanos) throws LinkException {
        ByteBuf out = link.buffer(Wire.FRAME_HEADER + 8);
        Wire.writePostcopyStart(out, pauseNanos);
        link.sendNow(out);
    }

    /**
     * Waits for POSTCOPY_RUNNING; returns the destination's resume instant. An ERROR instead means
     * the destination failed before the switch (it sends POSTCOPY_RUNNING as it resumes): {@link Refused}.
     */
    public long awaitPostcopyRunning() throws LinkException, ProtocolException {
        ByteBuf reply = expect(link, Wire.POSTCOPY_RUNNING, "destination did not resume: ", peerTimeoutMillis, true);
        try {
            return Wire.readPostcopyRunning(reply);
        } finally {
            reply.release();
        }
    }

    /**
     * After {@code lost} while switching to post-copy, never returns: throws the ERROR the
     * destination sent before it closed, if it did, as a {@link Refused} (it never resumed); else
     * {@code lost} itself.
     */
    public void refusalOr(LinkException lost) throws LinkException, Refused {
        ByteBuf frame;
        try {
            frame = link.poll();
        } catch (LinkException closed) {
            throw lost;
        }
        if (frame != null) {
            try {
                if (frame.isReadable() && frame.readUnsignedByte() == Wire.ERROR) {
                    throw new Refused("destination did not resume: " + Wire.readError(frame));
                }
            } finally {
                frame.release();
            }
        }
        throw lost;
    }

    /**
     * Waits for RESUMED. An ERROR instead means the destination refused the hand-over (it did not
     * resume): {@link Refused}.
     */
    public Wire.Resumed awaitResumed() throws LinkException, ProtocolException {
        ByteBuf reply = expect(link, Wire.RESUMED, "destination did not resume: ", peerTimeoutMillis, true);
        try {
            return Wire.readResumed(reply);
        } finally {
            reply.release();
        }
    }

    /** A destination that refused mid-stream says so with an ERROR frame; surface it now. */
    public void checkPeer() throws LinkException, ProtocolException {
        ByteBuf frame = link.poll();
        if (frame == null) {
            return;
        }
        try {
            int type = frame.isReadable() ? frame.readUnsignedByte() : -1;
            if (type == Wire.ERROR) {
                throw new ProtocolException("destination failed: " + Wire.readError(frame));
            }
            throw new ProtocolException("unexpected " + Wire.typeName(type) + " from the destination during the stream");
        } finally {
            frame.release();
        }
    }

    /** The next frame, within the peer timeout; never empty. */
    public ByteBuf await(String what) throws LinkException, ProtocolException {
        return awaitOn(link, what, peerTimeoutMillis);
    }

    /** The next frame on {@code link} within {@code timeoutMillis}; never empty. */
    public static ByteBuf awaitOn(Link link, String what, long timeoutMillis) throws LinkException, ProtocolException {
        ByteBuf frame = link.receive(TimeUnit.MILLISECONDS.toNanos(timeoutMillis));
        if (frame == null) {
            throw new LinkException("no " + what + " from the destination within " + timeoutMillis + " ms");
        }
        if (!frame.isReadable()) {
            frame.release();
            throw new ProtocolException("empty frame from the destination");
        }
        return frame;
    }

    /** Sends {@code join} on {@code link} and waits for JOINED. */
    public static void join(Link link, Wire.Join join, long timeoutMillis) throws LinkException, ProtocolException {
        ByteBuf out = link.buffer(Wire.FRAME_HEADER + 64);
        Wire.writeJoin(out, join);
        link.sendNow(out);
        ByteBuf reply = expect(link, Wire.JOINED, "destination refused channel " + join.channel() + ": ", timeoutMillis,
                false);
        try {
            int joined = Wire.readJoined(reply);
            if (joined != join.channel()) {
                throw new ProtocolException("destination joined channel " + joined + ", asked " + join.channel());
            }
        } finally {
            reply.release();
        }
    }

    /**
     * The next frame on {@code link}, which must be of {@code type}: returned after its type byte
     * (the caller releases it). An ERROR is the destination's refusal, {@code refused} and its
     * reason ({@link Refused} when {@code handOver}); any other type is a protocol error.
     */
    private static ByteBuf expect(Link link, int type, String refused, long timeoutMillis, boolean handOver)
            throws LinkException, ProtocolException {
        ByteBuf reply = awaitOn(link, Wire.typeName(type), timeoutMillis);
        int got = reply.readUnsignedByte();
        if (got == type) {
            return reply;
        }
        try {
            if (got == Wire.ERROR) {
                String reason = refused + Wire.readError(reply);
                throw handOver ? new Refused(reason) : new ProtocolException(reason);
            }
            throw new ProtocolException("expected " + Wire.typeName(type) + ", got " + Wire.typeName(got));
        } finally {
            reply.release();
        }
    }

    @Override
    public void close() {
        link.close();
    }

    /** The destination answered the hand-over or the switch to post-copy with a refusal: it did not resume the guest. */
    public static final class Refused extends ProtocolException {
        private static final long serialVersionUID = 1L;

        Refused(String message) {
            super(message);
        }
    }
}
