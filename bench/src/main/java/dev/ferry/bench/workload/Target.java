package dev.ferry.bench.workload;

import dev.ferry.core.DirtyBitmap;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.PageGate;

/** What the guest threads write to: replaced only while they are paused. */
record Target(GuestMemory memory, DirtyBitmap log, PageGate gate) {
}
