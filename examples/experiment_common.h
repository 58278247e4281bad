/*
 * experiment_common.h - what the article's three experiment programs share: options, error
 * handling, atomic output files and progress lines. Plain C11 over bndrop.h; header-only so each
 * example still compiles as one file with gcc.
 */
#ifndef EXPERIMENT_COMMON_H
#define EXPERIMENT_COMMON_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L  /* clock_gettime, isatty, mkdir under -std=c11 */
#endif
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "article_nets.h"
#include "bndrop.h"

/* Stops the program with the library's message when a call fails. */
#define TRY(call)                                                                                  \
    do {                                                                                           \
        bnd_status status_ = (call);                                                               \
        if (status_ != BND_OK) {                                                                   \
            fprintf(stderr, "%s:%d: %s failed: %s\n  %s\n", __FILE__, __LINE__, #call,              \
                    bnd_status_string(status_), bnd_last_error());                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

/* The largest --epochs and --batch-size taken. */
#define MAX_COUNT_OPTION 1000000

typedef struct options {
    const char *data_dir;  /* --data DIR: the four IDX files (Fashion-MNIST by default, MNIST works) */
    const char *out_dir;   /* --out DIR: where CSV and JSON files go (report/data by default) */
    int short_mode;        /* --short: a quick run for the test suite */
    uint64_t seed;         /* --seed N */
    int64_t epochs;        /* --epochs N, else the experiment's default (its --short one in short mode) */
    int64_t batch_size;    /* --batch-size N, else the experiment's default */
} options;

/* The defaults of one experiment, for parse_options and its usage text. */
typedef struct experiment_defaults {
    const char *what;      /* one line: what the experiment shows */
    int64_t epochs;        /* the article's */
    int64_t short_epochs;  /* with --short */
    int64_t batch_size;    /* the article's */
    const char *short_note;  /* what else --short does */
} experiment_defaults;

static inline void usage(FILE *to, const char *program, const experiment_defaults *d) {
    fprintf(to,
            "usage: %s [--data DIR] [--out DIR] [--seed N] [--epochs N] [--batch-size N] [--short]\n"
            "  %s\n"
            "  --data DIR      directory with train/t10k IDX files (default %s; dropout_regression\n"
            "                  makes its own points and ignores it)\n"
            "  --out DIR       output directory for CSV/JSON (default report/data)\n"
            "  --seed N        seed for initial weights, shuffling and dropout, 0 to 2^64-1 (default 0)\n"
            "  --epochs N      training epochs, 1 to %d (default %lld, the article's; %lld with --short)\n"
            "  --batch-size N  samples per training step, 1 to %d (default %lld, the article's)\n"
            "  --short         a quick run, as in `make test`: %s\n",
            program, d->what, DEFAULT_DATA_DIR, MAX_COUNT_OPTION, (long long)d->epochs, (long long)d->short_epochs,
            MAX_COUNT_OPTION, (long long)d->batch_size, d->short_note);
}

/* The value of a whole-number option: digits only (strtoull alone would take a sign or leading spaces,
   and wrap "-1" round), from `least` to `most`; exits with status 2 and a message naming the flag
   otherwise ("takes a whole number from `least` to `most`"). */
static inline unsigned long long parse_whole_number(const char *program, const char *flag, const char *text,
                                                    unsigned long long least, unsigned long long most) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = isdigit((unsigned char)text[0]) ? strtoull(text, &end, 10) : 0;
    if (end == NULL || errno != 0 || *end != '\0' || v < least || v > most) {
        fprintf(stderr, "%s: %s takes a whole number from %llu to %llu, got '%s'\n", program, flag, least, most, text);
        exit(2);
    }
    return v;
}

/* The value of --epochs or --batch-size: from 1 to MAX_COUNT_OPTION. */
static inline int64_t parse_count(const char *program, const char *flag, const char *text) {
    return (int64_t)parse_whole_number(program, flag, text, 1, MAX_COUNT_OPTION);
}

static inline options parse_options(int argc, char **argv, const experiment_defaults *d) {
    options o = {DEFAULT_DATA_DIR, "report/data", 0, 0, 0, 0};
    for (int i = 1; i < argc; i++) {
        int has_value = i + 1 < argc;
        if (strcmp(argv[i], "--short") == 0) {
            o.short_mode = 1;
        } else if (strcmp(argv[i], "--data") == 0 && has_value) {
            o.data_dir = argv[++i];
        } else if (strcmp(argv[i], "--out") == 0 && has_value) {
            o.out_dir = argv[++i];
        } else if (strcmp(argv[i], "--seed") == 0 && has_value) {
            o.seed = (uint64_t)parse_whole_number(argv[0], argv[i], argv[i + 1], 0, ULLONG_MAX);
            i++;
        } else if (strcmp(argv[i], "--epochs") == 0 && has_value) {
            o.epochs = parse_count(argv[0], argv[i], argv[i + 1]);
            i++;
        } else if (strcmp(argv[i], "--batch-size") == 0 && has_value) {
            o.batch_size = parse_count(argv[0], argv[i], argv[i + 1]);
            i++;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, argv[0], d);  /* asked for: stdout, success */
            exit(0);
        } else {
            if (strcmp(argv[i], "--epochs") == 0 || strcmp(argv[i], "--batch-size") == 0)
                fprintf(stderr, "%s: %s needs a value\n", argv[0], argv[i]);
            usage(stderr, argv[0], d);
            exit(2);
        }
    }
    if (o.epochs == 0) o.epochs = o.short_mode ? d->short_epochs : d->epochs;
    if (o.batch_size == 0) o.batch_size = d->batch_size;
    return o;
}

