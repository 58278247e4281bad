/* Different nets on different threads at once: each thread builds and trains its own net (same seed,
   same data, dropout included) and must end bit-for-bit equal to a single-threaded run. Each thread
   also provokes its own error and must read back its own message (bnd_last_error is per thread). */
#include <pthread.h>
#include <string.h>
#include "check.h"

#define THREADS 4
#define BATCH 16
#define FEATURES 10
#define CLASSES 3
#define STEPS 25
#define MAX_STATE 4096

typedef struct {
    int id;
    float state[MAX_STATE];
    size_t state_count;
    float losses[STEPS];
    int ok;
    char message[256];
} run_result;

static float g_input[BATCH * FEATURES];
static int32_t g_labels[BATCH];

static void make_data(void) {
    uint32_t s = 12345;
    for (int i = 0; i < BATCH * FEATURES; i++) {
        s = s * 1664525u + 1013904223u;
        g_input[i] = (float)((s >> 8) & 0xFFFF) / 65536.0f * 2.0f - 1.0f;
    }
    for (int i = 0; i < BATCH; i++) g_labels[i] = i % CLASSES;
}

/* Builds, trains and reads back every tensor. Returns 0 on success. */
static int train_once(run_result *r) {
    int64_t shape[] = {FEATURES};
    bnd_net *net = NULL;
    bnd_optimizer *opt = NULL;
    bnd_sgd_params p = bnd_sgd_default_params();
    p.lr = 0.05f;
    p.momentum = 0.9f;
    int failed = bnd_net_create(shape, 1, &net) != BND_OK;
    failed |= bnd_net_seed(net, 42) != BND_OK;
    failed |= bnd_net_add_linear(net, 32) != BND_OK;
    failed |= bnd_net_add_batchnorm(net, NULL) != BND_OK;
    failed |= bnd_net_add_relu(net) != BND_OK;
    failed |= bnd_net_add_dropout(net, 0.3f) != BND_OK;
    failed |= bnd_net_add_linear(net, 64) != BND_OK;
    failed |= bnd_net_add_relu(net) != BND_OK;
    failed |= bnd_net_add_linear(net, CLASSES) != BND_OK;
    failed |= bnd_optimizer_create_sgd(net, &p, &opt) != BND_OK;
    for (int step = 0; step < STEPS && !failed; step++)
        failed |= bnd_net_train_step_classification(net, opt, g_input, g_labels, BATCH, &r->losses[step]) != BND_OK;
    size_t tensors = 0;
    r->state_count = 0;
    failed |= bnd_net_tensor_count(net, &tensors) != BND_OK;
    for (size_t t = 0; t < tensors && !failed; t++) {
        char name[BND_NAME_MAX];
        size_t numel = 0;
        failed |= bnd_net_tensor_name(net, t, name, sizeof name) != BND_OK;
        failed |= bnd_net_tensor_numel(net, name, &numel) != BND_OK;
        if (failed || r->state_count + numel > MAX_STATE) { failed = 1; break; }
        failed |= bnd_net_get_tensor(net, name, r->state + r->state_count, numel) != BND_OK;
        r->state_count += numel;
    }
    /* this thread's own error message */
    char expected[64];
    snprintf(expected, sizeof expected, "%d.thread_%d", 100 + r->id, r->id);
    float x = 0;
    if (bnd_net_get_tensor(net, expected, &x, 1) != BND_ERR_INVALID_ARGUMENT ||
        strstr(bnd_last_error(), expected) == NULL) {
        snprintf(r->message, sizeof r->message, "thread %d saw message '%s'", r->id, bnd_last_error());
        failed = 1;
    }
    bnd_optimizer_free(opt);
    bnd_net_free(net);
    return failed;
}

static void *thread_main(void *arg) {
    run_result *r = arg;
    /* a few rounds so the threads overlap */
    for (int round = 0; round < 3; round++) {
        if (train_once(r) != 0) { r->ok = 0; return NULL; }
    }
    r->ok = 1;
    return NULL;
}

void run_thread_tests(void) {
    static run_result reference, results[THREADS];
    make_data();
    test_begin("threads: single-threaded reference run");
    reference.id = 99;
    EXPECT(train_once(&reference) == 0, "reference run failed: %s %s", reference.message, bnd_last_error());
    EXPECT(reference.losses[STEPS - 1] < reference.losses[0], "loss did not fall: %g -> %g",
           (double)reference.losses[0], (double)reference.losses[STEPS - 1]);
    test_end();

    test_begin("threads: 4 nets trained concurrently equal the single-threaded run bit for bit");
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        results[i].id = i;
        EXPECT(pthread_create(&threads[i], NULL, thread_main, &results[i]) == 0, "pthread_create failed");
    }
    for (int i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < THREADS; i++) {
        EXPECT(results[i].ok, "thread %d failed: %s", i, results[i].message);
        EXPECT(results[i].state_count == reference.state_count, "thread %d: %zu state values, reference %zu", i,
               results[i].state_count, reference.state_count);
        EXPECT(memcmp(results[i].losses, reference.losses, sizeof reference.losses) == 0, "thread %d: losses differ", i);
        EXPECT(memcmp(results[i].state, reference.state, reference.state_count * sizeof(float)) == 0,
               "thread %d: final state differs", i);
    }
    test_end();
}
