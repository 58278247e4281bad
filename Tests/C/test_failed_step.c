/* Issue 10 through the C ABI: a refused or failed bnd_net_train_step_* changes nothing but the
   gradients. Each kind of failure is applied to one of two twin nets (same seed, same SGD-with-momentum
   optimizer, same two steps of history); the twins' full states are then compared as bytes (bnd_net_save:
   every tensor with num_batches_tracked, the mode and the dropout generators; bnd_optimizer_save: the
   momentum buffers), and a further step must give both the same loss, the same dropout mask (layer 4's
   output) and again the same state. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"

enum { BATCH = 8, IN = 4, CLASSES = 3 };

static char g_dir[64];
/* 1: the twins are the regression net below, trained with mean squared error. */
static int g_regression;

/* Classification: {4} -> Linear(8) -> Dropout(0.25) -> BatchNorm1d -> ReLU -> Dropout(0.5) -> Linear(3),
   and SGD with momentum 0.9 over it. Regression: {4} -> Linear(8) -> BatchNorm1d -> ReLU -> Dropout(0.3)
   -> Linear(4) -> Linear(1), and Adam. */
static void make_twin(bnd_net **net, bnd_optimizer **opt) {
    const int64_t shape[] = {IN};
    *net = NULL;
    *opt = NULL;
    EXPECT_OK(bnd_net_create(shape, 1, net));
    EXPECT_OK(bnd_net_seed(*net, 5));
    EXPECT_OK(bnd_net_add_linear(*net, 8));
    if (g_regression) {
        EXPECT_OK(bnd_net_add_batchnorm(*net, NULL));
        EXPECT_OK(bnd_net_add_relu(*net));
        EXPECT_OK(bnd_net_add_dropout(*net, 0.3f));
        EXPECT_OK(bnd_net_add_linear(*net, 4));
        EXPECT_OK(bnd_net_add_linear(*net, 1));
        bnd_adam_params p = bnd_adam_default_params();
        p.lr = 0.01f;
        EXPECT_OK(bnd_optimizer_create_adam(*net, &p, opt));
        return;
    }
    EXPECT_OK(bnd_net_add_dropout(*net, 0.25f));
    EXPECT_OK(bnd_net_add_batchnorm(*net, NULL));
    EXPECT_OK(bnd_net_add_relu(*net));
    EXPECT_OK(bnd_net_add_dropout(*net, 0.5f));
    EXPECT_OK(bnd_net_add_linear(*net, CLASSES));
    bnd_sgd_params p = bnd_sgd_default_params();
    p.lr = 0.1f;
    p.momentum = 0.9f;
    EXPECT_OK(bnd_optimizer_create_sgd(*net, &p, opt));
}

/* The bytes of a file; *size receives their count. NULL when it cannot be read. */
static unsigned char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(n > 0 ? (size_t)n : 1);
    *size = data && fread(data, 1, (size_t)n, f) == (size_t)n ? (size_t)n : 0;
    fclose(f);
    return data;
}

/* Whether the two nets' and optimizers' checkpoints are the same bytes. */
static int same_state(const bnd_net *a, const bnd_optimizer *oa, const bnd_net *b, const bnd_optimizer *ob) {
    char pa[96], pb[96];
    int same = 1;
    for (int which = 0; which < 2; which++) {
        snprintf(pa, sizeof pa, "%s/a.safetensors", g_dir);
        snprintf(pb, sizeof pb, "%s/b.safetensors", g_dir);
        if (which == 0) {
            EXPECT_OK(bnd_net_save(a, pa));
            EXPECT_OK(bnd_net_save(b, pb));
        } else {
            EXPECT_OK(bnd_optimizer_save(oa, pa));
            EXPECT_OK(bnd_optimizer_save(ob, pb));
        }
        size_t na = 0, nb = 0;
        unsigned char *da = read_all(pa, &na), *db = read_all(pb, &nb);
        same = same && da && db && na > 0 && na == nb && memcmp(da, db, na) == 0;
        free(da);
        free(db);
    }
    return same;
}