/* mkdir -p */
static inline void make_directories(const char *path) {
    char buffer[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buffer) {
        fprintf(stderr, "output directory '%s' is empty or too long\n", path);
        exit(1);
    }
    memcpy(buffer, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buffer[i] == '/' || buffer[i] == '\0') {
            char saved = buffer[i];
            buffer[i] = '\0';
            if (mkdir(buffer, 0755) != 0 && errno != EEXIST) {
                fprintf(stderr, "cannot create directory '%s': %s\n", buffer, strerror(errno));
                exit(1);
            }
            buffer[i] = saved;
        }
    }
}

/* An output file written atomically: text goes to "<path>.tmp", which replaces <path> on close. */
typedef struct output_file {
    FILE *file;
    char path[4096];
    char temporary[4200];
} output_file;

static inline output_file open_output(const options *o, const char *name) {
    output_file out;
    make_directories(o->out_dir);
    snprintf(out.path, sizeof out.path, "%s/%s", o->out_dir, name);
    snprintf(out.temporary, sizeof out.temporary, "%s.tmp", out.path);
    out.file = fopen(out.temporary, "w");
    if (out.file == NULL) {
        fprintf(stderr, "cannot write '%s': %s\n", out.temporary, strerror(errno));
        exit(1);
    }
    return out;
}

static inline void close_output(output_file *out) {
    if (ferror(out->file) || fclose(out->file) != 0 || rename(out->temporary, out->path) != 0) {
        fprintf(stderr, "cannot write '%s': %s\n", out->path, strerror(errno));
        exit(1);
    }
}

/* Progress: on a terminal a line that updates in place every few steps; otherwise one line per
   epoch (printed by the caller). */
static inline void progress_step(const char *model, const bnd_fit_event *e, int64_t steps_per_epoch) {
    static int tty = -1;
    if (tty < 0) tty = isatty(STDOUT_FILENO);
    if (!tty || e->kind != BND_EVENT_STEP) return;
    printf("\r  %-10s epoch %lld  step %4lld/%-4lld  loss %.4f  %8.0f samples/s", model,
           (long long)e->epoch + 1, (long long)e->step + 1, (long long)steps_per_epoch, e->loss,
           e->samples_per_second);
    fflush(stdout);
}

/* Clears the in-place progress line, on a terminal. */
static inline void end_progress_line(void) {
    if (isatty(STDOUT_FILENO)) printf("\r%100s\r", "");
}

static inline void progress_epoch(const char *model, const bnd_fit_event *e) {
    end_progress_line();
    printf("  %-10s epoch %lld: mean train loss %.4f, test loss %.4f, test accuracy %.4f, %.0f samples/s\n",
           model, (long long)e->epoch + 1, e->loss, e->validation_loss, e->validation_accuracy,
           e->samples_per_second);
    fflush(stdout);
}

/* Copies every parameter of `from` to the tensors of `to` named by `mapping` ("0>0", "2>3", ...: layer
   indices), so two nets with different layer lists start from the same weights. */
static inline void copy_layer_parameters(const bnd_net *from, bnd_net *to, const int (*mapping)[2], size_t pairs) {
    static float buffer[1 << 16];
    const char *kinds[2] = {"weight", "bias"};
    for (size_t i = 0; i < pairs; i++) {
        for (int k = 0; k < 2; k++) {
            char source[64], target[64];
            size_t count = 0;
            snprintf(source, sizeof source, "%d.%s", mapping[i][0], kinds[k]);
            snprintf(target, sizeof target, "%d.%s", mapping[i][1], kinds[k]);
            TRY(bnd_net_tensor_numel(from, source, &count));
            if (count > sizeof buffer / sizeof buffer[0]) {
                fprintf(stderr, "tensor %s has %zu values, more than this copy handles\n", source, count);
                exit(1);
            }
            TRY(bnd_net_get_tensor(from, source, buffer, count));
            TRY(bnd_net_set_tensor(to, target, buffer, count));
        }
    }
}

