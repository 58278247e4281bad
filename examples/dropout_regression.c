/*
 * dropout_regression.c - the article's third experiment: dropout against overfitting.
 *
 * 50 points x = linspace(-1, 1), y = x + 0.3 N(0, 1), and a second noisy draw as the test set.
 * A 1-100-100-1 ReLU net, plain and with Dropout(0.5) after the first Linear and Dropout(0.2) after
 * the second (the article's values), both from the same initial weights, trained with Adam (lr 0.01)
 * on the MSE for 1000 full-batch epochs (--epochs and --batch-size change these). Every 50 epochs,
 * and after the last: train and test loss in eval mode.
 * examples/swift/DropoutExperiment is the same program through the Swift API; for the same seed
 * both write the same figures.
 *
 * Writes to --out (default report/data): dropout_points.csv, dropout_fit.csv (both fitted curves on
 * a grid), dropout_uncertainty.csv (the dropout net's Monte-Carlo dropout mean and mean -/+ 2 standard
 * deviations on the grid, MC_PASSES passes), dropout_loss.csv, dropout.json, dropout_table.csv and
 * dropout_settings.csv.
 * --short: 200 epochs, for the test suite; it then fails (exit 1, after writing everything) unless both
 * train losses fell. Other runs only warn on stderr: a loss that does not fall with settings the user
 * chose is a finding, not an error.
 * (--data is accepted for symmetry with the other experiments and ignored: the data is generated.)
 */
#include "experiment_common.h"

#define POINTS 50
#define GRID 201
#define MC_PASSES 200

