package dev.ferry.core;

/**
 * The software fault path: a guest thread calls {@link #awaitPresent} before it touches a page,
 * and during post-copy that blocks until the page has arrived. Where real page faults are
 * available (userfaultfd) the gate is {@link #OPEN} and the kernel does the blocking.
 */
@FunctionalInterface
public interface PageGate {
    /** A gate for memory that holds every page. */
    PageGate OPEN = page -> { };

    /** Returns once page {@code page} may be read and written. */
    void awaitPresent(long page);
}
