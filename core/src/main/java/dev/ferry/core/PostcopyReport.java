package dev.ferry.core;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * What post-copy did. The source knows the switch-over round and the pages it pushed and was
 * asked for; the destination knows the faults and their latency; {@link #merge} joins the two.
 *
 * @param switchoverRound   the round after which the guest moved (1: right after the bulk round)
 * @param faults            guest accesses that found their page missing
 * @param pagesRequested    pages the destination asked for and the source sent ahead of the push
 * @param pagesPushed       pages sent by the background push
 * @param postcopyTimeMs    from the switch-over to the last page
 * @param recoveries        reconnects after a lost link
 * @param faultMechanism    {@code userfaultfd} or {@code software}
 * @param latencyP50Micros  median fault latency
 * @param latencyP99Micros  99th percentile
 * @param latencyMaxMicros  the slowest fault
 * @param histogram         non-empty buckets as {upToMicros, count}
 */
public record PostcopyReport(int switchoverRound, long faults, long pagesRequested, long pagesPushed,
        double postcopyTimeMs, int recoveries, String faultMechanism, long latencyP50Micros, long latencyP99Micros,
        long latencyMaxMicros, List<long[]> histogram) {

    /** The source's figures with the destination's fault figures. */
    public static PostcopyReport merge(PostcopyReport source, PostcopyReport destination) {
        if (source == null || destination == null) {
            return source != null ? source : destination;
        }
        return new PostcopyReport(source.switchoverRound, destination.faults, source.pagesRequested,
                source.pagesPushed, source.postcopyTimeMs, Math.max(source.recoveries, destination.recoveries),
                destination.faultMechanism, destination.latencyP50Micros, destination.latencyP99Micros,
                destination.latencyMaxMicros, destination.histogram);
    }

    /** Puts the members (the report's post-copy fields) into the enclosing object. */
    public void putJsonMembers(ObjectNode json) {
        json.put("switchoverRound", switchoverRound).put("faults", faults);
        ObjectNode latency = json.putObject("faultLatencyMicros")
                .put("p50", latencyP50Micros)
                .put("p99", latencyP99Micros)
                .put("max", latencyMaxMicros);
        ArrayNode buckets = latency.putArray("histogram");
        for (long[] bucket : histogram) {
            buckets.addObject().put("upToMicros", bucket[0]).put("count", bucket[1]);
        }
        json.put("pagesRequested", pagesRequested).put("pagesPushed", pagesPushed);
        ReportJson.put(json, "postcopyTimeMs", postcopyTimeMs);
        json.put("recoveries", recoveries).put("faultMechanism", faultMechanism);
    }
}
