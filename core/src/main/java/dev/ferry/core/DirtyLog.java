package dev.ferry.core;

import java.lang.foreign.MemorySegment;

/**
 * The hypervisor's dirty-page log (the {@code KVM_GET_DIRTY_LOG} contract).
 *
 * <p>Writers record a page as dirty after they have stored its bytes. {@link #sync} hands the
 * pages dirtied since the previous sync to the migration and clears them, atomically with
 * respect to writers: a write that completes after a page's bit was taken marks it again, so
 * no dirty page is ever lost between rounds.
 */
public interface DirtyLog {
    /**
     * Adds every page dirtied since the previous sync to {@code into} and clears them here.
     *
     * @return how many pages this sync added that {@code into} did not already hold
     */
    long sync(PageBitmap into);

    /**
     * The copy of page {@code page} that the migration is about to send, at {@code offset} of the
     * native segment {@code copy}, taken out of guest memory once (the guest may change the page
     * again after). A log that compares page contents with what was sent, rather than trapping
     * writes, records it here; a hypervisor's own log ignores it. Called on the sending channels'
     * threads, one thread at a time per page, never during {@link #sync}; it must allocate nothing.
     */
    default void sending(long page, MemorySegment copy, long offset) {
    }
}
