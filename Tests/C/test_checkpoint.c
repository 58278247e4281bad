/* Checkpoints through the C API: the three checkpoints PyTorch wrote ($BNDROP_SAFETENSORS_DIR, by
   default ../shared/fixtures/safetensors) loaded with bnd_net_load_weights into the net built from each
   NAME.json's architecture, reproducing PyTorch's eval outputs; save / load round trips; training that
   resumes bit for bit after bnd_net_save + bnd_optimizer_save into fresh objects; a save that the
   kernel makes fail (a file size limit) leaving the previous file; damaged files. The whole table of
   damaged files is Tests/BNDropTests/CheckpointDamageTests.swift; bad calls are in test_bad_calls.c. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "check.h"

static char g_dir[64];

/* g_dir/name in one of a few rotating buffers. */
static const char *path_of(const char *name) {
    static char buffers[4][320];
    static int next = 0;
    char *p = buffers[next++ % 4];
    snprintf(p, sizeof buffers[0], "%s/%s", g_dir, name);
    return p;
}

/* The whole file, NUL-terminated; *size receives its length. NULL when it cannot be read. */
static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)n + 1);
    if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    if (data != NULL) {
        data[n] = '\0';
        if (size != NULL) *size = (size_t)n;
    }
    return data;
}

static int write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) return 0;
    int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

/* ---- the nn.Sequential of a PyTorch repr ------------------------------------------------------- */

/* The whole number after "key=" in args (the first of "(5, 5)"), or fallback. */
static int64_t repr_int(const char *args, const char *key, int64_t fallback) {
    const char *at = strstr(args, key);
    if (at == NULL) return fallback;
    at += strlen(key);
    if (*at == '(') at++;
    return strtoll(at, NULL, 10);
}

/* The n-th positional argument (0-based) as a number. */
static int64_t repr_positional(const char *args, int n) {
    const char *p = args;
    for (int i = 0; i < n && p != NULL; i++) {
        p = strchr(p, ',');
        if (p != NULL) p++;
    }
    return p == NULL ? -1 : strtoll(p, NULL, 10);
}

/* "Sequential(\n  (0): Linear(in_features=784, out_features=48, bias=True)\n ...)" as a bndrop net. */
static bnd_net *build_from_repr(const char *architecture, const int64_t *shape, size_t rank) {
    bnd_net *net = NULL;
    if (bnd_net_create(shape, rank, &net) != BND_OK) {
        EXPECT(0, "bnd_net_create: %s", bnd_last_error());
        return NULL;
    }
    const char *line = architecture;
    while ((line = strstr(line, "): ")) != NULL) {
        line += 3;
        const char *open = strchr(line, '(');
        const char *end = strchr(line, '\n');
        if (open == NULL) break;
        char type[32] = {0}, args[256] = {0};
        snprintf(type, sizeof type, "%.*s", (int)(open - line), line);
        size_t length = (size_t)((end != NULL ? end : line + strlen(line)) - open - 2); /* inside the parentheses */
        snprintf(args, sizeof args, "%.*s", (int)length, open + 1);
        bnd_status s;
        if (strcmp(type, "Linear") == 0) {
            s = bnd_net_add_linear(net, repr_int(args, "out_features=", 0));
        } else if (strcmp(type, "Conv2d") == 0) {
            s = bnd_net_add_conv2d(net, repr_positional(args, 1), repr_int(args, "kernel_size=", 0),
                                   repr_int(args, "stride=", 1), repr_int(args, "padding=", 0));
        } else if (strcmp(type, "ReLU") == 0) {
            s = bnd_net_add_relu(net);
        } else if (strcmp(type, "Flatten") == 0) {
            s = bnd_net_add_flatten(net);
        } else if (strcmp(type, "AvgPool2d") == 0 || strcmp(type, "MaxPool2d") == 0) {
            int64_t k = repr_int(args, "kernel_size=", 0), st = repr_int(args, "stride=", 0);
            s = type[0] == 'A' ? bnd_net_add_avgpool2d(net, k, st) : bnd_net_add_maxpool2d(net, k, st);
        } else if (strncmp(type, "BatchNorm", 9) == 0) {
            bnd_batchnorm_params p = bnd_batchnorm_default_params();
            const char *eps = strstr(args, "eps="), *momentum = strstr(args, "momentum=");
            if (eps != NULL) p.eps = strtof(eps + 4, NULL);
            if (momentum != NULL && strncmp(momentum + 9, "None", 4) == 0) p.cumulative_average = 1;
            else if (momentum != NULL) p.momentum = strtof(momentum + 9, NULL);
            p.affine = strstr(args, "affine=False") == NULL;
            p.track_running_stats = strstr(args, "track_running_stats=False") == NULL;
            s = bnd_net_add_batchnorm(net, &p);
        } else if (strcmp(type, "Dropout") == 0) {
            const char *p = strstr(args, "p=");
            s = bnd_net_add_dropout(net, p != NULL ? strtof(p + 2, NULL) : 0.5f);
        } else {
            EXPECT(0, "layer type '%s' is not known to this test", type);
            bnd_net_free(net);
            return NULL;
        }
        if (s != BND_OK) {
            EXPECT(0, "adding %s(%s): %s", type, args, bnd_last_error());
            bnd_net_free(net);
            return NULL;
        }
    }
    return net;
}

