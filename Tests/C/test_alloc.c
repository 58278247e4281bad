/* No allocation in a training step: after a first step has sized every buffer, further steps at the
   same batch size must not call malloc & co. at all (Swift runtime allocations included: they go
   through malloc too).

   OpenBLAS's threaded SGEMM (0.3.21) mallocs its job table on every call it splits across threads;
   that is OpenBLAS's code, not bndrop's, so the window runs OpenBLAS on one thread and counts only
   the testing thread's calls.

   The test program interposes malloc, calloc, realloc and the aligned allocators, forwarding them to
   glibc's __libc_* functions and counting calls while a window is open. */
#include <stdlib.h>
#include <string.h>
#include "check.h"

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

/* Counted on the testing thread only: OpenBLAS's worker threads are not bndrop's code. */
static _Thread_local int counting;
static _Thread_local long allocations;

static void count_one(void) {
    if (counting) allocations++;
}

void *malloc(size_t size) { count_one(); return __libc_malloc(size); }
void *calloc(size_t count, size_t size) { count_one(); return __libc_calloc(count, size); }
void *realloc(void *pointer, size_t size) { count_one(); return __libc_realloc(pointer, size); }
void *aligned_alloc(size_t alignment, size_t size) { count_one(); return __libc_memalign(alignment, size); }
void *memalign(size_t alignment, size_t size) { count_one(); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    count_one();
    void *p = __libc_memalign(alignment, size);
    if (p == NULL) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

/* OpenBLAS's own controls (libopenblas is linked into the test program too). */
extern void openblas_set_num_threads(int threads);
extern int openblas_get_num_threads(void);

static void start_counting(void) { allocations = 0; counting = 1; }
static long stop_counting(void) { counting = 0; return allocations; }

enum { BATCH = 32, STEPS = 20 };

static bnd_net *mlp(void) { return test_mlp(784, 48, 0.3f, 10, 0); }

static bnd_net *cnn(void) {
    int64_t shape[] = {1, 28, 28};
    bnd_net *net = NULL;
    EXPECT_OK(bnd_net_create(shape, 3, &net));
    EXPECT_OK(bnd_net_add_conv2d(net, 3, 5, 1, 1));
    EXPECT_OK(bnd_net_add_relu(net));
    EXPECT_OK(bnd_net_add_avgpool2d(net, 2, 2));
    EXPECT_OK(bnd_net_add_conv2d(net, 6, 3, 1, 0));
    EXPECT_OK(bnd_net_add_batchnorm(net, NULL));
    EXPECT_OK(bnd_net_add_relu(net));
    EXPECT_OK(bnd_net_add_maxpool2d(net, 2, 2));
    EXPECT_OK(bnd_net_add_flatten(net));
    EXPECT_OK(bnd_net_add_linear(net, 10));
    return net;
}

/* Runs `steps` training steps of each kind the C API offers. */
static void train(bnd_net *net, bnd_optimizer *opt, const float *x, const int32_t *labels, float *scratch, int steps) {
    float loss = 0, grad[BATCH * 10];
    for (int s = 0; s < steps; s++) {
        EXPECT_OK(bnd_net_train_step_classification(net, opt, x, labels, BATCH, &loss));
        /* With the losses' other arguments (no class weights: those are copied, one allocation). */
        bnd_cross_entropy_params smoothing = bnd_cross_entropy_default_params();
        smoothing.label_smoothing = 0.1f;
        smoothing.ignore_index = 3;
        EXPECT_OK(bnd_net_train_step_classification_v2(net, opt, x, labels, BATCH, &smoothing, &loss));
        /* The same step by hand, with an input gradient. */
        EXPECT_OK(bnd_net_zero_grad(net));
        EXPECT_OK(bnd_net_forward(net, x, BATCH, scratch, BATCH * 10));
        EXPECT_OK(bnd_loss_cross_entropy(scratch, labels, BATCH, 10, &loss, grad));
        EXPECT_OK(bnd_net_backward(net, grad, BATCH, scratch + BATCH * 10, BATCH * 784));
        EXPECT_OK(bnd_optimizer_step(opt));
    }
}

static void check_net(const char *name, bnd_net *net, int adam) {
    test_begin(name);
    float *x = malloc(sizeof(float) * BATCH * 784), *scratch = malloc(sizeof(float) * BATCH * (10 + 784));
    int32_t labels[BATCH];
    for (int i = 0; i < BATCH * 784; i++) x[i] = (float)((i * 7919) % 255) / 255.0f;
    for (int i = 0; i < BATCH; i++) labels[i] = i % 10;
    bnd_optimizer *opt = NULL;
    if (adam) {
        bnd_adam_params p = bnd_adam_default_params();
        EXPECT_OK(bnd_optimizer_create_adam(net, &p, &opt));
    } else {
        bnd_sgd_params p = bnd_sgd_default_params();
        p.momentum = 0.9f;
        p.nesterov = 1;
        EXPECT_OK(bnd_optimizer_create_sgd(net, &p, &opt));
    }
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    train(net, opt, x, labels, scratch, 2); /* sizes every buffer */
    start_counting();
    train(net, opt, x, labels, scratch, STEPS);
    long counted = stop_counting();
    openblas_set_num_threads(threads);
    EXPECT(counted == 0, "%s: %ld allocations in %d training steps after the first", name, counted, 3 * STEPS);
    /* The counter itself works: the library does allocate when a larger batch comes. */
    start_counting();
    EXPECT_OK(bnd_net_set_training(net, 0));
    float big_out[2 * BATCH * 10];
    float *big_in = calloc(2 * BATCH * 784, sizeof(float));
    EXPECT_OK(bnd_net_forward(net, big_in, 2 * BATCH, big_out, 2 * BATCH * 10));
    EXPECT(stop_counting() > 0, "%s: a larger batch allocated nothing: is the counter working?", name);
    free(big_in);
    bnd_optimizer_free(opt);
    bnd_net_free(net);
    free(x);
    free(scratch);
    test_end();
}

void run_alloc_tests(void) {
    check_net("no allocation per step: MLP BatchNorm1d Dropout, SGD nesterov", mlp(), 0);
    check_net("no allocation per step: CNN BatchNorm2d MaxPool, Adam", cnn(), 1);
}
