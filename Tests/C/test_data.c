/* Datasets, loaders and the training loop through the public header: IDX files through the data
   exports, the installed Fashion-MNIST, datasets from arrays, loaders, bnd_fit / bnd_evaluate, and the
   data exports' table of bad calls. The IDX reader itself (gzip, every malformed file) is tested in
   Swift, Tests/BNDropTests/IDXTests.swift. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "check.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* ------------------------------------------------------------------------------------------------
   Files in a temporary directory. */

static char g_dir[64];
static char g_paths[64][256];
static int g_path_count = 0;

/* A path inside the temporary directory, remembered for clean-up. */
static const char *temp_path(const char *name) {
    char *path = g_paths[g_path_count++ % 64];
    snprintf(path, 256, "%s/%s", g_dir, name);
    return path;
}

static int write_bytes(const char *path, const uint8_t *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) return 0;
    size_t written = n ? fwrite(bytes, 1, n, f) : 0;
    return fclose(f) == 0 && written == n;
}

/* ------------------------------------------------------------------------------------------------
   IDX files through bnd_dataset_load_idx / load_dir: a plain pair loads; a missing file is
   BND_ERR_IO and a malformed one BND_ERR_FORMAT, each message naming the file. */

/* Three 2 x 2 images (uint8, big-endian dimensions) and their labels, as plain IDX bytes. */
static const uint8_t g_idx_images[] = {0, 0, 0x08, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                       0, 255, 17, 128, 1, 2, 3, 4, 200, 100, 50, 25};
static const uint8_t g_idx_labels[] = {0, 0, 0x08, 1, 0, 0, 0, 3, 4, 0, 2};

static void test_idx_files(void) {
    const char *images = temp_path("images-idx3-ubyte"), *labels = temp_path("labels-idx1-ubyte");
    const char *malformed = temp_path("bad-magic"), *missing = temp_path("no-such-file");
    uint8_t bad_magic[sizeof g_idx_images];
    memcpy(bad_magic, g_idx_images, sizeof bad_magic);
    bad_magic[0] = 1;
    test_begin("IDX: bnd_dataset_load_idx loads a plain pair exactly");
    EXPECT(write_bytes(images, g_idx_images, sizeof g_idx_images) &&
           write_bytes(labels, g_idx_labels, sizeof g_idx_labels) &&
           write_bytes(malformed, bad_magic, sizeof bad_magic), "cannot write the test files");
    bnd_dataset *d = NULL;
    EXPECT_OK(bnd_dataset_load_idx(images, labels, &d));
    if (d != NULL) {
        int64_t count = -1, classes = -1, targets = -1, shape[3] = {0};
        size_t rank = 0;
        float features[12];
        int32_t got_labels[3];
        EXPECT_OK(bnd_dataset_info(d, &count, &classes, &targets));
        EXPECT(count == 3 && classes == 5 && targets == 0, "info: count %lld classes %lld targets %lld",
               (long long)count, (long long)classes, (long long)targets);
        EXPECT_OK(bnd_dataset_sample_shape(d, shape, 3, &rank));
        EXPECT(rank == 3 && shape[0] == 1 && shape[1] == 2 && shape[2] == 2, "sample shape");
        EXPECT_OK(bnd_dataset_get(d, 0, 3, features, 12, got_labels, 3, NULL, 0));
        for (int i = 0; i < 12; i++)
            EXPECT(features[i] == (float)g_idx_images[16 + i] / 255.0f, "pixel %d is %g", i, (double)features[i]);
        for (int i = 0; i < 3; i++) EXPECT(got_labels[i] == g_idx_labels[8 + i], "label %d is %d", i, got_labels[i]);
    }
    bnd_dataset_free(d);
    test_end();

    bnd_dataset *never = NULL;
    BAD_MSG(BND_ERR_IO, missing, bnd_dataset_load_idx(missing, labels, &never));
    BAD_MSG(BND_ERR_IO, missing, bnd_dataset_load_idx(images, missing, &never));
    BAD_MSG(BND_ERR_IO, missing, bnd_dataset_load_dir(missing, BND_SPLIT_TRAIN, &never));
    BAD_MSG(BND_ERR_FORMAT, malformed, bnd_dataset_load_idx(malformed, labels, &never));
    /* The memory limit: the images take 3 x 2 x 2 floats = 48 bytes; the limit is inclusive. */
    bnd_load_params params = bnd_load_default_params();
    test_begin("IDX: bnd_load_default_params is 4 GiB; load_idx_ex loads within its limit");
    EXPECT(params.max_bytes == BND_DEFAULT_LOAD_MAX_BYTES && params.max_bytes == (size_t)4 << 30,
           "default max_bytes %zu", params.max_bytes);
    params.max_bytes = 48;
    bnd_dataset *within = NULL;
    EXPECT_OK(bnd_dataset_load_idx_ex(images, labels, &params, &within));
    bnd_dataset_free(within);
    within = NULL;
    EXPECT_OK(bnd_dataset_load_idx_ex(images, labels, NULL, &within));
    bnd_dataset_free(within);
    test_end();
    params.max_bytes = 47;
    BAD_MSG(BND_ERR_OUT_OF_MEMORY, images, bnd_dataset_load_idx_ex(images, labels, &params, &never));
    BAD_MSG(BND_ERR_OUT_OF_MEMORY, "limit of 47 bytes", bnd_dataset_load_idx_ex(images, labels, &params, &never));
    BAD_MSG(BND_ERR_IO, missing, bnd_dataset_load_dir_ex(missing, BND_SPLIT_TRAIN, &params, &never));
    BAD_MSG(BND_ERR_IO, missing, bnd_dataset_load_idx_ex(missing, labels, NULL, &never));
    BAD_MSG(BND_ERR_FORMAT, malformed, bnd_dataset_load_idx_ex(malformed, labels, NULL, &never));
    test_begin("IDX: failed loads leave *out_dataset untouched");
    EXPECT(never == NULL, "out_dataset was written");
    test_end();
}

static void test_fashion_mnist(void) {
    test_begin("Fashion-MNIST test split from " FASHION_DIR);
    bnd_dataset *d = NULL;
    EXPECT_OK(bnd_dataset_load_dir(FASHION_DIR, BND_SPLIT_TEST, &d));
    if (d != NULL) {
        int64_t count = 0, classes = 0, targets = -1, shape[3] = {0};
        size_t rank = 0;
        EXPECT_OK(bnd_dataset_info(d, &count, &classes, &targets));
        EXPECT(count == 10000 && classes == 10 && targets == 0, "count %lld classes %lld", (long long)count,
               (long long)classes);
        EXPECT_OK(bnd_dataset_sample_shape(d, shape, 3, &rank));
        EXPECT(rank == 3 && shape[0] == 1 && shape[1] == 28 && shape[2] == 28, "shape");
        static float features[100 * 784];
        int32_t labels[100];
        int histogram[10] = {0}, bad = 0;
        for (int64_t first = 0; first < 10000; first += 100) {
            EXPECT_OK(bnd_dataset_get(d, first, 100, features, 100 * 784, labels, 100, NULL, 0));
            for (int i = 0; i < 100; i++) {
                if (labels[i] < 0 || labels[i] > 9) bad++;
                else histogram[labels[i]]++;
            }
            for (int i = 0; i < 100 * 784; i++) bad += !(features[i] >= 0.0f && features[i] <= 1.0f);
        }
        EXPECT(bad == 0, "%d labels or pixels out of range", bad);
        for (int c = 0; c < 10; c++) EXPECT(histogram[c] == 1000, "class %d has %d samples", c, histogram[c]);
        int64_t flat[] = {784};
        EXPECT_OK(bnd_dataset_reshape(d, flat, 1));
        EXPECT_OK(bnd_dataset_sample_shape(d, shape, 3, &rank));
        EXPECT(rank == 1 && shape[0] == 784, "reshaped to {784}");
    }
    bnd_dataset_free(d);
    test_end();
}

