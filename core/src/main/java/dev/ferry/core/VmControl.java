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

    /** Installs device state received from the source, before {@link #resume()}. */
    void loadDeviceState(byte[] state);

    /**
     * A VM with nothing to run: no vCPUs to pause or resume and no device state. For migrating
     * memory alone, as benchmarks and {@code Migration.warmUp()} do.
     */
    static VmControl idle() {
        return IdleVm.INSTANCE;
    }
}
