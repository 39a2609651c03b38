# The boot sector tskit boots with -accel kvm to learn whether KVM is worth using
# (providers/qemu/kvm-probe.ts embeds the 512 bytes this assembles to). It walks the path a
# Linux kernel takes (real mode, protected mode, long mode with paging), then does work a
# working KVM finishes in a blink and an emulating one cannot: 64 MiB of memory writes and
# 200 million loop iterations. It reports each stage on the serial port: R P L M C.
# A host whose KVM starts guests but runs them in software (a nested PVM host, for one)
# gets to R, P and L, so reaching long mode alone proves nothing.
#
# Rebuild: as --64 -o probe.o kvm-probe.S && ld -Ttext=0x7c00 -e 0x7c00 --oformat binary -o probe.bin probe.o
.intel_syntax noprefix
.code16
start:
  cli
  xor ax, ax
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov sp, 0x7c00
  mov dx, 0x3f8          # COM1 data register: qemu sends what is written there, no setup needed
  mov al, 'R'
  out dx, al
  lgdt [gdt_desc]
  mov eax, cr0
  or eax, 1              # PE
  mov cr0, eax
  ljmp 0x08, offset pm32
.code32
pm32:
  mov ax, 0x10
  mov ds, ax
  mov es, ax
  mov ss, ax
  mov dx, 0x3f8
  mov al, 'P'
  out dx, al
  mov edi, 0x1000        # page tables at 0x1000 (PML4), 0x2000 (PDPT), 0x3000 (PD)
  xor eax, eax
  mov ecx, 0xc00
  rep stosd
  mov dword ptr [0x1000], 0x2003
  mov dword ptr [0x2000], 0x3003
  mov edi, 0x3000        # identity-map the first GiB with 2 MiB pages
  mov eax, 0x83
  mov ecx, 512
fill:
  mov dword ptr [edi], eax
  add eax, 0x200000
  add edi, 8
  loop fill
  mov eax, 0x1000
  mov cr3, eax
  mov eax, cr4
  or eax, 0x20           # PAE
  mov cr4, eax
  mov ecx, 0xC0000080    # EFER
  rdmsr
  or eax, 0x100          # LME
  wrmsr
  mov eax, cr0
  or eax, 0x80000000     # PG
  mov cr0, eax
  ljmp 0x18, offset lm64
.code64
lm64:
  mov dx, 0x3f8
  mov al, 'L'
  out dx, al
  mov rdi, 0x1000000     # 64 MiB of zeroes from 16 MiB up
  mov rcx, 0x800000
  xor rax, rax
  rep stosq
  mov al, 'M'
  out dx, al
  mov rcx, 200000000
spin:
  dec rcx
  jnz spin
  mov al, 'C'
  out dx, al
halt:
  hlt
  jmp halt
.p2align 3
gdt:
  .quad 0
  .quad 0x00CF9A000000FFFF   # 0x08: 32-bit code
  .quad 0x00CF92000000FFFF   # 0x10: data
  .quad 0x00AF9A000000FFFF   # 0x18: 64-bit code
gdt_desc:
  .word gdt_desc - gdt - 1
  .long gdt
.org 510
.word 0xAA55