typedef bnd_status (*failing_step)(bnd_net *net, bnd_optimizer *opt, bnd_optimizer *foreign);

static float g_input[BATCH * IN];
static int32_t g_labels[BATCH];

static bnd_status bad_label(bnd_net *net, bnd_optimizer *opt, bnd_optimizer *foreign) {
    (void)foreign;
    int32_t labels[BATCH];
    memcpy(labels, g_labels, sizeof labels);
    labels[5] = CLASSES;
    return bnd_net_train_step_classification(net, opt, g_input, labels, BATCH, NULL);
}

static bnd_status nan_input(bnd_net *net, bnd_optimizer *opt, bnd_optimizer *foreign) {
    (void)foreign;
    float input[BATCH * IN];
    memcpy(input, g_input, sizeof input);
    input[13] = NAN;
    return bnd_net_train_step_classification(net, opt, input, g_labels, BATCH, NULL);
}

static bnd_status nan_target(bnd_net *net, bnd_optimizer *opt, bnd_optimizer *foreign) {
    (void)foreign;
    float targets[BATCH] = {0};
    targets[4] = NAN;
    return bnd_net_train_step_regression(net, opt, g_input, targets, BATCH, NULL);
}

static bnd_status batch_of_one(bnd_net *net, bnd_optimizer *opt, bnd_optimizer *foreign) {
    (void)foreign;
    return bnd_net_train_step_classification(net, opt, g_input, g_labels, 1, NULL);
}

static bnd_status foreign_optimizer(bnd_net *net, bnd_optimizer *opt, bnd_optimizer *foreign) {
    (void)opt;
    return bnd_net_train_step_classification(net, foreign, g_input, g_labels, BATCH, NULL);
}

/* Overflowing logits: every weight and bias of the last Linear is 3e38. */
static void huge_weights(bnd_net *net) {
    float w[8 * CLASSES], b[CLASSES];
    for (size_t i = 0; i < 8 * CLASSES; i++) w[i] = 3e38f;
    for (size_t i = 0; i < CLASSES; i++) b[i] = 3e38f;
    EXPECT_OK(bnd_net_set_tensor(net, "5.weight", w, 8 * CLASSES));
    EXPECT_OK(bnd_net_set_tensor(net, "5.bias", b, CLASSES));
}

static bnd_status huge_loss(bnd_net *net, bnd_optimizer *opt, bnd_optimizer *foreign) {
    (void)foreign;
    return bnd_net_train_step_classification(net, opt, g_input, g_labels, BATCH, NULL);
}

/* A finite loss with an infinite gradient (regression net): layer 4 outputs exactly 0 (weights and bias
   0), so the prediction is 0 and the squared error against 100 finite, but back-propagating through
   layer 5's weights of 3e38 overflows. */
static void finite_loss_huge_gradient(bnd_net *net) {
    float zeros[32] = {0}, huge[4] = {3e38f, 3e38f, 3e38f, 3e38f};
    EXPECT_OK(bnd_net_set_tensor(net, "4.weight", zeros, 32));
    EXPECT_OK(bnd_net_set_tensor(net, "4.bias", zeros, 4));
    EXPECT_OK(bnd_net_set_tensor(net, "5.weight", huge, 4));
    EXPECT_OK(bnd_net_set_tensor(net, "5.bias", zeros, 1));
}

static bnd_status huge_gradient(bnd_net *net, bnd_optimizer *opt, bnd_optimizer *foreign) {
    (void)foreign;
    float targets[BATCH];
    for (size_t i = 0; i < BATCH; i++) targets[i] = 100;
    return bnd_net_train_step_regression(net, opt, g_input, targets, BATCH, NULL);
}

/* A successful step of the twins' kind. */
static bnd_status good_step(bnd_net *net, bnd_optimizer *opt, float *loss) {
    float targets[BATCH];
    for (size_t i = 0; i < BATCH; i++) targets[i] = (float)i / 4 - 1;
    return g_regression ? bnd_net_train_step_regression(net, opt, g_input, targets, BATCH, loss)
                        : bnd_net_train_step_classification(net, opt, g_input, g_labels, BATCH, loss);
}

