package dev.ferry.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** The PAGES record cursor against records written with the same module's writer, and what it refuses. */
class PageRecordsTest {
    private final Arena arena = Arena.ofAuto();
    private final MemorySegment frame = arena.allocate(64 << 10);
    private final PageRecords records = new PageRecords();

    @Test
    void readsWhatWasWritten() throws ProtocolException {
        PageRecords.putHeader(frame, 0, 7, PageEncoding.ZERO, 3);
        PageRecords.putHeader(frame, 11, 10, PageEncoding.RAW, 4096);
        PageRecords.putHeader(frame, 11 + 11 + 4096, 12, PageEncoding.XBZRLE, 0);
        records.reset(frame, 0, 11 + 11 + 4096 + 11, 16);
        assertTrue(records.next());
        assertEquals(7, records.index());
        assertEquals(PageEncoding.ZERO, records.encoding());
        assertEquals(3, records.length());
        assertTrue(records.next());
        assertEquals(10, records.index());
        assertEquals(22, records.payloadOffset());
        assertTrue(records.next());
        assertEquals(PageEncoding.XBZRLE, records.encoding());
        assertEquals(0, records.length());
        assertFalse(records.next());
    }

    @Test
    void refusesRecordsThatDoNotFit() {
        refuse(0, -1, PageEncoding.RAW, 0, 11, "out of range");
        refuse(0, 16, PageEncoding.RAW, 0, 11, "out of range");
        refuse(0, 14, PageEncoding.ZERO, 3, 11, "zero run of 3 pages at 14 does not fit 16 pages");
        refuse(0, 0, PageEncoding.ZERO, 0, 11, "zero run of 0 pages");
        refuse(0, 1, PageEncoding.COUNT, 0, 11, "unknown page encoding");
        refuse(0, 1, PageEncoding.RAW, 4096, 11 + 100, "payload of 4096 bytes, frame has 100");
        refuse(0, 1, PageEncoding.RAW, 0, 10, "a record header needs 11");
    }

    private void refuse(long at, long index, int encoding, int length, long end, String message) {
        PageRecords.putHeader(frame, at, index, encoding, length);
        records.reset(frame, at, end, 16);
        ProtocolException e = assertThrows(ProtocolException.class, records::next);
        assertTrue(e.getMessage().contains(message), e.getMessage());
    }
}
