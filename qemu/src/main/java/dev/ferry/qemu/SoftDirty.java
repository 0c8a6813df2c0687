package dev.ferry.qemu;

import dev.ferry.core.GuestMemory;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Whether this kernel tracks soft-dirty pages ({@code CONFIG_MEM_SOFT_DIRTY}): after
 * {@code echo 4 > /proc/PID/clear_refs}, a write sets bit 55 of the page's {@code /proc/PID/pagemap}
 * entry. That would let Ferry read which pages QEMU wrote without hashing them. The probe writes a
 * page of this process, clears, writes again and looks for the bit.
 */
public final class SoftDirty {
    private static final long SOFT_DIRTY_BIT = 1L << 55;

    private SoftDirty() {
    }

    /** True when the kernel marked a page this process wrote after clearing soft-dirty bits. */
    public static boolean available() {
        try (GuestMemory probe = GuestMemory.anonymous(GuestMemory.PAGE_SIZE)) {
            probe.segment().set(ValueLayout.JAVA_BYTE, 0, (byte) 1);
            Files.writeString(Path.of("/proc/self/clear_refs"), "4");
            probe.segment().set(ValueLayout.JAVA_BYTE, 0, (byte) 2);
            try (FileChannel pagemap = FileChannel.open(Path.of("/proc/self/pagemap"), StandardOpenOption.READ)) {
                ByteBuffer entry = ByteBuffer.allocate(Long.BYTES).order(ByteOrder.nativeOrder());
                pagemap.read(entry, (probe.segment().address() >>> GuestMemory.PAGE_SHIFT) * Long.BYTES);
                return (entry.getLong(0) & SOFT_DIRTY_BIT) != 0;
            }
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }
}