static void check_kind(const char *kind, int regression, failing_step fail, void (*prepare)(bnd_net *),
                       bnd_status expected, int refused) {
    g_regression = regression;
    char name[128];
    snprintf(name, sizeof name, "failed step: %s", kind);
    test_begin(name);
    bnd_net *a, *b, *other;
    bnd_optimizer *oa, *ob, *foreign;
    make_twin(&a, &oa);
    make_twin(&b, &ob);
    make_twin(&other, &foreign);
    float la, lb;
    for (int i = 0; i < 2; i++) {
        EXPECT_OK(good_step(a, oa, &la));
        EXPECT_OK(good_step(b, ob, &lb));
    }
    if (prepare) { prepare(a); prepare(b); }
    bnd_clear_last_error();
    bnd_status got = fail(a, oa, foreign);
    EXPECT(got == expected, "%s: status %d, expected %d (%s)", kind, (int)got, (int)expected, bnd_last_error());
    EXPECT(bnd_last_error()[0] != 0, "%s: no error message", kind);
    int unchanged = same_state(a, oa, b, ob);
    EXPECT(unchanged, "%s: the state changed", kind);
    float out[BATCH * 8];
    size_t count = 0;
    bnd_status output = bnd_net_get_layer_output(a, 0, out, BATCH * 8, &count);
    if (refused) {
        EXPECT(output == BND_OK, "%s: a refused step discarded the last forward pass", kind);
    } else {
        EXPECT(output == BND_ERR_STATE, "%s: the failed step's forward pass is kept (%d)", kind, (int)output);
        float grad[BATCH * CLASSES] = {0};  /* room for either net's output */
        EXPECT(bnd_net_backward(a, grad, BATCH, NULL, 0) == BND_ERR_STATE, "%s: backward after a failed step", kind);
    }
    /* The next step: the same status, loss, dropout masks and state for both twins. */
    bnd_status sa = good_step(a, oa, &la);
    bnd_status sb = good_step(b, ob, &lb);
    EXPECT(sa == sb, "%s: next step %d vs %d", kind, (int)sa, (int)sb);
    if (sa == BND_OK && sb == BND_OK) {
        EXPECT(memcmp(&la, &lb, sizeof la) == 0, "%s: next loss %.9g vs %.9g", kind, (double)la, (double)lb);
        float ma[BATCH * 8], mb[BATCH * 8];
        size_t dropout = g_regression ? 3 : 4;
        EXPECT_OK(bnd_net_get_layer_output(a, dropout, ma, BATCH * 8, NULL));
        EXPECT_OK(bnd_net_get_layer_output(b, dropout, mb, BATCH * 8, NULL));
        EXPECT(memcmp(ma, mb, sizeof ma) == 0, "%s: the next dropout output differs", kind);
    }
    EXPECT(same_state(a, oa, b, ob), "%s: the states diverged after the next step", kind);
    printf("  %-34s %-26s %s\n", kind, refused ? "refused" : "ran, failed", unchanged ? "state unchanged" : "STATE CHANGED");
    bnd_optimizer_free(oa);
    bnd_optimizer_free(ob);
    bnd_optimizer_free(foreign);
    bnd_net_free(a);
    bnd_net_free(b);
    bnd_net_free(other);
    test_end();
}

/* Counts the step events; returns 0 (stop) once `limit` steps ran, when a limit is set. */
typedef struct { int64_t steps, limit; } step_counter;

static int32_t count_steps(const bnd_fit_event *event, void *user_data) {
    step_counter *counter = user_data;
    if (event->kind == BND_EVENT_STEP) counter->steps++;
    return counter->limit == 0 || counter->steps < counter->limit;
}

/* bnd_fit stops at the first failed step (a finite target whose squared error overflows) with the state
   of the last successful one: the twin stopped by its callback after as many steps has the same bytes. */
