package dev.ferry.core;

/** {@link VmControl#idle()}: no vCPUs to stop, no device state. */
final class IdleVm implements VmControl {
    static final IdleVm INSTANCE = new IdleVm();
    private static final byte[] NO_STATE = new byte[0];

    private IdleVm() {
    }

    @Override
    public void pause() {
    }

    @Override
    public void resume() {
    }

    @Override
    public byte[] saveDeviceState() {
        return NO_STATE;
    }

    @Override
    public void loadDeviceState(byte[] state) {
    }
}
