package dev.ferry.core;

/** How the source hands the guest over. */
public enum MigrationMode {
    /** Rounds of dirty pages until the estimated downtime fits the limit, then stop and copy. */
    PRECOPY,
    /** One bulk round, then the destination runs and pulls the missing pages. */
    POSTCOPY,
    /** Pre-copy while it converges, post-copy once it cannot. */
    HYBRID
}