/* Monotonic wall-clock seconds. */
/* Loads the train and test splits of the IDX directory the options name (exits on failure). */
static inline void load_splits(const options *o, bnd_dataset **train, bnd_dataset **test) {
    TRY(bnd_dataset_load_dir(o->data_dir, BND_SPLIT_TRAIN, train));
    TRY(bnd_dataset_load_dir(o->data_dir, BND_SPLIT_TEST, test));
}

static inline double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- The BatchNorm comparisons (MLP and CNN): one training run's curves, and their output ---- */

typedef struct curves {
    const char *name;         /* progress label */
    int64_t steps_per_epoch;
    int64_t step_limit;       /* the step callback stops training after this many steps (0: no limit) */
    int64_t max_steps;        /* the most steps training can run: epochs x steps_per_epoch, or step_limit */
    int64_t steps;            /* steps recorded */
    float *losses;            /* every step's loss: max_steps of them */
    double *accuracy;         /* the test accuracy after each epoch: epochs + 1 (see train_sgd) */
    int64_t epochs;
    int64_t epochs_done;
} curves;

/* Sets up `c` for `epochs` epochs over `train_count` samples in batches of `batch_size`, stopping
   after `step_limit` steps (0: none); exits when the curves do not fit in memory. */
static inline void init_curves(curves *c, const char *name, int64_t train_count, int64_t batch_size, int64_t epochs,
                               int64_t step_limit) {
    c->name = name;
    c->steps_per_epoch = (train_count + batch_size - 1) / batch_size;
    c->max_steps = c->steps_per_epoch * epochs;  /* at most 60 000 x MAX_COUNT_OPTION: no overflow */
    c->step_limit = step_limit;
    if (step_limit > 0 && step_limit < c->max_steps) c->max_steps = step_limit;
    c->steps = 0;
    c->epochs = epochs;
    c->epochs_done = 0;
    c->losses = (uint64_t)c->max_steps <= SIZE_MAX / sizeof(float) ? malloc(sizeof(float) * (size_t)c->max_steps) : NULL;
    c->accuracy = malloc(sizeof(double) * (size_t)(epochs + 1));
    if (c->losses == NULL || c->accuracy == NULL) {
        fprintf(stderr, "%s: cannot hold the losses of %lld steps in memory\n", name, (long long)c->max_steps);
        exit(1);
    }
}

static inline void free_curves(curves *c) {
    free(c->losses);
    free(c->accuracy);
}

/* Records a fit event; returns what the fit callback should return (0 = stop). */
static inline int32_t record_event(curves *c, const bnd_fit_event *e) {
    if (e->kind == BND_EVENT_STEP) {
        if (c->steps < c->max_steps) c->losses[c->steps] = (float)e->loss;
        c->steps = e->global_step;
        progress_step(c->name, e, c->steps_per_epoch);
        return c->step_limit == 0 || e->global_step < c->step_limit;
    }
    progress_epoch(c->name, e);
    if (c->epochs_done < c->epochs) c->accuracy[c->epochs_done++] = e->validation_accuracy;
    return 1;
}

/* Trains `net` with SGD (lr 0.01) through bnd_fit, `c` recording; `callback` gets `c` (or a struct
   starting with it) as user data. When the callback stopped training early, the test accuracy
   reached so far is recorded as the last epoch's. */
static inline void train_sgd(bnd_net *net, curves *c, const bnd_dataset *train, const bnd_dataset *test,
                      const bnd_fit_params *params, bnd_fit_callback callback) {
    bnd_sgd_params sgd = bnd_sgd_default_params();
    sgd.lr = 0.01f;
    bnd_optimizer *opt = NULL;
    bnd_fit_summary summary;
    TRY(bnd_optimizer_create_sgd(net, &sgd, &opt));
    TRY(bnd_fit(net, opt, train, test, params, callback, c, &summary));
    if (summary.stopped_early && c->epochs_done <= c->epochs) {
        double accuracy = 0;
        TRY(bnd_evaluate(net, test, 1000, NULL, &accuracy));
        c->accuracy[c->epochs_done++] = accuracy;
        end_progress_line();
        printf("  %-10s stopped after %lld steps: test accuracy %.4f\n", c->name, (long long)c->steps, accuracy);
    }
    bnd_optimizer_free(opt);
}

/* The mean loss of steps [from, to) clipped to at most 5 steps from `from` (and to >= 0). */
static inline double mean_loss(const curves *c, int64_t from, int64_t to) {
    if (from < 0) from = 0;
    if (to > from + 5) to = from + 5;
    double sum = 0;
    for (int64_t s = from; s < to; s++) sum += c->losses[s];
    return to > from ? sum / (double)(to - from) : NAN;
}