static float *json_floats(const cJSON *array, size_t *n) {
    *n = (size_t)cJSON_GetArraySize(array);
    float *values = malloc(*n * sizeof(float) + 1);
    size_t i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, array) values[i++] = (float)item->valuedouble;
    return values;
}

static void test_pytorch_fixtures(void) {
    const char *env = getenv("BNDROP_SAFETENSORS_DIR");
    const char *dir = env != NULL && env[0] != '\0' ? env : "../shared/fixtures/safetensors";
    static const char *const names[] = {"mlp_bn", "cnn_bn", "regression_dropout"};
    for (int k = 0; k < 3; k++) {
        char json_path[512], st_path[512], title[96];
        snprintf(json_path, sizeof json_path, "%s/%s.json", dir, names[k]);
        snprintf(st_path, sizeof st_path, "%s/%s.safetensors", dir, names[k]);
        snprintf(title, sizeof title, "PyTorch checkpoint %s: eval outputs", names[k]);
        test_begin(title);
        char *text = read_file(json_path, NULL);
        cJSON *root = text != NULL ? cJSON_Parse(text) : NULL;
        free(text);
        if (root == NULL) {
            EXPECT(0, "cannot read %s: set BNDROP_SAFETENSORS_DIR to the folder of the PyTorch checkpoints (make test "
                      "sets it from SAFETENSORS_DIR, by default ../shared/fixtures/safetensors)", json_path);
            test_end();
            continue;
        }
        int64_t shape[3];
        size_t rank = 0;
        const cJSON *dim;
        cJSON_ArrayForEach(dim, cJSON_GetObjectItemCaseSensitive(root, "sample_shape")) if (rank < 3) shape[rank++] = (int64_t)dim->valuedouble;
        const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architecture");
        int64_t batch = (int64_t)cJSON_GetObjectItemCaseSensitive(root, "batch")->valuedouble;
        size_t n_in = 0, n_out = 0;
        float *input = json_floats(cJSON_GetObjectItemCaseSensitive(root, "input"), &n_in);
        float *expected = json_floats(cJSON_GetObjectItemCaseSensitive(root, "eval_output"), &n_out);
        bnd_net *net = cJSON_IsString(arch) ? build_from_repr(arch->valuestring, shape, rank) : NULL;
        if (net != NULL) {
            float *output = calloc(n_out + 1, sizeof(float));
            EXPECT_OK(bnd_net_load_weights(net, st_path));
            EXPECT_OK(bnd_net_set_training(net, 0));
            EXPECT_OK(bnd_net_forward(net, input, batch, output, n_out));
            expect_close(names[k], output, expected, n_out, 1e-6, 1e-5);
            double worst = 0;
            for (size_t i = 0; i < n_out; i++) worst = fmax(worst, fabs((double)output[i] - expected[i]));
            printf("  %s: max |bndrop - PyTorch| = %.3g over %zu outputs\n", names[k], worst, n_out);
            /* A plain state_dict has no architecture: bnd_net_load says to use bnd_net_load_weights. */
            bnd_net *loaded = NULL;
            EXPECT(bnd_net_load(st_path, &loaded) == BND_ERR_FORMAT && loaded == NULL, "bnd_net_load of a state_dict");
            EXPECT(strstr(bnd_last_error(), "bnd_net_load_weights") != NULL, "message '%s'", bnd_last_error());
            free(output);
            bnd_net_free(net);
        }
        free(input);
        free(expected);
        cJSON_Delete(root);
        test_end();
    }
}

