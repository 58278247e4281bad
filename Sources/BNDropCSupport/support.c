#include "bndrop_support.h"
#include <string.h>

/* One slot per thread, so messages from different threads never mix. Large enough for a message that
   quotes two paths of PATH_MAX (4096) bytes; a longer one is cut at a character boundary. */
static _Thread_local char last_error[10240];

void bndi_set_last_error(const char *message) {
    if (message == NULL) {
        last_error[0] = '\0';
        return;
    }
    size_t n = strlen(message);
    if (n >= sizeof last_error) {
        n = sizeof last_error - 1;
        /* Never cut a UTF-8 sequence in half: back up to the start of the last character. */
        while (n > 0 && ((unsigned char)message[n] & 0xC0) == 0x80) n--;
    }
    memcpy(last_error, message, n);
    last_error[n] = '\0';
}

const char *bndi_last_error(void) { return last_error; }

/* The header's macros are the one source of the version: the library reports what it was built with. */
const char *bndi_version_string(void) { return BND_VERSION_STRING; }
