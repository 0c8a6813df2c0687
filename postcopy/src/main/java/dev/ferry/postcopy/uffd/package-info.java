/**
 * Post-copy with real page faults: userfaultfd in MISSING mode over the destination's guest
 * memory, as QEMU does it.
 *
 * <p>{@link dev.ferry.postcopy.uffd.Userfaultfd} says whether the kernel allows it;
 * {@link dev.ferry.postcopy.uffd.MissingPageRegion} registers a
 * {@link dev.ferry.core.GuestMemory}, reports faults and installs pages;
 * {@link dev.ferry.postcopy.uffd.GuestAccess} is how guest threads touch that memory.
 *
 * <p><b>Java code must never load or store registered memory directly</b> (no
 * {@code MemorySegment} get/set/copy on it, no critical downcall over it) while a page can be
 * missing: a thread faulting "in Java" blocks every JVM safepoint, the fault handler included,
 * and the process deadlocks. {@link dev.ferry.postcopy.uffd.MissingPageRegion} explains why.
 */
package dev.ferry.postcopy.uffd;
