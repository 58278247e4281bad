/* libFuzzer target: the IDX reader. The first byte chooses which file of the pair is the fuzzer's (the
   other is a valid partner: 2 images of 3x3, or 2 labels) and how it is stored: raw, gzip-compressed
   (the fuzzer's bytes are the decompressed content), or the bytes as they are under a ".gz" name (a
   damaged gzip stream). bnd_dataset_load_idx must succeed or fail by the contract, never crash. */
#include <zlib.h>
#include "fuzz_common.h"

static const uint8_t valid_images[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3,
                                       1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60, 70, 80, 90};
static const uint8_t valid_labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 7};

static void write_gzip(const char *path, const uint8_t *data, size_t size) {
    gzFile f = gzopen(path, "wb");
    if (f == NULL) abort();
    if (size > 0 && gzwrite(f, data, (unsigned)size) != (int)size) abort();
    gzclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++, size--;
    int fuzz_labels = mode & 1, storage = (mode >> 1) % 3;
    const char *dir = fz_dir();
    char images[512], labels[512];
    const char *suffix = storage == 0 ? "" : ".gz";
    snprintf(images, sizeof images, "%s/images-idx3-ubyte%s", dir, fuzz_labels ? "" : suffix);
    snprintf(labels, sizeof labels, "%s/labels-idx1-ubyte%s", dir, fuzz_labels ? suffix : "");
    const char *fuzzed = fuzz_labels ? labels : images;
    if (storage == 1) write_gzip(fuzzed, data, size);
    else fz_write_file(fuzzed, data, size);
    if (fuzz_labels) fz_write_file(images, valid_images, sizeof valid_images);
    else fz_write_file(labels, valid_labels, sizeof valid_labels);

    bnd_dataset *sentinel = (bnd_dataset *)(uintptr_t)0x5a5a5a50, *dataset = sentinel;
    bnd_status s = CALL(bnd_dataset_load_idx(images, labels, &dataset));
    UNTOUCHED(s, dataset, sentinel, "bnd_dataset_load_idx");
    if (s == BND_OK) {
        int64_t count = -1, classes = -1, targets = -1, shape[BND_MAX_RANK];
        size_t rank = 0;
        CALL(bnd_dataset_info(dataset, &count, &classes, &targets));
        CALL(bnd_dataset_sample_shape(dataset, shape, BND_MAX_RANK, &rank));
        if (count != 2) { fprintf(stderr, "CONTRACT: loaded %lld samples from a pair of 2\n", (long long)count); abort(); }
        float features[64];
        int32_t got_labels[2];
        int64_t numel = 1;
        for (size_t i = 0; i < rank; i++) numel *= shape[i];
        if (numel * 2 <= 64) CALL(bnd_dataset_get(dataset, 0, 2, features, 64, got_labels, 2, NULL, 0));
        bnd_dataset_free(dataset);
    }
    remove(images);
    remove(labels);
    return 0;
}
