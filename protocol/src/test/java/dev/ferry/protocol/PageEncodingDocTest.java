package dev.ferry.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.core.Capability;
import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The page encoding table of docs/protocol.md against {@link PageEncoding}: every code is in the
 * table with the same value, the table assigns each code once, and the capabilities its "needs"
 * column names are exactly what {@link PageEncoding#allowedBy} asks of the handshake.
 */
class PageEncodingDocTest {
    private static final Pattern ROW = Pattern.compile("^\\|\\s*`(\\w+)`\\s*\\|\\s*`(\\d+)`\\s*\\|([^|]*)\\|", Pattern.MULTILINE);
    private static final Pattern NAME = Pattern.compile("`(\\w+)`");

    private final Map<String, Integer> codes = new LinkedHashMap<>();
    private final Map<Integer, EnumSet<Capability>> needs = new LinkedHashMap<>();

    PageEncodingDocTest() throws IOException {
        String doc = Files.readString(Path.of(System.getProperty("user.dir")).getParent().resolve("docs/protocol.md"));
        int start = doc.indexOf("\n## Page encodings\n");
        assertTrue(start >= 0, "no ## Page encodings section");
        int end = doc.indexOf("\n## ", start + 1);
        Matcher m = ROW.matcher(doc.substring(start, end < 0 ? doc.length() : end));
        while (m.find()) {
            int code = Integer.parseInt(m.group(2));
            codes.put(m.group(1), code);
            EnumSet<Capability> set = EnumSet.noneOf(Capability.class);
            Matcher name = NAME.matcher(m.group(3));
            while (name.find()) {
                set.add(Capability.valueOf(name.group(1)));
            }
            needs.put(code, set);
        }
    }

    @Test
    void tableAgreesWithPageEncoding() throws IllegalAccessException {
        assertEquals(codes.size(), codes.values().stream().distinct().count(), "a code assigned twice: " + codes);
        int defined = 0;
        for (Field f : PageEncoding.class.getFields()) {
            if (f.getType() == int.class && Modifier.isStatic(f.getModifiers()) && !f.getName().equals("COUNT")) {
                assertEquals(f.getInt(null), codes.get(f.getName()), "PageEncoding." + f.getName() + " in the table");
                defined++;
            }
        }
        assertEquals(PageEncoding.COUNT, defined, "codes 0 .. COUNT - 1");
        assertEquals(defined, codes.size(), "rows for codes PageEncoding does not define: " + codes);
    }

    @Test
    void theNeedsColumnIsWhatTheHandshakeMustAllow() {
        assertTrue(needs.get(PageEncoding.RAW).isEmpty(), "RAW needs nothing");
        Capability[] all = Capability.values();
        for (int subset = 0; subset < 1 << all.length; subset++) {
            EnumSet<Capability> accepted = EnumSet.noneOf(Capability.class);
            for (int i = 0; i < all.length; i++) {
                if ((subset & 1 << i) != 0) {
                    accepted.add(all[i]);
                }
            }
            int allowed = PageEncoding.allowedBy(accepted);
            for (Map.Entry<Integer, EnumSet<Capability>> row : needs.entrySet()) {
                assertEquals(accepted.containsAll(row.getValue()), (allowed & 1 << row.getKey()) != 0,
                        PageEncoding.name(row.getKey()) + " with " + accepted);
            }
            assertEquals(0, allowed >>> PageEncoding.COUNT, "only codes that exist");
        }
    }
}
