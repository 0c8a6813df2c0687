package dev.ferry.compression;

import dev.ferry.core.GuestMemory;
import java.lang.foreign.MemorySegment;

/** Destination side: applies a page payload to guest memory. */
public final class PageDecoder implements AutoCloseable {
    public void decode(int encoding, long index, MemorySegment payload, long off, int len, GuestMemory memory)
            throws MalformedPayloadException {
        switch (encoding) {
            case PageEncoding.ZERO -> {
                if (len != 0) {
                    throw new MalformedPayloadException("zero page with a payload of " + len + " bytes");
                }
                memory.segment().asSlice(index << GuestMemory.PAGE_SHIFT, GuestMemory.PAGE_SIZE).fill((byte) 0);
            }
            case PageEncoding.RAW -> {
                if (len != GuestMemory.PAGE_SIZE) {
                    throw new MalformedPayloadException("raw page of " + len + " bytes, expected " + GuestMemory.PAGE_SIZE);
                }
                memory.writePage(index, payload, off);
            }
            default -> throw new MalformedPayloadException("unknown page encoding " + encoding);
        }
    }

    @Override
    public void close() {
    }
}
