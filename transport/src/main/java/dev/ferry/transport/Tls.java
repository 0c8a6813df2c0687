package dev.ferry.transport;

import dev.ferry.core.TlsProvider;
import io.netty.buffer.ByteBufAllocator;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslProvider;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.Certificate;
import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * Mutual TLS 1.3 for one side of a migration: its certificate and key, the authorities a peer's
 * certificate must chain to, and the peer names it allows (QEMU's {@code tls-creds} with
 * {@code tls-authz}). Both sides present a certificate; a peer is allowed only when one of its
 * certificate's subject alternative names (DNS, compared without case, or IP) is on the list, so
 * an empty list allows nobody. Which peer names a side should allow is the caller's business: this
 * only checks them.
 */
public final class Tls {
    /** The subject alternative name types a peer is named by: dNSName and iPAddress (RFC 5280). */
    private static final int DNS = 2;
    private static final int IP = 7;

    private final SslContext context;
    private final TlsProvider provider;
    private final List<String> allowed;

    private Tls(SslContext context, TlsProvider provider, List<String> allowed) {
        this.context = context;
        this.provider = provider;
        this.allowed = List.copyOf(allowed);
    }

    /** The side that connects (the source): it presents {@code cert} and checks the server's. */
    public static Tls client(Path cert, Path key, Path ca, Collection<String> allowed, TlsProvider provider)
            throws LinkException {
        return create(false, cert, key, ca, allowed, provider);
    }

    /** The side that listens (the destination): it requires a client certificate. */
    public static Tls server(Path cert, Path key, Path ca, Collection<String> allowed, TlsProvider provider)
            throws LinkException {
        return create(true, cert, key, ca, allowed, provider);
    }

    private static Tls create(boolean server, Path cert, Path key, Path ca, Collection<String> allowed,
            TlsProvider wanted) throws LinkException {
        for (Path file : List.of(cert, key, ca)) {
            if (!Files.isReadable(file)) {
                throw new LinkException("TLS: cannot read " + file);
            }
        }
        TlsProvider provider = resolve(wanted);
        try {
            SslContextBuilder builder = server
                    ? SslContextBuilder.forServer(cert.toFile(), key.toFile()).clientAuth(ClientAuth.REQUIRE)
                    // names are checked against the allow-list after the handshake, not against the host
                    : SslContextBuilder.forClient().keyManager(cert.toFile(), key.toFile()).endpointIdentificationAlgorithm(null);
            SslContext context = builder.trustManager(ca.toFile())
                    .protocols("TLSv1.3")
                    .sslProvider(provider == TlsProvider.OPENSSL ? SslProvider.OPENSSL : SslProvider.JDK)
                    .build();
            return new Tls(context, provider, List.copyOf(allowed));
        } catch (javax.net.ssl.SSLException | IllegalArgumentException e) {
            throw new LinkException("TLS: cannot use " + cert + ", " + key + " and " + ca + ": " + e.getMessage(), e);
        }
    }

    private static TlsProvider resolve(TlsProvider wanted) throws LinkException {
        boolean openssl = io.netty.handler.ssl.OpenSsl.isAvailable();
        return switch (wanted) {
            case AUTO -> openssl ? TlsProvider.OPENSSL : TlsProvider.JDK;
            case OPENSSL -> {
                if (!openssl) {
                    throw new LinkException("TLS: OpenSSL (netty-tcnative) does not load here: "
                            + io.netty.handler.ssl.OpenSsl.unavailabilityCause());
                }
                yield TlsProvider.OPENSSL;
            }
            case JDK -> TlsProvider.JDK;
        };
    }

    /** The implementation in use: OpenSSL or the JDK's, never AUTO. */
    public TlsProvider provider() {
        return provider;
    }

    /** The peer names this side allows. */
    public List<String> allowed() {
        return allowed;
    }

    /** A handler for a new connection to or from {@code peer}, its handshake bounded by {@code timeoutMillis}. */
    SslHandler handler(ByteBufAllocator alloc, InetSocketAddress peer, long timeoutMillis) {
        SslHandler handler = peer == null ? context.newHandler(alloc)
                : context.newHandler(alloc, peer.getHostString(), peer.getPort());
        handler.setHandshakeTimeout(timeoutMillis, TimeUnit.MILLISECONDS);
        return handler;
    }

    /**
     * Why the peer of a finished handshake is not allowed, or null when it is; said to the peer as
     * well, so it names the peer's certificate, not the list.
     */
    String refusal(SSLSession session) {
        List<String> names;
        try {
            names = names(session.getPeerCertificates());
        } catch (SSLPeerUnverifiedException e) {
            return "the peer presented no certificate";
        }
        if (allowed.isEmpty()) {
            return "no peer is allowed: tls-allow is empty (the peer's certificate names " + names + ")";
        }
        for (String name : names) {
            for (String allow : allowed) {
                if (matches(name, allow)) {
                    return null;
                }
            }
        }
        return "the peer's certificate names " + names + " are not in tls-allow";
    }

    private static List<String> names(Certificate[] chain) {
        List<String> names = new ArrayList<>();
        if (chain.length == 0 || !(chain[0] instanceof X509Certificate leaf)) {
            return names;
        }
        try {
            Collection<List<?>> alternatives = leaf.getSubjectAlternativeNames();
            if (alternatives != null) {
                for (List<?> name : alternatives) {
                    int type = (Integer) name.get(0);
                    if (type == DNS || type == IP) {
                        names.add((String) name.get(1));
                    }
                }
            }
        } catch (CertificateParsingException e) {
            // a certificate whose names do not parse names nobody
        }
        return names;
    }

    /** A DNS name without case; an IP address by value, so {@code ::1} matches {@code 0:0:0:0:0:0:0:1}. */
    private static boolean matches(String name, String allow) {
        if (name.equalsIgnoreCase(allow)) {
            return true;
        }
        InetAddress a = literal(name);
        InetAddress b = literal(allow);
        return a != null && a.equals(b);
    }

    private static InetAddress literal(String text) {
        try {
            return InetAddress.ofLiteral(text.toLowerCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            return null;
        }
    }
}