/* ------------------------------------------------------------------------------------------------
   Datasets from arrays. */

static void test_from_arrays(void) {
    test_begin("from_labels: round trip via bnd_dataset_get, classes, reshape");
    float features[6 * 6];
    int32_t labels[6] = {1, 0, 2, 1, 4, 0};
    for (int i = 0; i < 36; i++) features[i] = (float)i * 0.5f - 3.0f;
    int64_t shape[] = {2, 3}, got_shape[3];
    size_t rank = 0;
    bnd_dataset *d = NULL;
    EXPECT_OK(bnd_dataset_from_labels(features, shape, 2, labels, 6, 0, &d));
    int64_t count = 0, classes = 0, targets = -1;
    EXPECT_OK(bnd_dataset_info(d, &count, &classes, &targets));
    EXPECT(count == 6 && classes == 5 && targets == 0, "info %lld %lld %lld", (long long)count, (long long)classes,
           (long long)targets);
    EXPECT_OK(bnd_dataset_info(d, NULL, NULL, NULL));
    EXPECT_OK(bnd_dataset_sample_shape(d, got_shape, 2, &rank));
    EXPECT(rank == 2 && got_shape[0] == 2 && got_shape[1] == 3, "shape");
    float out[36];
    int32_t out_labels[6];
    EXPECT_OK(bnd_dataset_get(d, 0, 6, out, 36, out_labels, 6, NULL, 0));
    EXPECT(memcmp(out, features, sizeof features) == 0, "features differ");
    EXPECT(memcmp(out_labels, labels, sizeof labels) == 0, "labels differ");
    memset(out, 0, sizeof out);
    EXPECT_OK(bnd_dataset_get(d, 2, 3, out, 100, NULL, 0, NULL, 0));
    EXPECT(memcmp(out, features + 12, 18 * sizeof(float)) == 0 && out[18] == 0, "range 2..4 features");
    EXPECT_OK(bnd_dataset_get(d, 5, 1, NULL, 0, out_labels, 1, NULL, 0));
    EXPECT(out_labels[0] == 0, "label 5");
    EXPECT_OK(bnd_dataset_get(d, 6, 0, out, 0, out_labels, 0, NULL, 0)); /* empty range at the end */
    int64_t flat[] = {6}, other[] = {3, 1, 2};
    EXPECT_OK(bnd_dataset_reshape(d, flat, 1));
    EXPECT_OK(bnd_dataset_sample_shape(d, got_shape, 3, &rank));
    EXPECT(rank == 1 && got_shape[0] == 6, "reshape {6}");
    EXPECT_OK(bnd_dataset_reshape(d, other, 3));
    EXPECT_OK(bnd_dataset_sample_shape(d, got_shape, 3, &rank));
    EXPECT(rank == 3 && got_shape[0] == 3 && got_shape[1] == 1 && got_shape[2] == 2, "reshape {3, 1, 2}");
    EXPECT_OK(bnd_dataset_get(d, 0, 6, out, 36, NULL, 0, NULL, 0));
    EXPECT(memcmp(out, features, sizeof features) == 0, "reshape moved the data");
    bnd_dataset_free(d);
    d = NULL;
    EXPECT_OK(bnd_dataset_from_labels(features, shape, 2, labels, 6, 10, &d));
    EXPECT_OK(bnd_dataset_info(d, NULL, &classes, NULL));
    EXPECT(classes == 10, "explicit classes %lld", (long long)classes);
    bnd_dataset_free(d);
    bnd_dataset_free(NULL);
    test_end();

    test_begin("from_targets: round trip via bnd_dataset_get");
    float t[4 * 2] = {1, -1, 2, -2, 3, -3, 4.5f, -4.5f};
    int64_t shape9[] = {1, 3, 3};
    d = NULL;
    EXPECT_OK(bnd_dataset_from_targets(features, shape9, 3, t, 2, 4, &d));
    EXPECT_OK(bnd_dataset_info(d, &count, &classes, &targets));
    EXPECT(count == 4 && classes == 0 && targets == 2, "info %lld %lld %lld", (long long)count, (long long)classes,
           (long long)targets);
    float out_t[8];
    EXPECT_OK(bnd_dataset_get(d, 0, 4, out, 36, NULL, 0, out_t, 8));
    EXPECT(memcmp(out, features, 36 * sizeof(float)) == 0 && memcmp(out_t, t, sizeof t) == 0, "round trip");
    EXPECT_OK(bnd_dataset_get(d, 3, 1, NULL, 0, NULL, 0, out_t, 2));
    EXPECT(out_t[0] == 4.5f && out_t[1] == -4.5f, "targets of sample 3");
    bnd_dataset_free(d);
    test_end();
}

/* ------------------------------------------------------------------------------------------------
   Loaders. */

/* n samples of one feature: the sample's index; label = index % 3. */
static bnd_dataset *index_dataset(int n) {
    float f[64];
    int32_t l[64];
    for (int i = 0; i < n; i++) {
        f[i] = (float)i;
        l[i] = i % 3;
    }
    int64_t shape[] = {1};
    bnd_dataset *d = NULL;
    if (bnd_dataset_from_labels(f, shape, 1, l, n, 0, &d) != BND_OK) return NULL;
    return d;
}

/* One epoch's sample indices in order; returns the number of batches; sizes receives batch sizes. */
static int run_epoch(bnd_loader *loader, int *order, int *sizes, int *bad_labels) {
    int batches = 0, k = 0;
    for (;;) {
        const float *in = NULL;
        const int32_t *lab = NULL;
        const float *tg = (const float *)1;
        int64_t b = -1;
        if (bnd_loader_next(loader, &in, &lab, &tg, &b) != BND_OK) return -1;
        if (b == 0) {
            if (in != NULL || lab != NULL || tg != NULL) *bad_labels += 1000;
            break;
        }
        if (tg != NULL) *bad_labels += 1000;
        for (int64_t i = 0; i < b; i++) {
            int index = (int)in[i];
            order[k++] = index;
            if (lab[i] != index % 3) (*bad_labels)++;
        }
        sizes[batches++] = (int)b;
        if (batches > 100) return -1;
    }
    return batches;
}

