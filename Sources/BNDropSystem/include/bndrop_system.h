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

#endif
