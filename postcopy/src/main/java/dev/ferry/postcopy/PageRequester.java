package dev.ferry.postcopy;

/** Sends a request for a missing page to the source, on the return path. Any thread. */
@FunctionalInterface
public interface PageRequester {
    void request(long page);
}
