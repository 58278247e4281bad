/* fork() while the library's threads are at work (Python's multiprocessing forks by default on
   Linux): the child must go on with what it had, its loader's next batch and a training step
   included, and a new loader of its own, without waiting forever for a worker thread that exists only
   in the parent. Each round forks right after the loader offered its next batch to the workers, while
   another thread of the parent trains its own net; the child runs under an alarm (a hang ends as a
   signal, a failure). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include "check.h"

#define FEATURES 784
#define SAMPLES 2048
#define BATCH 256
#define ROUNDS 30 /* BNDROP_TEST_FORK_ROUNDS overrides it; 0 skips the group (make test-valgrind, below) */

typedef struct {
    bnd_net *net;
    bnd_optimizer *opt;
    bnd_loader *loader;
    bnd_dataset *data;
} fork_setup;

static float g_features[SAMPLES * FEATURES];
static int32_t g_labels[SAMPLES];
static atomic_int g_stop;

static void make_images(void) {
    uint32_t s = 2024;
    for (int i = 0; i < SAMPLES * FEATURES; i++) {
        s = s * 1664525u + 1013904223u;
        g_features[i] = (s >> 30) == 0 ? (float)((s >> 8) & 0xFF) / 255.0f : 0.0f;  /* 3 in 4 zero */
    }
    for (int i = 0; i < SAMPLES; i++) g_labels[i] = i % 10;
}

/* One step on the loader's next batch (a new epoch when one ended). */
static bnd_status step(fork_setup *f) {
    const float *inputs = NULL;
    const int32_t *labels = NULL;
    int64_t batch = 0;
    bnd_status s = bnd_loader_next(f->loader, &inputs, &labels, NULL, &batch);
    if (s == BND_OK && batch == 0) s = bnd_loader_next(f->loader, &inputs, &labels, NULL, &batch);
    if (s != BND_OK) return s;
    float loss = 0;
    return bnd_net_train_step_classification(f->net, f->opt, inputs, labels, batch, &loss);
}

/* The child: three more steps on the parent's loader, then a loader of its own through an epoch. */
static bnd_status child_goes_on(void *context) {
    fork_setup *f = context;
    for (int i = 0; i < 3; i++) {
        bnd_status s = step(f);
        if (s != BND_OK) return s;
    }
    bnd_loader *own = NULL;
    bnd_status s = bnd_loader_create(f->data, 64, 1, 9, 0, &own);
    for (int64_t batch = 1; s == BND_OK && batch > 0;) {
        const float *inputs = NULL;
        s = bnd_loader_next(own, &inputs, NULL, NULL, &batch);
    }
    bnd_loader_free(own);
    return s;
}

/* Another thread of the parent, training its own net until told to stop: regions under way at fork. */
static void *train_beside(void *context) {
    fork_setup *f = context;
    while (!atomic_load(&g_stop))
        if (step(f) != BND_OK) return (void *)1;
    return NULL;
}

/* (f zeroed by the caller, so that free_setup is safe whatever failed.) */
static int make_setup(fork_setup *f, uint64_t seed) {
    int64_t shape[] = {FEATURES};
    bnd_sgd_params p = bnd_sgd_default_params();
    p.lr = 0.01f;
    f->net = test_mlp(FEATURES, 48, 0.0f, 10, seed);
    EXPECT_OK(bnd_dataset_from_labels(g_features, shape, 1, g_labels, SAMPLES, 10, &f->data));
    if (f->net == NULL || f->data == NULL) return 0;
    EXPECT_OK(bnd_optimizer_create_sgd(f->net, &p, &f->opt));
    EXPECT_OK(bnd_loader_create(f->data, BATCH, 1, seed, 0, &f->loader));
    return f->opt != NULL && f->loader != NULL;
}

static void free_setup(fork_setup *f) {
    bnd_loader_free(f->loader);
    bnd_optimizer_free(f->opt);
    bnd_net_free(f->net);
    bnd_dataset_free(f->data);
}

void run_fork_tests(void) {
    const char *rounds_text = getenv("BNDROP_TEST_FORK_ROUNDS");
    const int rounds = rounds_text != NULL && atoi(rounds_text) >= 0 ? atoi(rounds_text) : ROUNDS;
    if (rounds == 0) {
        printf("  fork: skipped (BNDROP_TEST_FORK_ROUNDS=0)\n");
        return;
    }
    make_images();
    int32_t threads = bnd_get_num_threads();
    EXPECT_OK(bnd_set_num_threads(2));
    test_begin("fork while the pool works: the child goes on");
    fork_setup main_setup, beside_setup;
    memset(&main_setup, 0, sizeof main_setup);
    memset(&beside_setup, 0, sizeof beside_setup);
    if (make_setup(&main_setup, 1) && make_setup(&beside_setup, 2)) {
        atomic_store(&g_stop, 0);
        pthread_t beside;
        int started = pthread_create(&beside, NULL, train_beside, &beside_setup) == 0;
        EXPECT(started, "pthread_create failed");
        for (int round = 0; round < rounds && g_current_failures == 0; round++) {
            EXPECT_OK(step(&main_setup));  /* (its loader has now offered the next batch to the workers) */
            run_in_child("bnd_net_train_step_classification in a child forked mid-gather", 60, child_goes_on,
                         &main_setup, BND_OK, NULL);
        }
        atomic_store(&g_stop, 1);
        void *result = NULL;
        if (started) pthread_join(beside, &result);
        EXPECT(result == NULL, "the thread training beside failed");
        /* The parent goes on too. */
        for (int i = 0; i < 3; i++) EXPECT_OK(step(&main_setup));
    }
    free_setup(&main_setup);
    free_setup(&beside_setup);
    test_end();
    EXPECT_OK(bnd_set_num_threads(threads));
}