static void test_loader(void) {
    bnd_dataset *d = index_dataset(10);
    bnd_loader *a = NULL, *b = NULL, *c = NULL;
    int order_a[3][10], order_b[3][10], sizes[16], bad = 0;

    test_begin("loader: every sample once per epoch, partial last batch, 0 at the end");
    EXPECT_OK(bnd_loader_create(d, 4, 1, 42, 0, &a));
    int64_t per_epoch = 0;
    EXPECT_OK(bnd_loader_batches_per_epoch(a, &per_epoch));
    EXPECT(per_epoch == 3, "batches per epoch %lld", (long long)per_epoch);
    for (int e = 0; e < 3; e++) {
        int batches = run_epoch(a, order_a[e], sizes, &bad);
        EXPECT(batches == 3 && sizes[0] == 4 && sizes[1] == 4 && sizes[2] == 2, "epoch %d: %d batches", e, batches);
        int seen[10] = {0};
        for (int i = 0; i < 10; i++) seen[order_a[e][i]]++;
        for (int i = 0; i < 10; i++) EXPECT(seen[i] == 1, "epoch %d: sample %d seen %d times", e, i, seen[i]);
    }
    EXPECT(bad == 0, "labels do not follow their samples (%d)", bad);
    EXPECT(memcmp(order_a[0], order_a[1], sizeof order_a[0]) != 0, "epoch 2 was not reshuffled");
    test_end();

    test_begin("loader: the same seed gives the same batches; another seed others");
    EXPECT_OK(bnd_loader_create(d, 4, 1, 42, 0, &b));
    for (int e = 0; e < 3; e++) run_epoch(b, order_b[e], sizes, &bad);
    EXPECT(memcmp(order_a, order_b, sizeof order_a) == 0, "same seed, different batches");
    bnd_loader_free(b);
    b = NULL;
    EXPECT_OK(bnd_loader_create(d, 4, 1, 43, 0, &b));
    run_epoch(b, order_b[0], sizes, &bad);
    EXPECT(memcmp(order_a[0], order_b[0], sizeof order_a[0]) != 0, "seed 43 gave seed 42's order");
    test_end();

    test_begin("loader: shuffle 0 is in order; drop_last drops the partial batch");
    EXPECT_OK(bnd_loader_create(d, 3, 0, 99, 1, &c));
    EXPECT_OK(bnd_loader_batches_per_epoch(c, &per_epoch));
    EXPECT(per_epoch == 3, "drop_last batches per epoch %lld", (long long)per_epoch);
    int order[10];
    int batches = run_epoch(c, order, sizes, &bad);
    EXPECT(batches == 3 && sizes[2] == 3, "drop_last: %d batches", batches);
    for (int i = 0; i < 9; i++) EXPECT(order[i] == i, "position %d holds %d", i, order[i]);
    bnd_loader_free(c);
    c = NULL;
    EXPECT_OK(bnd_loader_create(d, 100, 0, 0, 0, &c)); /* a batch larger than the dataset */
    batches = run_epoch(c, order, sizes, &bad);
    EXPECT(batches == 1 && sizes[0] == 10, "one batch of 10, got %d", batches);
    bnd_loader_free(c);
    c = NULL;
    EXPECT_OK(bnd_loader_create(d, INT64_MAX, 1, 0, 0, &c)); /* no overflow anywhere */
    EXPECT_OK(bnd_loader_batches_per_epoch(c, &per_epoch));
    batches = run_epoch(c, order, sizes, &bad);
    EXPECT(per_epoch == 1 && batches == 1 && sizes[0] == 10, "INT64_MAX batch: %lld / %d", (long long)per_epoch,
           batches);
    test_end();

    test_begin("loader: keeps its dataset alive after bnd_dataset_free");
    bnd_loader_free(c);
    c = NULL;
    EXPECT_OK(bnd_loader_create(d, 5, 1, 7, 0, &c));
    bnd_dataset_free(d);
    d = NULL;
    bad = 0;
    for (int e = 0; e < 2; e++) {
        batches = run_epoch(c, order, sizes, &bad);
        int seen[10] = {0};
        for (int i = 0; i < 10; i++) seen[order[i]]++;
        for (int i = 0; i < 10; i++) EXPECT(seen[i] == 1, "sample %d seen %d times", i, seen[i]);
        EXPECT(batches == 2, "%d batches", batches);
    }
    EXPECT(bad == 0, "labels wrong after the dataset was freed");
    test_end();

    test_begin("loader: regression batches have targets, no labels");
    float f[6] = {0, 1, 2, 3, 4, 5}, t[12];
    for (int i = 0; i < 6; i++) {
        t[2 * i] = (float)i * 10;
        t[2 * i + 1] = -(float)i;
    }
    int64_t shape[] = {1};
    bnd_dataset *r = NULL;
    bnd_loader *rl = NULL;
    EXPECT_OK(bnd_dataset_from_targets(f, shape, 1, t, 2, 6, &r));
    EXPECT_OK(bnd_loader_create(r, 4, 1, 1, 0, &rl));
    int total = 0;
    for (;;) {
        const float *in = NULL, *tg = NULL;
        const int32_t *lab = (const int32_t *)1;
        int64_t n = 0;
        EXPECT_OK(bnd_loader_next(rl, &in, &lab, &tg, &n));
        if (n == 0) break;
        EXPECT(lab == NULL && tg != NULL, "labels %p targets %p", (const void *)lab, (const void *)tg);
        for (int64_t i = 0; i < n && tg; i++)
            EXPECT(tg[2 * i] == in[i] * 10 && tg[2 * i + 1] == -in[i], "targets do not follow sample %g", in[i]);
        total += (int)n;
        if (total > 6) break;
    }
    EXPECT(total == 6, "%d samples in the epoch", total);
    const float *in = NULL;
    int64_t n = -1;
    EXPECT_OK(bnd_loader_next(rl, &in, NULL, NULL, &n)); /* a new epoch starts; labels/targets not wanted */
    EXPECT(n == 4 && in != NULL, "new epoch's first batch %lld", (long long)n);
    bnd_loader_free(rl);
    bnd_dataset_free(r);
    test_end();

    bnd_loader_free(a);
    bnd_loader_free(b);
    bnd_loader_free(c);
    bnd_loader_free(NULL);
}

/* ------------------------------------------------------------------------------------------------
   Training. */

static uint32_t g_rng = 1;
static float uniform(void) { /* in [-1, 1) */
    g_rng = g_rng * 1664525u + 1013904223u;
    return (float)(g_rng >> 8) / 8388608.0f - 1.0f;
}

/* n points of 2 features, label 1 when 0.8 x + 0.6 y > 0 (margin 0.1). */
static bnd_dataset *separable(int n, uint32_t seed) {
    static float f[2 * 1000];
    static int32_t l[1000];
    g_rng = seed;
    for (int i = 0; i < n;) {
        float x = uniform(), y = uniform(), s = 0.8f * x + 0.6f * y;
        if (fabsf(s) < 0.1f) continue;
        f[2 * i] = x;
        f[2 * i + 1] = y;
        l[i] = s > 0;
        i++;
    }
    int64_t shape[] = {2};
    bnd_dataset *d = NULL;
    if (bnd_dataset_from_labels(f, shape, 1, l, n, 2, &d) != BND_OK) return NULL;
    return d;
}

/* n points of 2 features, target 2x - y + 0.5. */
static bnd_dataset *linear_targets(int n, uint32_t seed) {
    static float f[2 * 1000], t[1000];
    g_rng = seed;
    for (int i = 0; i < n; i++) {
        f[2 * i] = uniform();
        f[2 * i + 1] = uniform();
        t[i] = 2 * f[2 * i] - f[2 * i + 1] + 0.5f;
    }
    int64_t shape[] = {2};
    bnd_dataset *d = NULL;
    if (bnd_dataset_from_targets(f, shape, 1, t, 1, n, &d) != BND_OK) return NULL;
    return d;
}

