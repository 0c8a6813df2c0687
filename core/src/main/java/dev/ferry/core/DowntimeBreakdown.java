package dev.ferry.core;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Where the pause of a switch-over goes, in ms: predicted before the pause from what this run
 * measured, or measured at the pause. The predicted {@code deviceStateMs} comes from a sample of
 * the device state taken while the guest ran ({@code VmControl.sampleDeviceState}); it is 0 for a
 * VM that saves its device state only paused (QEMU).
 *
 * @param syncMs        the final dirty-log sync (predicted: the last round's)
 * @param memoryMs      the last dirty pages, and what was still queued on the channels, at the link's pace
 *                      (measured: from the request to pause, the guest's stopping included, as QEMU counts)
 * @param deviceStateMs saving and sending the device state
 * @param handoverMs    END to the destination's resume: one way of the round trip (the round trip measured
 *                      at the handshake), the destination's last pages and checks, its resume
 */
public record DowntimeBreakdown(double syncMs, double memoryMs, double deviceStateMs, double handoverMs) {
    /** Nothing known. */
    public static final DowntimeBreakdown UNKNOWN = new DowntimeBreakdown(-1, -1, -1, -1);

    /** The whole pause, or -1 when unknown. */
    public double totalMs() {
        return syncMs < 0 ? -1 : syncMs + memoryMs + deviceStateMs + handoverMs;
    }

    /** This breakdown as a JSON object. */
    public ObjectNode toJsonNode() {
        ObjectNode json = ReportJson.object();
        ReportJson.put(json, "syncMs", syncMs);
        ReportJson.put(json, "memoryMs", memoryMs);
        ReportJson.put(json, "deviceStateMs", deviceStateMs);
        ReportJson.put(json, "handoverMs", handoverMs);
        return ReportJson.put(json, "totalMs", totalMs());
    }
}
