package dev.ferry.core;

/** How a destination in post-copy learns that the guest touched a missing page. */
public enum FaultMechanism {
    /** userfaultfd where the kernel allows it, the software path elsewhere. */
    AUTO,
    /** Real page faults: any load or store by any thread to a missing page blocks in the kernel. */
    USERFAULTFD,
    /** The guest's own access path checks the present pages ({@code dev.ferry.postcopy.SoftwareFaults}). */
    SOFTWARE
}
