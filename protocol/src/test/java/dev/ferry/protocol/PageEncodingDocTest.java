package dev.ferry.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ferry.protocol.PageEncoding;
import java.io.IOException;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The page encoding table of docs/protocol.md against {@link PageEncoding}: every code is in the
 * table with the same value, and the table assigns each code once.
 */
class PageEncodingDocTest {
    private static final Pattern ROW = Pattern.compile("^\\|\\s*`(\\w+)`\\s*\\|\\s*`(\\d+)`\\s*\\|", Pattern.MULTILINE);

    @Test
    void tableAgreesWithPageEncoding() throws IOException, IllegalAccessException {
        String doc = Files.readString(Path.of(System.getProperty("user.dir")).getParent().resolve("docs/protocol.md"));
        int start = doc.indexOf("\n## Page encodings\n");
        assertTrue(start >= 0, "no ## Page encodings section");
        int end = doc.indexOf("\n## ", start + 1);
        Map<String, Integer> table = new LinkedHashMap<>();
        Matcher m = ROW.matcher(doc.substring(start, end));
        while (m.find()) {
            table.put(m.group(1), Integer.parseInt(m.group(2)));
        }
        assertEquals(table.size(), table.values().stream().distinct().count(), "a code assigned twice: " + table);

        int defined = 0;
        for (Field f : PageEncoding.class.getFields()) {
            if (f.getType() == int.class && Modifier.isStatic(f.getModifiers()) && !f.getName().equals("COUNT")) {
                assertEquals(f.getInt(null), table.get(f.getName()), "PageEncoding." + f.getName() + " in the table");
                defined++;
            }
        }
        assertTrue(defined >= 2, "RAW and ZERO at least");
    }
}
