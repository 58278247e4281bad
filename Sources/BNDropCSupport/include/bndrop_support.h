/* Internal to libbndrop.so: per-thread storage for bnd_last_error(). Not part of the public API. */
#ifndef BNDROP_SUPPORT_H
#define BNDROP_SUPPORT_H

/* Copies `message` (truncated to the buffer) into the calling thread's error slot. */
void bndi_set_last_error(const char *message);
/* The calling thread's last error message; "" when none. */
const char *bndi_last_error(void);

#endif
