/* Threads stress test (not part of `make test`: `make test-tsan` runs it on a ThreadSanitizer build, and
   it runs as well on a plain or ASan build). WORKERS threads each build, train (train steps, two nets'
   steps side by side, bnd_fit over their own dataset, Monte-Carlo dropout, BatchNorm folding), save and load (net and optimizer, to
   their own temporary files) and free their own nets, and compute losses large enough for the thread
   pool (which must give the bits computed before the threads started), round after round; meanwhile one thread hammers
   error paths (bad calls, each checked for a failure status and its own non-empty message) and one
   changes the library's thread count. Exits 1 on the first wrong result, 0 otherwise.
   Usage: stress_threads [ROUNDS] (default 10). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "bndrop.h"

#define WORKERS 3
#define SAMPLES 48
#define BATCH 16
#define MAX_TENSOR 8192

static int g_rounds = 10;
static atomic_int g_failures;
static atomic_int g_workers_done;
static atomic_long g_bad_calls;
static char g_dir[256];

static void fail(const char *who, int line, const char *what, bnd_status s) {
    fprintf(stderr, "FAIL %s line %d: %s -> %d (%s)\n", who, line, what, (int)s, bnd_last_error());
    atomic_fetch_add(&g_failures, 1);
}

#define OK(call) do { bnd_status s_ = (call); if (s_ != BND_OK) { fail(who, __LINE__, #call, s_); goto done; } } while (0)

static uint32_t next_random(uint32_t *state) {
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

/* Same tensors, bit for bit. */
static int same_tensors(const bnd_net *a, const bnd_net *b) {
    static _Thread_local float x[MAX_TENSOR], y[MAX_TENSOR];
    size_t count = 0, other = 0;
    if (bnd_net_tensor_count(a, &count) != BND_OK || bnd_net_tensor_count(b, &other) != BND_OK || count != other)
        return 0;
    for (size_t t = 0; t < count; t++) {
        char name[BND_NAME_MAX];
        size_t numel = 0;
        if (bnd_net_tensor_name(a, t, name, sizeof name) != BND_OK || bnd_net_tensor_numel(a, name, &numel) != BND_OK ||
            numel > MAX_TENSOR || bnd_net_get_tensor(a, name, x, MAX_TENSOR) != BND_OK ||
            bnd_net_get_tensor(b, name, y, MAX_TENSOR) != BND_OK || memcmp(x, y, numel * sizeof(float)) != 0)
            return 0;
    }
    return 1;
}

/* Big enough that every layer's kernel runs on the shared thread pool (at least 2^20 multiply-adds
   for conv and linear, several tasks for the others), from all workers at once: batch BIG_BATCH of
   1x16x16 images, conv 8x3x3 (1.2M multiply-adds), BatchNorm2d, ReLU, max pooling, linear 512 -> 64
   (2.1M), ReLU, linear 64 -> 3. */
#define BIG_BATCH 64
static float g_big_input[BIG_BATCH * 256];
static int32_t g_big_labels[BIG_BATCH];

static int big_steps(const char *who, uint64_t seed) {
    int64_t image[] = {1, 16, 16};
    bnd_net *net = NULL;
    bnd_optimizer *opt = NULL;
    float loss = 0, out[BIG_BATCH * 3];
    int ok = 0;
    OK(bnd_net_create(image, 3, &net));
    OK(bnd_net_seed(net, seed));
    OK(bnd_net_add_conv2d(net, 8, 3, 1, 1));
    OK(bnd_net_add_batchnorm(net, NULL));
    OK(bnd_net_add_relu(net));
    OK(bnd_net_add_maxpool2d(net, 2, 2));
    OK(bnd_net_add_flatten(net));
    OK(bnd_net_add_linear(net, 64));
    OK(bnd_net_add_relu(net));
    OK(bnd_net_add_dropout(net, 0.2f));
    OK(bnd_net_add_linear(net, 3));
    bnd_sgd_params sgd = bnd_sgd_default_params();
    sgd.momentum = 0.9f;
    OK(bnd_optimizer_create_sgd(net, &sgd, &opt));
    for (int step = 0; step < 2; step++)
        OK(bnd_net_train_step_classification(net, opt, g_big_input, g_big_labels, BIG_BATCH, &loss));
    OK(bnd_net_set_training(net, 0));
    OK(bnd_net_forward(net, g_big_input, BIG_BATCH, out, BIG_BATCH * 3));
    ok = 1;
done:
    bnd_optimizer_free(opt);
    bnd_net_free(net);
    return ok;
}

