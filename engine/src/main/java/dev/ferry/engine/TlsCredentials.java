package dev.ferry.engine;

import dev.ferry.core.Configuration;
import dev.ferry.core.TlsProvider;
import dev.ferry.transport.LinkException;
import dev.ferry.transport.Tls;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * One side's TLS settings as given: all three files or none, checked together; and the peer names
 * it allows. What each side allows when no list is given is its policy, written here once.
 */
record TlsCredentials(Optional<Path> cert, Optional<Path> key, Optional<Path> ca, List<String> allow,
        TlsProvider provider) {

    /** Whether TLS is asked for: any of the files given (then all must be). */
    boolean requested() {
        return cert.isPresent() || key.isPresent() || ca.isPresent();
    }

    /**
     * The source's TLS, or null for plaintext. With no tls-allow it allows the host it connects to
     * (QEMU's tls-hostname): the destination's certificate must name it.
     */
    Tls forSource(String host) throws LinkException {
        if (!requested()) {
            return null;
        }
        checkComplete();
        return Tls.client(cert.get(), key.get(), ca.get(), allow.isEmpty() ? List.of(host) : allow, provider);
    }

    /** The destination's TLS, or null for plaintext. With no tls-allow it allows nobody (QEMU's tls-authz denies by default). */
    Tls forDestination() throws LinkException {
        if (!requested()) {
            return null;
        }
        checkComplete();
        return Tls.server(cert.get(), key.get(), ca.get(), allow, provider);
    }

    private void checkComplete() throws LinkException {
        List<String> missing = new ArrayList<>();
        if (cert.isEmpty()) {
            missing.add(Configuration.TLS_CERT.name());
        }
        if (key.isEmpty()) {
            missing.add(Configuration.TLS_KEY.name());
        }
        if (ca.isEmpty()) {
            missing.add(Configuration.TLS_CA.name());
        }
        if (!missing.isEmpty()) {
            throw new LinkException("TLS needs " + Configuration.TLS_CERT.name() + ", " + Configuration.TLS_KEY.name()
                    + " and " + Configuration.TLS_CA.name() + " together; missing " + String.join(", ", missing));
        }
    }
}
