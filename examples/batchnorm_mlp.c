/*
 * batchnorm_mlp.c - the article's first experiment: an MLP 784-48-24-10 (ReLU) on MNIST-format data,
 * without and with BatchNorm1d before each hidden ReLU.
 *
 *   plain:      Linear(784,48) ReLU Linear(48,24) ReLU Linear(24,10)
 *   batchnorm:  Linear(784,48) BatchNorm1d(48) ReLU Linear(48,24) BatchNorm1d(24) ReLU Linear(24,10)
 *
 * Both start from the same Linear weights and see the same batches: SGD lr 0.01, batch 512, 2 epochs
 * (--batch-size and --epochs change these). Records every iteration's loss, the test accuracy after
 * each epoch, and every 10 iterations the first hidden layer's values on 1000 test images (all of
 * them in a smaller test set) in eval mode (Linear-1's output for the plain net, BatchNorm-1's for the
 * BN net) as histograms and their mean and standard deviation.
 *
 * Writes to --out (default report/data): mlp_loss.csv, mlp_accuracy.csv, mlp_hist.csv,
 * mlp_hidden_stats.csv, mlp.json (summary members), mlp_table.csv and mlp_settings.csv.
 * --short: 40 iterations of one epoch, for the test suite. Exits 1 unless the BatchNorm net's loss
 * fell and ended below the plain net's.
 */
#include "experiment_common.h"

#define BATCH 512
#define EPOCHS 2
#define PROBE 1000          /* test images whose hidden values are recorded (fewer if the test set is smaller) */
#define HIDDEN 48
#define BINS 60
#define RANGE 6.0           /* histogram over [-RANGE, RANGE]; values outside go to the end bins */

typedef struct run {
    curves curves;          /* first, so the fit callback's user data is both */
    const char *net_name;   /* "plain" or "batchnorm", as in the CSV files */
    bnd_net *net;
    size_t hidden_layer;    /* the layer whose output is recorded */
    int64_t probe_count;    /* PROBE, or the whole test set when smaller */
    const float *probe;     /* probe_count test images */
    float *probe_output;    /* probe_count x 10 */
    float *hidden;          /* probe_count x HIDDEN */
    FILE *hist;
    FILE *stats;
} run;

static void record_hidden(run *r, int64_t iteration) {
    size_t written = 0;
    TRY(bnd_net_set_training(r->net, 0));
    TRY(bnd_net_forward(r->net, r->probe, r->probe_count, r->probe_output, (size_t)r->probe_count * 10));
    TRY(bnd_net_get_layer_output(r->net, r->hidden_layer, r->hidden, (size_t)r->probe_count * HIDDEN, &written));
    TRY(bnd_net_set_training(r->net, 1));
    double counts[BINS] = {0}, sum = 0, squares = 0;
    for (size_t i = 0; i < written; i++) {
        double v = r->hidden[i];
        int bin = (int)floor((v + RANGE) / (2 * RANGE) * BINS);
        bin = bin < 0 ? 0 : bin >= BINS ? BINS - 1 : bin;
        counts[bin] += 1;
        sum += v;
    }
    double mean = sum / (double)written;
    for (size_t i = 0; i < written; i++) squares += (r->hidden[i] - mean) * (r->hidden[i] - mean);
    for (int b = 0; b < BINS; b++) {
        double center = -RANGE + (b + 0.5) * (2 * RANGE / BINS);
        fprintf(r->hist, "%s,%lld,%.4f,%.6f\n", r->net_name, (long long)iteration, center, counts[b] / (double)written);
    }
    fprintf(r->stats, "%s,%lld,%.6f,%.6f\n", r->net_name, (long long)iteration, mean, sqrt(squares / (double)written));
}

static int32_t on_event(const bnd_fit_event *e, void *user_data) {
    run *r = user_data;
    if (e->kind == BND_EVENT_STEP && e->global_step % 10 == 0) record_hidden(r, e->global_step);
    return record_event(&r->curves, e);
}

