package dev.ferry.core;

/** Which TLS implementation carries a migration's connections. */
public enum TlsProvider {
    /** OpenSSL (BoringSSL, through netty-tcnative) where its native library loads, the JDK's elsewhere. */
    AUTO,
    /** OpenSSL only: fails where its native library does not load. */
    OPENSSL,
    /** The JDK's own TLS. */
    JDK
}
