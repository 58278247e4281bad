/* install_prog.c - a C program built against an installed bndrop the way a user builds one:
 *   gcc install_prog.c $(pkg-config --cflags --libs bndrop)
 * Tests/install/install_test.sh runs it with a clean environment. It checks that the header it was
 * compiled with matches the library it runs with, trains a 16-32-3 net with BatchNorm1d and Dropout
 * on a fixed toy problem for a few SGD steps, prints each loss and the OpenBLAS bndrop loaded (Debian's
 * libopenblas0, loaded at run time), and exits 0 when the loss fell. */
#include <bndrop.h>
#include <stdio.h>

#define INPUTS 16
#define CLASSES 3
#define BATCH 32
#define STEPS 20

static int check(bnd_status status, const char *what) {
    if (status != BND_OK) fprintf(stderr, "%s: %s: %s\n", what, bnd_status_string(status), bnd_last_error());
    return status == BND_OK;
}

int main(void) {
    printf("bndrop %s (header %s)\n", bnd_version_string(), BND_VERSION_STRING);
    if (bnd_version_number() != BND_VERSION_NUMBER) {
        fprintf(stderr, "library version %u, header version %d\n", bnd_version_number(), BND_VERSION_NUMBER);
        return 1;
    }
    /* Class k: the features of group k (a third of the inputs) are high, the rest low, plus a
       deterministic wiggle. */
    static float inputs[BATCH * INPUTS];
    static int32_t labels[BATCH];
    for (int i = 0; i < BATCH; i++) {
        labels[i] = i % CLASSES;
        for (int j = 0; j < INPUTS; j++)
            inputs[i * INPUTS + j] = (j % CLASSES == labels[i] ? 1.0f : -0.5f) + 0.1f * (float)((i * 7 + j * 3) % 5 - 2);
    }
    const int64_t shape[1] = {INPUTS};
    bnd_net *net = NULL;
    bnd_optimizer *opt = NULL;
    bnd_sgd_params sgd = bnd_sgd_default_params();
    sgd.lr = 0.1f;
    sgd.momentum = 0.9f;
    int ok = check(bnd_net_create(shape, 1, &net), "bnd_net_create") && check(bnd_net_seed(net, 1), "bnd_net_seed") &&
             check(bnd_net_add_linear(net, 32), "bnd_net_add_linear") &&
             check(bnd_net_add_batchnorm(net, NULL), "bnd_net_add_batchnorm") &&
             check(bnd_net_add_relu(net), "bnd_net_add_relu") && check(bnd_net_add_dropout(net, 0.2f), "bnd_net_add_dropout") &&
             check(bnd_net_add_linear(net, CLASSES), "bnd_net_add_linear") &&
             check(bnd_optimizer_create_sgd(net, &sgd, &opt), "bnd_optimizer_create_sgd");
    float first = 0, loss = 0;
    for (int step = 0; ok && step < STEPS; step++) {
        ok = check(bnd_net_train_step_classification(net, opt, inputs, labels, BATCH, &loss), "train step");
        if (step == 0) first = loss;
        if (ok && (step % 5 == 0 || step == STEPS - 1)) printf("step %2d loss %.4f\n", step + 1, loss);
    }
    bnd_optimizer_free(opt);
    bnd_net_free(net);
    bnd_runtime_info info;
    if (ok && (ok = check(bnd_get_runtime_info(&info), "bnd_get_runtime_info")))
        printf("BLAS: %s (core %s)\n", info.blas_config, info.blas_core);
    if (!ok) return 1;
    if (!(loss < first)) {
        fprintf(stderr, "the loss did not fall: %.4f -> %.4f\n", first, loss);
        return 1;
    }
    printf("trained %d steps: loss %.4f -> %.4f\n", STEPS, first, loss);
    return 0;
}
