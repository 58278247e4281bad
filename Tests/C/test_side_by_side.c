/* bnd_nets_train_step_classification / _regression: several nets' steps at the same time give the bits
   of the steps one after the other, for 1 and 2 threads; every refusal leaves every net as it was; a
   step that fails while running fails alone, and the statuses say which. */
#include <math.h>
#include <string.h>
#include "check.h"

#define FEATURES 6
#define BATCH 8
#define STEPS 12
#define MAX_STATE 2048

static float g_x[BATCH * FEATURES], g_y[BATCH], g_y3[BATCH * 3];
static int32_t g_labels[BATCH];

static void make_data(void) {
    uint32_t s = 777;
    for (int i = 0; i < BATCH * FEATURES; i++) {
        s = s * 1664525u + 1013904223u;
        g_x[i] = (float)((s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
    for (int i = 0; i < BATCH; i++) {
        g_y[i] = g_x[i * FEATURES] - 0.5f * g_x[i * FEATURES + 1];
        g_labels[i] = i % 3;
        for (int o = 0; o < 3; o++) g_y3[i * 3 + o] = g_y[i] * (float)(o + 1);
    }
}

/* Every tensor of `net`, one after the other; the count, or 0 on error. */
static size_t read_state(bnd_net *net, float *state) {
    size_t tensors = 0, used = 0;
    if (bnd_net_tensor_count(net, &tensors) != BND_OK) return 0;
    for (size_t t = 0; t < tensors; t++) {
        char name[BND_NAME_MAX];
        size_t numel = 0;
        if (bnd_net_tensor_name(net, t, name, sizeof name) != BND_OK || bnd_net_tensor_numel(net, name, &numel) != BND_OK ||
            used + numel > MAX_STATE || bnd_net_get_tensor(net, name, state + used, numel) != BND_OK)
            return 0;
        used += numel;
    }
    return used;
}

/* Two nets (one with dropout) trained STEPS steps, side by side or one after the other; their states and
   losses into state[2][MAX_STATE] and losses[STEPS][2]. */
static void train_pair(int side_by_side, int threads, int classification, float state[2][MAX_STATE], size_t count[2],
                       float losses[STEPS][2]) {
    EXPECT_OK(bnd_set_num_threads(threads));
    int64_t outputs = classification ? 3 : 1;
    bnd_net *nets[2] = {test_mlp(FEATURES, 32, 0.0f, outputs, 21), test_mlp(FEATURES, 32, 0.25f, outputs, 22)};
    bnd_optimizer *opts[2] = {NULL, NULL};
    bnd_adam_params adam = bnd_adam_default_params();
    adam.lr = 0.01f;
    for (int k = 0; k < 2; k++) EXPECT_OK(bnd_optimizer_create_adam(nets[k], &adam, &opts[k]));
    for (int step = 0; step < STEPS; step++) {
        if (side_by_side && classification)
            EXPECT_OK(bnd_nets_train_step_classification(nets, opts, 2, g_x, g_labels, BATCH, losses[step], NULL));
        else if (side_by_side)
            EXPECT_OK(bnd_nets_train_step_regression(nets, opts, 2, g_x, g_y, BATCH, losses[step], NULL));
        else
            for (int k = 0; k < 2; k++) {
                if (classification)
                    EXPECT_OK(bnd_net_train_step_classification(nets[k], opts[k], g_x, g_labels, BATCH, &losses[step][k]));
                else
                    EXPECT_OK(bnd_net_train_step_regression(nets[k], opts[k], g_x, g_y, BATCH, &losses[step][k]));
            }
    }
    for (int k = 0; k < 2; k++) {
        count[k] = read_state(nets[k], state[k]);
        bnd_optimizer_free(opts[k]);
        bnd_net_free(nets[k]);
    }
}

static void check_same_bits(int classification) {
    static float ref_state[2][MAX_STATE], state[2][MAX_STATE];
    float ref_losses[STEPS][2], losses[STEPS][2];
    size_t ref_count[2], count[2];
    const int original = bnd_get_num_threads();
    train_pair(0, 1, classification, ref_state, ref_count, ref_losses);
    for (int threads = 1; threads <= 2; threads++) {
        char title[96];
        snprintf(title, sizeof title, "side by side, %s, %d thread(s): the bits of steps one after the other",
                 classification ? "classification" : "regression", threads);
        test_begin(title);
        train_pair(1, threads, classification, state, count, losses);
        EXPECT(ref_count[0] > 0 && ref_count[1] > 0, "no state read");
        EXPECT(memcmp(losses, ref_losses, sizeof losses) == 0, "the losses differ");
        for (int k = 0; k < 2; k++)
            EXPECT(count[k] == ref_count[k] && memcmp(state[k], ref_state[k], count[k] * sizeof(float)) == 0,
                   "net %d's tensors differ", k);
        test_end();
    }
    EXPECT_OK(bnd_set_num_threads(original));
}

void run_side_by_side_tests(void) {
    make_data();
    check_same_bits(0);
    check_same_bits(1);

    bnd_net *a = test_mlp(FEATURES, 16, 0.0f, 3, 31), *b = test_mlp(FEATURES, 16, 0.5f, 3, 32);
    bnd_net *wide = test_mlp(FEATURES + 1, 16, 0.0f, 3, 33);
    bnd_optimizer *opt_a = NULL, *opt_b = NULL, *opt_wide = NULL, *second_a = NULL;
    EXPECT_OK(bnd_optimizer_create_sgd(a, NULL, &opt_a));
    EXPECT_OK(bnd_optimizer_create_sgd(b, NULL, &opt_b));
    EXPECT_OK(bnd_optimizer_create_sgd(wide, NULL, &opt_wide));
    EXPECT_OK(bnd_optimizer_create_sgd(a, NULL, &second_a));
    float before[2][MAX_STATE], after[2][MAX_STATE], losses[2] = {0, 0}, nan_x[BATCH * FEATURES];
    bnd_status statuses[2] = {BND_OK, BND_OK};
    size_t n_a = read_state(a, before[0]), n_b = read_state(b, before[1]);
    memcpy(nan_x, g_x, sizeof nan_x);
    nan_x[7] = NAN;
    {
        bnd_net *pair[2] = {a, b}, *twice[2] = {a, a}, *mixed[2] = {a, wide}, *with_null[2] = {a, NULL};
        bnd_optimizer *opts[2] = {opt_a, opt_b}, *swapped[2] = {opt_b, opt_a}, *twice_opts[2] = {opt_a, second_a};
        bnd_optimizer *mixed_opts[2] = {opt_a, opt_wide};
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_nets_train_step_classification(NULL, opts, 2, g_x, g_labels, BATCH, losses, NULL));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_nets_train_step_classification(with_null, opts, 2, g_x, g_labels, BATCH, losses, NULL));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_nets_train_step_classification(pair, opts, 0, g_x, g_labels, BATCH, losses, NULL));
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "different network",
                bnd_nets_train_step_classification(pair, swapped, 2, g_x, g_labels, BATCH, losses, NULL));
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "shares a layer",
                bnd_nets_train_step_classification(twice, twice_opts, 2, g_x, g_labels, BATCH, losses, NULL));
        BAD(BND_ERR_SHAPE, bnd_nets_train_step_classification(mixed, mixed_opts, 2, g_x, g_labels, BATCH, losses, NULL));
        BAD(BND_ERR_SHAPE, bnd_nets_train_step_classification(pair, opts, 2, g_x, g_labels, 1, losses, NULL)); /* BN */
        BAD(BND_ERR_NUMERIC, bnd_nets_train_step_classification(pair, opts, 2, nan_x, g_labels, BATCH, losses, NULL));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_nets_train_step_regression(pair, opts, 2, g_x, NULL, BATCH, losses, NULL));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_nets_train_step_regression(pair, opts, 5000, g_x, g_y3, BATCH, losses, NULL));
        BAD(BND_ERR_SHAPE, bnd_nets_train_step_regression(pair, opts, 2, g_x, g_y3, 0, losses, NULL));
        BAD(BND_ERR_NUMERIC, bnd_nets_train_step_regression(pair, opts, 2, nan_x, g_y3, BATCH, losses, NULL));
        test_begin("side by side: a refused call changes no net");
        EXPECT(read_state(a, after[0]) == n_a && memcmp(after[0], before[0], n_a * sizeof(float)) == 0, "net a changed");
        EXPECT(read_state(b, after[1]) == n_b && memcmp(after[1], before[1], n_b * sizeof(float)) == 0, "net b changed");
        test_end();

        /* a step that fails while running: b's output overflows, a steps as it would alone */
        float huge[3] = {3e38f, 3e38f, 3e38f}; /* squared errors of 9e76: an infinite loss */
        EXPECT_OK(bnd_net_set_tensor(b, "4.bias", huge, 3));
        n_b = read_state(b, before[1]);
        test_begin("side by side: a failed step fails alone");
        bnd_status s = (bnd_clear_last_error(),
                        bnd_nets_train_step_regression(pair, opts, 2, g_x, g_y3, BATCH, losses, statuses));
        record_status("bnd_nets_train_step_regression", s);
        EXPECT(s == BND_ERR_NUMERIC, "returned %d", (int)s);
        EXPECT(strstr(bnd_last_error(), "nets[1]") != NULL, "message: %s", bnd_last_error());
        EXPECT(statuses[0] == BND_OK && statuses[1] == BND_ERR_NUMERIC, "statuses %d %d", (int)statuses[0], (int)statuses[1]);
        EXPECT(isfinite(losses[0]) && isnan(losses[1]), "losses %g %g", (double)losses[0], (double)losses[1]);
        EXPECT(read_state(b, after[1]) == n_b && memcmp(after[1], before[1], n_b * sizeof(float)) == 0,
               "the failed step changed its net");
        EXPECT(read_state(a, after[0]) == n_a && memcmp(after[0], before[0], n_a * sizeof(float)) != 0,
               "the other net did not step");
        test_end();

        /* nets that gained a layer after their optimizer was created */
        EXPECT_OK(bnd_net_add_relu(a));
        BAD(BND_ERR_STATE, bnd_nets_train_step_classification(pair, opts, 2, g_x, g_labels, BATCH, losses, NULL));
        BAD(BND_ERR_STATE, bnd_nets_train_step_regression(pair, opts, 2, g_x, g_y3, BATCH, losses, NULL));
    }
    bnd_optimizer_free(opt_a);
    bnd_optimizer_free(opt_b);
    bnd_optimizer_free(opt_wide);
    bnd_optimizer_free(second_a);
    bnd_net_free(a);
    bnd_net_free(b);
    bnd_net_free(wide);
}