/* {2} -> Linear(16) -> BatchNorm1d -> ReLU -> Dropout(0.1) -> Linear(outputs) */
static bnd_net *mlp(uint64_t seed, int64_t outputs) {
    int64_t shape[] = {2};
    bnd_net *net = NULL;
    if (bnd_net_create(shape, 1, &net) != BND_OK) return NULL;
    bnd_net_seed(net, seed);
    bnd_net_add_linear(net, 16);
    bnd_net_add_batchnorm(net, NULL);
    bnd_net_add_relu(net);
    bnd_net_add_dropout(net, 0.1f);
    bnd_net_add_linear(net, outputs);
    return net;
}

static bnd_optimizer *sgd(bnd_net *net, float lr) {
    bnd_sgd_params p = bnd_sgd_default_params();
    p.lr = lr;
    p.momentum = 0.9f;
    bnd_optimizer *opt = NULL;
    if (bnd_optimizer_create_sgd(net, &p, &opt) != BND_OK) return NULL;
    return opt;
}

typedef struct {
    int64_t steps, epochs, steps_in_epoch, samples_in_epoch;
    int64_t stop_at_global_step; /* 0: never */
    int64_t stop_at_epoch;       /* -1: never */
    int problems;
    char problem[200];
    bnd_fit_event last_epoch_event;
    int64_t batch_sizes[64];
} recorder;

static void record_problem(recorder *r, const char *what, const bnd_fit_event *e) {
    if (r->problems++ == 0)
        snprintf(r->problem, sizeof r->problem, "%s (kind %d epoch %lld step %lld global %lld)", what, e->kind,
                 (long long)e->epoch, (long long)e->step, (long long)e->global_step);
}

static int32_t record(const bnd_fit_event *e, void *user_data) {
    recorder *r = user_data;
    if (e->reserved != 0) record_problem(r, "reserved not 0", e);
    if (!(e->elapsed_seconds >= 0) || !(e->samples_per_second >= 0)) record_problem(r, "timing", e);
    if (!isfinite(e->loss)) record_problem(r, "loss not finite", e);
    if (e->kind == BND_EVENT_STEP) {
        if (e->epoch != r->epochs) record_problem(r, "step event: wrong epoch", e);
        if (e->step != r->steps_in_epoch) record_problem(r, "step event: wrong step", e);
        if (e->global_step != r->steps + 1) record_problem(r, "step event: wrong global step", e);
        if (!isnan(e->validation_loss) || !isnan(e->validation_accuracy)) record_problem(r, "step: validation not NaN", e);
        if (r->steps < 64) r->batch_sizes[r->steps] = e->batch_size;
        r->steps++;
        r->steps_in_epoch++;
        r->samples_in_epoch += e->batch_size;
        return r->stop_at_global_step != r->steps;
    }
    if (e->kind != BND_EVENT_EPOCH) {
        record_problem(r, "unknown kind", e);
        return 1;
    }
    if (e->epoch != r->epochs) record_problem(r, "epoch event: wrong epoch", e);
    if (e->step != r->steps_in_epoch) record_problem(r, "epoch event: wrong step count", e);
    if (e->global_step != r->steps) record_problem(r, "epoch event: wrong global step", e);
    if (e->batch_size != r->samples_in_epoch) record_problem(r, "epoch event: wrong sample count", e);
    r->last_epoch_event = *e;
    r->epochs++;
    r->steps_in_epoch = 0;
    r->samples_in_epoch = 0;
    return r->stop_at_epoch != e->epoch;
}

static recorder new_recorder(void) {
    recorder r;
    memset(&r, 0, sizeof r);
    r.stop_at_epoch = -1;
    return r;
}

/* 1 when every tensor of a and b is bit-for-bit equal. */
static int nets_identical(bnd_net *a, bnd_net *b) {
    size_t count = 0, count_b = 0;
    if (bnd_net_tensor_count(a, &count) != BND_OK || bnd_net_tensor_count(b, &count_b) != BND_OK) return 0;
    if (count != count_b) return 0;
    for (size_t i = 0; i < count; i++) {
        char name[BND_NAME_MAX];
        size_t numel = 0;
        static float x[4096], y[4096];
        if (bnd_net_tensor_name(a, i, name, sizeof name) != BND_OK) return 0;
        if (bnd_net_tensor_numel(a, name, &numel) != BND_OK || numel > 4096) return 0;
        if (bnd_net_get_tensor(a, name, x, 4096) != BND_OK || bnd_net_get_tensor(b, name, y, 4096) != BND_OK) return 0;
        if (memcmp(x, y, numel * sizeof(float)) != 0) return 0;
    }
    return 1;
}

