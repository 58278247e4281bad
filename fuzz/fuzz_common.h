/* Shared by the libFuzzer targets: a reader that turns the fuzzer's bytes into values, and the C ABI's
   contract checked after every call (abort, so that libFuzzer records the input as a crash). */
#ifndef BNDROP_FUZZ_COMMON_H
#define BNDROP_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <sys/stat.h>
#include "bndrop.h"

typedef struct {
    const uint8_t *data;
    size_t size, pos;
} fz_reader;

static inline uint8_t fz_u8(fz_reader *r) { return r->pos < r->size ? r->data[r->pos++] : 0; }
static inline int fz_done(const fz_reader *r) { return r->pos >= r->size; }
static inline uint32_t fz_u32(fz_reader *r) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)fz_u8(r) << (8 * i);
    return v;
}
static inline float fz_float(fz_reader *r) {
    uint32_t bits = fz_u32(r);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Sizes: mostly small and valid, sometimes zero, negative or absurd (products that overflow). Never a
   size between, which would only make a correct library allocate gigabytes. */
static inline int64_t fz_size(fz_reader *r) {
    static const int64_t table[16] = {1, 2, 3, 4, 5, 8, 16, 1, 2, 0, -1, -7, INT64_MAX, INT64_MIN,
                                      (int64_t)1 << 62, 2};
    return table[fz_u8(r) & 15];
}
/* A value that is meant to be a small count, 0..limit. */
static inline int64_t fz_small(fz_reader *r, int64_t limit) { return (int64_t)(fz_u8(r) % (limit + 1)); }
/* A 0/1 flag, sometimes another value. */
static inline int32_t fz_flag(fz_reader *r) {
    uint8_t b = fz_u8(r);
    return b < 120 ? 0 : b < 240 ? 1 : (int32_t)b - 245;
}
/* A float parameter: typical values, and the bad ones (NaN, infinities, negative). */
static inline float fz_param(fz_reader *r) {
    static const float table[16] = {0.1f, 0.01f, 0.001f, 0.5f, 0.9f, 0.999f, 1e-5f, 1e-8f,
                                    0.0f, 1.0f, -0.1f, 2.0f, 1e30f, -1e30f, 0.0f, 0.25f};
    uint8_t b = fz_u8(r);
    if (b == 255) return __builtin_nanf("");
    if (b == 254) return __builtin_inff();
    if (b == 253) return -__builtin_inff();
    return table[b & 15];
}

/* The contract of every fallible call: a status inside the enum, never INTERNAL, and after a failure a
   non-empty message (the message was cleared just before the call). */
static inline bnd_status fz_check(bnd_status s, const char *call, int line) {
    if ((int)s < BND_OK || (int)s > BND_ERR_INTERNAL) {
        fprintf(stderr, "CONTRACT: %s (line %d) returned %d, outside bnd_status\n", call, line, (int)s);
        abort();
    }
    if (s == BND_ERR_INTERNAL) {
        fprintf(stderr, "CONTRACT: %s (line %d) returned BND_ERR_INTERNAL: %s\n", call, line, bnd_last_error());
        abort();
    }
    if (s != BND_OK) {
        const char *message = bnd_last_error();
        if (message == NULL || message[0] == '\0') {
            fprintf(stderr, "CONTRACT: %s (line %d) failed with %d and an empty bnd_last_error()\n", call, line, (int)s);
            abort();
        }
    }
    return s;
}
#define CALL(call) (bnd_clear_last_error(), fz_check((call), #call, __LINE__))

/* An out-pointer that must be untouched on failure. */
#define UNTOUCHED(status, pointer, sentinel, call) \
    do { if ((status) != BND_OK && (void *)(pointer) != (void *)(sentinel)) { \
        fprintf(stderr, "CONTRACT: %s failed (%d) but wrote its out-pointer\n", call, (int)(status)); abort(); } } while (0)

/* A per-process scratch folder for the files the targets write. */
static inline const char *fz_dir(void) {
    static char dir[256];
    if (dir[0] == '\0') {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/bndrop-fuzz-%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) abort();
    }
    return dir;
}

static inline void fz_write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) abort();
    if (size > 0 && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
}

#endif
