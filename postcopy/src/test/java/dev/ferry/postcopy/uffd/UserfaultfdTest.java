package dev.ferry.postcopy.uffd;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class UserfaultfdTest {
    @Test
    void isAvailableOnTheCiMachine() {
        // CI runs as root on Linux with userfaultfd; if this fails, the reason says what is missing.
        assertTrue(Userfaultfd.available(), () -> "userfaultfd unavailable: " + Userfaultfd.unavailableReason());
    }
}
