package dev.ferry.core;

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

    /** Writes the members (the report's post-copy fields) into the enclosing object. */
    public void writeJsonMembers(JsonWriter json) {
        json.name("switchoverRound").value(switchoverRound)
                .name("faults").value(faults)
                .name("faultLatencyMicros").beginObject()
                .name("p50").value(latencyP50Micros)
                .name("p99").value(latencyP99Micros)
                .name("max").value(latencyMaxMicros)
                .name("histogram").beginArray();
        for (long[] bucket : histogram) {
            json.beginObject().name("upToMicros").value(bucket[0]).name("count").value(bucket[1]).endObject();
        }
        json.endArray().endObject()
                .name("pagesRequested").value(pagesRequested)
                .name("pagesPushed").value(pagesPushed)
                .name("postcopyTimeMs").value(postcopyTimeMs)
                .name("recoveries").value(recoveries)
                .name("faultMechanism").value(faultMechanism);
    }
}