/* ---- round trips and resuming ------------------------------------------------------------------ */

/* {4} -> Linear(16) -> BatchNorm1d -> ReLU -> Dropout(0.3) -> Linear(3), seeded. */
static bnd_net *mlp(uint64_t seed) { return test_mlp(4, 16, 0.3f, 3, seed); }

/* Batch `step`: 8 samples of 4 values, deterministic and different per step. */
static void batch_of(int step, float *input, int32_t *labels) {
    uint32_t x = 2463534242u + (uint32_t)step * 7919u;
    for (int i = 0; i < 32; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        input[i] = (float)(x % 2000) / 500.0f - 2.0f;
    }
    for (int i = 0; i < 8; i++) labels[i] = (step + i) % 3;
}

static void train(bnd_net *net, bnd_optimizer *opt, int from, int to) {
    float input[32], loss;
    int32_t labels[8];
    for (int step = from; step < to; step++) {
        batch_of(step, input, labels);
        EXPECT_OK(bnd_net_train_step_classification(net, opt, input, labels, 8, &loss));
    }
}

/* 1 when every tensor of a and b has the same bits. */
static int same_state(const bnd_net *a, const bnd_net *b, const char *what) {
    size_t count_a = 0, count_b = 0;
    EXPECT_OK(bnd_net_tensor_count(a, &count_a));
    EXPECT_OK(bnd_net_tensor_count(b, &count_b));
    EXPECT(count_a == count_b, "%s: %zu and %zu tensors", what, count_a, count_b);
    int same = count_a == count_b;
    for (size_t i = 0; i < count_a && same; i++) {
        char name[BND_NAME_MAX], other[BND_NAME_MAX];
        float va[64], vb[64];
        size_t n = 0;
        EXPECT_OK(bnd_net_tensor_name(a, i, name, sizeof name));
        EXPECT_OK(bnd_net_tensor_name(b, i, other, sizeof other));
        EXPECT_OK(bnd_net_tensor_numel(a, name, &n));
        if (strcmp(name, other) != 0 || n > 64) { same = 0; break; }
        EXPECT_OK(bnd_net_get_tensor(a, name, va, 64));
        EXPECT_OK(bnd_net_get_tensor(b, name, vb, 64));
        if (memcmp(va, vb, n * sizeof(float)) != 0) {
            EXPECT(0, "%s: tensor %s differs", what, name);
            same = 0;
        }
    }
    return same;
}

static bnd_status make_optimizer(bnd_net *net, int adam, bnd_optimizer **out) {
    if (adam) {
        bnd_adam_params p = bnd_adam_default_params();
        p.lr = 0.01f;
        return bnd_optimizer_create_adam(net, &p, out);
    }
    bnd_sgd_params p = bnd_sgd_default_params();
    p.lr = 0.05f;
    p.momentum = 0.9f;
    return bnd_optimizer_create_sgd(net, &p, out);
}

