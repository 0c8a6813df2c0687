package dev.ferry.precopy;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class DowntimeEstimatorTest {
    private static final long SECOND = 1_000_000_000L;

    @Test
    void bandwidthIsRoundBytesOverRoundTime() {
        assertEquals(41_000_000, DowntimeEstimator.bandwidth(41_000_000, SECOND), 1e-6);
        assertEquals(82_000_000, DowntimeEstimator.bandwidth(41_000_000, SECOND / 2), 1e-6);
        assertEquals(0, DowntimeEstimator.bandwidth(0, SECOND));
        assertEquals(0, DowntimeEstimator.bandwidth(1000, 0));
        assertEquals(0, DowntimeEstimator.bandwidth(1000, -5));
    }

    @Test
    void expectedDowntimeIsDirtyPagesTimesWireBytesPerPageOverBandwidth() {
        // 10000 pages in 41 MB over 1 s: 4100 wire bytes a page at 41 MB/s; 1000 dirty pages take 100 ms
        assertEquals(100.0, DowntimeEstimator.expectedDowntimeMillis(1000, 10_000, 41_000_000, SECOND), 1e-9);
        assertEquals(200.0, DowntimeEstimator.expectedDowntimeMillis(2000, 10_000, 41_000_000, SECOND), 1e-9);
        // the same round in half the time: twice the bandwidth, half the downtime
        assertEquals(50.0, DowntimeEstimator.expectedDowntimeMillis(1000, 10_000, 41_000_000, SECOND / 2), 1e-9);
        // zero pages are cheap on the wire: 11 bytes a page makes a dirty page cost 11 bytes
        assertEquals(1000 * 11.0 / 1_100_000 * 1000, DowntimeEstimator.expectedDowntimeMillis(1000, 100_000, 1_100_000, SECOND), 1e-9);
    }

    @Test
    void nothingDirtyIsZeroEvenWithoutAMeasurement() {
        assertEquals(0.0, DowntimeEstimator.expectedDowntimeMillis(0, 0, 0, 0));
        assertEquals(0.0, DowntimeEstimator.expectedDowntimeMillis(0, 10, 41_000, SECOND));
    }

    @Test
    void dirtyPagesWithoutAMeasurementAreUnknown() {
        assertEquals(Double.POSITIVE_INFINITY, DowntimeEstimator.expectedDowntimeMillis(1, 0, 17, SECOND), "no pages sent");
        assertEquals(Double.POSITIVE_INFINITY, DowntimeEstimator.expectedDowntimeMillis(1, 10, 0, SECOND), "no bytes");
        assertEquals(Double.POSITIVE_INFINITY, DowntimeEstimator.expectedDowntimeMillis(1, 10, 41_000, 0), "no time");
    }
}
