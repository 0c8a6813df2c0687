package dev.ferry.postcopy;

/**
 * A guest access to a page that will never arrive: the source is gone for good during post-copy,
 * so the guest cannot continue on the destination.
 */
public final class PageLostException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public PageLostException(long page, String reason) {
        super("page " + page + " will never arrive: " + reason);
    }
}
