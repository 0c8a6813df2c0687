package dev.ferry.core;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The result of one side of a migration.
 *
 * <p>Times count from the start of the migration (the connect, or the accept on the destination)
 * to its end. {@code downtimeMs} runs from the source's pause to the destination's resume, both
 * read from the host's monotonic clock; -1 when the guest was not handed over.
 *
 * @param role               {@code source} or {@code destination}
 * @param mode               pre-copy, post-copy or hybrid
 * @param memoryBytes        guest RAM size
 * @param pageSize           bytes per page
 * @param outcome            COMPLETED, FAILED or CANCELLED
 * @param verified           whether the destination's memory digest equals the source's at the pause
 * @param totalTimeMs        connect to end
 * @param downtimeMs         pause to resume, or -1
 * @param expectedDowntimeMs the estimator's last figure before the switch-over, or -1
 * @param bytesSent          every byte this side put on the wire (received, on the destination)
 * @param pagesSent          page records sent (received)
 * @param rounds             per round, as the source measured it (empty on the destination)
 * @param pagesByKind        pages per encoding ({@code normal}, {@code zero}, ...)
 * @param capabilities       what the handshake settled on
 * @param error              why it failed, or null
 * @param sourceVmState      where the source left its guest; null on the destination
 * @param destinationResumed whether the destination resumed the guest
 * @param digest             the memory digest at the pause as this side computed it
 * @param postcopy           what post-copy did, or null when the guest moved by pre-copy
 * @param dedup              what the dedup stage did, or null when it was not negotiated (or on the destination)
 * @param migrationId        the id the meters are tagged with
 * @param setupTimeMs        from the start to the first page (handshake, channels), or -1
 * @param switchover         how the source switched over and what the pause cost against its prediction;
 *                           null on the destination
 */
public record MigrationReport(String role, MigrationMode mode, long memoryBytes, int pageSize, MigrationState outcome,
        boolean verified, double totalTimeMs, double downtimeMs, double expectedDowntimeMs, long bytesSent,
        long pagesSent, List<RoundRecord> rounds, Map<String, Long> pagesByKind, Set<Capability> capabilities,
        String error, SourceVmState sourceVmState, boolean destinationResumed, long digest, PostcopyReport postcopy,
        DedupReport dedup, String migrationId, double setupTimeMs, Switchover switchover) {

    /** This report with {@code value} as its post-copy figures. */
    public MigrationReport withPostcopy(PostcopyReport value) {
        return new MigrationReport(role, mode, memoryBytes, pageSize, outcome, verified, totalTimeMs, downtimeMs,
                expectedDowntimeMs, bytesSent, pagesSent, rounds, pagesByKind, capabilities, error, sourceVmState,
                destinationResumed, digest, value, dedup, migrationId, setupTimeMs, switchover);
    }

    /**
     * This report marked FAILED (not verified) because of {@code why}, found outside the migration
     * itself (the guest's workload broke during the run), added to any error it had.
     */
    public MigrationReport failedBy(String why) {
        return new MigrationReport(role, mode, memoryBytes, pageSize, MigrationState.FAILED, false, totalTimeMs,
                downtimeMs, expectedDowntimeMs, bytesSent, pagesSent, rounds, pagesByKind, capabilities,
                error == null ? why : error + "; " + why, sourceVmState, destinationResumed, digest, postcopy,
                dedup, migrationId, setupTimeMs, switchover);
    }

    /** Whether the migration completed and was verified. */
    public boolean succeeded() {
        return outcome == MigrationState.COMPLETED && verified;
    }

    /** Whether the guest was paused for much longer than the downtime limit allowed (see {@link Switchover}). */
    public boolean downtimeLimitExceeded() {
        return switchover != null && switchover.limitExceeded();
    }

    /** The report as a JSON object, to which callers may add members of their own. */
    public ObjectNode toJsonNode() {
        ObjectNode json = ReportJson.object()
                .put("role", role)
                .put("migrationId", migrationId)
                .put("mode", mode.name().toLowerCase(java.util.Locale.ROOT))
                .put("memoryBytes", memoryBytes)
                .put("pageSize", pageSize)
                .put("outcome", outcome.name())
                .put("verified", verified);
        ReportJson.put(json, "totalTimeMs", totalTimeMs);
        ReportJson.put(json, "setupTimeMs", setupTimeMs);
        ReportJson.put(json, "downtimeMs", downtimeMs);
        ReportJson.put(json, "expectedDowntimeMs", expectedDowntimeMs);
        json.put("bytesSent", bytesSent).put("pagesSent", pagesSent);
        ArrayNode caps = json.putArray("capabilities");
        capabilities.forEach(c -> caps.add(c.wireName()));
        ObjectNode pages = json.putObject("pages");
        pagesByKind.forEach(pages::put);
        ArrayNode roundArray = json.putArray("rounds");
        rounds.forEach(r -> roundArray.add(r.toJsonNode()));
        if (error != null) {
            json.put("error", error);
        }
        if (sourceVmState != null) {
            json.put("sourceVmState", sourceVmState.name());
        }
        json.put("destinationResumed", destinationResumed)
                .put("digest", String.format("%016x", digest));
        if (postcopy != null) {
            postcopy.putJsonMembers(json);
        }
        if (dedup != null) {
            dedup.putJsonMembers(json);
        }
        if (switchover != null) {
            switchover.putJsonMembers(json);
        }
        return json;
    }

    /** The report as one JSON object. */
    public String toJson() {
        return ReportJson.text(toJsonNode());
    }
}