static void check_fit(void) {
    test_begin("failed step: bnd_fit stops with the state of the last successful step");
    g_regression = 1;
    bnd_net *a, *b;
    bnd_optimizer *oa, *ob;
    make_twin(&a, &oa);
    make_twin(&b, &ob);
    float features[2 * BATCH * IN], targets[2 * BATCH];
    for (size_t i = 0; i < 2 * BATCH * IN; i++) features[i] = g_input[i % (BATCH * IN)];
    for (size_t i = 0; i < 2 * BATCH; i++) targets[i] = (float)(i % BATCH) / 4 - 1;
    targets[12] = 1e30f;
    const int64_t shape[] = {IN};
    bnd_dataset *data = NULL;
    EXPECT_OK(bnd_dataset_from_targets(features, shape, 1, targets, 1, 2 * BATCH, &data));
    bnd_fit_params params = bnd_fit_default_params();
    params.epochs = 3;
    params.batch_size = 4;
    params.shuffle_seed = 1;
    step_counter ca = {0, 0}, cb = {0, 0};
    bnd_fit_summary summary;
    memset(&summary, 0x5a, sizeof summary);
    bnd_fit_summary untouched = summary;
    bnd_status got = bnd_fit(a, oa, data, NULL, &params, count_steps, &ca, &summary);
    EXPECT(got == BND_ERR_NUMERIC, "bnd_fit: status %d (%s)", (int)got, bnd_last_error());
    EXPECT(memcmp(&summary, &untouched, sizeof summary) == 0, "bnd_fit wrote its summary after a failure");
    EXPECT(ca.steps > 0, "bnd_fit failed at its first step");
    cb.limit = ca.steps;
    EXPECT_OK(bnd_fit(b, ob, data, NULL, &params, count_steps, &cb, NULL));
    EXPECT(cb.steps == ca.steps, "the twin ran %lld steps, not %lld", (long long)cb.steps, (long long)ca.steps);
    EXPECT(same_state(a, oa, b, ob), "bnd_fit: the failed step changed the state");
    bnd_dataset_free(data);
    bnd_optimizer_free(oa);
    bnd_optimizer_free(ob);
    bnd_net_free(a);
    bnd_net_free(b);
    test_end();
}

void run_failed_step_tests(void) {
    for (size_t i = 0; i < BATCH * IN; i++) g_input[i] = (float)((i * 37) % 23) / 7.0f - 1.5f;
    for (size_t i = 0; i < BATCH; i++) g_labels[i] = (int32_t)((i * 5) % CLASSES);
    snprintf(g_dir, sizeof g_dir, "/tmp/bndrop-failed-XXXXXX");
    if (!mkdtemp(g_dir)) {
        test_begin("failed step: temporary folder");
        EXPECT(0, "mkdtemp failed");
        test_end();
        return;
    }
    printf("failed training steps (C):\n");
    check_kind("label out of range", 0, bad_label, NULL, BND_ERR_INVALID_ARGUMENT, 1);
    check_kind("NaN input", 0, nan_input, NULL, BND_ERR_NUMERIC, 1);
    check_kind("NaN target", 1, nan_target, NULL, BND_ERR_NUMERIC, 1);
    check_kind("BatchNorm batch of one", 0, batch_of_one, NULL, BND_ERR_SHAPE, 1);
    check_kind("foreign optimizer", 0, foreign_optimizer, NULL, BND_ERR_INVALID_ARGUMENT, 1);
    check_kind("non-finite loss (huge weights)", 0, huge_loss, huge_weights, BND_ERR_NUMERIC, 0);
    check_kind("finite loss, non-finite gradient", 1, huge_gradient, finite_loss_huge_gradient, BND_ERR_NUMERIC, 0);
    check_fit();
    char path[96];
    snprintf(path, sizeof path, "%s/a.safetensors", g_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/b.safetensors", g_dir);
    unlink(path);
    rmdir(g_dir);
}
