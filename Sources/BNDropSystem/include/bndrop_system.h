/* Internal to bndrop: the few operating-system and CPU facts the Swift core needs that Swift's Glibc
   module does not expose (they need _GNU_SOURCE or compiler builtins). Not part of the public API. */
#ifndef BNDROP_SYSTEM_H
#define BNDROP_SYSTEM_H

/* The number of CPUs this process may run on (sched_getaffinity), at least 1. */
int bndsys_available_cpus(void);

/* Instruction-set extensions, as bits of bndsys_cpu_features(). */
enum {
    BNDSYS_CPU_AVX2 = 1 << 0,
    BNDSYS_CPU_FMA = 1 << 1,
    BNDSYS_CPU_AVX512F = 1 << 2,
    BNDSYS_CPU_AVX512BW = 1 << 3,
    BNDSYS_CPU_AVX512VL = 1 << 4,
    BNDSYS_CPU_AVX512DQ = 1 << 5
};

/* The BNDSYS_CPU_* extensions this CPU offers by its own CPUID, counting only those whose registers
   the operating system saves (the compiler runtime checks XGETBV); 0 on other architectures. */
int bndsys_cpu_features(void);

/* The CPU's hint for one turn of a spin-wait loop (x86's PAUSE, ARM's YIELD; nothing elsewhere): the
   loop then leaves the execution units to the other hardware thread of its core, does not flood the
   memory pipeline with loads, and, in a virtual machine, lets the hypervisor see the spin (pause-loop
   exiting) and run the vCPU the spinner waits for. Inline: one instruction in the pool's loops. */
static inline void bndsys_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

#endif
