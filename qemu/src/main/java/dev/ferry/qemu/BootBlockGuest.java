package dev.ferry.qemu;

import dev.ferry.core.GuestMemory;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * The project's own QEMU test guest, so that no OS image is needed: the boot block
 * {@code bootblock.asm} (kept with this class, assembled with {@code nasm}) that increments the
 * first byte of every 4 KiB page from 1 MiB to 100 MiB, pass after pass, and writes a character
 * to the serial port per pass. This class builds it, starts a QEMU on it under TCG with its RAM
 * in a shared file in {@code /dev/shm} and QMP on a Unix socket, and checks the migration oracle:
 * {@link #steps} of a stopped guest's memory is at most 1, and the serial output keeps growing.
 */
public final class BootBlockGuest implements AutoCloseable {
    /** The first and the end (exclusive) address the guest writes, as its source says. */
    public static final long FIRST = 1L << 20;
    public static final long END = 100L << 20;
    private static final long WAIT_STEP_MILLIS = 20;

    private final Process process;
    private final Path qmp;
    private final Path ram;
    private final Path serial;
    private final Path log;

    private BootBlockGuest(Process process, Path qmp, Path ram, Path serial, Path log) {
        this.process = process;
        this.qmp = qmp;
        this.ram = ram;
        this.serial = serial;
        this.log = log;
    }

    /**
     * What is missing to run the guest ({@code nasm}, {@code qemu-system-x86_64}), after
     * installing it with apt when this process is root; empty when nothing is.
     */
    public static Optional<String> missingTools() {
        List<String> missing = new ArrayList<>();
        if (!onPath("nasm")) {
            missing.add("nasm");
        }
        if (!onPath("qemu-system-x86_64")) {
            missing.add("qemu-system-x86");
        }
        if (missing.isEmpty()) {
            return Optional.empty();
        }
        if ("root".equals(System.getProperty("user.name")) && onPath("apt-get")) {
            List<String> install = new ArrayList<>(List.of("apt-get", "install", "-y", "-q"));
            install.addAll(missing);
            try {
                Process apt = new ProcessBuilder(install).redirectErrorStream(true)
                        .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
                if (apt.waitFor(10, TimeUnit.MINUTES) && apt.exitValue() == 0 && onPath("nasm")
                        && onPath("qemu-system-x86_64")) {
                    return Optional.empty();
                }
                apt.destroyForcibly();
            } catch (IOException e) {
                // reported below as missing
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return Optional.of("the QEMU test guest needs " + String.join(" and ", missing)
                + " (Debian: apt-get install nasm qemu-system-x86)");
    }

    private static boolean onPath(String tool) {
        for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin:/bin").split(":")) {
            if (Files.isExecutable(Path.of(dir, tool))) {
                return true;
            }
        }
        return false;
    }

    /** Assembles the boot block into {@code dir}/bootblock.img, a 1 MiB disk (SeaBIOS reads no smaller one). */
    public static Path image(Path dir) throws IOException, InterruptedException {
        Path source = dir.resolve("bootblock.asm");
        try (InputStream in = BootBlockGuest.class.getResourceAsStream("bootblock.asm")) {
            Files.copy(in, source, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        Path image = dir.resolve("bootblock.img");
        Process nasm = new ProcessBuilder("nasm", "-f", "bin", "-o", image.toString(), source.toString())
                .redirectErrorStream(true).start();
        String output = new String(nasm.getInputStream().readAllBytes());
        if (!nasm.waitFor(60, TimeUnit.SECONDS) || nasm.exitValue() != 0) {
            throw new IOException("nasm failed on " + source + ": " + output);
        }
        try (var file = java.nio.channels.FileChannel.open(image, java.nio.file.StandardOpenOption.WRITE)) {
            file.write(java.nio.ByteBuffer.allocate(1), (1 << 20) - 1);
        }
        return image;
    }

    /**
     * Starts QEMU on {@code image} with {@code ramBytes} of RAM in {@code /dev/shm}, its QMP
     * socket, serial output and log in {@code dir}, all named after {@code name}; with
     * {@code incoming} it waits with {@code -incoming defer} for a migration. Returns once QMP
     * answers (within {@code timeoutMillis}).
     */
    public static BootBlockGuest start(Path dir, Path image, String name, long ramBytes, boolean incoming,
            long timeoutMillis) throws IOException, InterruptedException {
        return start(dir, image, name, ramBytes, incoming, timeoutMillis, List.of());
    }

    /** {@link #start(Path, Path, String, long, boolean, long)} with {@code extra} QEMU arguments (a device, say). */
    public static BootBlockGuest start(Path dir, Path image, String name, long ramBytes, boolean incoming,
            long timeoutMillis, List<String> extra) throws IOException, InterruptedException {
        Path qmp = dir.resolve(name + ".qmp");
        Path serial = dir.resolve(name + ".serial");
        Path log = dir.resolve(name + ".log");
        Path ram = Path.of("/dev/shm", "ferry-" + name + "-" + ProcessHandle.current().pid());
        Files.deleteIfExists(ram);
        Files.deleteIfExists(qmp);
        Path disk = dir.resolve(name + ".img");
        // a disk of its own: two QEMUs never contend for one image's lock
        Files.copy(image, disk, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        List<String> command = new ArrayList<>(List.of("qemu-system-x86_64", "-accel", "tcg",
                "-machine", "q35,memory-backend=ram", "-m", (ramBytes >> 20) + "M",
                "-object", "memory-backend-file,id=ram,size=" + (ramBytes >> 20) + "M,mem-path=" + ram + ",share=on",
                "-display", "none", "-nodefaults", "-serial", "file:" + serial,
                "-drive", "file=" + disk + ",format=raw,if=ide",
                "-qmp", "unix:" + qmp + ",server=on,wait=off"));
        command.addAll(extra);
        if (incoming) {
            command.addAll(List.of("-incoming", "defer"));
        }
        Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        BootBlockGuest guest = new BootBlockGuest(process, qmp, ram, serial, log);
        if (!guest.await(() -> Files.exists(qmp) || !process.isAlive(), timeoutMillis) || !process.isAlive()) {
            guest.close();
            throw new IOException("QEMU did not start: " + Files.readString(log));
        }
        return guest;
    }

    /** Waits until {@code condition} holds, polling, for at most {@code timeoutMillis}; whether it held. */
    public boolean await(BooleanSupplier condition, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(WAIT_STEP_MILLIS);
        }
        return true;
    }

    /** Waits until the guest wrote {@code more} characters to serial beyond the {@code from} it had; whether it did in time. */
    public boolean awaitSerial(long from, long more, long timeoutMillis) throws InterruptedException {
        return await(() -> serialBytes() >= from + more, timeoutMillis);
    }

    /** Characters the guest wrote to its serial port so far: one per pass, after an 'A' at start. */
    public long serialBytes() {
        try {
            return Files.size(serial);
        } catch (IOException e) {
            return 0;
        }
    }

    /**
     * The number of places where the byte at offset 0 of a page differs from the previous page's
     * in the guest's range: 0 or 1 for a memory the guest wrote in order and that was stopped, mod
     * 256 (one step down by one where the pass was stopped); any other step counts 2, so a page
     * lost or stale in a migration makes it more than 1.
     */
    public static int steps(MemorySegment memory) {
        int steps = 0;
        byte previous = memory.get(ValueLayout.JAVA_BYTE, FIRST);
        for (long at = FIRST + GuestMemory.PAGE_SIZE; at < END; at += GuestMemory.PAGE_SIZE) {
            byte b = memory.get(ValueLayout.JAVA_BYTE, at);
            if (b != previous) {
                // the guest's own step is down by one; any other cannot come from its order
                steps += b == (byte) (previous - 1) ? 1 : 2;
            }
            previous = b;
        }
        return steps;
    }

    /** The value of the first byte the guest increments: how many passes it made, mod 256. */
    public static int passes(MemorySegment memory) {
        return memory.get(ValueLayout.JAVA_BYTE, FIRST) & 0xff;
    }

    public Path qmpSocket() {
        return qmp;
    }

    public Path ramFile() {
        return ram;
    }

    public Path serial() {
        return serial;
    }

    /** QEMU's own output (errors at startup, at exit). */
    public String log() throws IOException {
        return Files.readString(log);
    }

    public boolean alive() {
        return process.isAlive();
    }

    /** Kills QEMU at once, as a crash would. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
    }

    /** Stops QEMU and removes its RAM file. */
    @Override
    public void close() throws IOException {
        try {
            kill();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        Files.deleteIfExists(ram);
        Files.deleteIfExists(qmp);
    }
}
