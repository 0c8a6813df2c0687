package dev.ferry.core;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Map;

/**
 * What one round of a migration did, as the source measured it.
 *
 * @param round               1 for the bulk round, then 2, 3, ...; the stop-and-copy pass is the last
 * @param kind                what the round was
 * @param pagesSent           pages put on the wire in the round
 * @param bytesSent           bytes put on the wire in the round, frame headers included
 * @param durationMs          wall time of the round
 * @param dirtyPages          pages the dirty log returned after the round (what the next round must send)
 * @param bandwidthBytesPerSec bytesSent / duration
 * @param expectedDowntimeMs  dirtyPages x wire bytes per page / bandwidth
 * @param compressed          whether LZ4/zstd were tried in the round
 * @param compressionReason   why the adaptive chooser decided so
 * @param bytesSavedByStage   per stage, page bytes minus wire payload bytes in the round
 */
public record RoundRecord(int round, RoundKind kind, long pagesSent, long bytesSent, double durationMs, long dirtyPages,
        long bandwidthBytesPerSec, double expectedDowntimeMs, boolean compressed, String compressionReason,
        Map<String, Long> bytesSavedByStage) {

    /** This round as a JSON object. */
    public ObjectNode toJsonNode() {
        ObjectNode json = ReportJson.object()
                .put("round", round)
                .put("kind", kind.toString())
                .put("pagesSent", pagesSent)
                .put("bytesSent", bytesSent);
        ReportJson.put(json, "durationMs", durationMs);
        json.put("dirtyPages", dirtyPages).put("bandwidthBytesPerSec", bandwidthBytesPerSec);
        ReportJson.put(json, "expectedDowntimeMs", expectedDowntimeMs);
        json.put("compressed", compressed).put("compressionReason", compressionReason);
        ObjectNode saved = json.putObject("bytesSavedByStage");
        bytesSavedByStage.forEach(saved::put);
        return json;
    }
}
