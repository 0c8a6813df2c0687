; Ferry's QEMU test guest: a 512-byte boot sector, no OS image needed.
;
; SeaBIOS loads it at 0x7c00 in real mode. It enables the A20 line, switches to 32-bit protected
; mode with flat segments, then loops forever: one pass increments the first byte of every 4 KiB
; page from 1 MiB up to 100 MiB, in order, and writes 'B' to the first serial port (0x3f8). So a
; copy of its memory taken with the guest stopped shows, at offset 0 of consecutive pages, one
; value with at most one step down where the pass was stopped; a page a migration lost or
; delivered stale shows as a second step. The same idea as QEMU's tests/migration guest.
;
; Build: nasm -f bin -o bootblock.img bootblock.asm

bits 16
org 0x7c00

start:
        cli
        in      al, 0x92                ; fast A20 gate: address bit 20 must work above 1 MiB
        or      al, 2
        out     0x92, al
        lgdt    [gdt_descriptor]
        mov     eax, cr0
        or      eax, 1                  ; PE: protected mode
        mov     cr0, eax
        jmp     dword 0x08:protected    ; reload CS with the flat code segment

bits 32
protected:
        mov     ax, 0x10                ; the flat data segment everywhere
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     fs, ax
        mov     gs, ax
        mov     esp, 0x7c00
        mov     dx, 0x3f8
        mov     al, 'A'                 ; once: the guest reached protected mode
        out     dx, al

pass:
        mov     eax, 1024 * 1024        ; first page touched
.page:
        inc     byte [eax]
        add     eax, 4096
        cmp     eax, 100 * 1024 * 1024  ; end, exclusive
        jb      .page
        mov     al, 'B'                 ; one character per pass: the guest's pace
        out     dx, al
        jmp     pass

align 8
gdt:
        dq      0                       ; null descriptor
        dq      0x00cf9a000000ffff      ; 0x08: code, base 0, limit 4 GiB, 32-bit
        dq      0x00cf92000000ffff      ; 0x10: data, base 0, limit 4 GiB
gdt_end:

gdt_descriptor:
        dw      gdt_end - gdt - 1
        dd      gdt

        times   510 - ($ - $$) db 0
        dw      0xaa55                  ; the BIOS boots a sector only with this signature
