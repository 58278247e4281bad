/* Internal to libbndrop.so: the C helpers of the export layer. Not part of the public API.
 *
 * It includes the public header (found through the BNDropHeader target's include path), so the
 * @_cdecl exports in BNDropC use the very struct and enum types that C programs see (bnd_sgd_params,
 * bnd_status, ...), and the Swift tests can call the bnd_* functions through their C declarations. */
#ifndef BNDROP_SUPPORT_H
#define BNDROP_SUPPORT_H

#include <bndrop.h>

/* Copies `message` (truncated to the buffer) into the calling thread's error slot. */
void bndi_set_last_error(const char *message);
/* The calling thread's last error message; "" when none. */
const char *bndi_last_error(void);
/* BND_VERSION_STRING of the header the library was built with, as static text. */
const char *bndi_version_string(void);

#endif
