package dev.ferry.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.core.Capability;
import dev.ferry.core.ConvergencePolicy;
import dev.ferry.core.FaultMechanism;
import dev.ferry.core.MigrationMode;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.MigrationReport;
import dev.ferry.core.MigrationState;
import dev.ferry.core.SourceVmState;
import dev.ferry.core.TlsProvider;
import dev.ferry.transport.LinkException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.EnumSet;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Mutual TLS on every connection of a migration, on real loopback sockets, with the certificates
 * {@code scripts/tls-ca.sh} makes: migrations that verify over it, and every peer that must not
 * get in (no certificate, another CA's, a name not allowed, plaintext, another migration's id)
 * refused on both sides while the destination waits on for its real source.
 */
class TlsMigrationTest {
    private static final long SIZE = 16L << 20;

    @TempDir
    static Path certs;

    @BeforeAll
    static void makeCertificates() throws Exception {
        Process script = new ProcessBuilder("bash", Path.of("..", "scripts", "tls-ca.sh").toString(), certs.toString())
                .redirectErrorStream(true).start();
        String output = new String(script.getInputStream().readAllBytes());
        assertTrue(script.waitFor(60, TimeUnit.SECONDS), "tls-ca.sh did not finish");
        assumeTrue(script.exitValue() != 77, "no openssl here");
        assertEquals(0, script.exitValue(), output);
        for (String file : List.of("ca.pem", "source.pem", "source-key.pem", "dest.pem", "dest-key.pem", "rogue.pem",
                "rogue-key.pem", "other-ca.pem", "stranger.pem", "stranger-key.pem")) {
            assertTrue(Files.size(certs.resolve(file)) > 0, file);
        }
    }

    private static Path cert(String name) {
        return certs.resolve(name + ".pem");
    }

    private static Path key(String name) {
        return certs.resolve(name + "-key.pem");
    }

    /**
     * A source presenting {@code who}'s certificate, trusting the test CA; forced to hand over:
     * these tests are about TLS, and a busy machine can make a tiny round look stalled.
     */
    private static MigrationParameters.Builder as(String who) {
        return MigrationParameters.builder().downtimeLimitMillis(50).convergence(ConvergencePolicy.FORCE)
                .tls(cert(who), key(who), cert("ca"));
    }

    private final BlockingQueue<String> refused = new LinkedBlockingQueue<>();

    /** The destination as ferry-dest, allowing ferry-source only. */
    private IncomingMigration destination(TestGuest target, UnaryOperator<DestinationBuilder> more) throws MigrationException {
        target.memory.segment().fill((byte) 0);
        return more.apply(Migration.destination(target).memory(target.memory).tls(cert("dest"), key("dest"), cert("ca"))
                .tlsAllow(List.of("ferry-source")).onRefused(refused::add)).start();
    }

    private static MigrationReport migrate(TestGuest source, InetSocketAddress to, MigrationParameters params)
            throws Exception {
        return Migration.source(source.memory, source.dirty, source).parameters(params).connect(to).start().result()
                .get(60, TimeUnit.SECONDS);
    }

