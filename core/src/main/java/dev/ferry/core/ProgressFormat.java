package dev.ferry.core;

/** How the CLI shows a running migration's progress. */
public enum ProgressFormat {
    /** A status line rewritten in place, only when the output is a terminal. */
    AUTO,
    /** The status line as for auto, and one JSON object per line, piped or not. */
    JSON,
    /** Nothing. */
    NONE
}