/* Losses large enough to run on the thread pool (cross-entropy over 8192 x 10 logits: 3 tasks; MSE
   over 300,000 elements: 10 tasks), from every worker at once while another thread changes the thread
   count: each loss and gradient must have the bits main computed before the threads started. */
#define LOSS_BATCH 8192
#define LOSS_CLASSES 10
#define MSE_COUNT 300000
static float *g_logits, *g_prediction, *g_target, *g_ce_gradient, *g_mse_gradient;
static int32_t g_loss_labels[LOSS_BATCH];
static float g_ce_loss, g_mse_loss;

static int big_losses(const char *who) {
    float *gradient = malloc(sizeof(float) * MSE_COUNT), loss = 0;
    int ok = 0;
    if (gradient == NULL) { fail(who, __LINE__, "malloc", BND_OK); goto done; }
    OK(bnd_loss_cross_entropy(g_logits, g_loss_labels, LOSS_BATCH, LOSS_CLASSES, &loss, gradient));
    if (memcmp(&loss, &g_ce_loss, sizeof loss) != 0 ||
        memcmp(gradient, g_ce_gradient, sizeof(float) * LOSS_BATCH * LOSS_CLASSES) != 0) {
        fail(who, __LINE__, "cross-entropy differs from the reference", BND_OK);
        goto done;
    }
    OK(bnd_loss_mse(g_prediction, g_target, MSE_COUNT, &loss, gradient));
    if (memcmp(&loss, &g_mse_loss, sizeof loss) != 0 || memcmp(gradient, g_mse_gradient, sizeof(float) * MSE_COUNT) != 0) {
        fail(who, __LINE__, "MSE differs from the reference", BND_OK);
        goto done;
    }
    ok = 1;
done:
    free(gradient);
    return ok;
}

/* The losses' inputs and their reference results (before any other thread runs). */
static int prepare_losses(void) {
    const char *who = "main";
    g_logits = malloc(sizeof(float) * LOSS_BATCH * LOSS_CLASSES);
    g_ce_gradient = malloc(sizeof(float) * LOSS_BATCH * LOSS_CLASSES);
    g_prediction = malloc(sizeof(float) * MSE_COUNT);
    g_target = malloc(sizeof(float) * MSE_COUNT);
    g_mse_gradient = malloc(sizeof(float) * MSE_COUNT);
    if (!g_logits || !g_ce_gradient || !g_prediction || !g_target || !g_mse_gradient) return 0;
    uint32_t random = 4242;
    for (int i = 0; i < LOSS_BATCH * LOSS_CLASSES; i++) g_logits[i] = (float)(next_random(&random) & 0xFFFF) / 8192.0f - 4.0f;
    for (int i = 0; i < LOSS_BATCH; i++) g_loss_labels[i] = (int32_t)(next_random(&random) % LOSS_CLASSES);
    for (int i = 0; i < MSE_COUNT; i++) {
        g_prediction[i] = (float)(next_random(&random) & 0xFFFF) / 65536.0f;
        g_target[i] = (float)(next_random(&random) & 0xFFFF) / 65536.0f;
    }
    OK(bnd_loss_cross_entropy(g_logits, g_loss_labels, LOSS_BATCH, LOSS_CLASSES, &g_ce_loss, g_ce_gradient));
    OK(bnd_loss_mse(g_prediction, g_target, MSE_COUNT, &g_mse_loss, g_mse_gradient));
    return 1;
done:
    return 0;
}

