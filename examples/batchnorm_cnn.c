/*
 * batchnorm_cnn.c - the article's second experiment: a small CNN on MNIST-format data, without and
 * with BatchNorm2d after the second convolution.
 *
 *   Conv2d(1,3,5) ReLU AvgPool2d(2) Conv2d(3,6,3) [BatchNorm2d(6)] ReLU AvgPool2d(2) Flatten
 *   Linear(150,25) ReLU Linear(25,10)
 *
 * Both start from the same convolution and Linear weights and see the same batches: SGD lr 0.01,
 * batch 512, 2 epochs (--batch-size and --epochs change these). Records every iteration's loss and the
 * test accuracy after each epoch.
 *
 * Writes to --out (default report/data): cnn_loss.csv, cnn_accuracy.csv, cnn.json, cnn_table.csv,
 * cnn_settings.csv. --short: 30 iterations of one epoch, for the test suite. Exits 1 unless the
 * BatchNorm net's loss fell and ended below the plain net's.
 */
#include "experiment_common.h"

#define BATCH 512
#define EPOCHS 2

static int32_t on_event(const bnd_fit_event *e, void *user_data) { return record_event(user_data, e); }

int main(int argc, char **argv) {
    const experiment_defaults defaults = {"BatchNorm2d in a small CNN (the article's experiment 2)", EPOCHS, 1, BATCH,
                                          "one epoch, stopped after 30 iterations"};
    options o = parse_options(argc, argv, &defaults);
    double started = now_seconds();
    bnd_dataset *train = NULL, *test = NULL;
    load_splits(&o, &train, &test);
    int64_t train_count = 0, test_count = 0;
    TRY(bnd_dataset_info(train, &train_count, NULL, NULL));
    TRY(bnd_dataset_info(test, &test_count, NULL, NULL));

    bnd_net *nets[2] = {NULL, NULL};
    TRY(article_cnn(0, o.seed, &nets[0]));
    TRY(article_cnn(1, o.seed, &nets[1]));
    /* Layers after the BatchNorm shift by one in the BN net. */
    const int same_layers[4][2] = {{0, 0}, {3, 3}, {7, 8}, {9, 10}};
    copy_layer_parameters(nets[0], nets[1], same_layers, 4);

    bnd_fit_params params = bnd_fit_default_params();
    params.epochs = o.epochs;
    params.batch_size = o.batch_size;
    params.shuffle_seed = o.seed;
    params.eval_batch_size = 1000;
    printf("CNN on %s: %lld training, %lld test images; SGD lr 0.01, batch %lld, %lld epoch%s\n", o.data_dir,
           (long long)train_count, (long long)test_count, (long long)params.batch_size, (long long)params.epochs,
           params.epochs == 1 ? "" : "s");
    static curves runs[2];
    for (int i = 0; i < 2; i++) {
        init_curves(&runs[i], i == 0 ? "cnn" : "cnn_bn", train_count, o.batch_size, o.epochs, o.short_mode ? 30 : 0);
        train_sgd(nets[i], &runs[i], train, test, &params, on_event);
    }
    int ok = write_comparison(&o, "cnn", "cnn", "cnn_bn", "CNN", "CNN + BatchNorm2d", &runs[0], &runs[1]);
    printf("CNN experiment: %.1f s\n", now_seconds() - started);
    free_curves(&runs[0]);
    free_curves(&runs[1]);
    bnd_net_free(nets[0]);
    bnd_net_free(nets[1]);
    bnd_dataset_free(train);
    bnd_dataset_free(test);
    return ok ? 0 : 1;
}
