/* One golden network end to end from C: net_seed_cnn_bn.json (Conv2d, ReLU, AvgPool2d, BatchNorm2d,
   Flatten, Linear; SGD; cross-entropy), PyTorch's whole training trajectory through the C API, once with
   separate forward / loss / backward / optimizer-step calls and once with the one-call training step.
   Every golden case runs through the C ABI (and the Swift API) in Tests/BNDropGoldenTests; this file
   shows that a program built by gcc against bndrop.h gets the same numbers. */
#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include "check.h"

#define GOLDEN_NETWORK "net_seed_cnn_bn.json"
/* golden/README.md: a little looser than single layers for multi-step trajectories */
#define NET_ABS 1e-4
#define NET_REL 1e-3

/* A golden tensor: its values and its first dimension (the batch; 1 for a scalar). */
typedef struct {
    float *data;
    size_t n;
    int64_t batch;
} golden_tensor;

/* parent[key], {"shape": [...], "data": [...]}; the test fails when it is missing. */
static int get_tensor(const cJSON *parent, const char *key, golden_tensor *t) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(parent, key);
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(item, "data");
    memset(t, 0, sizeof *t);
    if (!cJSON_IsArray(shape) || !cJSON_IsArray(data) || cJSON_GetArraySize(data) == 0) {
        EXPECT(0, "golden tensor '%s' is missing", key);
        return 0;
    }
    t->n = (size_t)cJSON_GetArraySize(data);
    t->data = malloc(t->n * sizeof(float));
    const cJSON *value;
    size_t i = 0;
    cJSON_ArrayForEach(value, data) t->data[i++] = (float)value->valuedouble;
    const cJSON *first = cJSON_GetArrayItem(shape, 0);
    t->batch = cJSON_IsNumber(first) ? (int64_t)first->valuedouble : 1;
    return 1;
}

static int64_t number(const cJSON *object, const char *key, int64_t fallback) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
    return cJSON_IsNumber(item) ? (int64_t)item->valuedouble : fallback;
}

/* The nn.Sequential of config.layers; NULL (and a failure) when a layer is refused or unknown. */
static bnd_net *build(const cJSON *config) {
    int64_t shape[3];
    size_t rank = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, cJSON_GetObjectItemCaseSensitive(config, "input_shape")) {
        if (rank < 3) shape[rank++] = (int64_t)dim->valuedouble;
    }
    bnd_net *net = NULL;
    if (bnd_net_create(shape, rank, &net) != BND_OK) {
        EXPECT(0, "bnd_net_create: %s", bnd_last_error());
        return NULL;
    }
    const cJSON *layer;
    cJSON_ArrayForEach(layer, cJSON_GetObjectItemCaseSensitive(config, "layers")) {
        const cJSON *type_item = cJSON_GetObjectItemCaseSensitive(layer, "type");
        const char *type = cJSON_IsString(type_item) ? type_item->valuestring : "";
        int64_t out = number(layer, "out", 0), kernel = number(layer, "kernel", 0), stride = number(layer, "stride", 0);
        bnd_status s;
        if (strcmp(type, "conv2d") == 0) s = bnd_net_add_conv2d(net, out, kernel, stride ? stride : 1, number(layer, "padding", 0));
        else if (strcmp(type, "linear") == 0) s = bnd_net_add_linear(net, out);
        else if (strcmp(type, "relu") == 0) s = bnd_net_add_relu(net);
        else if (strcmp(type, "flatten") == 0) s = bnd_net_add_flatten(net);
        else if (strcmp(type, "avgpool2d") == 0) s = bnd_net_add_avgpool2d(net, kernel, stride);
        else if (strcmp(type, "maxpool2d") == 0) s = bnd_net_add_maxpool2d(net, kernel, stride);
        else if (strcmp(type, "batchnorm1d") == 0 || strcmp(type, "batchnorm2d") == 0) {
            bnd_batchnorm_params p = bnd_batchnorm_default_params();
            const cJSON *momentum = cJSON_GetObjectItemCaseSensitive(layer, "momentum");
            const cJSON *eps = cJSON_GetObjectItemCaseSensitive(layer, "eps");
            if (cJSON_IsNumber(eps)) p.eps = (float)eps->valuedouble;
            if (cJSON_IsNull(momentum)) p.cumulative_average = 1;
            else if (cJSON_IsNumber(momentum)) p.momentum = (float)momentum->valuedouble;
            s = bnd_net_add_batchnorm(net, &p);
        } else {
            EXPECT(0, "unknown layer type '%s'", type);
            bnd_net_free(net);
            return NULL;
        }
        if (s != BND_OK) {
            EXPECT(0, "adding %s: %s", type, bnd_last_error());
            bnd_net_free(net);
            return NULL;
        }
    }
    return net;
}

/* Compares the net's tensor `name` with `expected`. */
static void compare_tensor(bnd_net *net, const char *name, const golden_tensor *expected, const char *path) {
    size_t numel = 0;
    char what[128];
    EXPECT_OK(bnd_net_tensor_numel(net, name, &numel));
    EXPECT(numel == expected->n, "%s: %s has %zu values, golden %zu", path, name, numel, expected->n);
    if (numel != expected->n) return;
    float *got = malloc(numel * sizeof(float));
    EXPECT_OK(bnd_net_get_tensor(net, name, got, numel));
    snprintf(what, sizeof what, "%s: final %s", path, name);
    expect_close(what, got, expected->data, numel, NET_ABS, NET_REL);
    free(got);
}