/* A small CNN (conv, BatchNorm2d, pooling: the thread pool's kernels) or an MLP with dropout. */
static bnd_status build(bnd_net **out, int cnn, uint64_t seed) {
    bnd_net *net = NULL;
    int64_t image[] = {1, 8, 8}, flat[] = {64};
    bnd_status s = cnn ? bnd_net_create(image, 3, &net) : bnd_net_create(flat, 1, &net);
    if (s != BND_OK) return s;
    if ((s = bnd_net_seed(net, seed)) == BND_OK) {
        if (cnn) {
            if ((s = bnd_net_add_conv2d(net, 4, 3, 1, 1)) == BND_OK && (s = bnd_net_add_batchnorm(net, NULL)) == BND_OK &&
                (s = bnd_net_add_relu(net)) == BND_OK && (s = bnd_net_add_maxpool2d(net, 2, 2)) == BND_OK &&
                (s = bnd_net_add_flatten(net)) == BND_OK)
                s = bnd_net_add_linear(net, 3);
        } else {
            if ((s = bnd_net_add_linear(net, 32)) == BND_OK && (s = bnd_net_add_batchnorm(net, NULL)) == BND_OK &&
                (s = bnd_net_add_relu(net)) == BND_OK && (s = bnd_net_add_dropout(net, 0.25f)) == BND_OK)
                s = bnd_net_add_linear(net, 3);
        }
    }
    if (s != BND_OK) { bnd_net_free(net); return s; }
    *out = net;
    return BND_OK;
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    char who[32], net_path[512], opt_path[512];
    snprintf(who, sizeof who, "worker %d", id);
    snprintf(net_path, sizeof net_path, "%s/net%d.safetensors", g_dir, id);
    snprintf(opt_path, sizeof opt_path, "%s/opt%d.safetensors", g_dir, id);
    float features[SAMPLES * 64], out[BATCH * 3], mean[BATCH * 3], var[BATCH * 3], loss = 0;
    int32_t labels[SAMPLES];
    int32_t labels32[BATCH];
    uint32_t random = 777u + (uint32_t)id;
    for (int i = 0; i < SAMPLES * 64; i++) features[i] = (float)(next_random(&random) & 0xFFFF) / 65536.0f - 0.5f;
    for (int i = 0; i < SAMPLES; i++) labels[i] = i % 3;
    for (int i = 0; i < BATCH; i++) labels32[i] = (int32_t)labels[i];

    for (int round = 0; round < g_rounds && atomic_load(&g_failures) == 0; round++) {
        int cnn = (round + id) % 2;
        bnd_net *net = NULL, *loaded = NULL, *folded = NULL, *other = NULL;
        bnd_optimizer *opt = NULL, *opt2 = NULL;
        bnd_dataset *data = NULL;
        bnd_loader *loader = NULL;
        int64_t image[] = {1, 8, 8}, flat[] = {64};
        OK(build(&net, cnn, (uint64_t)(id * 100 + round)));
        bnd_adam_params adam = bnd_adam_default_params();
        OK(bnd_optimizer_create_adam(net, &adam, &opt));
        for (int step = 0; step < 3; step++)
            OK(bnd_net_train_step_classification(net, opt, features, labels32, BATCH, &loss));
        OK(bnd_dataset_from_labels(features, cnn ? image : flat, cnn ? 3 : 1, labels, SAMPLES, 3, &data));
        bnd_fit_params fit = bnd_fit_default_params();
        fit.epochs = 1;
        fit.batch_size = BATCH;
        bnd_fit_summary summary;
        OK(bnd_fit(net, opt, data, data, &fit, NULL, NULL, &summary));
        OK(bnd_loader_create(data, BATCH, 1, (uint64_t)round, 0, &loader));
        const float *batch_in = NULL;
        const int32_t *batch_labels = NULL;
        int64_t got = 0;
        OK(bnd_loader_next(loader, &batch_in, &batch_labels, NULL, &got));
        if (got > 0) OK(bnd_net_train_step_classification(net, opt, batch_in, batch_labels, got, &loss));

        /* checkpoint round trip: net, optimizer, weights into a second net */
        OK(bnd_net_save(net, net_path));
        OK(bnd_optimizer_save(opt, opt_path));
        OK(bnd_net_load(net_path, &loaded));
        if (!same_tensors(net, loaded)) { fail(who, __LINE__, "loaded net differs", BND_OK); goto done; }
        OK(bnd_optimizer_create_adam(loaded, &adam, &opt2));
        OK(bnd_optimizer_load(opt2, opt_path));
        OK(build(&other, cnn, 1));
        OK(bnd_net_load_weights(other, net_path));
        if (!same_tensors(net, other)) { fail(who, __LINE__, "load_weights differs", BND_OK); goto done; }

        /* the two nets' steps side by side (each on a pool thread while the other workers do the same) */
        {
            bnd_net *pair[2] = {net, loaded};
            bnd_optimizer *pair_opts[2] = {opt, opt2};
            float losses[2];
            OK(bnd_nets_train_step_classification(pair, pair_opts, 2, features, labels32, BATCH, losses, NULL));
        }

        /* inference: eval forward, folded copy, Monte-Carlo dropout */
        OK(bnd_net_set_training(net, 0));
        OK(bnd_net_forward(net, features, BATCH, out, BATCH * 3));
        OK(bnd_net_fold_batchnorm(net, &folded));
        OK(bnd_net_forward(folded, features, BATCH, out, BATCH * 3));
        OK(bnd_net_predict_mc_dropout(net, features, BATCH, 4, (uint64_t)round, mean, var, BATCH * 3));
        double eval_loss = 0, accuracy = 0;
        OK(bnd_evaluate(loaded, data, BATCH, &eval_loss, &accuracy));
        if (!big_steps(who, (uint64_t)round)) goto done;
        if (!big_losses(who)) goto done;
    done:
        bnd_loader_free(loader);
        bnd_dataset_free(data);
        bnd_optimizer_free(opt2);
        bnd_optimizer_free(opt);
        bnd_net_free(other);
        bnd_net_free(folded);
        bnd_net_free(loaded);
        bnd_net_free(net);
    }
    atomic_fetch_add(&g_workers_done, 1);
    return NULL;
}

