package dev.ferry.core;

/**
 * The time source of every estimator, limit and timeout, injected so they are tested without
 * sleeping. The system clock is {@link System#nanoTime()}: {@code CLOCK_MONOTONIC}, shared by
 * every process on one Linux host, so a source and a destination on the same host can compare
 * instants (that is how downtime is measured from the source's pause to the destination's resume).
 */
@FunctionalInterface
public interface NanoClock {
    /** The monotonic system clock. */
    NanoClock SYSTEM = System::nanoTime;

    /** Nanoseconds from an arbitrary origin, never decreasing. */
    long nanoTime();
}
