package dev.ferry.dedup;

/**
 * Decides, chunk by chunk, whether a page channel looks its pages up in its {@link DedupIndex}
 * at all, by the hits it measures, as the compression chooser decides LZ4 by the rates it
 * measures. Every page looked up costs a lookup and an insert in a table that outgrows the
 * caches: on a 1 GiB guest of distinct pages, where nothing is ever found, that made the
 * migration 20% slower on loopback. Pages that are not looked up are not indexed either, so a
 * copy of them later crosses in full: the index is switched off only where it finds nearly
 * nothing.
 *
 * <p>States:
 * <pre>
 * ON    every page that is not zero is looked up and indexed (the first chunk starts here)
 * OFF   none is, for a number of chunks; then one chunk ON probes again
 * </pre>
 * A chunk is dry when fewer than one page in {@link #DRY_ONE_IN} it looked up was found.
 * {@link #DRY_CHUNKS} dry chunks in a row switch the index off for {@link #PROBE_INTERVAL}
 * chunks; a probe that is dry again doubles that (up to {@link #MAX_INTERVAL}), a probe that
 * finds copies switches it on and resets it. A chunk that looked nothing up (all zeros) tells
 * nothing and changes nothing.
 *
 * <p>Pure: it sees only the counts it is given.
 */
public final class DedupChooser {
    /** A chunk is dry when fewer than one page in this many it looked up was found. */
    public static final int DRY_ONE_IN = 64;
    /** Dry chunks in a row that switch the index off. */
    public static final int DRY_CHUNKS = 2;
    /** Chunks off before the first probe. */
    public static final int PROBE_INTERVAL = 8;
    /** The longest wait between two probes, in chunks. */
    public static final int MAX_INTERVAL = 128;

    /** The chooser's states; see the class comment. */
    public enum State { ON, OFF }

    private State state = State.ON;
    private boolean probing;
    private int dryInRow;
    private int interval = PROBE_INTERVAL;
    private int offLeft;

    /**
     * A chunk ended in which {@code looked} pages were looked up and {@code found} of them were
     * found; returns whether the next chunk looks its pages up.
     */
    public boolean next(long looked, long found) {
        if (state == State.OFF) {
            if (--offLeft > 0) {
                return false;
            }
            state = State.ON;
            probing = true;
            return true;
        }
        if (looked == 0) {
            return true;
        }
        if (found * DRY_ONE_IN >= looked) {
            dryInRow = 0;
            if (probing) {
                probing = false;
                interval = PROBE_INTERVAL;
            }
            return true;
        }
        if (probing) {
            probing = false;
            interval = Math.min(MAX_INTERVAL, interval * 2);
            return off();
        }
        if (++dryInRow < DRY_CHUNKS) {
            return true;
        }
        return off();
    }

    private boolean off() {
        dryInRow = 0;
        state = State.OFF;
        offLeft = interval;
        return false;
    }

    /** The state the last chunk left. */
    public State state() {
        return state;
    }
}
