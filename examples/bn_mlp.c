/*
 * bn_mlp.c - a batch-normalized MLP with dropout learning a three-arm spiral, through the C API.
 *
 *   Linear(2->64) BatchNorm1d ReLU Dropout(0.1) Linear(64->64) BatchNorm1d ReLU Linear(64->3)
 *
 * trained with Adam on generated data; prints the loss as it falls, then the accuracy in eval mode.
 * Exits 1 if anything fails or the loss did not fall.
 *
 * Build:  gcc -std=c11 -Iinclude examples/bn_mlp.c -L<libdir> -Wl,-rpath,<libdir> -lbndrop -lm
 * Run:    ./bn_mlp            (600 steps)
 *         ./bn_mlp --short    (120 steps, for `make run-examples`)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bndrop.h"

#define CLASSES 3
#define PER_CLASS 200
#define SAMPLES (CLASSES * PER_CLASS)
#define BATCH 64

/* Stops the program with the library's message when a call fails. */
#define TRY(call)                                                                                  \
    do {                                                                                           \
        bnd_status status_ = (call);                                                               \
        if (status_ != BND_OK) {                                                                   \
            fprintf(stderr, "%s failed: %s\n  %s\n", #call, bnd_status_string(status_), bnd_last_error()); \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* A small deterministic generator (xorshift64*), so every run sees the same data. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double uniform(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}
static double gaussian(void) {
    double u1 = uniform(), u2 = uniform();
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

/* The classic spiral: class k's points lie on an arm rotated by 2*pi*k/3, with noise. */
static void make_spiral(float *x, int32_t *y) {
    for (int k = 0; k < CLASSES; k++) {
        for (int i = 0; i < PER_CLASS; i++) {
            double r = (double)i / PER_CLASS;
            double t = k * 4.0 + 4.0 * r + 0.2 * gaussian();
            int n = k * PER_CLASS + i;
            x[2 * n] = (float)(r * sin(t));
            x[2 * n + 1] = (float)(r * cos(t));
            y[n] = k;
        }
    }
}

int main(int argc, char **argv) {
    int steps = 600;
    for (int i = 1; i < argc; i++) {
        const int help = strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0;
        if (strcmp(argv[i], "--short") == 0) {
            steps = 120;
        } else {
            fprintf(help ? stdout : stderr, "usage: %s [--short]\n  trains a small BatchNorm MLP with Adam on a "
                    "2-D spiral (600 steps; 120 with --short)\n", argv[0]);
            return help ? 0 : 2;
        }
    }
    if (bnd_version_number() != BND_VERSION_NUMBER) {
        fprintf(stderr, "header %s but library %s\n", BND_VERSION_STRING, bnd_version_string());
        return 1;
    }

    static float x[SAMPLES * 2], batch_x[BATCH * 2], logits[SAMPLES * CLASSES];
    static int32_t y[SAMPLES], batch_y[BATCH];
    make_spiral(x, y);

    /* The network. */
    const int64_t sample_shape[] = {2};
    bnd_net *net = NULL;
    TRY(bnd_net_create(sample_shape, 1, &net));
    TRY(bnd_net_seed(net, 1));
    TRY(bnd_net_add_linear(net, 64));
    TRY(bnd_net_add_batchnorm(net, NULL));
    TRY(bnd_net_add_relu(net));
    TRY(bnd_net_add_dropout(net, 0.1f));
    TRY(bnd_net_add_linear(net, 64));
    TRY(bnd_net_add_batchnorm(net, NULL));
    TRY(bnd_net_add_relu(net));
    TRY(bnd_net_add_linear(net, CLASSES));

    bnd_adam_params adam = bnd_adam_default_params();
    adam.lr = 0.01f;
    bnd_optimizer *opt = NULL;
    TRY(bnd_optimizer_create_adam(net, &adam, &opt));

    /* Training: random mini-batches; report the mean loss of every window of steps. */
    int window = steps / 10;
    double first_window = 0, last_window = 0, sum = 0;
    printf("spiral, %d samples, %d classes; %d steps of batch %d with Adam(lr=%.3g)\n", SAMPLES, CLASSES, steps, BATCH,
           (double)adam.lr);
    for (int step = 1; step <= steps; step++) {
        for (int b = 0; b < BATCH; b++) {
            int n = (int)(uniform() * SAMPLES);
            batch_x[2 * b] = x[2 * n];
            batch_x[2 * b + 1] = x[2 * n + 1];
            batch_y[b] = y[n];
        }
        float loss = 0;
        TRY(bnd_net_train_step_classification(net, opt, batch_x, batch_y, BATCH, &loss));
        sum += loss;
        if (step % window == 0) {
            double mean = sum / window;
            if (step == window) first_window = mean;
            last_window = mean;
            printf("step %4d  loss %.4f\n", step, mean);
            sum = 0;
        }
    }

    /* Evaluation on the whole set in eval mode (running statistics, no dropout). */
    TRY(bnd_net_set_training(net, 0));
    TRY(bnd_net_forward(net, x, SAMPLES, logits, SAMPLES * CLASSES));
    float eval_loss = 0;
    TRY(bnd_loss_cross_entropy(logits, y, SAMPLES, CLASSES, &eval_loss, NULL));
    int correct = 0;
    for (int n = 0; n < SAMPLES; n++) {
        int best = 0;
        for (int c = 1; c < CLASSES; c++)
            if (logits[n * CLASSES + c] > logits[n * CLASSES + best]) best = c;
        correct += best == y[n];
    }
    printf("eval: loss %.4f, accuracy %.1f%%\n", (double)eval_loss, 100.0 * correct / SAMPLES);

    bnd_optimizer_free(opt);
    bnd_net_free(net);

    if (!(last_window < 0.7 * first_window)) {
        printf("FAIL: the loss did not fall enough (%.4f -> %.4f)\n", first_window, last_window);
        return 1;
    }
    printf("OK: loss fell from %.4f to %.4f\n", first_window, last_window);
    return 0;
}
