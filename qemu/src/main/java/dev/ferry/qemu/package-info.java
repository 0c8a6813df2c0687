/**
 * Ferry's QEMU adapter: {@link dev.ferry.qemu.Qmp}, the QMP client; {@link dev.ferry.qemu.QemuVm},
 * a QEMU as the migration's {@code VmControl} (device state through QEMU's own stream with
 * {@code x-ignore-shared}); {@link dev.ferry.qemu.ContentHashLog}, the dirty log for RAM that QEMU
 * writes in a shared file. Pre-copy only: post-copy of a QEMU guest would need userfaultfd inside
 * QEMU.
 */
package dev.ferry.qemu;