    private static void assertVerified(MigrationReport out, IncomingMigration in, TestGuest source, TestGuest target)
            throws Exception {
        assertEquals(MigrationState.COMPLETED, out.outcome(), out.error());
        assertTrue(out.verified(), out.error());
        MigrationReport dest = in.result().get(10, TimeUnit.SECONDS);
        assertTrue(dest.verified() && dest.destinationResumed(), dest.error());
        assertTrue(source.memory.segment().mismatch(target.memory.segment()) < 0, "memories differ");
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void aPrecopyMigrationOverMutualTlsVerifies(int channels) throws Exception {
        try (TestGuest source = new TestGuest(SIZE, 7, true); TestGuest target = new TestGuest(SIZE, 0, false);
                IncomingMigration in = destination(target, b -> b)) {
            // OpenSSL is on the class path for linux-x86_64: it is what runs here
            assertEquals(TlsProvider.OPENSSL, in.tlsProvider().orElseThrow());
            // with 2 channels the source names the destination it wants; with 1 it checks the host it connects to
            MigrationParameters.Builder params = as("source").channels(channels);
            if (channels == 2) {
                params.tlsAllow(List.of("ferry-dest"));
            }
            MigrationReport out = migrate(source, in.address(), params.build());
            assertVerified(out, in, source, target);
            assertTrue(refused.isEmpty(), "nothing refused: " + refused);
        }
    }

    @ParameterizedTest
    @EnumSource(value = TlsProvider.class, names = {"OPENSSL", "JDK"})
    void eitherProviderOnEitherSideInteroperates(TlsProvider sourceProvider) throws Exception {
        TlsProvider destProvider = sourceProvider == TlsProvider.JDK ? TlsProvider.OPENSSL : TlsProvider.JDK;
        try (TestGuest source = new TestGuest(SIZE, 3, true); TestGuest target = new TestGuest(SIZE, 0, false);
                IncomingMigration in = destination(target, b -> b.tlsProvider(destProvider))) {
            assertEquals(destProvider, in.tlsProvider().orElseThrow());
            assertVerified(migrate(source, in.address(), as("source").tlsProvider(sourceProvider).build()), in, source,
                    target);
        }
    }

    @Test
    void aPostcopyMigrationOverMutualTlsVerifies() throws Exception {
        try (TestGuest source = new TestGuest(SIZE, 5, true); TestGuest target = new TestGuest(SIZE, 0, false);
                IncomingMigration in = destination(target, b -> b.faultMechanism(FaultMechanism.SOFTWARE))) {
            MigrationReport out = migrate(source, in.address(), as("source").mode(MigrationMode.POSTCOPY)
                    .capabilities(EnumSet.of(Capability.ZERO_PAGES, Capability.POSTCOPY)).build());
            assertVerified(out, in, source, target);
            assertNotNull(out.postcopy(), "it went by post-copy, so over the request connection too");
        }
    }

    @Test
    void everyoneButTheRealSourceIsRefusedAndTheRealSourceStillMigrates() throws Exception {
        try (TestGuest source = new TestGuest(SIZE, 9, true); TestGuest target = new TestGuest(SIZE, 0, false);
                IncomingMigration in = destination(target, b -> b)) {
            // no certificate at all
            noCertificateClient(in.address());
            assertTrue(next().contains("TLS handshake failed"), "no certificate");
            // signed by another CA
            MigrationReport stranger = migrate(source, in.address(), MigrationParameters.builder()
                    .tls(cert("stranger"), key("stranger"), cert("ca")).build());
            assertRefusedWithTheGuestRunning(stranger, "TLS");
            assertTrue(next().contains("TLS handshake failed"), "another CA");
            // the right CA, a name not allowed
            MigrationReport rogue = migrate(source, in.address(), as("rogue").build());
            assertRefusedWithTheGuestRunning(rogue, "TLS: refused: the peer's certificate names [ferry-rogue] are not in"
                    + " tls-allow");
            String told = next();
            assertTrue(told.contains("[ferry-rogue]") && told.contains("[ferry-source]"), told);
            // plaintext
            MigrationReport plain = migrate(source, in.address(), MigrationParameters.builder().build());
            assertRefusedWithTheGuestRunning(plain, "this destination accepts only mutual TLS connections");
            assertTrue(next().endsWith(": not TLS (a plaintext source?)"), "plaintext");

            assertFalse(in.result().isDone(), "refused connections fail nothing: " + in.result().getNow(null));
            assertVerified(migrate(source, in.address(), as("source").build()), in, source, target);
        }
    }

    @Test
    void aDestinationWithANameNotAllowedFailsTheSourceWithTheGuestRunningThere() throws Exception {
        try (TestGuest source = new TestGuest(SIZE, 4, true); TestGuest target = new TestGuest(SIZE, 0, false);
                IncomingMigration in = Migration.destination(target).memory(target.memory)
                        .tls(cert("rogue"), key("rogue"), cert("ca")).tlsAllow(List.of("ferry-source")).start()) {
            MigrationReport out = migrate(source, in.address(), as("source").build());
            assertRefusedWithTheGuestRunning(out, "TLS: refused the destination at " + in.address()
                    + ": the peer's certificate names [ferry-rogue] are not in tls-allow [127.0.0.1]");
            MigrationReport named = migrate(source, in.address(), as("source").tlsAllow(List.of("ferry-dest")).build());
            assertRefusedWithTheGuestRunning(named, "[ferry-rogue] are not in tls-allow [ferry-dest]");
            assertEquals(0, target.resumes, "the destination resumed nothing");
        }
    }

    @Test
    void aDestinationWithoutAnAllowListAllowsNobody() throws Exception {
        try (TestGuest source = new TestGuest(SIZE, 4, false); TestGuest target = new TestGuest(SIZE, 0, false);
                IncomingMigration in = destination(target, b -> b.tlsAllow(List.of()))) {
            MigrationReport out = migrate(source, in.address(), as("source").build());
            assertRefusedWithTheGuestRunning(out, "no peer is allowed: tls-allow is empty");
            assertTrue(next().contains("no peer is allowed"));
        }
    }

    @Test
    void aWrongMigrationIdOverTlsIsRefusedWithItsReasonAndTheRightOneMigrates() throws Exception {
        UUID id = UUID.randomUUID();
        UUID other = UUID.randomUUID();
        try (TestGuest source = new TestGuest(SIZE, 2, true); TestGuest target = new TestGuest(SIZE, 0, false);
                IncomingMigration in = destination(target, b -> b.migrationId(id))) {
            MigrationReport wrong = migrate(source, in.address(), as("source").migrationId(other).build());
            assertRefusedWithTheGuestRunning(wrong, "HELLO for migration " + other + ", this destination serves migration "
                    + id);
            assertTrue(next().contains("HELLO for migration " + other));
            assertVerified(migrate(source, in.address(), as("source").migrationId(id).build()), in, source, target);
        }
    }

    @Test
    void plaintextOffLoopbackRefusesToStartUnlessInsecure() throws Exception {
        try (TestGuest target = new TestGuest(SIZE, 0, false)) {
            InetSocketAddress everywhere = new InetSocketAddress("0.0.0.0", 0);
            MigrationException e = assertThrows(MigrationException.class,
                    () -> Migration.destination(target).memory(target.memory).listen(everywhere).start().close());
            assertTrue(e.getMessage().startsWith("refusing to listen on 0.0.0.0 without TLS"), e.getMessage());
            try (IncomingMigration insecure = Migration.destination(target).memory(target.memory).listen(everywhere)
                    .insecure(true).start()) {
                assertTrue(insecure.address().getPort() > 0);
            }
            try (IncomingMigration secure = Migration.destination(target).memory(target.memory).listen(everywhere)
                    .tls(cert("dest"), key("dest"), cert("ca")).start()) {
                assertTrue(secure.tlsProvider().isPresent());
            }
            MigrationException partial = assertThrows(MigrationException.class, () -> Migration.destination(target)
                    .memory(target.memory).tlsCert(java.util.Optional.of(cert("dest"))).start().close());
            assertEquals("TLS needs tls-cert, tls-key and tls-ca together; missing tls-key, tls-ca", partial.getMessage());
        }
    }

    private String next() throws InterruptedException {
        String reason = refused.poll(10, TimeUnit.SECONDS);
        assertNotNull(reason, "the destination told its caller of no refusal");
        return reason;
    }

    private static void assertRefusedWithTheGuestRunning(MigrationReport out, String reason) {
        assertEquals(MigrationState.FAILED, out.outcome());
        assertEquals(SourceVmState.RUNNING, out.sourceVmState(), "the guest runs on the source");
        assertNotNull(out.error());
        assertTrue(out.error().contains(reason), out.error());
    }

    /** A TLS 1.3 client that trusts the CA but presents no certificate: the destination must not let it speak. */
    private static void noCertificateClient(InetSocketAddress to) throws Exception {
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = Files.newInputStream(cert("ca"))) {
            trust.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext context = SSLContext.getInstance("TLSv1.3");
        context.init(null, tmf.getTrustManagers(), null);
        try (SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket(to.getAddress(), to.getPort())) {
            socket.setSoTimeout(10_000);
            socket.setEnabledProtocols(new String[] {"TLSv1.3"});
            try {
                socket.startHandshake();
                socket.getOutputStream().write(new byte[] {0, 0, 0, 1, 1});
                socket.getOutputStream().flush();
                assertEquals(-1, socket.getInputStream().read(), "the destination answered a client without a certificate");
            } catch (SSLException | java.net.SocketException expected) {
                // refused by the destination's alert
            } catch (IOException e) {
                throw new AssertionError("neither refused nor closed: " + e, e);
            }
        }
    }
}
