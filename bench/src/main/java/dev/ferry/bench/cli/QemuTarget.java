package dev.ferry.bench.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.Capability;
import dev.ferry.core.Configuration;
import dev.ferry.core.GuestMemory;
import dev.ferry.core.ReportJson;
import dev.ferry.core.MigrationMode;
import dev.ferry.core.MigrationParameters;
import dev.ferry.core.NanoClock;
import dev.ferry.qemu.ContentHashLog;
import dev.ferry.qemu.QemuVm;
import dev.ferry.qemu.SoftDirty;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * {@code --qemu-qmp} and {@code --qemu-ram}: this side's guest is a QEMU process, attached over
 * QMP, its RAM the shared file; {@code source} and {@code dest} take them.
 */
record QemuTarget(Optional<Path> qmp, Optional<Path> ram, long timeoutMillis) {
    static final List<CliOption> OPTIONS = MigrationFlags.settingOptions(MigrationFlags.QEMU);

    static QemuTarget of(ParsedOptions o) {
        return new QemuTarget(o.value(Configuration.QEMU_QMP), o.value(Configuration.QEMU_RAM),
                o.value(Configuration.QEMU_TIMEOUT));
    }

    /** What a QEMU destination accepts: everything but post-copy. */
    static final Set<Capability> DESTINATION_CAPABILITIES = EnumSet.complementOf(EnumSet.of(Capability.POSTCOPY));

    /**
     * Refuses a mode that hands over by post-copy: QEMU's vCPUs would fault on QEMU's own
     * mapping, which only a userfaultfd inside QEMU catches; Ferry's never sees them.
     */
    static void requirePrecopy(MigrationParameters params) {
        if (params.mode() != MigrationMode.PRECOPY) {
            throw new UsageException("a QEMU guest migrates pre-copy only (--" + Configuration.MODE.name()
                    + " precopy): post-copy would need userfaultfd inside QEMU");
        }
    }

    /** Whether this side is a QEMU; then both options must be there. */
    boolean given() {
        if (qmp.isPresent() != ram.isPresent()) {
            throw new UsageException("--" + Configuration.QEMU_QMP.name() + " and --" + Configuration.QEMU_RAM.name()
                    + " go together");
        }
        return qmp.isPresent();
    }

    /** The attached QEMU with its RAM mapped (a source's also has its dirty log); closes them in turn. */
    record Attached(QemuVm vm, GuestMemory memory, ContentHashLog log) implements AutoCloseable {
        /** What the JSON report adds: which dirty log ran and what its last scan cost. */
        void putJsonMembers(ObjectNode json) {
            json.put("qemuStep", vm.step().name());
            if (log != null) {
                json.put("dirtyLog", "content-hash");
                ReportJson.put(json, "lastScanMs", log.lastScanNanos() / 1e6);
            }
        }

        @Override
        public void close() {
            if (log != null) {
                log.close();
            }
            memory.close();
            vm.close();
        }
    }

    /** Attaches to the QEMU as {@code side}; says on {@code out} which dirty log a source runs. */
    Attached attach(QemuVm.Side side, PrintStream out) throws IOException {
        QemuVm vm = QemuVm.attach(side, qmp.orElseThrow(), ram.orElseThrow(), timeoutMillis);
        GuestMemory memory;
        try {
            memory = vm.mapRam();
        } catch (IOException | RuntimeException e) {
            vm.close();
            throw e;
        }
        ContentHashLog log = null;
        if (side == QemuVm.Side.SOURCE) {
            log = new ContentHashLog(memory, NanoClock.SYSTEM);
            out.println("dirty log          content-hash scan, XXH3-128 of every page per round (soft-dirty "
                    + (SoftDirty.available() ? "available but not used" : "not available on this kernel") + ")");
        }
        out.printf("qemu               %s, %,d bytes of RAM in %s%n", side.name().toLowerCase(), vm.ramBytes(),
                ram.orElseThrow());
        return new Attached(vm, memory, log);
    }
}
