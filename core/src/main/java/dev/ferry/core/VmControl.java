package dev.ferry.core;

/**
 * What the hypervisor lets a migration do to the guest's vCPUs and devices.
 *
 * <p>The source calls {@link #pause()} at the switch-over and {@link #resume()} only when the
 * migration failed or was cancelled (the guest must keep running where it was). The
 * destination calls {@link #loadDeviceState} and {@link #resume()} once memory is verified.
 */
public interface VmControl {
    /** Stops the vCPUs; returns once no vCPU can write guest memory. */
    void pause();

    /** Starts the vCPUs again. */
    void resume();

    /** The device state (opaque to Ferry), taken while paused; sent after memory. */
    byte[] saveDeviceState();

    /**
     * The device state as {@link #saveDeviceState} would give it now, taken while the vCPUs run,
     * for the downtime estimate to time and size before the pause; null (the default) when this VM
     * can take it only paused, as QEMU does. Called twice, before the first round (the second is
     * timed: the first runs cold).
     */
    default byte[] sampleDeviceState() {
        return null;
    }

    /** Installs device state received from the source, before {@link #resume()}. */
    void loadDeviceState(byte[] state);

    /**
     * Asks the vCPUs to run only {@code 100 - percent}% of the time (QEMU's cpu-throttle, what
     * auto-converge uses), so the guest dirties memory more slowly; 0 lifts it. Called on the
     * migration's thread between rounds, and with 0 once the migration ends either way.
     *
     * @param percent 0..99
     * @return whether this VM can be throttled (the default: it cannot)
     */
    default boolean throttle(int percent) {
        return false;
    }

    /**
     * A VM with nothing to run: no vCPUs to pause or resume and no device state. For migrating
     * memory alone, as benchmarks and {@code Migration.warmUp()} do.
     */
    static VmControl idle() {
        return IdleVm.INSTANCE;
    }
}
