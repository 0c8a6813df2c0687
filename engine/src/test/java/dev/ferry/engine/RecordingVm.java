package dev.ferry.engine;

import dev.ferry.core.VmControl;
import java.util.concurrent.atomic.AtomicInteger;

/** A destination's guest for tests: it records whether the migration resumed it and what device state it loaded. */
final class RecordingVm implements VmControl {
    final AtomicInteger resumes = new AtomicInteger();
    volatile byte[] loadedState;

    @Override
    public void pause() {
    }

    @Override
    public void resume() {
        resumes.incrementAndGet();
    }

    @Override
    public byte[] saveDeviceState() {
        return new byte[0];
    }

    @Override
    public void loadDeviceState(byte[] state) {
        loadedState = state;
    }
}