/* Writes <prefix>_settings.csv: the epochs, batch size and steps (iterations) one run trained with,
   for the report's text. */
static inline void write_settings(const options *o, const char *prefix, int64_t iterations) {
    char name[256];
    snprintf(name, sizeof name, "%s_settings.csv", prefix);
    output_file settings = open_output(o, name);
    fprintf(settings.file, "epochs,batch_size,iterations\n%lld,%lld,%lld\n", (long long)o->epochs,
            (long long)o->batch_size, (long long)iterations);
    close_output(&settings);
}

/* Writes <prefix>_loss.csv, <prefix>_accuracy.csv, <prefix>.json ("<key_plain>": {...},
   "<key_bn>": {...}), <prefix>_table.csv and <prefix>_settings.csv for a plain run and a batch-norm
   run. Returns 0 only in --short mode (the test suite) when the batch-norm net's loss did not fall or
   did not end below the plain net's; in other runs that only prints a warning, since with settings the
   user chose it is a finding, not an error. */
static inline int write_comparison(const options *o, const char *prefix, const char *key_plain, const char *key_bn,
                            const char *label_plain, const char *label_bn, const curves *plain, const curves *bn) {
    char name[256];
    int64_t steps = plain->steps < bn->steps ? plain->steps : bn->steps;
    if (steps > plain->max_steps) steps = plain->max_steps;
    if (steps > bn->max_steps) steps = bn->max_steps;
    int64_t epochs = plain->epochs_done < bn->epochs_done ? plain->epochs_done : bn->epochs_done;
    if (steps < 1 || epochs < 1) {
        fprintf(stderr, "%s: no training step or epoch was recorded\n", prefix);
        exit(1);
    }
    snprintf(name, sizeof name, "%s_loss.csv", prefix);
    output_file loss = open_output(o, name);
    fprintf(loss.file, "iteration,plain,batchnorm\n");
    for (int64_t s = 0; s < steps; s++)
        fprintf(loss.file, "%lld,%.6f,%.6f\n", (long long)s + 1, plain->losses[s], bn->losses[s]);
    close_output(&loss);

    snprintf(name, sizeof name, "%s_accuracy.csv", prefix);
    output_file accuracy = open_output(o, name);
    fprintf(accuracy.file, "epoch,plain,batchnorm\n");
    for (int64_t e = 0; e < epochs; e++)
        fprintf(accuracy.file, "%lld,%.4f,%.4f\n", (long long)e + 1, plain->accuracy[e], bn->accuracy[e]);
    close_output(&accuracy);

    double final_plain = plain->losses[steps - 1], final_bn = bn->losses[steps - 1];
    double acc_plain = plain->accuracy[epochs - 1], acc_bn = bn->accuracy[epochs - 1];
    snprintf(name, sizeof name, "%s.json", prefix);
    output_file json = open_output(o, name);
    fprintf(json.file, "\"%s\": {\"test_acc\": %.4f, \"final_loss\": %.4f}, \"%s\": {\"test_acc\": %.4f, \"final_loss\": %.4f}",
            key_plain, acc_plain, final_plain, key_bn, acc_bn, final_bn);
    close_output(&json);

    snprintf(name, sizeof name, "%s_table.csv", prefix);
    output_file table = open_output(o, name);
    fprintf(table.file, "model,metric,value\n");
    for (int64_t e = 0; e < epochs; e++) {
        fprintf(table.file, "%s,test accuracy after epoch %lld,%.4f\n", label_plain, (long long)e + 1, plain->accuracy[e]);
        fprintf(table.file, "%s,test accuracy after epoch %lld,%.4f\n", label_bn, (long long)e + 1, bn->accuracy[e]);
    }
    fprintf(table.file, "%s,final training loss,%.4f\n%s,final training loss,%.4f\n", label_plain, final_plain,
            label_bn, final_bn);
    close_output(&table);
    write_settings(o, prefix, steps);

    printf("%s: test accuracy %.4f (%s) vs %.4f (%s); final training loss %.4f vs %.4f\n", prefix, acc_plain,
           label_plain, acc_bn, label_bn, final_plain, final_bn);
    /* The experiment's claim, checked on the averages of the first and last (up to) 5 steps: the
       batch-norm net's loss falls, and ends below the plain net's. */
    double first_bn = mean_loss(bn, 0, steps), last_bn = mean_loss(bn, steps - 5, steps);
    double last_plain = mean_loss(plain, steps - 5, steps);
    int holds = last_bn < first_bn && last_bn < last_plain;
    if (!holds)
        fprintf(stderr, "%s: %s: expected the batch-norm loss to fall (%.4f -> %.4f) and end below the plain one (%.4f)\n",
                prefix, o->short_mode ? "error" : "warning", first_bn, last_bn, last_plain);
    return holds || !o->short_mode;
}

#endif
