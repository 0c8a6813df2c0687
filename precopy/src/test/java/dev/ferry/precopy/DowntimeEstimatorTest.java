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

    /** A page's cost that is only its wire bytes (an encoding that takes no time). */
    private static DowntimeEstimator.PageCost wire(double bytes) {
        return new DowntimeEstimator.PageCost(bytes, 0, 1);
    }

    /** The pages' part of the estimate, nothing queued: {@code dirty} pages of {@code bytesPerPage} at the round's bandwidth. */
    private static double pagesMs(long dirty, double bytesPerPage, long roundBytes, long roundNanos) {
        return DowntimeEstimator.expected(dirty, wire(bytesPerPage), DowntimeEstimator.bandwidth(roundBytes, roundNanos),
                DowntimeEstimator.FixedCosts.NONE).memoryMs();
    }

    @Test
    void expectedDowntimeIsDirtyPagesTimesWireBytesPerPageOverBandwidth() {
        // 41 MB over 1 s, 4100 wire bytes a page: 1000 dirty pages take 100 ms
        assertEquals(100.0, pagesMs(1000, 4100, 41_000_000, SECOND), 1e-9);
        assertEquals(200.0, pagesMs(2000, 4100, 41_000_000, SECOND), 1e-9);
        // the same round in half the time: twice the bandwidth, half the downtime
        assertEquals(50.0, pagesMs(1000, 4100, 41_000_000, SECOND / 2), 1e-9);
        // zero pages are cheap on the wire: 11 bytes a page makes a dirty page cost 11 bytes
        assertEquals(1000 * 11.0 / 1_100_000 * 1000, pagesMs(1000, 11, 1_100_000, SECOND), 1e-9);
    }

    @Test
    void nothingDirtyIsZeroEvenWithoutAMeasurement() {
        assertEquals(0.0, pagesMs(0, 0, 0, 0));
        assertEquals(0.0, pagesMs(0, 4100, 41_000, SECOND));
    }

    @Test
    void dirtyPagesWithoutAMeasurementAreUnknown() {
        assertEquals(Double.POSITIVE_INFINITY, pagesMs(1, 4100, 0, SECOND), "no bytes");
        assertEquals(Double.POSITIVE_INFINITY, pagesMs(1, 4100, 41_000, 0), "no time");
    }

    @Test
    void theEstimateAddsWhatIsQueuedTheSyncAndOneWayOfTheRoundTrip() {
        // 1000 dirty pages at 4100 bytes a page and 41 MB/s: 100 ms; 4.1 MB queued: 100 ms more
        var fixed = new DowntimeEstimator.FixedCosts(2_000_000, 4_100_000, 600_000, DowntimeEstimator.DeviceStateSample.NONE);
        dev.ferry.core.DowntimeBreakdown e = DowntimeEstimator.expected(1000, wire(4100), 41e6, fixed);
        assertEquals(2.0, e.syncMs(), 1e-9);
        assertEquals(200.0, e.memoryMs(), 1e-9);
        assertEquals(0.3, e.handoverMs(), 1e-9);
        assertEquals(0.0, e.deviceStateMs());
        assertEquals(202.3, e.totalMs(), 1e-9);
        assertEquals(2.3, DowntimeEstimator.expected(0, wire(4100), 41e6,
                new DowntimeEstimator.FixedCosts(2_000_000, 0, 600_000, DowntimeEstimator.DeviceStateSample.NONE)).totalMs(), 1e-9,
                "nothing dirty still costs the sync and the trip");
    }

    @Test
    void pagesThatWouldCrossAsDeltasAreCountedAtTheirSampledSizeAndTheQueueAtTheDrainPace() {
        var none = DowntimeEstimator.FixedCosts.NONE;
        // 1000 pages that would now take 1025 bytes each, drained at 41 MB/s: 25 ms (a raw round said 100)
        assertEquals(25.0, DowntimeEstimator.expected(1000, wire(1025), 41e6, none).memoryMs(), 1e-9);
        assertEquals(0.0, DowntimeEstimator.expected(1000, wire(0), 41e6, none).memoryMs(), 1e-9, "all zero pages cost no page bytes");
        var fixed = new DowntimeEstimator.FixedCosts(0, 4_100_000, 0, DowntimeEstimator.DeviceStateSample.NONE);
        assertEquals(125.0, DowntimeEstimator.expected(1000, wire(1025), 41e6, fixed).memoryMs(), 1e-9,
                "what is queued drains first");
        assertEquals(Double.POSITIVE_INFINITY, DowntimeEstimator.expected(1, wire(4100), 0, none).memoryMs(), "no pace measured");
        assertEquals(0.0, DowntimeEstimator.expected(0, wire(4100), 0, none).memoryMs(), "nothing dirty, nothing to pace");
    }

    @Test
    void theQueueAllowedInFrontOfARoundIsWhatTheLinkCarriesInAQuarterOfTheLimit() {
        // 125 MB/s (1 Gbit/s) and a 30 ms limit: 7.5 ms of it, 937,500 bytes
        assertEquals(937_500, DowntimeEstimator.queueAllowance(125e6, 30));
        assertEquals(9_375_000, DowntimeEstimator.queueAllowance(125e6, 300));
        // no pace measured yet: nothing may be assumed to drain
        assertEquals(0, DowntimeEstimator.queueAllowance(0, 300));
    }

    @Test
    void theMemoryPartIsTheLongerOfTheLinksTimeAndTheSendersEncodingShared() {
        var none = DowntimeEstimator.FixedCosts.NONE;
        // 2000 deltas of 60 bytes at 50 MB/s: 2.4 ms on the link; at 40 us each on 2 senders: 40 ms
        assertEquals(40.0, DowntimeEstimator.expected(2000, new DowntimeEstimator.PageCost(60, 40_000, 2), 50e6, none)
                .memoryMs(), 1e-9);
        // at 1.6 us each the link is the longer: 2.4 ms
        assertEquals(2.4, DowntimeEstimator.expected(2000, new DowntimeEstimator.PageCost(60, 1_600, 2), 50e6, none)
                .memoryMs(), 1e-9);
        // what is queued is the link's too: 1 MB more is 20 ms, still under the encoding's 40
        assertEquals(40.0, DowntimeEstimator.expected(2000, new DowntimeEstimator.PageCost(60, 40_000, 2), 50e6,
                new DowntimeEstimator.FixedCosts(0, 1_000_000, 0, DowntimeEstimator.DeviceStateSample.NONE)).memoryMs(), 1e-9);
    }

    @Test
    void theDeviceStateCostsWhatItsSampleTookToSaveAndItsBytesAtThePace() {
        // saved in 1.5 ms, 2 MB at 100 MB/s: 20 ms more
        var fixed = new DowntimeEstimator.FixedCosts(0, 0, 0, new DowntimeEstimator.DeviceStateSample(1_500_000, 2_000_000));
        assertEquals(21.5, DowntimeEstimator.expected(0, wire(4100), 100e6, fixed).deviceStateMs(), 1e-9);
        assertEquals(21.5, DowntimeEstimator.expected(0, wire(4100), 100e6, fixed).totalMs(), 1e-9);
        assertEquals(0.0, DowntimeEstimator.expected(0, wire(4100), 100e6, DowntimeEstimator.FixedCosts.NONE)
                .deviceStateMs(), "no sample: nothing predicted");
    }
}
