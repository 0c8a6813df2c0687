package dev.ferry.transport;

import dev.ferry.protocol.Wire;
import io.netty.buffer.ByteBuf;
import io.netty.channel.AbstractChannel;
import io.netty.channel.Channel;
import io.netty.channel.ChannelConfig;
import io.netty.channel.ChannelMetadata;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.ChannelPromise;
import io.netty.channel.DefaultChannelConfig;
import io.netty.channel.EventLoop;
import java.net.SocketAddress;

/**
 * One gang member's connection inside a connection the gang shares, as a channel of its own: its
 * pipeline gets that guest's frames from {@link GuestMux}, and what it writes leaves in GUEST
 * frames on the shared connection, on whose event loop it runs. Closing it tells the peer that
 * this guest's connection closed; the shared one stays open for the other guests.
 */
final class GuestChannel extends AbstractChannel {
    private static final ChannelMetadata METADATA = new ChannelMetadata(false);

    private final int guest;
    private final ChannelConfig config;
    private volatile boolean open = true;

    GuestChannel(Channel shared, int guest) {
        super(shared);
        this.guest = guest;
        this.config = new DefaultChannelConfig(this) {
            @Override
            public <T> boolean setOption(ChannelOption<T> option, T value) {
                // socket options are the shared connection's
                return option == ChannelOption.SO_RCVBUF || option == ChannelOption.SO_SNDBUF
                        ? shared.config().setOption(option, value) : super.setOption(option, value);
            }
        };
    }

    int guest() {
        return guest;
    }

    @Override
    public ChannelConfig config() {
        return config;
    }

    @Override
    public boolean isOpen() {
        return open;
    }

    /**
     * Open until closed, whatever the shared connection does: Netty tells a channel's handlers it
     * went inactive only if it was active as it closed, and the shared connection's loss closes
     * this one after the shared one is already inactive. Tied to it, a guest's handler never heard
     * of the loss (a gang's destination then waited out its barrier timeout instead of failing or
     * recovering at once).
     */
    @Override
    public boolean isActive() {
        return open;
    }

    @Override
    public ChannelMetadata metadata() {
        return METADATA;
    }

    @Override
    protected AbstractUnsafe newUnsafe() {
        return new AbstractUnsafe() {
            @Override
            public void connect(SocketAddress remote, SocketAddress local, ChannelPromise promise) {
                promise.setFailure(new UnsupportedOperationException("a guest's connection is opened by its source"));
            }
        };
    }

    @Override
    protected boolean isCompatible(EventLoop loop) {
        return loop == parent().eventLoop();
    }

    @Override
    protected SocketAddress localAddress0() {
        return parent().localAddress();
    }

    @Override
    protected SocketAddress remoteAddress0() {
        return parent().remoteAddress();
    }

    @Override
    protected void doBind(SocketAddress local) {
        throw new UnsupportedOperationException("a guest's connection has the shared connection's address");
    }

    @Override
    protected void doDisconnect() {
        doClose();
    }

    @Override
    protected void doClose() {
        if (!open) {
            return;
        }
        open = false;
        Channel shared = parent();
        if (shared.isActive()) {
            ByteBuf end = shared.alloc().buffer(Wire.GUEST_HEADER);
            Wire.writeGuestHeader(end, guest, 0);
            shared.writeAndFlush(end, shared.voidPromise());
        }
    }

    @Override
    protected void doBeginRead() {
        // the shared connection reads; GuestMux passes this guest's frames on as they come
    }

    @Override
    protected void doWrite(ChannelOutboundBuffer in) {
        Channel shared = parent();
        Object msg;
        while ((msg = in.current()) != null) {
            shared.write(Wire.guestFrame(shared.alloc(), guest, ((ByteBuf) msg).retain()), shared.voidPromise());
            in.remove();
        }
        shared.flush();
    }
}