static void test_resume(int adam) {
    test_begin(adam ? "checkpoint: Adam training resumes bit for bit" : "checkpoint: SGD momentum training resumes bit for bit");
    bnd_net *straight = mlp(5), *first = mlp(5), *resumed = NULL;
    bnd_optimizer *o_straight = NULL, *o_first = NULL, *o_resumed = NULL;
    EXPECT_OK(make_optimizer(straight, adam, &o_straight));
    EXPECT_OK(make_optimizer(first, adam, &o_first));
    train(straight, o_straight, 0, 9);
    train(first, o_first, 0, 5);
    EXPECT_OK(bnd_net_save(first, path_of("net.safetensors")));
    EXPECT_OK(bnd_optimizer_save(o_first, path_of("opt.safetensors")));
    EXPECT_OK(bnd_net_load(path_of("net.safetensors"), &resumed));
    if (resumed != NULL) {
        EXPECT_OK(make_optimizer(resumed, adam, &o_resumed));
        EXPECT_OK(bnd_optimizer_load(o_resumed, path_of("opt.safetensors")));
        train(resumed, o_resumed, 5, 9);
        same_state(straight, resumed, "resumed");
    }
    bnd_optimizer_free(o_straight);
    bnd_optimizer_free(o_first);
    bnd_optimizer_free(o_resumed);
    bnd_net_free(straight);
    bnd_net_free(first);
    bnd_net_free(resumed);
    test_end();
}

static void test_round_trip(void) {
    test_begin("checkpoint: bnd_net_load gives the same tensors, outputs, mode and metadata");
    bnd_net *net = mlp(3), *loaded = NULL;
    bnd_optimizer *opt = NULL;
    EXPECT_OK(make_optimizer(net, 0, &opt));
    train(net, opt, 0, 3);
    EXPECT_OK(bnd_net_set_training(net, 0));
    EXPECT_OK(bnd_net_save(net, path_of("a.safetensors")));
    EXPECT_OK(bnd_net_load(path_of("a.safetensors"), &loaded));
    if (loaded != NULL) {
        int32_t training = -1;
        EXPECT_OK(bnd_net_is_training(loaded, &training));
        EXPECT(training == 0, "mode not kept");
        same_state(net, loaded, "loaded");
        float input[32], out_a[24], out_b[24];
        int32_t labels[8];
        batch_of(77, input, labels);
        EXPECT_OK(bnd_net_forward(net, input, 8, out_a, 24));
        EXPECT_OK(bnd_net_forward(loaded, input, 8, out_b, 24));
        EXPECT(memcmp(out_a, out_b, sizeof out_a) == 0, "eval outputs differ");
        EXPECT_OK(bnd_net_set_training(net, 1));
        EXPECT_OK(bnd_net_set_training(loaded, 1));
        EXPECT_OK(bnd_net_forward(net, input, 8, out_a, 24));
        EXPECT_OK(bnd_net_forward(loaded, input, 8, out_b, 24));
        EXPECT(memcmp(out_a, out_b, sizeof out_a) == 0, "train outputs (dropout masks) differ");
    }
    /* The header: the library's version, bndrop's format tag, num_batches_tracked as I64. */
    size_t size = 0;
    char *file = read_file(path_of("a.safetensors"), &size);
    if (file != NULL && size >= 8) {
        uint64_t length = 0;
        for (int i = 7; i >= 0; i--) length = length << 8 | (unsigned char)file[i];
        EXPECT(length % 8 == 0 && 8 + length <= size, "header length %llu", (unsigned long long)length);
        cJSON *header = 8 + length <= size ? cJSON_ParseWithLength(file + 8, (size_t)length) : NULL;
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(header, "__metadata__");
        const cJSON *version = cJSON_GetObjectItemCaseSensitive(meta, "bndrop_version");
        const cJSON *format = cJSON_GetObjectItemCaseSensitive(meta, "format");
        const cJSON *counter = cJSON_GetObjectItemCaseSensitive(header, "1.num_batches_tracked");
        const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(counter, "dtype");
        EXPECT(cJSON_IsString(version) && strcmp(version->valuestring, BND_VERSION_STRING) == 0 &&
               strcmp(version->valuestring, bnd_version_string()) == 0, "bndrop_version is not BND_VERSION_STRING");
        EXPECT(cJSON_IsString(format) && strcmp(format->valuestring, "bndrop-1") == 0, "format tag");
        EXPECT(cJSON_IsString(dtype) && strcmp(dtype->valuestring, "I64") == 0, "num_batches_tracked dtype");
        cJSON_Delete(header);
    } else {
        EXPECT(0, "cannot read the saved file");
    }
    free(file);
    bnd_optimizer_free(opt);
    bnd_net_free(net);
    bnd_net_free(loaded);
    test_end();
}

/* ---- failures ---------------------------------------------------------------------------------- */

