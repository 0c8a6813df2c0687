package dev.ferry.protocol;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.ferry.core.Capability;
import dev.ferry.core.PageBitmap;
import dev.ferry.core.PageDigest;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * docs/protocol.md against the code: each {@code ```hex} example is split by the real framing
 * stage, decoded with the protocol module's readers ({@link Wire}, {@link PageRecords},
 * {@link PageRuns}), compared field by field with the {@code <!-- expect: -->} line that follows
 * it, and re-encoded with the module's writers to the same bytes; there is an example of every
 * frame type; the frame, constant and capability tables must list exactly what Wire, PageRuns,
 * PageBitmap and Capability define, with the same values, and every fixed body its size.
 */
class ProtocolDocTest {
    private static final Pattern EXAMPLE = Pattern.compile("```hex\\n(.*?)```\\s*<!-- expect: (.*?) -->", Pattern.DOTALL);
    private static final Pattern EXPECT_FIELD = Pattern.compile("(\\w+)=(\"[^\"]*\"|\\S+)");
    private static final Pattern ROW = Pattern.compile("^\\|\\s*`(\\w+)`\\s*\\|\\s*`([^`]+)`\\s*\\|(.*)$", Pattern.MULTILINE);

    private static final String DOC = read();

    private static String read() {
        Path doc = Path.of(System.getProperty("user.dir")).getParent().resolve("docs/protocol.md");
        try {
            return Files.readString(doc);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read " + doc, e);
        }
    }

    @TestFactory
    List<DynamicTest> everyExampleDecodesToWhatTheDocSays() {
        List<DynamicTest> tests = new ArrayList<>();
        Matcher m = EXAMPLE.matcher(DOC);
        while (m.find()) {
            byte[] bytes = hex(m.group(1));
            Map<String, String> expect = expectations(m.group(2));
            tests.add(DynamicTest.dynamicTest(m.group(2), () -> check(bytes, expect)));
        }
        int blocks = DOC.split("```hex", -1).length - 1;
        assertEquals(blocks, tests.size(), "every ```hex block needs an expect line right after it");
        assertTrue(tests.size() >= frameTypes().size(), "examples of every frame type: " + tests.size());
        Set<String> types = new TreeSet<>();
        Matcher t = EXAMPLE.matcher(DOC);
        while (t.find()) {
            types.add(expectations(t.group(2)).get("type"));
        }
        assertEquals(new TreeSet<>(frameTypes().keySet()), types, "an example of every frame type");
        return tests;
    }

    @Test
    void framesTableListsEveryFrameTypeWithItsCode() {
        Map<String, String> rows = rows("Frames");
        Map<String, Integer> types = frameTypes();
        assertEquals(types.keySet(), rows.keySet());
        types.forEach((name, code) -> assertEquals(code, Integer.decode(rows.get(name)), name));
    }

    @Test
    void framesTableGivesEveryFixedBodyItsSize() {
        Map<String, Integer> fixed = Map.ofEntries(Map.entry("HELLO", Wire.HELLO_BODY),
                Map.entry("WELCOME", Wire.WELCOME_BODY), Map.entry("JOIN", Wire.JOIN_BODY),
                Map.entry("RECOVER", Wire.RECOVER_BODY), Map.entry("JOINED", Wire.JOINED_BODY),
                Map.entry("ROUND_END", Wire.ROUND_END_BODY), Map.entry("END", Wire.END_BODY),
                Map.entry("POSTCOPY_START", Wire.NANOS_BODY), Map.entry("RESUMED", Wire.RESUMED_BODY),
                Map.entry("POSTCOPY_RUNNING", Wire.NANOS_BODY), Map.entry("RECOVERED", Wire.RECOVERED_BODY),
                Map.entry("HEARTBEAT", Wire.HEARTBEAT_BODY));
        Map<String, Integer> stated = new LinkedHashMap<>();
        Matcher m = ROW.matcher(section("Frames"));
        while (m.find()) {
            Matcher size = Pattern.compile("\\((\\d+) bytes\\)").matcher(m.group(3));
            if (size.find()) {
                stated.put(m.group(1), Integer.parseInt(size.group(1)));
            }
        }
        assertEquals(new TreeMap<>(fixed), new TreeMap<>(stated), "the (N bytes) of the Frames table");
    }

    @Test
    void constantsTableMatchesWire() throws ReflectiveOperationException {
        Map<String, String> rows = rows("Constants");
        assertTrue(rows.keySet().containsAll(Set.of("MAGIC", "VERSION", "MAX_CHANNELS", "MAX_FRAME", "FRAME_HEADER",
                "RECORD_HEADER", "MAX_ZERO_RUN", "GUEST_HEADER", "MAX_GUEST_FRAME", "PAGES_FRAME_TARGET", "RUN", "STRIPE_PAGES", "MAX_HANDSHAKE_FRAME")),
                rows.keySet().toString());
        for (Map.Entry<String, String> row : rows.entrySet()) {
            Class<?> owner = switch (row.getKey()) {
                case "RUN" -> PageRuns.class;
                case "STRIPE_PAGES" -> PageBitmap.class;
                default -> Wire.class;
            };
            Field field = owner.getField(row.getKey());
            assertEquals(((Number) field.get(null)).longValue(), decode(row.getValue()), row.getKey());
        }
    }

    @Test
    void capabilitiesTableMatchesCapability() {
        Map<String, String> rows = rows("Capabilities");
        Set<String> names = new HashSet<>();
        for (Capability c : Capability.values()) {
            names.add(c.name());
            assertNotNull(rows.get(c.name()), c + " missing from the table");
            assertEquals(Wire.bit(c), Integer.decode(rows.get(c.name())), c.name());
            Matcher row = Pattern.compile("^\\|\\s*`" + c.name() + "`\\s*\\|[^|]*\\|\\s*`([^`]+)`", Pattern.MULTILINE)
                    .matcher(section("Capabilities"));
            assertTrue(row.find());
            assertEquals(c.wireName(), row.group(1), c.name());
        }
        assertEquals(names, rows.keySet());
    }

    private static void check(byte[] bytes, Map<String, String> expect) throws ProtocolException {
        EmbeddedChannel framing = new EmbeddedChannel(Wire.frameDecoder());
        framing.writeInbound(Unpooled.wrappedBuffer(bytes));
        ByteBuf frame = framing.readInbound();
        assertNotNull(frame, "the length field asks for more bytes than the example has");
        assertNull(framing.readInbound(), "one frame per example");
        assertEquals(bytes.length, Wire.FRAME_HEADER - 1 + frame.readableBytes(), "bytes after the frame's end");
        Set<String> unchecked = new HashSet<>(expect.keySet());
        int type = frame.readUnsignedByte();
        assertEquals(expect.get("type"), Wire.typeName(type));
        unchecked.remove("type");
        ByteBuf again = Unpooled.buffer();
        switch (type) {
            case Wire.HELLO -> {
                Wire.Hello hello = Wire.readHello(frame);
                field(expect, unchecked, "version", hello.version());
                field(expect, unchecked, "pageSize", hello.pageSize());
                field(expect, unchecked, "memoryBytes", hello.memoryBytes());
                field(expect, unchecked, "capabilities", hello.capabilities());
                field(expect, unchecked, "mode", hello.mode());
                field(expect, unchecked, "channels", hello.channels());
                migration(expect, unchecked, hello.migration());
                Wire.writeHello(again, hello);
            }
            case Wire.WELCOME -> {
                Wire.Welcome welcome = Wire.readWelcome(frame);
                field(expect, unchecked, "capabilities", welcome.capabilities());
                field(expect, unchecked, "session", welcome.session());
                Wire.writeWelcome(again, welcome);
            }
            case Wire.JOIN -> {
                Wire.Join join = Wire.readJoin(frame);
                field(expect, unchecked, "session", join.session());
                field(expect, unchecked, "channel", join.channel());
                migration(expect, unchecked, join.migration());
                Wire.writeJoin(again, join);
            }
            case Wire.GUEST -> {
                int guest = Wire.readGuest(frame);
                field(expect, unchecked, "guest", guest);
                List<ByteBuf> frames = new ArrayList<>();
                Wire.forEachFrame(frame.duplicate(), frames::add);
                field(expect, unchecked, "frames", frames.size());
                frames.forEach(ByteBuf::release);
                Wire.writeGuestHeader(again, guest, frame.readableBytes());
                again.writeBytes(frame);
            }
            case Wire.JOINED -> {
                int channel = Wire.readJoined(frame);
                field(expect, unchecked, "channel", channel);
                Wire.writeJoined(again, channel);
            }
            case Wire.PAGES -> {
                ByteBuf direct = Unpooled.directBuffer(frame.readableBytes()).writeBytes(frame);
                MemorySegment view = MemorySegment.ofAddress(direct.memoryAddress()).reinterpret(direct.capacity());
                PageRecords records = new PageRecords().reset(view, 0, direct.writerIndex(), Long.MAX_VALUE);
                ByteBuf copy = Unpooled.directBuffer(Wire.FRAME_HEADER + direct.writerIndex());
                MemorySegment out = MemorySegment.ofAddress(copy.memoryAddress()).reinterpret(copy.capacity());
                int n = 0;
                long at = Wire.FRAME_HEADER;
                while (records.next()) {
                    field(expect, unchecked, "index" + n, records.index());
                    field(expect, unchecked, "encoding" + n, records.encoding());
                    field(expect, unchecked, "length" + n, records.length());
                    PageRecords.putHeader(out, at, records.index(), records.encoding(), records.length());
                    at += Wire.RECORD_HEADER;
                    if (records.encoding() != PageEncoding.ZERO) {
                        MemorySegment.copy(view, records.payloadOffset(), out, at, records.length());
                        at += records.length();
                    }
                    n++;
                }
                field(expect, unchecked, "records", n);
                copy.writerIndex((int) at);
                copy.setInt(0, (int) at - 4);
                copy.setByte(4, Wire.PAGES);
                again.writeBytes(copy);
                copy.release();
                direct.release();
            }
            case Wire.ROUND_END -> {
                Wire.RoundEnd end = Wire.readRoundEnd(frame);
                field(expect, unchecked, "round", end.round());
                field(expect, unchecked, "pages", end.pages());
                Wire.writeRoundEnd(again, end.round(), end.pages());
            }
            case Wire.DEVICE_STATE -> {
                byte[] state = Wire.readDeviceState(frame);
                assertEquals(expect.get("state"), ByteBufUtil.hexDump(state));
                unchecked.remove("state");
                Wire.writeDeviceState(again, state);
            }
            case Wire.END, Wire.RESUMED -> {
                long digest;
                long nanos;
                if (type == Wire.END) {
                    Wire.End end = Wire.readEnd(frame);
                    digest = end.digest();
                    nanos = end.pauseNanos();
                } else {
                    Wire.Resumed resumed = Wire.readResumed(frame);
                    digest = resumed.digest();
                    nanos = resumed.resumeNanos();
                }
                field(expect, unchecked, "digest", digest);
                field(expect, unchecked, type == Wire.END ? "pauseNanos" : "resumeNanos", nanos);
                if (expect.containsKey("zeroPages")) {
                    byte[] state = ByteBufUtil.decodeHexDump(expect.get("deviceState"));
                    long session = Long.parseUnsignedLong(expect.get("session").substring(2), 16);
                    assertEquals(PageDigest.seal(PageDigest.zeroMemory(Long.parseLong(expect.get("zeroPages"))), state,
                            session), digest, "digest of that many zero pages, sealed, by the verification rule");
                    unchecked.removeAll(Set.of("zeroPages", "deviceState", "session"));
                }
                if (type == Wire.END) {
                    Wire.writeEnd(again, digest, nanos);
                } else {
                    Wire.writeResumed(again, digest, nanos);
                }
            }
            case Wire.ERROR -> {
                String reason = Wire.readError(frame);
                assertEquals(expect.get("reason"), reason);
                unchecked.remove("reason");
                Wire.writeError(again, reason);
            }
            case Wire.HEARTBEAT -> {
                Wire.readHeartbeat(frame);
                Wire.writeHeartbeat(again);
            }
            case Wire.RECOVER -> {
                Wire.Recover recover = Wire.readRecover(frame);
                field(expect, unchecked, "session", recover.session());
                migration(expect, unchecked, recover.migration());
                Wire.writeRecover(again, recover);
            }
            case Wire.RECOVERED -> {
                long missing = Wire.readRecovered(frame);
                field(expect, unchecked, "missing", missing);
                Wire.writeRecovered(again, missing);
            }
            case Wire.STALE -> {
                Wire.Stale head = Wire.readStale(frame);
                field(expect, unchecked, "round", head.round());
                field(expect, unchecked, "last", head.last() ? 1 : 0);
                List<long[]> runs = new ArrayList<>();
                PageRuns.read("STALE", frame, Long.MAX_VALUE, (first, count) -> runs.add(new long[] {first, count}));
                for (int i = 0; i < runs.size(); i++) {
                    field(expect, unchecked, "first" + i, runs.get(i)[0]);
                    field(expect, unchecked, "count" + i, runs.get(i)[1]);
                }
                field(expect, unchecked, "runs", runs.size());
                PageRuns.writeStale(head.round(), listed(runs), Unpooled::buffer, again::writeBytes);
            }
            case Wire.DISCARD, Wire.MISSING -> {
                List<long[]> runs = new ArrayList<>();
                PageRuns.read(Wire.typeName(type), frame, Long.MAX_VALUE, (first, count) -> runs.add(new long[] {first, count}));
                for (int i = 0; i < runs.size(); i++) {
                    field(expect, unchecked, "first" + i, runs.get(i)[0]);
                    field(expect, unchecked, "count" + i, runs.get(i)[1]);
                }
                field(expect, unchecked, "runs", runs.size());
                PageRuns.write(type, listed(runs), Unpooled::buffer, again::writeBytes);
            }
            case Wire.POSTCOPY_START, Wire.POSTCOPY_RUNNING -> {
                long nanos = type == Wire.POSTCOPY_START ? Wire.readPostcopyStart(frame) : Wire.readPostcopyRunning(frame);
                if (type == Wire.POSTCOPY_START) {
                    field(expect, unchecked, "pauseNanos", nanos);
                    Wire.writePostcopyStart(again, nanos);
                } else {
                    field(expect, unchecked, "resumeNanos", nanos);
                    Wire.writePostcopyRunning(again, nanos);
                }
            }
            case Wire.PAGE_REQUEST -> {
                List<Long> pages = new ArrayList<>();
                Wire.readPageRequest(frame, Long.MAX_VALUE, pages::add);
                for (int i = 0; i < pages.size(); i++) {
                    field(expect, unchecked, "page" + i, pages.get(i));
                    Wire.writePageRequest(again, pages.get(i));
                }
                field(expect, unchecked, "pages", pages.size());
            }
            default -> fail("no example decoder for " + Wire.typeName(type));
        }
        frame.release();
        framing.finishAndReleaseAll();
        assertTrue(unchecked.isEmpty(), "expect fields the frame does not have: " + unchecked);
        assertArrayEquals(bytes, ByteBufUtil.getBytes(again), "re-encoding with Wire gives other bytes");
    }

    /** A page set of the given runs, for the run writer. */
    private static PageRuns.Pages listed(List<long[]> runs) {
        return new PageRuns.Pages() {
            @Override
            public long nextIn(long from) {
                for (long[] run : runs) {
                    if (from < run[0] + run[1]) {
                        return Math.max(from, run[0]);
                    }
                }
                return -1;
            }

            @Override
            public long nextOut(long from) {
                for (long[] run : runs) {
                    if (from >= run[0] && from < run[0] + run[1]) {
                        return run[0] + run[1];
                    }
                }
                return from;
            }
        };
    }

    private static void field(Map<String, String> expect, Set<String> unchecked, String name, long actual) {
        String value = expect.get(name);
        assertNotNull(value, "the expect line lacks " + name);
        assertEquals(decode(value), actual, name);
        unchecked.remove(name);
    }

    private static void migration(Map<String, String> expect, Set<String> unchecked, java.util.UUID actual) {
        assertEquals(expect.get("migration"), actual.toString(), "migration");
        unchecked.remove("migration");
    }

    /** A decimal or {@code 0x} hex value of an expect line or a table; hex may use all 64 bits (a session id). */
    private static long decode(String value) {
        return value.startsWith("0x") ? Long.parseUnsignedLong(value.substring(2), 16) : Long.parseLong(value);
    }

    /** The frame type constants of Wire, by the name Wire gives them. */
    private static Map<String, Integer> frameTypes() {
        Map<String, Integer> types = new LinkedHashMap<>();
        for (Field f : Wire.class.getFields()) {
            if (f.getType() == int.class && Modifier.isStatic(f.getModifiers())) {
                try {
                    int code = f.getInt(null);
                    if (f.getName().equals(Wire.typeName(code))) {
                        types.put(f.getName(), code);
                    }
                } catch (IllegalAccessException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
        return types;
    }

    /** The rows {@code | `NAME` | `value` | ...} of the table under heading {@code ## title}. */
    private static Map<String, String> rows(String title) {
        Map<String, String> rows = new LinkedHashMap<>();
        Matcher m = ROW.matcher(section(title));
        while (m.find()) {
            assertNull(rows.put(m.group(1), m.group(2)), "duplicate row " + m.group(1));
        }
        return rows;
    }

    private static String section(String title) {
        int start = DOC.indexOf("\n## " + title + "\n");
        assertTrue(start >= 0, "no section ## " + title);
        int end = DOC.indexOf("\n## ", start + 1);
        return DOC.substring(start, end < 0 ? DOC.length() : end);
    }

    private static Map<String, String> expectations(String line) {
        Map<String, String> fields = new LinkedHashMap<>();
        Matcher m = EXPECT_FIELD.matcher(line);
        while (m.find()) {
            String value = m.group(2);
            fields.put(m.group(1), value.startsWith("\"") ? value.substring(1, value.length() - 1) : value);
        }
        return fields;
    }

    /** The bytes of a hex block: pairs of hex digits, {@code #} to the end of a line is a comment. */
    private static byte[] hex(String block) {
        ByteBuf out = Unpooled.buffer();
        for (String line : block.split("\n")) {
            int comment = line.indexOf('#');
            String data = (comment < 0 ? line : line.substring(0, comment)).trim();
            if (data.isEmpty()) {
                continue;
            }
            for (String token : data.split("\\s+")) {
                assertTrue(token.matches("[0-9a-f]{2}"), "not a hex byte: '" + token + "' in: " + line);
                out.writeByte(Integer.parseInt(token, 16));
            }
        }
        return ByteBufUtil.getBytes(out);
    }
}
