package dev.ferry.engine;

import dev.ferry.core.VmControl;

/** A VM that does what {@code vm} does; a test overrides the calls it changes. */
class ForwardingVm implements VmControl {
    private final VmControl vm;

    ForwardingVm(VmControl vm) {
        this.vm = vm;
    }

    @Override
    public void pause() {
        vm.pause();
    }

    @Override
    public void resume() {
        vm.resume();
    }

    @Override
    public byte[] saveDeviceState() {
        return vm.saveDeviceState();
    }

    @Override
    public byte[] sampleDeviceState() {
        return vm.sampleDeviceState();
    }

    @Override
    public void loadDeviceState(byte[] state) {
        vm.loadDeviceState(state);
    }

    @Override
    public boolean throttle(int percent) {
        return vm.throttle(percent);
    }
}