/* 1 when the folder holds exactly one entry besides . and .., called `name` (NULL: no entry at all). */
static int only_entry(const char *name) {
    DIR *d = opendir(g_dir);
    if (d == NULL) return 0;
    int count = 0, found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        count++;
        if (name != NULL && strcmp(e->d_name, name) == 0) found = 1;
        else printf("  unexpected entry %s\n", e->d_name);
    }
    closedir(d);
    return name == NULL ? count == 0 : count == 1 && found;
}

static void remove_all(void) {
    DIR *d = opendir(g_dir);
    if (d == NULL) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) unlink(path_of(e->d_name));
    }
    closedir(d);
}

/* A file size limit makes the kernel refuse the write: the save fails, the old file stays whole. */
static void test_failed_save(void) {
    test_begin("checkpoint: a save the kernel refuses (RLIMIT_FSIZE) leaves the previous file");
    remove_all();
    bnd_net *old_net = mlp(1), *new_net = mlp(2);
    EXPECT_OK(bnd_net_save(old_net, path_of("model.safetensors")));
    size_t size_before = 0, size_after = 0;
    char *before = read_file(path_of("model.safetensors"), &size_before);
    struct rlimit saved, limited;
    getrlimit(RLIMIT_FSIZE, &saved);
    void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);
    limited = saved;
    limited.rlim_cur = 200;
    EXPECT(setrlimit(RLIMIT_FSIZE, &limited) == 0, "setrlimit");
    bnd_status s = bnd_net_save(new_net, path_of("model.safetensors"));
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, previous);
    EXPECT(s == BND_ERR_IO, "status %d (%s)", (int)s, bnd_last_error());
    EXPECT(strstr(bnd_last_error(), "File too large") != NULL && strstr(bnd_last_error(), "unchanged") != NULL,
           "message '%s'", bnd_last_error());
    char *after = read_file(path_of("model.safetensors"), &size_after);
    EXPECT(before != NULL && after != NULL && size_before == size_after && memcmp(before, after, size_before) == 0,
           "the previous file changed");
    EXPECT(only_entry("model.safetensors"), "a temporary file remains");
    free(before);
    free(after);
    bnd_net_free(old_net);
    bnd_net_free(new_net);
    test_end();
}

/* Paths are UTF-8: one in another encoding is refused (it would otherwise be repaired into the name of
   another file) and nothing is written; a UTF-8 one works; a long path stays whole in the message. */
static void test_path_text(void) {
    test_begin("checkpoint: a path that is not UTF-8 is refused, a UTF-8 one works, a long one is quoted whole");
    remove_all();
    bnd_net *net = mlp(1), *loaded = NULL;
    bnd_clear_last_error();
    bnd_status s = bnd_net_save(net, path_of("caf\xe9.safetensors"));  /* Latin-1 e-acute */
    EXPECT(s == BND_ERR_INVALID_ARGUMENT && strstr(bnd_last_error(), "UTF-8") != NULL, "status %d (%s)", (int)s,
           bnd_last_error());
    EXPECT(only_entry(NULL), "a file was written for a refused path");
    EXPECT_OK(bnd_net_save(net, path_of("caf\xc3\xa9.safetensors")));  /* the same name in UTF-8 */
    EXPECT(only_entry("caf\xc3\xa9.safetensors"), "the UTF-8 name was not written as given");
    EXPECT_OK(bnd_net_load(path_of("caf\xc3\xa9.safetensors"), &loaded));
    s = bnd_net_load(path_of("caf\xe9.safetensors"), &loaded);
    EXPECT(s == BND_ERR_INVALID_ARGUMENT, "load: status %d (%s)", (int)s, bnd_last_error());
    /* A path of 3,000 bytes in a folder that does not exist: the message holds all of it. */
    char long_path[3100];
    int n = snprintf(long_path, sizeof long_path, "%s/missing/", g_dir);
    while (n < 3000) long_path[n++] = 'd';
    strcpy(long_path + n, ".safetensors");
    bnd_net *none = NULL;
    s = bnd_net_load(long_path, &none);
    EXPECT(s == BND_ERR_IO && strstr(bnd_last_error(), long_path) != NULL, "status %d, message of %zu bytes",
           (int)s, strlen(bnd_last_error()));
    bnd_net_free(loaded);
    bnd_net_free(net);
    remove_all();
    test_end();
}