static void run_trajectory(const cJSON *root, int one_call) {
    const char *path = one_call ? "train_step" : "forward/backward/step";
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *initial = cJSON_GetObjectItemCaseSensitive(root, "state_initial");
    const cJSON *final = cJSON_GetObjectItemCaseSensitive(root, "state_final");
    const cJSON *entry, *step;
    golden_tensor t, input, target, expected, loss;
    bnd_net *net = build(config);
    if (net == NULL) return;
    cJSON_ArrayForEach(entry, initial) {
        if (get_tensor(initial, entry->string, &t)) EXPECT_OK(bnd_net_set_tensor(net, entry->string, t.data, t.n));
        free(t.data);
    }
    const cJSON *lr = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(config, "optimizer_config"), "lr");
    bnd_sgd_params sgd = bnd_sgd_default_params();
    if (cJSON_IsNumber(lr)) sgd.lr = (float)lr->valuedouble;
    bnd_optimizer *opt = NULL;
    EXPECT_OK(bnd_optimizer_create_sgd(net, &sgd, &opt));

    int index = 0;
    cJSON_ArrayForEach(step, cJSON_GetObjectItemCaseSensitive(root, "steps")) {
        char what[96];
        int complete = get_tensor(step, "input", &input);
        complete &= get_tensor(step, "target", &target);
        complete &= get_tensor(step, "output", &expected);
        complete &= get_tensor(step, "loss", &loss);
        int32_t *labels = malloc((target.n ? target.n : 1) * sizeof(int32_t));
        float *output = malloc((expected.n ? expected.n : 1) * sizeof(float));
        float *grad = malloc((expected.n ? expected.n : 1) * sizeof(float));
        float got_loss = NAN;
        for (size_t i = 0; i < target.n; i++) labels[i] = (int32_t)target.data[i];
        if (!complete) {
            /* a failure has been recorded by get_tensor */
        } else if (one_call) {
            EXPECT_OK(bnd_net_train_step_classification(net, opt, input.data, labels, input.batch, &got_loss));
        } else {
            EXPECT_OK(bnd_net_zero_grad(net));
            EXPECT_OK(bnd_net_forward(net, input.data, input.batch, output, expected.n));
            snprintf(what, sizeof what, "%s step %d output", path, index);
            expect_close(what, output, expected.data, expected.n, NET_ABS, NET_REL);
            EXPECT_OK(bnd_loss_cross_entropy(output, labels, input.batch, (int64_t)(expected.n / target.n), &got_loss,
                                             grad));
            EXPECT_OK(bnd_net_backward(net, grad, input.batch, NULL, 0));
            EXPECT_OK(bnd_optimizer_step(opt));
        }
        if (complete) {
            snprintf(what, sizeof what, "%s step %d loss", path, index);
            expect_close(what, &got_loss, loss.data, 1, NET_ABS, NET_REL);
        }
        index++;
        free(labels);
        free(output);
        free(grad);
        free(input.data);
        free(target.data);
        free(expected.data);
        free(loss.data);
    }
    EXPECT(index > 0, "no steps");

    size_t count = 0;
    EXPECT_OK(bnd_net_tensor_count(net, &count));
    EXPECT(count == (size_t)cJSON_GetArraySize(final), "%s: %zu tensors, golden state_final %d", path, count,
           cJSON_GetArraySize(final));
    cJSON_ArrayForEach(entry, final) {
        if (get_tensor(final, entry->string, &t)) compare_tensor(net, entry->string, &t, path);
        free(t.data);
    }
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    int complete = get_tensor(tensors, "eval_input", &input);
    complete &= get_tensor(tensors, "eval_output", &expected);
    if (complete) {
        float *output = malloc(expected.n * sizeof(float));
        char what[96];
        EXPECT_OK(bnd_net_set_training(net, 0));
        EXPECT_OK(bnd_net_forward(net, input.data, input.batch, output, expected.n));
        snprintf(what, sizeof what, "%s eval output", path);
        expect_close(what, output, expected.data, expected.n, NET_ABS, NET_REL);
        free(output);
    }
    free(input.data);
    free(expected.data);
    bnd_optimizer_free(opt);
    bnd_net_free(net);
}

void run_golden_network(const char *golden_dir) {
    char file[4096];
    snprintf(file, sizeof file, "%s/%s", golden_dir, GOLDEN_NETWORK);
    char *text = NULL;
    FILE *f = fopen(file, "rb");
    if (f != NULL && fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        rewind(f);
        text = size >= 0 ? malloc((size_t)size + 1) : NULL;
        if (text != NULL) text[fread(text, 1, (size_t)size, f)] = '\0';
    }
    if (f != NULL) fclose(f);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    for (int one_call = 0; one_call < 2; one_call++) {
        test_begin(one_call ? "golden " GOLDEN_NETWORK ", one-call train step" : "golden " GOLDEN_NETWORK
                                                                                 ", forward/backward/step");
        EXPECT(root != NULL, "cannot read or parse %s (set GOLDEN_DIR)", file);
        if (root != NULL) run_trajectory(root, one_call);
        test_end();
    }
    cJSON_Delete(root);
    free(text);
}
