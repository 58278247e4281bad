/* Internal to libbndrop.so: per-thread storage for bnd_last_error(). Not part of the public API.
 *
 * It also makes the public header visible to Swift, so the @_cdecl exports in BNDropC use the very
 * struct and enum types that C programs see (bnd_sgd_params, bnd_status, ...), and the Swift tests can
 * call the bnd_* functions through their C declarations. */
#ifndef BNDROP_SUPPORT_H
#define BNDROP_SUPPORT_H

#include "../../../include/bndrop.h"

/* Copies `message` (truncated to the buffer) into the calling thread's error slot. */
void bndi_set_last_error(const char *message);
/* The calling thread's last error message; "" when none. */
const char *bndi_last_error(void);

#endif
