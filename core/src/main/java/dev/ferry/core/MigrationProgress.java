package dev.ferry.core;

import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Map;

/**
 * A snapshot of a running migration, what QMP {@code query-migrate} reports, taken at any moment
 * from any thread. Sizes are bytes; rates bytes per second; -1 where a figure is not known yet.
 *
 * @param role                 {@code source} or {@code destination}
 * @param migrationId          the id the meters are tagged with
 * @param state                where the state machine is
 * @param setupTimeMs          from the start to the first page (the handshake and the channels), or -1 before
 * @param elapsedMs            since the start
 * @param transferredBytes     bytes on the wire so far (received, on the destination)
 * @param remainingBytes       guest memory still to send in this round (missing pages in post-copy): never
 *                             grows within a round; -1 where this side cannot know (a destination in pre-copy)
 * @param totalBytes           guest memory
 * @param dirtyRateBytesPerSec pages the guest dirtied per second during the last round, x page size
 * @param throughputBytesPerSec wire bytes per second of the last round (of the run so far before one ended)
 * @param expectedDowntimeMs   the estimate after the last round (fixed costs included)
 * @param round                the round in progress (QEMU's dirty-sync-count), 0 before the bulk round
 * @param pagesByKind          pages per encoding so far ({@code normal}, {@code zero}, {@code xbzrle}, ...)
 * @param postcopyRequests     pages the destination asked for during post-copy
 * @param throttlePercent      how much the guest is slowed down (auto-converge), 0 when it is not
 * @param downtimeMs           the measured pause once the guest was handed over, else -1
 */
public record MigrationProgress(String role, String migrationId, MigrationState state, double setupTimeMs,
        double elapsedMs, long transferredBytes, long remainingBytes, long totalBytes, double dirtyRateBytesPerSec,
        double throughputBytesPerSec, double expectedDowntimeMs, int round, Map<String, Long> pagesByKind,
        long postcopyRequests, int throttlePercent, double downtimeMs) {

    /** The snapshot as one JSON object. */
    public ObjectNode toJsonNode() {
        ObjectNode json = ReportJson.object()
                .put("role", role)
                .put("migrationId", migrationId)
                .put("state", state.name());
        ReportJson.put(json, "setupTimeMs", setupTimeMs);
        ReportJson.put(json, "elapsedMs", elapsedMs);
        json.put("transferredBytes", transferredBytes)
                .put("remainingBytes", remainingBytes)
                .put("totalBytes", totalBytes);
        ReportJson.put(json, "dirtyRateBytesPerSec", dirtyRateBytesPerSec);
        ReportJson.put(json, "throughputBytesPerSec", throughputBytesPerSec);
        ReportJson.put(json, "expectedDowntimeMs", expectedDowntimeMs);
        json.put("round", round);
        ObjectNode pages = json.putObject("pages");
        pagesByKind.forEach(pages::put);
        json.put("postcopyRequests", postcopyRequests).put("throttlePercent", throttlePercent);
        ReportJson.put(json, "downtimeMs", downtimeMs);
        return json;
    }
}
