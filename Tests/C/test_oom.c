/* Allocation failure is a status, never a trap: each call whose allocation a caller or a file sizes runs
   in a child process (fork) under an address-space limit (setrlimit RLIMIT_AS) a little above what the
   process already maps. The child must return the expected status and exit normally, not die by a
   signal (a Swift array that cannot be allocated traps). Prints the out-of-memory table.

   Under AddressSanitizer (make test-asan) the limit counts ASan's shadow mappings too, which are already
   mapped when the child starts, and the Makefile sets allocator_may_return_null=1 so that an allocation
   the limit refuses returns NULL as glibc's malloc does, rather than ASan aborting.

   The IDX bomb (a ~2 MB gzip file declaring 1 x 46340 x 46340 pixels, 8.6 GB as floats) is written with
   zlib's deflate, looked up at run time: libbndrop.so links zlib, so it is already loaded, and the test
   program needs no -lz of its own. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>
#include "check.h"

#define MIB ((size_t)1 << 20)

static char g_dir[256];

/* The process's mapped address space now (VmSize), in bytes. */
static size_t address_space(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f != NULL) {
        if (fscanf(f, "%lu", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

typedef bnd_status (*oom_call)(void *context);

/* One row's child: the address space limited to what it maps now + margin, then the call. */
typedef struct limited_call {
    size_t margin;
    oom_call call;
    void *context;
} limited_call;

static bnd_status limited(void *context) {
    const limited_call *c = context;
    size_t limit = address_space() + c->margin;
    struct rlimit rl = { limit, limit };
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(100);
    return c->call(c->context);
}

/* Runs `call` in a child limited to the current address space + `margin` bytes; one row of the table.
   `text` begins with the name of the function whose status `call` returns (the status table records
   the child's exit status under that name). */
static void run_limited(const char *text, size_t margin, bnd_status expected, const char *needle, oom_call call,
                        void *context) {
    test_begin(text);
    limited_call c = { margin, call, context };
    int code = run_in_child(text, 120, limited, &c, expected, needle);
    char status_text[32];
    if (code >= 0) snprintf(status_text, sizeof status_text, "%d %s", code, code == 6 ? "OUT_OF_MEMORY" : code == 0 ? "OK" : "");
    else snprintf(status_text, sizeof status_text, "signal %d", -code);
    printf("  oom | %-64s | limit +%4zu MiB | %-16s | %s\n", text, margin / MIB, status_text,
           code >= 0 ? "alive" : "KILLED");
    test_end();
}

/* --- the calls --- */

static bnd_status add_huge_linear(void *context) {
    (void)context;
    int64_t shape[1] = { 16384 };
    bnd_net *net = NULL;
    bnd_status s = bnd_net_create(shape, 1, &net);
    if (s != BND_OK) return s;
    s = bnd_net_add_linear(net, 16384); /* a 1 GiB weight (and its 1 GiB gradient) */
    bnd_net_free(net);
    return s;
}

static bnd_status forward_huge_batch(void *context) {
    (void)context;
    int64_t shape[1] = { 1 };
    static float input[8192];
    bnd_net *net = NULL;
    bnd_status s = bnd_net_create(shape, 1, &net);
    if (s == BND_OK) s = bnd_net_add_linear(net, 65536); /* 1 -> 65536: a small net */
    const float *view = NULL;
    size_t count = 0;
    if (s == BND_OK) s = bnd_net_forward_view(net, input, 8192, &view, &count); /* a 2 GiB output */
    bnd_net_free(net);
    return s;
}

struct tensor_context { bnd_net *net; float *values; size_t count; };

static bnd_status get_big_tensor(void *context) {
    struct tensor_context *c = context;
    return bnd_net_get_tensor(c->net, "0.weight", c->values, c->count);
}

static bnd_status set_big_tensor(void *context) {
    struct tensor_context *c = context;
    return bnd_net_set_tensor(c->net, "0.weight", c->values, c->count);
}

static bnd_status get_big_grad(void *context) {
    struct tensor_context *c = context;
    return bnd_net_get_grad(c->net, "0.weight", c->values, c->count);
}

static bnd_status set_big_grad(void *context) {
    struct tensor_context *c = context;
    return bnd_net_set_grad(c->net, "0.weight", c->values, c->count);
}

static bnd_status add_huge_conv2d(void *context) {
    (void)context;
    int64_t shape[3] = { 256, 32, 32 };
    bnd_net *net = NULL;
    bnd_status s = bnd_net_create(shape, 3, &net);
    if (s == BND_OK) s = bnd_net_add_conv2d(net, 1024, 32, 1, 0); /* a 1 GiB weight (1024 x 256 x 32 x 32) */
    bnd_net_free(net);
    return s;
}

static bnd_status add_huge_conv2d_v2(void *context) {
    (void)context;
    int64_t shape[3] = { 512, 32, 32 };
    bnd_net *net = NULL;
    bnd_status s = bnd_net_create(shape, 3, &net);
    bnd_conv2d_params p = bnd_conv2d_default_params(2048, 32);
    p.groups = 2;                         /* a 1 GiB weight (2048 x 256 x 32 x 32) */
    if (s == BND_OK) s = bnd_net_add_conv2d_v2(net, &p);
    bnd_net_free(net);
    return s;
}

static bnd_status add_huge_batchnorm(void *context) {
    (void)context;
    int64_t shape[1] = { (int64_t)1 << 28 };
    bnd_net *net = NULL;
    bnd_status s = bnd_net_create(shape, 1, &net);
    if (s == BND_OK) s = bnd_net_add_batchnorm(net, NULL); /* 2^28 channels: 1 GiB per statistic */
    bnd_net_free(net);
    return s;
}

/* A batch of 8192 samples through {1} -> Linear(65536) -> Linear(1): 8192 values in and out, but a
   2 GiB hidden output. Each call below builds what it needs and then runs it on that batch. */
#define WIDE_BATCH 8192
static float g_wide_zeros[WIDE_BATCH];
static int32_t g_wide_labels[WIDE_BATCH];

static bnd_status wide_net(bnd_net **net) {
    int64_t shape[1] = { 1 };
    bnd_status s = bnd_net_create(shape, 1, net);
    if (s == BND_OK) s = bnd_net_add_linear(*net, 65536);
    if (s == BND_OK) s = bnd_net_add_linear(*net, 1);
    return s;
}

static bnd_status forward_wide(void *context) {
    (void)context;
    static float out[WIDE_BATCH];
    bnd_net *net = NULL;
    bnd_status s = wide_net(&net);
    if (s == BND_OK) s = bnd_net_forward(net, g_wide_zeros, WIDE_BATCH, out, WIDE_BATCH);
    bnd_net_free(net);
    return s;
}

/* The step train_step_wide takes, through its context (NULL: classification through the single step). */
enum { STEP_REGRESSION = 1, STEP_SIDE_BY_SIDE = 2, STEP_V2 = 4 };
static const int k_regression = STEP_REGRESSION, k_side_classification = STEP_SIDE_BY_SIDE,
                 k_side_regression = STEP_SIDE_BY_SIDE | STEP_REGRESSION, k_v2_classification = STEP_V2,
                 k_v2_regression = STEP_V2 | STEP_REGRESSION;

static bnd_status train_step_wide(void *context) {
    const int kind = context != NULL ? *(const int *)context : 0;
    const int regression = kind & STEP_REGRESSION;
    bnd_net *net = NULL;
    bnd_optimizer *opt = NULL;
    float loss = 0;
    bnd_status s = wide_net(&net);
    if (s == BND_OK) s = bnd_optimizer_create_sgd(net, NULL, &opt);
    if (s == BND_OK && (kind & STEP_V2)) { /* the same step with the losses' other arguments */
        bnd_cross_entropy_params p = bnd_cross_entropy_default_params();
        p.label_smoothing = 0.1f;
        s = regression ? bnd_net_train_step_regression_v2(net, opt, g_wide_zeros, g_wide_zeros, WIDE_BATCH,
                                                          BND_REDUCTION_SUM, &loss)
                       : bnd_net_train_step_classification_v2(net, opt, g_wide_zeros, g_wide_labels, WIDE_BATCH, &p,
                                                              &loss);
    } else if (s == BND_OK && (kind & STEP_SIDE_BY_SIDE)) /* the same step through the side-by-side call, one net */
        s = regression ? bnd_nets_train_step_regression(&net, &opt, 1, g_wide_zeros, g_wide_zeros, WIDE_BATCH, &loss, NULL)
                       : bnd_nets_train_step_classification(&net, &opt, 1, g_wide_zeros, g_wide_labels, WIDE_BATCH, &loss,
                                                            NULL);
    else if (s == BND_OK)
        s = regression ? bnd_net_train_step_regression(net, opt, g_wide_zeros, g_wide_zeros, WIDE_BATCH, &loss)
                       : bnd_net_train_step_classification(net, opt, g_wide_zeros, g_wide_labels, WIDE_BATCH, &loss);
    bnd_optimizer_free(opt);
    bnd_net_free(net);
    return s;
}

static bnd_status mc_dropout_wide(void *context) {
    (void)context;
    static float mean[WIDE_BATCH], var[WIDE_BATCH];
    bnd_net *net = NULL;
    bnd_status s = wide_net(&net);
    if (s == BND_OK) s = bnd_net_predict_mc_dropout(net, g_wide_zeros, WIDE_BATCH, 1, 0, mean, var, WIDE_BATCH);
    bnd_net_free(net);
    return s;
}

/* bnd_evaluate (context NULL) or bnd_fit over 8192 samples with one target each, one batch. */
static bnd_status run_wide(void *context) {
    int64_t sample[1] = { 1 };
    bnd_net *net = NULL;
    bnd_optimizer *opt = NULL;
    bnd_dataset *data = NULL;
    bnd_status s = wide_net(&net);
    if (s == BND_OK) s = bnd_dataset_from_targets(g_wide_zeros, sample, 1, g_wide_zeros, 1, WIDE_BATCH, &data);
    if (s == BND_OK && context == NULL) {
        s = bnd_evaluate(net, data, WIDE_BATCH, NULL, NULL);
    } else if (s == BND_OK) {
        bnd_fit_params p = bnd_fit_default_params();
        p.batch_size = WIDE_BATCH;
        s = bnd_optimizer_create_sgd(net, NULL, &opt);
        if (s == BND_OK) s = bnd_fit(net, opt, data, NULL, &p, NULL, NULL, NULL);
    }
    bnd_dataset_free(data);
    bnd_optimizer_free(opt);
    bnd_net_free(net);
    return s;
}

/* Calls on what the parent made before the limit: a {4096} -> Linear(4096) net (a 64 MiB weight) and
   the caller's 64 MiB array; each asks for another 64 MiB or more, under a 16 MiB margin. */
struct big_context {
    bnd_net *net;
    float *values;          /* 4096 x 4096 floats */
    bnd_dataset *dataset;   /* 4096 samples of {4096}, labelled */
    bnd_optimizer *opt;     /* SGD with momentum on net, stepped once */
    const char *net_file, *opt_file;
};

static bnd_status create_big_sgd(void *context) {
    struct big_context *c = context;
    bnd_sgd_params p = bnd_sgd_default_params();
    p.momentum = 0.9f;
    bnd_optimizer *opt = NULL;
    bnd_status s = bnd_optimizer_create_sgd(c->net, &p, &opt);
    bnd_optimizer_free(opt);
    return s;
}

static bnd_status create_big_adam(void *context) {
    struct big_context *c = context;
    bnd_optimizer *opt = NULL;
    bnd_status s = bnd_optimizer_create_adam(c->net, NULL, &opt);
    bnd_optimizer_free(opt);
    return s;
}

static bnd_status fold_big(void *context) {
    struct big_context *c = context;
    bnd_net *folded = NULL;
    bnd_status s = bnd_net_fold_batchnorm(c->net, &folded);
    bnd_net_free(folded);
    return s;
}

static bnd_status big_from_labels(void *context) {
    struct big_context *c = context;
    int64_t sample[1] = { 4096 };
    bnd_dataset *data = NULL;
    bnd_status s = bnd_dataset_from_labels(c->values, sample, 1, g_wide_labels, 4096, 0, &data);
    bnd_dataset_free(data);
    return s;
}

static bnd_status big_from_targets(void *context) {
    struct big_context *c = context;
    int64_t sample[1] = { 4096 };
    bnd_dataset *data = NULL;
    bnd_status s = bnd_dataset_from_targets(c->values, sample, 1, g_wide_zeros, 1, 4096, &data);
    bnd_dataset_free(data);
    return s;
}

static bnd_status big_loader(void *context) {
    struct big_context *c = context;
    bnd_loader *loader = NULL;
    bnd_status s = bnd_loader_create(c->dataset, 4096, 0, 0, 0, &loader); /* one batch: 64 MiB */
    bnd_loader_free(loader);
    return s;
}

static bnd_status load_big_net(void *context) {
    struct big_context *c = context;
    bnd_net *net = NULL;
    bnd_status s = bnd_net_load(c->net_file, &net);
    bnd_net_free(net);
    return s;
}

static bnd_status load_big_weights(void *context) {
    struct big_context *c = context;
    return bnd_net_load_weights(c->net, c->net_file);
}

static bnd_status load_big_optimizer(void *context) {
    struct big_context *c = context;
    return bnd_optimizer_load(c->opt, c->opt_file);
}

/* After the parent's forward of 4096 samples: the input gradient (64 MiB) is allocated by backward. */
static bnd_status backward_big(void *context) {
    struct big_context *c = context;
    return bnd_net_backward(c->net, c->values, 4096, c->values, (size_t)4096 * 4096);
}

struct load_context { const char *images, *labels; size_t max_bytes; };

static bnd_status load_idx(void *context) {
    struct load_context *c = context;
    bnd_load_params params = bnd_load_default_params();
    params.max_bytes = c->max_bytes;
    bnd_dataset *data = NULL;
    bnd_status s = bnd_dataset_load_idx_ex(c->images, c->labels, &params, &data);
    bnd_dataset_free(data);
    return s;
}

static bnd_status load_idx_default(void *context) {
    struct load_context *c = context;
    bnd_dataset *data = NULL;
    bnd_status s = bnd_dataset_load_idx(c->images, c->labels, &data);
    bnd_dataset_free(data);
    return s;
}

/* --- the files --- */

static void write_bytes(const char *path, const unsigned char *bytes, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) return;
    fwrite(bytes, 1, n, f);
    fclose(f);
}

typedef int (*deflate_init2_fn)(z_streamp, int, int, int, int, int, const char *, int);
typedef int (*deflate_fn)(z_streamp, int);
typedef int (*deflate_end_fn)(z_streamp);

/* One gzip member holding `n` bytes: `head` (may be NULL) then zeros. Appended to `f`. */
static int write_member(FILE *f, const unsigned char *head, size_t head_size, size_t n, unsigned char *zeros,
                        unsigned char *out, size_t out_size) {
    deflate_init2_fn init = (deflate_init2_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "deflateInit2_");
    deflate_fn def = (deflate_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "deflate");
    deflate_end_fn end = (deflate_end_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "deflateEnd");
    if (init == NULL || def == NULL || end == NULL) return 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (init(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY, ZLIB_VERSION, (int)sizeof z) != Z_OK) return 0;
    if (head != NULL) memcpy(zeros, head, head_size); /* zeros is restored below */
    z.next_in = zeros;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)out_size;
    int r = def(&z, Z_FINISH);
    if (head != NULL) memset(zeros, 0, head_size);
    size_t produced = out_size - z.avail_out;
    end(&z);
    return r == Z_STREAM_END && fwrite(out, 1, produced, f) == produced;
}

/* A gzip IDX file of 1 x 46340 x 46340 zero pixels (~2 MB): concatenated members of at most 64 MiB. */
static int write_idx_bomb(const char *path) {
    const size_t chunk = 64 * MIB, total = 16 + (size_t)46340 * 46340;
    unsigned char *zeros = calloc(chunk, 1), *out = malloc(chunk / 512);
    FILE *f = fopen(path, "wb");
    int ok = zeros != NULL && out != NULL && f != NULL;
    const unsigned char head[16] = { 0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0xB5, 0x04, 0, 0, 0xB5, 0x04 };
    size_t written = 0;
    while (ok && written < total) {
        size_t n = total - written < chunk ? total - written : chunk;
        ok = write_member(f, written == 0 ? head : NULL, sizeof head, n, zeros, out, chunk / 512);
        written += n;
    }
    if (f != NULL && fclose(f) != 0) ok = 0;
    free(zeros);
    free(out);
    return ok;
}

void run_oom_tests(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/bndrop-oom-%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", g_dir);
    if (system(cmd) != 0) printf("  (cannot create %s)\n", g_dir);
    printf("out-of-memory table (each call in a child under RLIMIT_AS = mapped now + limit):\n");

    run_limited("bnd_net_add_linear 16384 -> 16384 (1 GiB weight)", 512 * MIB, BND_ERR_OUT_OF_MEMORY, NULL,
                add_huge_linear, NULL);

    run_limited("bnd_net_forward_view, batch 8192 of 1 -> 65536 (2 GiB output)", 512 * MIB, BND_ERR_OUT_OF_MEMORY,
                NULL, forward_huge_batch, NULL);
    run_limited("bnd_net_add_conv2d 256 -> 1024 channels, kernel 32 (1 GiB weight)", 512 * MIB,
                BND_ERR_OUT_OF_MEMORY, NULL, add_huge_conv2d, NULL);
    run_limited("bnd_net_add_conv2d_v2 512 -> 2048 channels in 2 groups, kernel 32 (1 GiB weight)", 512 * MIB,
                BND_ERR_OUT_OF_MEMORY, NULL, add_huge_conv2d_v2, NULL);
    run_limited("bnd_net_add_batchnorm, 2^28 channels", 512 * MIB, BND_ERR_OUT_OF_MEMORY, NULL, add_huge_batchnorm,
                NULL);
    /* a 2 GiB hidden output for a batch of 8192 samples */
    run_limited("bnd_net_forward, batch 8192 of 1 -> 65536 -> 1", 512 * MIB, BND_ERR_OUT_OF_MEMORY, NULL,
                forward_wide, NULL);
    run_limited("bnd_net_train_step_classification, batch 8192 of 1 -> 65536 -> 1", 512 * MIB,
                BND_ERR_OUT_OF_MEMORY, NULL, train_step_wide, NULL);
    run_limited("bnd_net_train_step_regression, batch 8192 of 1 -> 65536 -> 1", 512 * MIB, BND_ERR_OUT_OF_MEMORY,
                NULL, train_step_wide, (void *)&k_regression);
    run_limited("bnd_net_train_step_classification_v2, batch 8192 of 1 -> 65536 -> 1", 512 * MIB,
                BND_ERR_OUT_OF_MEMORY, NULL, train_step_wide, (void *)&k_v2_classification);
    run_limited("bnd_net_train_step_regression_v2, batch 8192 of 1 -> 65536 -> 1", 512 * MIB, BND_ERR_OUT_OF_MEMORY,
                NULL, train_step_wide, (void *)&k_v2_regression);
    run_limited("bnd_nets_train_step_classification, batch 8192 of 1 -> 65536 -> 1", 512 * MIB,
                BND_ERR_OUT_OF_MEMORY, NULL, train_step_wide, (void *)&k_side_classification);
    run_limited("bnd_nets_train_step_regression, batch 8192 of 1 -> 65536 -> 1", 512 * MIB, BND_ERR_OUT_OF_MEMORY,
                NULL, train_step_wide, (void *)&k_side_regression);
    run_limited("bnd_net_predict_mc_dropout, batch 8192 of 1 -> 65536 -> 1", 512 * MIB, BND_ERR_OUT_OF_MEMORY,
                NULL, mc_dropout_wide, NULL);
    run_limited("bnd_evaluate, batch 8192 of 1 -> 65536 -> 1", 512 * MIB, BND_ERR_OUT_OF_MEMORY, NULL, run_wide,
                NULL);
    run_limited("bnd_fit, batch 8192 of 1 -> 65536 -> 1", 512 * MIB, BND_ERR_OUT_OF_MEMORY, NULL, run_wide,
                g_wide_zeros);

    /* A 4096 x 4096 weight (64 MiB) made before the limit, with the caller's 64 MiB buffer: under a
       16 MiB margin any copy through a temporary array would fail; a straight copy succeeds. */
    int64_t shape[1] = { 4096 };
    struct tensor_context t = { NULL, NULL, (size_t)4096 * 4096 };
    t.values = calloc(t.count, sizeof(float));
    EXPECT_OK(bnd_net_create(shape, 1, &t.net));
    EXPECT_OK(bnd_net_add_linear(t.net, 4096));
    if (t.values != NULL && t.net != NULL) {
        run_limited("bnd_net_get_tensor 0.weight (64 MiB, made before)", 16 * MIB, BND_OK, NULL, get_big_tensor, &t);
        run_limited("bnd_net_set_tensor 0.weight (64 MiB, made before)", 16 * MIB, BND_OK, NULL, set_big_tensor, &t);
        run_limited("bnd_net_get_grad 0.weight (64 MiB, made before)", 16 * MIB, BND_OK, NULL, get_big_grad, &t);
        run_limited("bnd_net_set_grad 0.weight (64 MiB, made before)", 16 * MIB, BND_OK, NULL, set_big_grad, &t);
    }
    if (t.values != NULL && t.net != NULL) {
        char net_file[300], opt_file[300];
        snprintf(net_file, sizeof net_file, "%s/big-net.safetensors", g_dir);
        snprintf(opt_file, sizeof opt_file, "%s/big-sgd.safetensors", g_dir);
        struct big_context big = { t.net, t.values, NULL, NULL, net_file, opt_file };
        run_limited("bnd_optimizer_create_sgd, momentum, 64 MiB of parameters", 16 * MIB, BND_ERR_OUT_OF_MEMORY,
                    NULL, create_big_sgd, &big);
        run_limited("bnd_optimizer_create_adam, 64 MiB of parameters", 16 * MIB, BND_ERR_OUT_OF_MEMORY, NULL,
                    create_big_adam, &big);
        run_limited("bnd_net_fold_batchnorm, a copy of 64 MiB of parameters", 16 * MIB, BND_ERR_OUT_OF_MEMORY, NULL,
                    fold_big, &big);
        run_limited("bnd_dataset_from_labels, 64 MiB of features", 16 * MIB, BND_ERR_OUT_OF_MEMORY, NULL,
                    big_from_labels, &big);
        run_limited("bnd_dataset_from_targets, 64 MiB of features", 16 * MIB, BND_ERR_OUT_OF_MEMORY, NULL,
                    big_from_targets, &big);
        int64_t sample[1] = { 4096 };
        EXPECT_OK(bnd_dataset_from_labels(t.values, sample, 1, g_wide_labels, 4096, 0, &big.dataset));
        if (big.dataset != NULL)
            run_limited("bnd_loader_create, one batch of 64 MiB", 16 * MIB, BND_ERR_OUT_OF_MEMORY, NULL, big_loader,
                        &big);
        bnd_dataset_free(big.dataset);
        /* checkpoints whose tensors take 64 MiB */
        bnd_sgd_params momentum = bnd_sgd_default_params();
        momentum.momentum = 0.9f;
        EXPECT_OK(bnd_optimizer_create_sgd(t.net, &momentum, &big.opt));
        if (big.opt != NULL) {
            EXPECT_OK(bnd_optimizer_step(big.opt)); /* now it has momentum buffers to save */
            EXPECT_OK(bnd_net_save(t.net, net_file));
            EXPECT_OK(bnd_optimizer_save(big.opt, opt_file));
            run_limited("bnd_net_load, 64 MiB of tensors", 16 * MIB, BND_ERR_OUT_OF_MEMORY, NULL, load_big_net, &big);
            run_limited("bnd_net_load_weights, 64 MiB of tensors", 16 * MIB, BND_ERR_OUT_OF_MEMORY, NULL,
                        load_big_weights, &big);
            run_limited("bnd_optimizer_load, 64 MiB of momentum buffers", 16 * MIB, BND_ERR_OUT_OF_MEMORY, NULL,
                        load_big_optimizer, &big);
        }
        bnd_optimizer_free(big.opt);
        unlink(net_file);
        unlink(opt_file);
        const float *view = NULL;
        size_t count = 0;
        EXPECT_OK(bnd_net_forward_view(t.net, t.values, 4096, &view, &count));
        run_limited("bnd_net_backward, a 64 MiB input gradient", 16 * MIB, BND_ERR_OUT_OF_MEMORY, NULL, backward_big,
                    &big);
    }
    bnd_net_free(t.net);
    free(t.values);

    /* The IDX bomb: only its 16-byte header (refused by the default limit before any reading), and the
       whole ~2 MB file, which passes every check of the file itself: under a raised limit, the 8.6 GB
       allocation fails cleanly. */
    char header_only[300], bomb[300], labels[300];
    snprintf(header_only, sizeof header_only, "%s/bomb-header.idx", g_dir);
    snprintf(bomb, sizeof bomb, "%s/bomb.idx.gz", g_dir);
    snprintf(labels, sizeof labels, "%s/labels.idx", g_dir);
    const unsigned char head[16] = { 0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0xB5, 0x04, 0, 0, 0xB5, 0x04 };
    const unsigned char label_file[9] = { 0, 0, 8, 1, 0, 0, 0, 1, 0 };
    write_bytes(header_only, head, sizeof head);
    write_bytes(labels, label_file, sizeof label_file);
    struct load_context small = { header_only, labels, 0 };
    run_limited("bnd_dataset_load_idx, header of 1x46340x46340 (default limit)", 64 * MIB, BND_ERR_OUT_OF_MEMORY,
                "memory limit", load_idx_default, &small);
    test_begin("the IDX bomb is written");
    int bomb_ok = write_idx_bomb(bomb);
    EXPECT(bomb_ok, "cannot write %s", bomb);
    test_end();
    if (bomb_ok) {
        struct load_context big = { bomb, labels, BND_DEFAULT_LOAD_MAX_BYTES };
        run_limited("bnd_dataset_load_idx_ex, 2 MB gzip of 1x46340x46340 (default)", 64 * MIB,
                    BND_ERR_OUT_OF_MEMORY, "memory limit", load_idx, &big);
        big.max_bytes = SIZE_MAX;
        run_limited("bnd_dataset_load_idx_ex, 2 MB gzip of 1x46340x46340 (no limit)", 512 * MIB,
                    BND_ERR_OUT_OF_MEMORY, "cannot allocate", load_idx, &big);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) printf("  (cannot remove %s)\n", g_dir);
}