/* A failing call: a failure status, not INTERNAL, and a non-empty message on this thread. */
static void expect_error(const char *what, bnd_status s) {
    const char *message = bnd_last_error();
    if (s == BND_OK || s == BND_ERR_INTERNAL || message == NULL || message[0] == '\0') {
        fprintf(stderr, "FAIL error thread: %s -> %d, message '%s'\n", what, (int)s, message ? message : "(null)");
        atomic_fetch_add(&g_failures, 1);
    }
    bnd_clear_last_error();
}
#define BAD(call) (expect_error(#call, (call)), atomic_fetch_add(&g_bad_calls, 1))

static void *error_hammer(void *arg) {
    (void)arg;
    int64_t bad_shape[] = {0}, shape[] = {4};
    float x[8] = {0};
    int32_t label = 7;
    float loss = 0;
    bnd_net *net = NULL, *never = NULL;
    bnd_dataset *never_data = NULL;
    bnd_optimizer *never_opt = NULL;
    char missing[512];
    snprintf(missing, sizeof missing, "%s/missing.safetensors", g_dir);
    if (bnd_net_create(shape, 1, &net) != BND_OK || bnd_net_add_linear(net, 2) != BND_OK) {
        fprintf(stderr, "FAIL error thread: setup (%s)\n", bnd_last_error());
        atomic_fetch_add(&g_failures, 1);
        bnd_net_free(net);
        return NULL;
    }
    bnd_sgd_params sgd = bnd_sgd_default_params();
    sgd.lr = -1.0f;
    while (atomic_load(&g_workers_done) < WORKERS && atomic_load(&g_failures) == 0) {
        BAD(bnd_net_create(NULL, 1, &never));
        BAD(bnd_net_create(bad_shape, 1, &never));
        BAD(bnd_net_create(shape, 5, &never));
        BAD(bnd_net_add_linear(NULL, 3));
        BAD(bnd_net_add_linear(net, -3));
        BAD(bnd_net_add_dropout(net, 1.5f));
        BAD(bnd_net_forward(net, x, 0, x, 8));
        BAD(bnd_net_forward(net, x, 1, x, 1));
        BAD(bnd_net_backward(NULL, x, 1, NULL, 0));
        BAD(bnd_optimizer_create_sgd(net, &sgd, &never_opt));
        BAD(bnd_net_set_training(net, 2));
        BAD(bnd_net_get_tensor(net, "no.such.tensor", x, 8));
        BAD(bnd_loss_cross_entropy(x, &label, 1, 2, &loss, NULL));
        BAD(bnd_net_load(missing, &never));
        BAD(bnd_net_load_weights(net, missing));
        BAD(bnd_net_save(net, "/nonexistent-dir-bndrop/x.safetensors"));
        BAD(bnd_dataset_load_idx(missing, missing, &never_data));
        BAD(bnd_set_num_threads(0));
        BAD(bnd_set_num_threads(1000));
        if (never != NULL || never_data != NULL || never_opt != NULL) {
            fprintf(stderr, "FAIL error thread: an out-pointer was written on failure\n");
            atomic_fetch_add(&g_failures, 1);
        }
    }
    bnd_net_free(net);
    return NULL;
}

/* The thread count is documented as safe to change at any time. */
static void *thread_count_changer(void *arg) {
    (void)arg;
    int32_t n = 1;
    while (atomic_load(&g_workers_done) < WORKERS && atomic_load(&g_failures) == 0) {
        n = n % 3 + 1;
        if (bnd_set_num_threads(n) != BND_OK) {
            fprintf(stderr, "FAIL bnd_set_num_threads(%d): %s\n", (int)n, bnd_last_error());
            atomic_fetch_add(&g_failures, 1);
        }
        (void)bnd_get_num_threads();
        usleep(2000);
    }
    return NULL;
}