static void test_fit(void) {
    bnd_dataset *train = separable(200, 11), *test = separable(300, 12);
    bnd_net *net = mlp(5, 2);
    bnd_optimizer *opt = sgd(net, 0.05f);

    test_begin("fit: default params");
    bnd_fit_params p = bnd_fit_default_params();
    EXPECT(p.epochs == 1 && p.batch_size == 64 && p.shuffle_seed == 0 && p.drop_last == 0 &&
           p.loss == BND_LOSS_AUTO && p.eval_batch_size == 256, "defaults");
    test_end();

    test_begin("fit: a separable problem reaches > 95% accuracy; callback counts steps and epochs");
    double loss_before = 0, acc_before = 0, loss_after = 0, acc_after = 0;
    EXPECT_OK(bnd_evaluate(net, test, 64, &loss_before, &acc_before));
    p.epochs = 20;
    p.batch_size = 32; /* 200 = 6 x 32 + 8 */
    p.shuffle_seed = 3;
    recorder r = new_recorder();
    bnd_fit_summary s;
    memset(&s, 0xAB, sizeof s);
    EXPECT_OK(bnd_fit(net, opt, train, NULL, &p, record, &r, &s));
    EXPECT(r.problems == 0, "%d callback problems, first: %s", r.problems, r.problem);
    EXPECT(r.steps == 140 && r.epochs == 20, "callback saw %lld steps, %lld epochs", (long long)r.steps,
           (long long)r.epochs);
    EXPECT(r.batch_sizes[0] == 32 && r.batch_sizes[6] == 8 && r.batch_sizes[7] == 32, "batch sizes");
    EXPECT(s.steps == 140 && s.epochs_completed == 20 && s.stopped_early == 0 && s.reserved == 0 && s.samples == 4000,
           "summary: steps %lld epochs %lld stopped %d samples %lld", (long long)s.steps, (long long)s.epochs_completed,
           s.stopped_early, (long long)s.samples);
    EXPECT(isfinite(s.last_loss) && s.last_epoch_loss == r.last_epoch_event.loss && s.seconds >= 0,
           "summary losses %g %g", s.last_loss, s.last_epoch_loss);
    EXPECT(isnan(s.validation_loss) && isnan(s.validation_accuracy), "validation without a validation set");
    EXPECT(isnan(r.last_epoch_event.validation_loss) && isnan(r.last_epoch_event.validation_accuracy),
           "epoch event validation without a validation set");
    EXPECT_OK(bnd_evaluate(net, test, 64, &loss_after, &acc_after));
    EXPECT(acc_after > 0.95 && loss_after < loss_before, "accuracy %.3f -> %.3f, loss %.3f -> %.3f", acc_before,
           acc_after, loss_before, loss_after);
    double loss_b = 0, acc_b = 0;
    EXPECT_OK(bnd_evaluate(net, test, 7, &loss_b, &acc_b)); /* batch size does not matter in eval mode */
    EXPECT(acc_b == acc_after && fabs(loss_b - loss_after) < 1e-5, "eval batch 7: %g %g", acc_b, loss_b);
    EXPECT_OK(bnd_evaluate(net, test, 1000000, NULL, NULL));
    int32_t training = -1;
    EXPECT_OK(bnd_net_is_training(net, &training));
    EXPECT(training == 1, "fit/evaluate changed the mode");
    test_end();

    test_begin("fit: a callback returning 0 at a step stops there");
    r = new_recorder();
    r.stop_at_global_step = 10;
    EXPECT_OK(bnd_fit(net, opt, train, NULL, &p, record, &r, &s));
    EXPECT(s.steps == 10 && s.epochs_completed == 1 && s.stopped_early == 1 && s.samples == 200 + 3 * 32,
           "stopped: steps %lld epochs %lld stopped %d samples %lld", (long long)s.steps,
           (long long)s.epochs_completed, s.stopped_early, (long long)s.samples);
    EXPECT(r.steps == 10 && r.epochs == 1, "callback after stopping: %lld steps", (long long)r.steps);
    test_end();

    test_begin("fit: a callback returning 0 at an epoch stops there; not 'stopped' at the last epoch");
    r = new_recorder();
    r.stop_at_epoch = 1;
    EXPECT_OK(bnd_fit(net, opt, train, NULL, &p, record, &r, &s));
    EXPECT(s.steps == 14 && s.epochs_completed == 2 && s.stopped_early == 1, "steps %lld epochs %lld stopped %d",
           (long long)s.steps, (long long)s.epochs_completed, s.stopped_early);
    r = new_recorder();
    r.stop_at_epoch = 2;
    p.epochs = 3;
    EXPECT_OK(bnd_fit(net, opt, train, NULL, &p, record, &r, &s));
    EXPECT(s.steps == 21 && s.epochs_completed == 3 && s.stopped_early == 0, "steps %lld epochs %lld stopped %d",
           (long long)s.steps, (long long)s.epochs_completed, s.stopped_early);
    test_end();

    test_begin("fit: validation figures at epoch events; net mode restored; NULL params, callback, summary");
    EXPECT_OK(bnd_net_set_training(net, 0));
    r = new_recorder();
    p.epochs = 2;
    p.eval_batch_size = 50;
    EXPECT_OK(bnd_fit(net, opt, train, test, &p, record, &r, &s));
    EXPECT(r.problems == 0, "%d callback problems, first: %s", r.problems, r.problem);
    EXPECT(isfinite(r.last_epoch_event.validation_loss) && r.last_epoch_event.validation_accuracy >= 0.95 &&
           r.last_epoch_event.validation_accuracy <= 1, "epoch event validation %g %g", r.last_epoch_event.validation_loss,
           r.last_epoch_event.validation_accuracy);
    EXPECT(s.validation_loss == r.last_epoch_event.validation_loss &&
           s.validation_accuracy == r.last_epoch_event.validation_accuracy, "summary validation differs from the event");
    double v_loss = 0, v_acc = 0;
    EXPECT_OK(bnd_evaluate(net, test, 50, &v_loss, &v_acc));
    EXPECT(v_loss == s.validation_loss && v_acc == s.validation_accuracy, "evaluate %g %g, fit %g %g",
           v_loss, v_acc, s.validation_loss, s.validation_accuracy);
    EXPECT_OK(bnd_net_is_training(net, &training));
    EXPECT(training == 0, "fit did not restore eval mode");
    EXPECT_OK(bnd_net_set_training(net, 1));
    EXPECT_OK(bnd_fit(net, opt, train, NULL, NULL, NULL, NULL, NULL));
    EXPECT_OK(bnd_fit(net, opt, train, NULL, NULL, NULL, NULL, &s));
    EXPECT(s.steps == 4 && s.epochs_completed == 1 && s.samples == 200, "default params: %lld steps", (long long)s.steps);
    bnd_fit_params huge = bnd_fit_default_params();
    huge.batch_size = INT64_MAX;
    huge.eval_batch_size = INT64_MAX;
    EXPECT_OK(bnd_fit(net, opt, train, test, &huge, NULL, NULL, &s));
    EXPECT(s.steps == 1 && s.samples == 200, "INT64_MAX batch: %lld steps", (long long)s.steps);
    huge.drop_last = 1;
    EXPECT(bnd_fit(net, opt, train, test, &huge, NULL, NULL, &s) == BND_ERR_SHAPE, "drop_last, no batch");
    test_end();

    test_begin("fit: regression lowers the MSE; evaluate's accuracy is NaN");
    bnd_dataset *rtrain = linear_targets(256, 21), *rtest = linear_targets(100, 22);
    bnd_net *rnet = mlp(9, 1);
    bnd_optimizer *ropt = sgd(rnet, 0.02f);
    double mse_before = 0, mse_after = 0, acc = 0;
    EXPECT_OK(bnd_evaluate(rnet, rtest, 32, &mse_before, &acc));
    EXPECT(isnan(acc), "regression accuracy %g", acc);
    bnd_fit_params rp = bnd_fit_default_params();
    rp.epochs = 15;
    rp.batch_size = 16;
    rp.loss = BND_LOSS_MSE;
    EXPECT_OK(bnd_fit(rnet, ropt, rtrain, rtest, &rp, NULL, NULL, &s));
    EXPECT(isfinite(s.validation_loss) && isnan(s.validation_accuracy), "regression validation %g %g",
           s.validation_loss, s.validation_accuracy);
    EXPECT_OK(bnd_evaluate(rnet, rtest, 32, &mse_after, NULL));
    EXPECT(mse_after < 0.25 * mse_before, "MSE %g -> %g", mse_before, mse_after);
    bnd_optimizer_free(ropt);
    bnd_net_free(rnet);
    bnd_dataset_free(rtrain);
    bnd_dataset_free(rtest);
    test_end();

    test_begin("fit: same initial state and shuffle_seed give identical nets");
    bnd_net *a = mlp(77, 2), *b = mlp(77, 2), *c = mlp(77, 2);
    bnd_optimizer *oa = sgd(a, 0.05f), *ob = sgd(b, 0.05f), *oc = sgd(c, 0.05f);
    EXPECT(nets_identical(a, b), "the nets differ before training");
    bnd_fit_params dp = bnd_fit_default_params();
    dp.epochs = 3;
    dp.batch_size = 24;
    dp.shuffle_seed = 1234;
    EXPECT_OK(bnd_fit(a, oa, train, test, &dp, NULL, NULL, NULL));
    EXPECT_OK(bnd_fit(b, ob, train, test, &dp, NULL, NULL, NULL));
    EXPECT(nets_identical(a, b), "same seed, different nets");
    dp.shuffle_seed = 1235;
    EXPECT_OK(bnd_fit(c, oc, train, test, &dp, NULL, NULL, NULL));
    EXPECT(!nets_identical(a, c), "another shuffle seed gave the same net");
    bnd_optimizer_free(oa);
    bnd_optimizer_free(ob);
    bnd_optimizer_free(oc);
    bnd_net_free(a);
    bnd_net_free(b);
    bnd_net_free(c);
    test_end();

    bnd_optimizer_free(opt);
    bnd_net_free(net);
    bnd_dataset_free(train);
    bnd_dataset_free(test);
}

