package dev.ferry.core;

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
}