/* SplitMix64 with Box-Muller: the noise both twins of this experiment draw, bit for bit. */
static uint64_t noise_state;
static uint64_t next_u64(void) {
    uint64_t z = (noise_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double uniform(void) { return (double)(next_u64() >> 11) * 0x1p-53; }
static double normal(void) {
    double u1 = uniform(), u2 = uniform();
    return sqrt(-2 * log(1 - u1)) * cos(2 * 3.14159265358979323846 * u2);
}

typedef struct run {
    bnd_net *net;
    const bnd_dataset *train;
    int64_t epochs;
    int column;            /* 0 plain, 1 dropout */
    double (*rows)[5];     /* epoch, train plain, train dropout, test plain, test dropout */
    int *row_count;
} run;

static int32_t on_event(const bnd_fit_event *e, void *user_data) {
    run *r = user_data;
    if (e->kind == BND_EVENT_EPOCH && (e->epoch % 50 == 0 || e->epoch == r->epochs - 1)) {
        double train_loss = 0;
        TRY(bnd_evaluate(r->net, r->train, POINTS, &train_loss, NULL));  /* eval mode: no dropout */
        int row = (int)(e->epoch / 50) + (e->epoch % 50 != 0);
        r->rows[row][0] = (double)e->epoch + 1;
        r->rows[row][1 + r->column] = train_loss;
        r->rows[row][3 + r->column] = e->validation_loss;
        if (row + 1 > *r->row_count) *r->row_count = row + 1;
    }
    return 1;
}

int main(int argc, char **argv) {
    const experiment_defaults defaults = {"Dropout in a 1-100-100-1 regression net (the article's experiment 3)", 1000,
                                          200, POINTS, "200 epochs"};
    options o = parse_options(argc, argv, &defaults);
    int64_t epochs = o.epochs;
    float x[POINTS], y_train[POINTS], y_test[POINTS];
    noise_state = o.seed;
    for (int i = 0; i < POINTS; i++) x[i] = (float)(-1 + 2 * (double)i / (POINTS - 1));
    for (int i = 0; i < POINTS; i++) y_train[i] = x[i] + (float)(0.3 * normal());
    for (int i = 0; i < POINTS; i++) y_test[i] = x[i] + (float)(0.3 * normal());
    const int64_t shape[1] = {1};
    bnd_dataset *train = NULL, *test = NULL;
    TRY(bnd_dataset_from_targets(x, shape, 1, y_train, 1, POINTS, &train));
    TRY(bnd_dataset_from_targets(x, shape, 1, y_test, 1, POINTS, &test));

    bnd_net *plain = NULL, *dropout = NULL;
    TRY(article_regression(0, 0, o.seed, &plain));
    TRY(article_regression(0.5f, 0.2f, o.seed, &dropout));
    const int same_linears[3][2] = {{0, 0}, {2, 3}, {4, 6}};
    copy_layer_parameters(plain, dropout, same_linears, 3);

    /* One row every 50 epochs and one after the last. */
    double (*rows)[5] = calloc((size_t)(epochs / 50 + 2), sizeof *rows);
    int row_count = 0;
    if (rows == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    bnd_fit_params params = bnd_fit_default_params();
    params.epochs = epochs;
    params.batch_size = o.batch_size;
    params.shuffle_seed = o.seed;
    bnd_net *nets[2] = {plain, dropout};
    for (int i = 0; i < 2; i++) {
        bnd_adam_params adam = bnd_adam_default_params();
        adam.lr = 0.01f;
        bnd_optimizer *opt = NULL;
        TRY(bnd_optimizer_create_adam(nets[i], &adam, &opt));
        run r = {nets[i], train, epochs, i, rows, &row_count};
        TRY(bnd_fit(nets[i], opt, train, test, &params, on_event, &r, NULL));
        bnd_optimizer_free(opt);
    }

    output_file loss = open_output(&o, "dropout_loss.csv");
    fprintf(loss.file, "epoch,train_plain,train_dropout,test_plain,test_dropout\n");
    for (int r = 0; r < row_count; r++)
        fprintf(loss.file, "%d,%.6f,%.6f,%.6f,%.6f\n", (int)rows[r][0], rows[r][1], rows[r][2], rows[r][3], rows[r][4]);
    close_output(&loss);
    output_file points = open_output(&o, "dropout_points.csv");
    fprintf(points.file, "x,y_train,y_test\n");
    for (int i = 0; i < POINTS; i++) fprintf(points.file, "%.6f,%.6f,%.6f\n", x[i], y_train[i], y_test[i]);
    close_output(&points);

    float grid[GRID], fit_plain[GRID], fit_dropout[GRID];
    for (int i = 0; i < GRID; i++) grid[i] = (float)(-1 + 2 * (double)i / (GRID - 1));
    TRY(bnd_net_set_training(plain, 0));
    TRY(bnd_net_set_training(dropout, 0));
    TRY(bnd_net_forward(plain, grid, GRID, fit_plain, GRID));
    TRY(bnd_net_forward(dropout, grid, GRID, fit_dropout, GRID));
    output_file curves = open_output(&o, "dropout_fit.csv");
    fprintf(curves.file, "x,plain,dropout\n");
    for (int i = 0; i < GRID; i++) fprintf(curves.file, "%.6f,%.6f,%.6f\n", grid[i], fit_plain[i], fit_dropout[i]);
    close_output(&curves);
    /* Monte-Carlo dropout: the spread of the dropout net's predictions over random masks. */
    float mc_mean[GRID], mc_var[GRID];
    TRY(bnd_net_predict_mc_dropout(dropout, grid, GRID, MC_PASSES, o.seed, mc_mean, mc_var, GRID));
    output_file band = open_output(&o, "dropout_uncertainty.csv");
    fprintf(band.file, "x,mc_mean,lower,upper\n");
    for (int i = 0; i < GRID; i++) {
        double sd = sqrt((double)mc_var[i]);
        fprintf(band.file, "%.6f,%.6f,%.6f,%.6f\n", grid[i], mc_mean[i], mc_mean[i] - 2 * sd, mc_mean[i] + 2 * sd);
    }
    close_output(&band);

    double test_plain = 0, test_dropout = 0;
    TRY(bnd_evaluate(plain, test, POINTS, &test_plain, NULL));
    TRY(bnd_evaluate(dropout, test, POINTS, &test_dropout, NULL));
    output_file json = open_output(&o, "dropout.json");
    fprintf(json.file, "\"dropout\": {\"test_loss_plain\": %.6f, \"test_loss_dropout\": %.6f}", test_plain, test_dropout);
    close_output(&json);
    output_file table = open_output(&o, "dropout_table.csv");
    fprintf(table.file, "model,metric,value\nregression plain,test MSE,%.4f\nregression + dropout,test MSE,%.4f\n",
            test_plain, test_dropout);
    close_output(&table);
    write_settings(&o, "dropout", epochs * ((POINTS + o.batch_size - 1) / o.batch_size));
    printf("dropout (C): %lld epoch%s, test MSE plain %.4f, with dropout %.4f\n", (long long)epochs, epochs == 1 ? "" : "s",
           test_plain, test_dropout);

    int fell = row_count > 1 && rows[row_count - 1][1] < rows[0][1] && rows[row_count - 1][2] < rows[0][2];
    bnd_net_free(plain);
    bnd_net_free(dropout);
    bnd_dataset_free(train);
    bnd_dataset_free(test);
    free(rows);
    if (!fell) fprintf(stderr, "%s: a training loss did not fall\n", o.short_mode ? "error" : "warning");
    return fell || !o.short_mode ? 0 : 1;
}