/* Several threads train their own nets on one shared dataset at once; all end identical. */
typedef struct {
    const bnd_dataset *data;
    bnd_net *net;
    bnd_status status;
} fit_job;

static void *fit_thread(void *arg) {
    fit_job *job = arg;
    bnd_optimizer *opt = sgd(job->net, 0.05f);
    bnd_fit_params p = bnd_fit_default_params();
    p.epochs = 3;
    p.batch_size = 20;
    p.shuffle_seed = 5;
    job->status = opt ? bnd_fit(job->net, opt, job->data, job->data, &p, NULL, NULL, NULL) : BND_ERR_INTERNAL;
    bnd_optimizer_free(opt);
    return NULL;
}

static void test_shared_dataset_threads(void) {
    test_begin("fit: three threads share one dataset and end identical");
    bnd_dataset *data = separable(200, 31);
    fit_job jobs[3];
    pthread_t threads[3];
    for (int i = 0; i < 3; i++) {
        jobs[i].data = data;
        jobs[i].net = mlp(8, 2);
        jobs[i].status = BND_ERR_INTERNAL;
        EXPECT(pthread_create(&threads[i], NULL, fit_thread, &jobs[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < 3; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < 3; i++) EXPECT(jobs[i].status == BND_OK, "thread %d: status %d", i, jobs[i].status);
    EXPECT(nets_identical(jobs[0].net, jobs[1].net) && nets_identical(jobs[0].net, jobs[2].net), "nets differ");
    for (int i = 0; i < 3; i++) bnd_net_free(jobs[i].net);
    bnd_dataset_free(data);
    test_end();
}

/* ------------------------------------------------------------------------------------------------
   Bad calls. */

/* bnd_dataset_load_dir / load_dir_ex on folders holding the standard names: a plain pair loads, a
   malformed image file is BND_ERR_FORMAT, images that declare more than the limit (an 8.6 GB header
   against the default 4 GiB, 48 bytes against 47) BND_ERR_OUT_OF_MEMORY before anything is allocated. */
static void test_idx_folders(void) {
    static const char *const folders[] = {"ok", "malformed", "too-large"};
    static const uint8_t huge_header[16] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0xB5, 0x04, 0, 0, 0xB5, 0x04};
    static const uint8_t one_label[9] = {0, 0, 8, 1, 0, 0, 0, 1, 0};
    char paths[3][2][300], folder[3][200];
    uint8_t bad_magic[sizeof g_idx_images];
    memcpy(bad_magic, g_idx_images, sizeof bad_magic);
    bad_magic[0] = 1;
    int written = 1;
    for (int i = 0; i < 3; i++) {
        snprintf(folder[i], sizeof folder[i], "%.63s/%s", g_dir, folders[i]);
        snprintf(paths[i][0], sizeof paths[i][0], "%.199s/train-images-idx3-ubyte", folder[i]);
        snprintf(paths[i][1], sizeof paths[i][1], "%.199s/train-labels-idx1-ubyte", folder[i]);
        written = written && mkdir(folder[i], 0700) == 0;
    }
    written = written && write_bytes(paths[0][0], g_idx_images, sizeof g_idx_images) &&
              write_bytes(paths[0][1], g_idx_labels, sizeof g_idx_labels) &&
              write_bytes(paths[1][0], bad_magic, sizeof bad_magic) &&
              write_bytes(paths[1][1], g_idx_labels, sizeof g_idx_labels) &&
              write_bytes(paths[2][0], huge_header, sizeof huge_header) &&
              write_bytes(paths[2][1], one_label, sizeof one_label);
    test_begin("IDX folders: load_dir and load_dir_ex load a plain pair");
    EXPECT(written, "cannot write the test folders in %s", g_dir);
    bnd_dataset *d = NULL;
    int64_t count = 0;
    EXPECT_OK(bnd_dataset_load_dir(folder[0], BND_SPLIT_TRAIN, &d));
    if (d != NULL) EXPECT_OK(bnd_dataset_info(d, &count, NULL, NULL));
    EXPECT(count == 3, "load_dir: %lld samples, expected 3", (long long)count);
    bnd_dataset_free(d);
    d = NULL;
    count = 0;
    EXPECT_OK(bnd_dataset_load_dir_ex(folder[0], BND_SPLIT_TRAIN, NULL, &d));
    if (d != NULL) EXPECT_OK(bnd_dataset_info(d, &count, NULL, NULL));
    EXPECT(count == 3, "load_dir_ex: %lld samples, expected 3", (long long)count);
    bnd_dataset_free(d);
    test_end();
    if (written) {
        bnd_dataset *never = NULL;
        bnd_load_params params = bnd_load_default_params();
        params.max_bytes = 47;
        BAD_MSG(BND_ERR_FORMAT, paths[1][0], bnd_dataset_load_dir(folder[1], BND_SPLIT_TRAIN, &never));
        BAD_MSG(BND_ERR_FORMAT, paths[1][0], bnd_dataset_load_dir_ex(folder[1], BND_SPLIT_TRAIN, NULL, &never));
        BAD_MSG(BND_ERR_OUT_OF_MEMORY, "memory limit", bnd_dataset_load_dir(folder[2], BND_SPLIT_TRAIN, &never));
        BAD_MSG(BND_ERR_OUT_OF_MEMORY, "limit of 47 bytes",
                bnd_dataset_load_dir_ex(folder[0], BND_SPLIT_TRAIN, &params, &never));
        test_begin("IDX folders: failed loads leave *out_dataset untouched");
        EXPECT(never == NULL, "out_dataset was written");
        test_end();
    }
    for (int i = 0; i < 3; i++) {
        unlink(paths[i][0]);
        unlink(paths[i][1]);
        rmdir(folder[i]);
    }
}

static int32_t add_a_layer(const bnd_fit_event *e, void *user_data) {
    (void)e;
    bnd_net_add_relu(user_data);
    return 1;
}

static void test_bad_calls(void) {
    float f[64] = {0}, out[64];
    int32_t l[8] = {0, 1, 0, 1, 0, 1, 0, 1}, neg[8] = {0, 1, -1, 1, 0, 1, 0, 1}, lab_out[8];
    int64_t s2[] = {2}, s0[] = {0}, sneg[] = {-2}, s4[] = {1, 1, 2, 1}, sbig[] = {INT64_MAX, 2}, s7[] = {7};
    int64_t dims[4];
    size_t rank = 0;
    bnd_dataset *d = NULL, *never = NULL;
    bnd_loader *loader = NULL, *no_loader = NULL;
    const char *file = temp_path("whatever");

    /* ---- loading */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_load_idx(NULL, file, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_load_idx(file, NULL, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_load_idx(file, file, NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_load_dir(NULL, BND_SPLIT_TRAIN, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_load_dir(g_dir, BND_SPLIT_TRAIN, NULL));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "split", bnd_dataset_load_dir(g_dir, 2, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_load_dir(g_dir, -1, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_load_idx_ex(NULL, file, NULL, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_load_idx_ex(file, NULL, NULL, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_load_idx_ex(file, file, NULL, NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_load_dir_ex(NULL, BND_SPLIT_TRAIN, NULL, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_load_dir_ex(g_dir, BND_SPLIT_TRAIN, NULL, NULL));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "split", bnd_dataset_load_dir_ex(g_dir, 2, NULL, &never));

    /* ---- from arrays */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_from_labels(NULL, s2, 1, l, 4, 0, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_from_labels(f, NULL, 1, l, 4, 0, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_from_labels(f, s2, 1, NULL, 4, 0, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_from_labels(f, s2, 1, l, 4, 0, NULL));
    BAD_MSG(BND_ERR_SHAPE, "rank", bnd_dataset_from_labels(f, s2, 0, l, 4, 0, &never));
    BAD_MSG(BND_ERR_SHAPE, "rank", bnd_dataset_from_labels(f, s4, 4, l, 4, 0, &never));
    BAD(BND_ERR_SHAPE, bnd_dataset_from_labels(f, s2, SIZE_MAX, l, 4, 0, &never));
    BAD(BND_ERR_SHAPE, bnd_dataset_from_labels(f, s0, 1, l, 4, 0, &never));
    BAD(BND_ERR_SHAPE, bnd_dataset_from_labels(f, sneg, 1, l, 4, 0, &never));
    BAD(BND_ERR_SHAPE, bnd_dataset_from_labels(f, sbig, 2, l, 4, 0, &never));
    BAD_MSG(BND_ERR_SHAPE, "count", bnd_dataset_from_labels(f, s2, 1, l, 0, 0, &never));
    BAD(BND_ERR_SHAPE, bnd_dataset_from_labels(f, s2, 1, l, -3, 0, &never));
    BAD(BND_ERR_SHAPE, bnd_dataset_from_labels(f, s2, 1, l, INT64_MAX, 0, &never)); /* count x 2 overflows */
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "negative", bnd_dataset_from_labels(f, s2, 1, neg, 8, 0, &never));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "classes", bnd_dataset_from_labels(f, s2, 1, l, 4, 1, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_from_labels(f, s2, 1, l, 4, -2, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_from_targets(NULL, s2, 1, f, 1, 4, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_from_targets(f, NULL, 1, f, 1, 4, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_from_targets(f, s2, 1, NULL, 1, 4, &never));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_from_targets(f, s2, 1, f, 1, 4, NULL));
    BAD(BND_ERR_SHAPE, bnd_dataset_from_targets(f, s2, 0, f, 1, 4, &never));
    BAD(BND_ERR_SHAPE, bnd_dataset_from_targets(f, s4, 4, f, 1, 4, &never));
    BAD(BND_ERR_SHAPE, bnd_dataset_from_targets(f, s2, 1, f, 0, 4, &never));
    BAD(BND_ERR_SHAPE, bnd_dataset_from_targets(f, s2, 1, f, -1, 4, &never));
    BAD(BND_ERR_SHAPE, bnd_dataset_from_targets(f, s2, 1, f, 1, 0, &never));
    BAD(BND_ERR_SHAPE, bnd_dataset_from_targets(f, s2, 1, f, INT64_MAX, 4, &never));
    test_begin("failed dataset creation leaves *out_dataset untouched");
    EXPECT(never == NULL, "out_dataset was written");
    test_end();

    /* ---- inspecting and reading: d has 8 samples of {2}, labels */
    EXPECT_OK(bnd_dataset_from_labels(f, s2, 1, l, 8, 0, &d));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_info(NULL, NULL, NULL, NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_sample_shape(NULL, dims, 4, &rank));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_sample_shape(d, NULL, 4, &rank));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_sample_shape(d, dims, 4, NULL));
    rank = 0;
    BAD(BND_ERR_SHAPE, bnd_dataset_sample_shape(d, dims, 0, &rank));
    test_begin("sample_shape: a small capacity still reports the rank");
    EXPECT(rank == 1, "rank %zu", rank);
    test_end();
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_reshape(NULL, s2, 1));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_reshape(d, NULL, 1));
    BAD(BND_ERR_SHAPE, bnd_dataset_reshape(d, s2, 0));
    BAD(BND_ERR_SHAPE, bnd_dataset_reshape(d, s4, 4));
    BAD(BND_ERR_SHAPE, bnd_dataset_reshape(d, s0, 1));
    BAD_MSG(BND_ERR_SHAPE, "reshape", bnd_dataset_reshape(d, s7, 1));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_dataset_get(NULL, 0, 1, out, 64, NULL, 0, NULL, 0));
    BAD(BND_ERR_SHAPE, bnd_dataset_get(d, -1, 1, out, 64, NULL, 0, NULL, 0));
    BAD(BND_ERR_SHAPE, bnd_dataset_get(d, 0, -1, out, 64, NULL, 0, NULL, 0));
    BAD(BND_ERR_SHAPE, bnd_dataset_get(d, 0, 9, out, 64, NULL, 0, NULL, 0));
    BAD(BND_ERR_SHAPE, bnd_dataset_get(d, 8, 1, out, 64, NULL, 0, NULL, 0));
    BAD(BND_ERR_SHAPE, bnd_dataset_get(d, 7, INT64_MAX, out, 64, NULL, 0, NULL, 0));
    BAD(BND_ERR_SHAPE, bnd_dataset_get(d, INT64_MAX, 1, out, 64, NULL, 0, NULL, 0));
    BAD_MSG(BND_ERR_SHAPE, "features has room for 15", bnd_dataset_get(d, 0, 8, out, 15, NULL, 0, NULL, 0));
    BAD_MSG(BND_ERR_SHAPE, "labels has room for 7", bnd_dataset_get(d, 0, 8, out, 16, lab_out, 7, NULL, 0));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "not targets", bnd_dataset_get(d, 0, 1, NULL, 0, NULL, 0, out, 64));

    bnd_dataset *r = NULL;
    EXPECT_OK(bnd_dataset_from_targets(f, s2, 1, f, 3, 8, &r)); /* 8 samples of {2}, 3 targets */
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "not labels", bnd_dataset_get(r, 0, 1, NULL, 0, lab_out, 8, NULL, 0));
    BAD_MSG(BND_ERR_SHAPE, "targets has room for 23", bnd_dataset_get(r, 0, 8, NULL, 0, NULL, 0, out, 23));

    /* ---- loaders */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_loader_create(NULL, 4, 1, 0, 0, &no_loader));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_loader_create(d, 4, 1, 0, 0, NULL));
    BAD(BND_ERR_SHAPE, bnd_loader_create(d, 0, 1, 0, 0, &no_loader));
    BAD(BND_ERR_SHAPE, bnd_loader_create(d, -4, 1, 0, 0, &no_loader));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "shuffle", bnd_loader_create(d, 4, 2, 0, 0, &no_loader));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "drop_last", bnd_loader_create(d, 4, 1, 0, 2, &no_loader));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_loader_create(d, 4, -1, 0, 0, &no_loader));
    BAD(BND_ERR_SHAPE, bnd_loader_create(d, 9, 1, 0, 1, &no_loader)); /* drop_last, no full batch */
    test_begin("failed loader creation leaves *out_loader untouched");
    EXPECT(no_loader == NULL, "out_loader was written");
    test_end();
    EXPECT_OK(bnd_loader_create(d, 3, 1, 0, 0, &loader));
    const float *in = NULL;
    int64_t n = 0;
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_loader_next(NULL, &in, NULL, NULL, &n));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_loader_next(loader, NULL, NULL, NULL, &n));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_loader_next(loader, &in, NULL, NULL, NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_loader_batches_per_epoch(NULL, &n));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_loader_batches_per_epoch(loader, NULL));
    bnd_loader_free(loader);

    /* ---- fit and evaluate: net {2} -> ... -> 2 outputs */
    bnd_net *net = mlp(1, 2), *other = mlp(1, 2), *net3 = mlp(1, 3);
    bnd_optimizer *opt = sgd(net, 0.1f), *other_opt = sgd(other, 0.1f), *opt3 = sgd(net3, 0.1f);
    bnd_fit_params p = bnd_fit_default_params();
    p.batch_size = 4;
    bnd_fit_summary summary;
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_fit(NULL, opt, d, NULL, &p, NULL, NULL, &summary));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_fit(net, NULL, d, NULL, &p, NULL, NULL, &summary));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_fit(net, opt, NULL, NULL, &p, NULL, NULL, &summary));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "different network", bnd_fit(net, other_opt, d, NULL, &p, NULL, NULL, NULL));
    bnd_fit_params q = p;
    q.epochs = 0;
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "epochs", bnd_fit(net, opt, d, NULL, &q, NULL, NULL, NULL));
    q.epochs = -1;
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_fit(net, opt, d, NULL, &q, NULL, NULL, NULL));
    q = p;
    q.batch_size = 0;
    BAD_MSG(BND_ERR_SHAPE, "batch_size", bnd_fit(net, opt, d, NULL, &q, NULL, NULL, NULL));
    q = p;
    q.eval_batch_size = 0;
    BAD_MSG(BND_ERR_SHAPE, "eval_batch_size", bnd_fit(net, opt, d, d, &q, NULL, NULL, NULL));
    q = p;
    q.drop_last = 2;
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "drop_last", bnd_fit(net, opt, d, NULL, &q, NULL, NULL, NULL));
    q = p;
    q.drop_last = 1;
    q.batch_size = 9;
    BAD_MSG(BND_ERR_SHAPE, "drop_last", bnd_fit(net, opt, d, NULL, &q, NULL, NULL, NULL));
    q = p;
    q.batch_size = 7; /* 8 samples: a last batch of 1, which BatchNorm1d cannot train on */
    float tracked_before = -1, tracked_after = -2;
    EXPECT_OK(bnd_net_get_tensor(net, "1.num_batches_tracked", &tracked_before, 1));
    BAD_MSG(BND_ERR_SHAPE, "last batch", bnd_fit(net, opt, d, NULL, &q, NULL, NULL, NULL));
    test_begin("fit refuses a last batch of one through BatchNorm before the first step");
    EXPECT_OK(bnd_net_get_tensor(net, "1.num_batches_tracked", &tracked_after, 1));
    EXPECT(tracked_before == tracked_after, "num_batches_tracked moved from %g to %g", tracked_before, tracked_after);
    test_end();
    q = p;
    q.loss = 5;
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "loss", bnd_fit(net, opt, d, NULL, &q, NULL, NULL, NULL));
    q.loss = -2;
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_fit(net, opt, d, NULL, &q, NULL, NULL, NULL));
    q.loss = BND_LOSS_MSE;
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "mse needs", bnd_fit(net, opt, d, NULL, &q, NULL, NULL, NULL));
    q.loss = BND_LOSS_CROSS_ENTROPY;
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_fit(net3, opt3, r, NULL, &q, NULL, NULL, NULL));
    BAD_MSG(BND_ERR_SHAPE, "target", bnd_fit(net, opt, r, NULL, &p, NULL, NULL, NULL)); /* 3 targets, 2 outputs */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_fit(net, opt, d, r, &p, NULL, NULL, NULL));       /* validation of another kind */

    bnd_dataset *wide = NULL, *many = NULL;
    int32_t l3[8] = {0, 1, 2, 0, 1, 2, 0, 1};
    int64_t s3[] = {3};
    EXPECT_OK(bnd_dataset_from_labels(f, s3, 1, l, 8, 0, &wide)); /* {3} samples */
    EXPECT_OK(bnd_dataset_from_labels(f, s2, 1, l3, 8, 0, &many)); /* labels up to 2 */
    BAD_MSG(BND_ERR_SHAPE, "samples", bnd_fit(net, opt, wide, NULL, &p, NULL, NULL, NULL));
    BAD_MSG(BND_ERR_SHAPE, "validation", bnd_fit(net, opt, d, wide, &p, NULL, NULL, NULL));
    BAD_MSG(BND_ERR_SHAPE, "classes", bnd_fit(net, opt, many, NULL, &p, NULL, NULL, NULL));
    BAD_MSG(BND_ERR_SHAPE, "classes", bnd_fit(net, opt, d, many, &p, NULL, NULL, NULL));
    EXPECT_OK(bnd_fit(net3, opt3, many, NULL, &p, NULL, NULL, NULL)); /* 3 outputs take labels 0..2 */

    BAD(BND_ERR_INVALID_ARGUMENT, bnd_evaluate(NULL, d, 4, NULL, NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_evaluate(net, NULL, 4, NULL, NULL));
    BAD(BND_ERR_SHAPE, bnd_evaluate(net, d, 0, NULL, NULL));
    BAD(BND_ERR_SHAPE, bnd_evaluate(net, d, -1, NULL, NULL));
    BAD(BND_ERR_SHAPE, bnd_evaluate(net, wide, 4, NULL, NULL));
    BAD(BND_ERR_SHAPE, bnd_evaluate(net, many, 4, NULL, NULL));
    BAD(BND_ERR_SHAPE, bnd_evaluate(net, r, 4, NULL, NULL));

    /* NaN features: the first step refuses them */
    float nan_f[16];
    for (int i = 0; i < 16; i++) nan_f[i] = i == 5 ? NAN : 0.5f;
    bnd_dataset *bad_values = NULL;
    EXPECT_OK(bnd_dataset_from_labels(nan_f, s2, 1, l, 8, 0, &bad_values));
    q = p;
    q.batch_size = 8;
    BAD(BND_ERR_NUMERIC, bnd_fit(net, opt, bad_values, NULL, &q, NULL, NULL, NULL));
    /* a batch of one sample through BatchNorm: a training step's own status */
    q.batch_size = 7; /* 8 = 7 + 1 */
    BAD(BND_ERR_SHAPE, bnd_fit(net, opt, d, NULL, &q, NULL, NULL, NULL));
    /* the optimizer no longer fits a net that gained layers (here: during the callback) */
    BAD(BND_ERR_STATE, bnd_fit(net, opt, d, NULL, &p, add_a_layer, net, NULL));
    BAD(BND_ERR_STATE, bnd_fit(net, opt, d, NULL, &p, NULL, NULL, NULL));

    bnd_dataset_free(bad_values);
    bnd_dataset_free(wide);
    bnd_dataset_free(many);
    bnd_optimizer_free(opt);
    bnd_optimizer_free(other_opt);
    bnd_optimizer_free(opt3);
    bnd_net_free(net);
    bnd_net_free(other);
    bnd_net_free(net3);
    bnd_dataset_free(r);
    bnd_dataset_free(d);
}

void run_data_tests(void) {
    if (!make_temp_dir(g_dir, sizeof g_dir, "data")) return;
    test_idx_files();
    test_idx_folders();
    test_fashion_mnist();
    test_from_arrays();
    test_loader();
    test_fit();
    test_shared_dataset_threads();
    test_bad_calls();
    int n = g_path_count < 64 ? g_path_count : 64;
    for (int i = 0; i < n; i++) unlink(g_paths[i]);
    rmdir(g_dir);
}
