package dev.ferry.protocol;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The records of a PAGES body, written and read here only:
 * {@code index u64, encoding u8, length u16, payload}; for {@link PageEncoding#ZERO} there is no
 * payload and {@code length} counts a run of zero pages from {@code index}; a
 * {@link PageEncoding#DEDUP} payload is a reference ({@link #putReference}).
 *
 * <p>The reader is a cursor over a native view of the frame, reused frame after frame: it
 * allocates nothing per record, and it checks each record against the guest's page count before
 * it is used.
 */
public final class PageRecords {
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.BIG_ENDIAN);

    /** The payload of a {@link PageEncoding#DEDUP} record: guest u16, page u64, XXH3-128 u128. */
    public static final int REFERENCE_BYTES = 2 + 8 + 16;

    private MemorySegment frame;
    private long at;
    private long end;
    private long pageCount;
    private long index;
    private int encoding;
    private int length;

    /**
     * The header of a record at {@code at} of {@code frame} (a view of the frame's buffer), ahead
     * of its payload: the page loop writes through the view, not the buffer, so that its compiled
     * code does not depend on which buffer class the pool handed out.
     */
    public static void putHeader(MemorySegment frame, long at, long page, int encoding, int length) {
        frame.set(U64, at, page);
        frame.set(ValueLayout.JAVA_BYTE, at + 8, (byte) encoding);
        frame.set(U16, at + 9, (short) length);
    }

    /**
     * The payload of a {@link PageEncoding#DEDUP} record at {@code at}: the content is the one of
     * page {@code page} of guest {@code guest}, whose XXH3-128 is {@code high:low}.
     */
    public static void putReference(MemorySegment frame, long at, int guest, long page, long high, long low) {
        frame.set(U16, at, (short) guest);
        frame.set(U64, at + 2, page);
        frame.set(U64, at + 10, high);
        frame.set(U64, at + 18, low);
    }

    /** Rewrites the length field of the record whose header is at {@code at}: a zero run grew. */
    public static void putLength(MemorySegment frame, long at, int length) {
        frame.set(U16, at + 9, (short) length);
    }

    /**
     * Starts reading the records in bytes {@code [from, to)} of {@code frame}, for a guest of
     * {@code pageCount} pages.
     */
    public PageRecords reset(MemorySegment frame, long from, long to, long pageCount) {
        this.frame = frame;
        this.at = from;
        this.end = to;
        this.pageCount = pageCount;
        return this;
    }

    /**
     * Moves to the next record; false at the end of the body. A record that is cut, names a page
     * outside the guest, a zero run that does not fit, or an encoding that does not exist is refused.
     */
    public boolean next() throws ProtocolException {
        if (at == end) {
            return false;
        }
        if (end - at < Wire.RECORD_HEADER) {
            throw new ProtocolException("malformed PAGES frame: " + (end - at) + " bytes left, a record header needs "
                    + Wire.RECORD_HEADER);
        }
        index = frame.get(U64, at);
        encoding = Byte.toUnsignedInt(frame.get(ValueLayout.JAVA_BYTE, at + 8));
        length = Short.toUnsignedInt(frame.get(U16, at + 9));
        at += Wire.RECORD_HEADER;
        if (index < 0 || index >= pageCount) {
            throw new ProtocolException("page index " + index + " out of range (guest has " + pageCount + " pages)");
        }
        if (encoding == PageEncoding.ZERO) {
            if (length == 0 || length > pageCount - index) {
                throw new ProtocolException("zero run of " + length + " pages at " + index + " does not fit "
                        + pageCount + " pages");
            }
            return true;
        }
        if (encoding >= PageEncoding.COUNT) {
            throw new ProtocolException("unknown page encoding " + encoding + " for page " + index);
        }
        if (length > end - at) {
            throw new ProtocolException("page " + index + " payload of " + length + " bytes, frame has " + (end - at));
        }
        if (encoding == PageEncoding.DEDUP) {
            if (length != REFERENCE_BYTES) {
                throw new ProtocolException("dedup reference for page " + index + " of " + length + " bytes, "
                        + REFERENCE_BYTES + " expected");
            }
            long page = frame.get(U64, at + 2);
            if (page < 0) {
                throw new ProtocolException("dedup reference for page " + index + " names page " + page);
            }
        }
        at += length;
        return true;
    }

    /** The record's page (the first of a zero run). */
    public long index() {
        return index;
    }

    /** The record's {@link PageEncoding}. */
    public int encoding() {
        return encoding;
    }

    /** The payload's length, or for a zero run its page count. */
    public int length() {
        return length;
    }

    /** The guest a {@link PageEncoding#DEDUP} record names. */
    public int referenceGuest() {
        return Short.toUnsignedInt(frame.get(U16, at - length));
    }

    /** The page a {@link PageEncoding#DEDUP} record names (checked against its guest by the caller). */
    public long referencePage() {
        return frame.get(U64, at - length + 2);
    }

    /** The high half of a {@link PageEncoding#DEDUP} record's XXH3-128. */
    public long referenceHigh() {
        return frame.get(U64, at - length + 10);
    }

    /** The low half of a {@link PageEncoding#DEDUP} record's XXH3-128. */
    public long referenceLow() {
        return frame.get(U64, at - length + 18);
    }

    /** Where the payload starts in the frame view (meaningless for a zero run). */
    public long payloadOffset() {
        return at - length;
    }
}