static void test_damaged_files(void) {
    bnd_net *net = mlp(1), *small = NULL, *loaded = NULL;
    bnd_optimizer *sgd = NULL, *adam = NULL, *other = NULL;
    int64_t shape[] = {4};
    EXPECT_OK(bnd_net_save(net, path_of("good.safetensors")));
    size_t size = 0;
    char *good = read_file(path_of("good.safetensors"), &size);
    if (good == NULL) return;
    size_t cuts[] = {0, 5, 8, 20, 200, size / 2, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char title[80];
        snprintf(title, sizeof title, "checkpoint: a file cut at byte %zu is BND_ERR_FORMAT", cuts[i]);
        test_begin(title);
        write_file(path_of("cut.safetensors"), good, cuts[i]);
        EXPECT(bnd_net_load_weights(net, path_of("cut.safetensors")) == BND_ERR_FORMAT, "load_weights");
        EXPECT(strstr(bnd_last_error(), "cut.safetensors") != NULL, "message '%s'", bnd_last_error());
        EXPECT(bnd_net_load(path_of("cut.safetensors"), &loaded) == BND_ERR_FORMAT && loaded == NULL, "load");
        test_end();
    }
    /* The header length pointing past the end. */
    good[0] = (char)0xF0;
    good[1] = (char)0xFF;
    write_file(path_of("long.safetensors"), good, size);
    BAD_MSG(BND_ERR_FORMAT, "runs past the end of the file", bnd_net_load(path_of("long.safetensors"), &loaded));
    free(good);

    /* Valid files that do not fit. */
    EXPECT_OK(bnd_net_create(shape, 1, &small));
    EXPECT_OK(bnd_net_add_linear(small, 5));
    EXPECT_OK(bnd_net_save(small, path_of("small.safetensors")));
    BAD_MSG(BND_ERR_FORMAT, "has no tensor '1.weight'", bnd_net_load_weights(net, path_of("small.safetensors")));
    {
        bnd_net *wide = test_mlp(4, 16, 0.3f, 5, 0);
        EXPECT_OK(bnd_net_save(wide, path_of("wide.safetensors")));
        BAD_MSG(BND_ERR_SHAPE, "'4.weight' has shape [5, 16] but the network's is [3, 16]",
                bnd_net_load_weights(net, path_of("wide.safetensors")));
        bnd_net_free(wide);
    }
    EXPECT_OK(make_optimizer(net, 0, &sgd));
    EXPECT_OK(make_optimizer(net, 1, &adam));
    EXPECT_OK(make_optimizer(small, 1, &other));
    train(net, adam, 0, 1);
    EXPECT_OK(bnd_optimizer_save(adam, path_of("adam.safetensors")));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "holds Adam state but the optimizer is SGD",
            bnd_optimizer_load(sgd, path_of("adam.safetensors")));
    BAD_MSG(BND_ERR_SHAPE, "other parameters", bnd_optimizer_load(other, path_of("adam.safetensors")));
    BAD_MSG(BND_ERR_FORMAT, "a network checkpoint", bnd_optimizer_load(adam, path_of("good.safetensors")));
    BAD_MSG(BND_ERR_FORMAT, "an optimizer checkpoint", bnd_net_load(path_of("adam.safetensors"), &loaded));
    test_begin("checkpoint: failed loads leave *out_net untouched");
    EXPECT(loaded == NULL, "out_net was written");
    test_end();
    bnd_optimizer_free(sgd);
    bnd_optimizer_free(adam);
    bnd_optimizer_free(other);
    bnd_net_free(small);
    bnd_net_free(net);
}

void run_checkpoint_tests(void) {
    if (!make_temp_dir(g_dir, sizeof g_dir, "ckpt")) return;
    test_pytorch_fixtures();
    test_round_trip();
    test_resume(0);
    test_resume(1);
    test_failed_save();
    test_path_text();
    test_damaged_files();
    remove_all();
    rmdir(g_dir);
}
