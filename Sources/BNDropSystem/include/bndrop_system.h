/* Internal to bndrop: the few operating-system facts the Swift core needs that Swift's Glibc module
   does not expose (they need _GNU_SOURCE). Not part of the public API. */
#ifndef BNDROP_SYSTEM_H
#define BNDROP_SYSTEM_H

/* The number of CPUs this process may run on (sched_getaffinity), at least 1. */
int bndsys_available_cpus(void);

#endif