/* `stress_threads --pool-regions N`: WORKERS threads each run N back-to-back forward and backward passes,
   and eval-mode forwards, whose every layer uses the shared thread pool (whichever caller gets the pool, the others run
   inline), while another changes the thread count (1-3), nothing else. A reproducer for a race TSan
   reports in ThreadPool (a worker's last claim() reads taskCount after its final completed.add, while
   the caller, already back, writes taskCount and job for the next region): `make test-tsan-pool`,
   expected to fail until ThreadPool is fixed, and not part of `make test` or `make test-tsan`. */
static int g_pool_passes;
static void *pool_regions(void *arg) {
    (void)arg;
    int passes = g_pool_passes;
    const char *who = "pool-regions";
    int64_t flat[] = {256};
    bnd_net *net = NULL;
    float *x = calloc(BIG_BATCH * 256, sizeof(float)), *y = calloc(BIG_BATCH * 64, sizeof(float));
    int ok = 0;
    if (x == NULL || y == NULL) goto done;
    for (int i = 0; i < BIG_BATCH * 256; i++) x[i] = (float)(i % 13) / 13.0f;
    OK(bnd_net_create(flat, 1, &net));
    OK(bnd_net_add_linear(net, 64)); /* 64 x 256 x 64 = 2^20 multiply-adds: on the pool */
    OK(bnd_net_add_batchnorm(net, NULL));
    OK(bnd_net_add_relu(net));
    for (int i = 0; i < passes; i++) {
        OK(bnd_net_forward(net, x, BIG_BATCH, y, BIG_BATCH * 64));
        OK(bnd_net_backward(net, y, BIG_BATCH, NULL, 0));
        /* Eval mode: the three layers run by blocks of samples, one region for all of them. */
        OK(bnd_net_set_training(net, 0));
        OK(bnd_net_forward(net, x, BIG_BATCH, y, BIG_BATCH * 64));
        OK(bnd_net_set_training(net, 1));
    }
    ok = 1;
done:
    bnd_net_free(net);
    free(x);
    free(y);
    if (!ok) atomic_fetch_add(&g_failures, 1);
    atomic_fetch_add(&g_workers_done, 1);
    return NULL;
}

static void *thread_count_changer(void *arg);

static int pool_main(int passes) {
    pthread_t threads[WORKERS + 1];
    g_pool_passes = passes;
    for (int i = 0; i < WORKERS; i++) pthread_create(&threads[i], NULL, pool_regions, NULL);
    pthread_create(&threads[WORKERS], NULL, thread_count_changer, NULL);
    for (int i = 0; i <= WORKERS; i++) pthread_join(threads[i], NULL);
    int failures = atomic_load(&g_failures);
    printf("stress_threads --pool-regions: %d threads x %d passes: %s\n", WORKERS, passes, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "--pool-regions") == 0) return pool_main(atoi(argv[2]));
    if (argc > 1) g_rounds = atoi(argv[1]);
    if (g_rounds < 1) g_rounds = 1;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/bndrop-stress-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(g_dir) == NULL) { perror("mkdtemp"); return 1; }
    uint32_t random = 99;
    for (int i = 0; i < BIG_BATCH * 256; i++) g_big_input[i] = (float)(next_random(&random) & 0xFFFF) / 65536.0f;
    for (int i = 0; i < BIG_BATCH; i++) g_big_labels[i] = i % 3;
    bnd_runtime_info info;
    if (bnd_get_runtime_info(&info) != BND_OK) fprintf(stderr, "note: %s\n", bnd_last_error());
    if (!prepare_losses()) { fprintf(stderr, "stress_threads: cannot prepare the losses\n"); return 1; }
    pthread_t threads[WORKERS + 2];
    for (int i = 0; i < WORKERS; i++) pthread_create(&threads[i], NULL, worker, (void *)(intptr_t)i);
    pthread_create(&threads[WORKERS], NULL, error_hammer, NULL);
    pthread_create(&threads[WORKERS + 1], NULL, thread_count_changer, NULL);
    for (int i = 0; i < WORKERS + 2; i++) pthread_join(threads[i], NULL);
    char path[600];
    for (int i = 0; i < WORKERS; i++) {
        snprintf(path, sizeof path, "%s/net%d.safetensors", g_dir, i);
        remove(path);
        snprintf(path, sizeof path, "%s/opt%d.safetensors", g_dir, i);
        remove(path);
    }
    rmdir(g_dir);
    free(g_logits), free(g_ce_gradient), free(g_prediction), free(g_target), free(g_mse_gradient);
    int failures = atomic_load(&g_failures);
    printf("stress_threads: %d workers x %d rounds, %ld bad calls on another thread: %s\n", WORKERS, g_rounds,
           (long)atomic_load(&g_bad_calls), failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