int main(int argc, char **argv) {
    const experiment_defaults defaults = {"BatchNorm1d in an MLP 784-48-24-10 (the article's experiment 1)", EPOCHS, 1,
                                          BATCH, "one epoch, stopped after 40 iterations"};
    options o = parse_options(argc, argv, &defaults);
    double started = now_seconds();
    bnd_dataset *train = NULL, *test = NULL;
    load_splits(&o, &train, &test);
    const int64_t flat[1] = {784};
    TRY(bnd_dataset_reshape(train, flat, 1));
    TRY(bnd_dataset_reshape(test, flat, 1));
    int64_t train_count = 0, test_count = 0;
    TRY(bnd_dataset_info(train, &train_count, NULL, NULL));
    TRY(bnd_dataset_info(test, &test_count, NULL, NULL));
    const int64_t probe_count = test_count < PROBE ? test_count : PROBE;
    float *probe = malloc(sizeof(float) * PROBE * 784);
    float *probe_output = malloc(sizeof(float) * PROBE * 10);
    float *hidden = malloc(sizeof(float) * PROBE * HIDDEN);
    static run runs[2];
    if (!probe || !probe_output || !hidden) {
        fprintf(stderr, "out of memory\n");
        free(probe);
        free(probe_output);
        free(hidden);
        return 1;
    }
    TRY(bnd_dataset_get(test, 0, probe_count, probe, (size_t)probe_count * 784, NULL, 0, NULL, 0));

    output_file hist = open_output(&o, "mlp_hist.csv"), stats = open_output(&o, "mlp_hidden_stats.csv");
    fprintf(hist.file, "net,iteration,bin_center,fraction\n");
    fprintf(stats.file, "net,iteration,mean,std\n");

    bnd_net *plain = NULL, *bn = NULL;
    TRY(article_mlp(flat, 1, 0, o.seed, &plain));
    TRY(article_mlp(flat, 1, 1, o.seed, &bn));
    const int same_linears[3][2] = {{0, 0}, {2, 3}, {4, 6}};
    copy_layer_parameters(plain, bn, same_linears, 3);

    bnd_fit_params params = bnd_fit_default_params();
    params.epochs = o.epochs;
    params.batch_size = o.batch_size;
    params.shuffle_seed = o.seed;
    printf("MLP 784-48-24-10 on %s: %lld training, %lld test images; SGD lr 0.01, batch %lld, %lld epoch%s\n",
           o.data_dir, (long long)train_count, (long long)test_count, (long long)params.batch_size,
           (long long)params.epochs, params.epochs == 1 ? "" : "s");
    for (int i = 0; i < 2; i++) {
        run *r = &runs[i];
        init_curves(&r->curves, i == 0 ? "mlp" : "mlp_bn", train_count, o.batch_size, o.epochs, o.short_mode ? 40 : 0);
        r->net_name = i == 0 ? "plain" : "batchnorm";
        r->net = i == 0 ? plain : bn;
        r->hidden_layer = i == 0 ? 0 : 1;
        r->probe_count = probe_count;
        r->probe = probe;
        r->probe_output = probe_output;
        r->hidden = hidden;
        r->hist = hist.file;
        r->stats = stats.file;
        record_hidden(r, 0);
        train_sgd(r->net, &r->curves, train, test, &params, on_event);
    }
    close_output(&hist);
    close_output(&stats);

    int ok = write_comparison(&o, "mlp", "mlp", "mlp_bn", "MLP", "MLP + BatchNorm1d", &runs[0].curves, &runs[1].curves);
    printf("MLP experiment: %.1f s\n", now_seconds() - started);
    free_curves(&runs[0].curves);
    free_curves(&runs[1].curves);
    bnd_net_free(plain);
    bnd_net_free(bn);
    bnd_dataset_free(train);
    bnd_dataset_free(test);
    free(probe);
    free(probe_output);
    free(hidden);
    return ok ? 0 : 1;
}
