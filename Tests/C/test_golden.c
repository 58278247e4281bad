/* Every reference case in the golden directory (PyTorch 2.15, see golden/README.md), run through the
   C API only. The list is discovered, never hard-coded; an empty directory is a failure. */
#define _DEFAULT_SOURCE /* DT_REG / d_type */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <string.h>
#include "check.h"

#define LAYER_ABS 1e-5
#define LAYER_REL 1e-4
#define NET_ABS 1e-4
#define NET_REL 1e-3

/* ------------------------------------------------------------------ JSON helpers */

typedef struct {
    int64_t shape[8];
    size_t rank;
    size_t n;
    float *data;
} tensor;

static void tensor_free(tensor *t) {
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* Reads parent[key] as {"shape": [...], "data": [...]} or a bare number (rank 0). Returns 1 if found. */
static int json_tensor(const cJSON *parent, const char *key, tensor *t) {
    memset(t, 0, sizeof *t);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(parent, key);
    if (item == NULL || cJSON_IsNull(item)) return 0;
    if (cJSON_IsNumber(item)) {
        t->n = 1;
        t->data = malloc(sizeof(float));
        t->data[0] = (float)item->valuedouble;
        return 1;
    }
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(item, "data");
    if (!cJSON_IsArray(shape) || !cJSON_IsArray(data)) return 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) {
        if (t->rank < 8) t->shape[t->rank++] = (int64_t)d->valuedouble;
    }
    t->n = (size_t)cJSON_GetArraySize(data);
    t->data = malloc((t->n ? t->n : 1) * sizeof(float));
    size_t i = 0;
    cJSON_ArrayForEach(d, data) t->data[i++] = (float)d->valuedouble;
    return 1;
}

/* Like json_tensor but the case fails when the tensor is missing. */
static int need_tensor(const cJSON *parent, const char *key, tensor *t) {
    if (json_tensor(parent, key, t)) return 1;
    EXPECT(0, "missing tensor '%s'", key);
    return 0;
}

static double cfg_number(const cJSON *config, const char *key, double fallback) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(config, key);
    return cJSON_IsNumber(item) ? item->valuedouble : fallback;
}

static int cfg_bool(const cJSON *config, const char *key, int fallback) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(config, key);
    if (cJSON_IsBool(item)) return cJSON_IsTrue(item) ? 1 : 0;
    if (cJSON_IsNumber(item)) return item->valuedouble != 0;
    return fallback;
}

static int32_t *to_labels(const tensor *t) {
    int32_t *labels = malloc((t->n ? t->n : 1) * sizeof(int32_t));
    for (size_t i = 0; i < t->n; i++) labels[i] = (int32_t)t->data[i];
    return labels;
}

/* Compares net tensor (or gradient) `name` with `expected`. */
static void compare_net_tensor(bnd_net *net, const char *name, const tensor *expected, int grad, double abs_tol,
                               double rel_tol, const char *context) {
    size_t numel = 0;
    bnd_status s = bnd_net_tensor_numel(net, name, &numel);
    if (s != BND_OK) {
        EXPECT(0, "%s: tensor '%s': %s", context, name, bnd_last_error());
        return;
    }
    if (numel != expected->n) {
        EXPECT(0, "%s: '%s' has %zu elements, golden %zu", context, name, numel, expected->n);
        return;
    }
    float *got = malloc(numel * sizeof(float));
    s = grad ? bnd_net_get_grad(net, name, got, numel) : bnd_net_get_tensor(net, name, got, numel);
    if (s == BND_OK) {
        char what[160];
        snprintf(what, sizeof what, "%s %s%s", context, grad ? "grad " : "", name);
        expect_close(what, got, expected->data, numel, abs_tol, rel_tol);
    } else {
        EXPECT(0, "%s: get '%s': %s", context, name, bnd_last_error());
    }
    free(got);
}

static bnd_net *net_for_sample(const tensor *batch_input) {
    bnd_net *net = NULL;
    if (batch_input->rank < 2) {
        EXPECT(0, "input needs a batch axis");
        return NULL;
    }
    EXPECT_OK(bnd_net_create(batch_input->shape + 1, batch_input->rank - 1, &net));
    return net;
}

/* Forward, then backward with grad_output; compares output, grad_input, grad_weight, grad_bias. */
static void check_forward_backward(bnd_net *net, const cJSON *tensors, const tensor *input, double abs_tol,
                                   double rel_tol, const char *context) {
    tensor output, grad_output, grad_input, grad_weight, grad_bias;
    int64_t batch = input->shape[0];
    if (!need_tensor(tensors, "output", &output)) return;
    float *got = calloc(output.n, sizeof(float));
    EXPECT_OK(bnd_net_forward(net, input->data, batch, got, output.n));
    char what[128];
    snprintf(what, sizeof what, "%s output", context);
    expect_close(what, got, output.data, output.n, abs_tol, rel_tol);
    free(got);
    if (json_tensor(tensors, "grad_output", &grad_output)) {
        EXPECT_OK(bnd_net_zero_grad(net));
        float *gin = calloc(input->n, sizeof(float));
        EXPECT_OK(bnd_net_backward(net, grad_output.data, batch, gin, input->n));
        if (json_tensor(tensors, "grad_input", &grad_input)) {
            snprintf(what, sizeof what, "%s grad_input", context);
            expect_close(what, gin, grad_input.data, grad_input.n, abs_tol, rel_tol);
            tensor_free(&grad_input);
        }
        free(gin);
        if (json_tensor(tensors, "grad_weight", &grad_weight)) {
            compare_net_tensor(net, "0.weight", &grad_weight, 1, abs_tol, rel_tol, context);
            tensor_free(&grad_weight);
        }
        if (json_tensor(tensors, "grad_bias", &grad_bias)) {
            compare_net_tensor(net, "0.bias", &grad_bias, 1, abs_tol, rel_tol, context);
            tensor_free(&grad_bias);
        }
        tensor_free(&grad_output);
    }
    tensor_free(&output);
}

/* ------------------------------------------------------------------ single layers */

static void run_layer_case(const char *op, const cJSON *root) {
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    tensor input, weight, bias;
    if (!need_tensor(tensors, "input", &input)) return;
    bnd_net *net = net_for_sample(&input);
    if (net == NULL) { tensor_free(&input); return; }
    if (strcmp(op, "linear") == 0) {
        EXPECT_OK(bnd_net_add_linear(net, (int64_t)cfg_number(config, "out_features", 0)));
    } else if (strcmp(op, "relu") == 0) {
        EXPECT_OK(bnd_net_add_relu(net));
    } else if (strcmp(op, "conv2d") == 0) {
        EXPECT_OK(bnd_net_add_conv2d(net, (int64_t)cfg_number(config, "out_channels", 0),
                                     (int64_t)cfg_number(config, "kernel_size", 0),
                                     (int64_t)cfg_number(config, "stride", 1), (int64_t)cfg_number(config, "padding", 0)));
    } else if (strcmp(op, "avgpool2d") == 0 || strcmp(op, "maxpool2d") == 0) {
        int64_t k = (int64_t)cfg_number(config, "kernel_size", 0), stride = (int64_t)cfg_number(config, "stride", 0);
        EXPECT((int64_t)cfg_number(config, "padding", 0) == 0, "pooling padding is not supported");
        EXPECT_OK(op[0] == 'a' ? bnd_net_add_avgpool2d(net, k, stride) : bnd_net_add_maxpool2d(net, k, stride));
    }
    if (json_tensor(tensors, "weight", &weight)) {
        EXPECT_OK(bnd_net_set_tensor(net, "0.weight", weight.data, weight.n));
        tensor_free(&weight);
    }
    if (json_tensor(tensors, "bias", &bias)) {
        EXPECT_OK(bnd_net_set_tensor(net, "0.bias", bias.data, bias.n));
        tensor_free(&bias);
    }
    check_forward_backward(net, tensors, &input, LAYER_ABS, LAYER_REL, op);
    bnd_net_free(net);
    tensor_free(&input);
}

static void run_batchnorm_case(const char *name, const cJSON *root) {
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(root, "steps");
    const cJSON *before = cJSON_GetObjectItemCaseSensitive(root, "state_before");
    double abs_tol = strcmp(name, "batchnorm1d_large_offset") == 0 ? 2e-3 : LAYER_ABS;
    double rel_tol = strcmp(name, "batchnorm1d_large_offset") == 0 ? 0 : LAYER_REL;
    if (!cJSON_IsArray(steps) || cJSON_GetArraySize(steps) == 0) {
        EXPECT(0, "no steps");
        return;
    }
    tensor first;
    if (!need_tensor(cJSON_GetArrayItem(steps, 0), "input", &first)) return;
    bnd_net *net = net_for_sample(&first);
    tensor_free(&first);
    if (net == NULL) return;

    bnd_batchnorm_params params = bnd_batchnorm_default_params();
    params.eps = (float)cfg_number(config, "eps", 1e-5);
    const cJSON *momentum = cJSON_GetObjectItemCaseSensitive(config, "momentum");
    if (cJSON_IsNull(momentum)) params.cumulative_average = 1;
    else params.momentum = (float)cfg_number(config, "momentum", 0.1);
    params.affine = cfg_bool(config, "affine", 1);
    params.track_running_stats = cfg_bool(config, "track_running_stats", 1);
    EXPECT_OK(bnd_net_add_batchnorm(net, &params));

    const cJSON *entry;
    cJSON_ArrayForEach(entry, before) {
        tensor t;
        char key[BND_NAME_MAX];
        snprintf(key, sizeof key, "0.%s", entry->string);
        if (json_tensor(before, entry->string, &t)) {
            EXPECT_OK(bnd_net_set_tensor(net, key, t.data, t.n));
            tensor_free(&t);
        }
    }

    int index = 0;
    const cJSON *step;
    cJSON_ArrayForEach(step, steps) {
        char context[96];
        const cJSON *mode = cJSON_GetObjectItemCaseSensitive(step, "mode");
        int train = !(cJSON_IsString(mode) && strcmp(mode->valuestring, "eval") == 0);
        snprintf(context, sizeof context, "step %d (%s)", index++, train ? "train" : "eval");
        EXPECT_OK(bnd_net_set_training(net, train));
        tensor input;
        if (!need_tensor(step, "input", &input)) break;
        check_forward_backward(net, step, &input, abs_tol, rel_tol, context);
        static const char *const buffers[] = {"running_mean", "running_var", "num_batches_tracked"};
        for (size_t b = 0; b < 3; b++) {
            tensor expected;
            char key[BND_NAME_MAX];
            snprintf(key, sizeof key, "0.%s", buffers[b]);
            if (json_tensor(step, buffers[b], &expected)) {
                compare_net_tensor(net, key, &expected, 0, abs_tol, rel_tol, context);
                tensor_free(&expected);
            }
        }
        tensor_free(&input);
    }
    bnd_net_free(net);
}

/* ------------------------------------------------------------------ losses */

static void run_loss_case(const char *op, const cJSON *root) {
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    tensor input, target, loss, grad;
    if (!need_tensor(tensors, "input", &input)) return;
    if (!need_tensor(tensors, "target", &target) || !need_tensor(tensors, "loss", &loss) ||
        !need_tensor(tensors, "grad_input", &grad)) {
        tensor_free(&input);
        return;
    }
    float got_loss = NAN;
    float *got_grad = calloc(input.n, sizeof(float));
    if (strcmp(op, "cross_entropy") == 0) {
        int32_t *labels = to_labels(&target);
        EXPECT_OK(bnd_loss_cross_entropy(input.data, labels, input.shape[0], input.shape[1], &got_loss, got_grad));
        free(labels);
    } else {
        EXPECT_OK(bnd_loss_mse(input.data, target.data, input.n, &got_loss, got_grad));
    }
    expect_close("loss", &got_loss, loss.data, 1, LAYER_ABS, LAYER_REL);
    expect_close("grad_input", got_grad, grad.data, grad.n, LAYER_ABS, LAYER_REL);
    /* The gradient is optional. */
    float loss_only = NAN;
    if (strcmp(op, "mse") == 0) EXPECT_OK(bnd_loss_mse(input.data, target.data, input.n, &loss_only, NULL));
    else {
        int32_t *labels = to_labels(&target);
        EXPECT_OK(bnd_loss_cross_entropy(input.data, labels, input.shape[0], input.shape[1], &loss_only, NULL));
        free(labels);
    }
    EXPECT(loss_only == got_loss, "loss without gradient %g differs from %g", (double)loss_only, (double)got_loss);
    free(got_grad);
    tensor_free(&input);
    tensor_free(&target);
    tensor_free(&loss);
    tensor_free(&grad);
}

/* ------------------------------------------------------------------ optimizers */

static bnd_status make_optimizer(bnd_net *net, const char *kind, const cJSON *config, bnd_optimizer **out) {
    if (strcmp(kind, "sgd") == 0) {
        bnd_sgd_params p = bnd_sgd_default_params();
        p.lr = (float)cfg_number(config, "lr", p.lr);
        p.momentum = (float)cfg_number(config, "momentum", p.momentum);
        p.dampening = (float)cfg_number(config, "dampening", p.dampening);
        p.weight_decay = (float)cfg_number(config, "weight_decay", p.weight_decay);
        p.nesterov = cfg_bool(config, "nesterov", 0);
        return bnd_optimizer_create_sgd(net, &p, out);
    }
    bnd_adam_params p = strcmp(kind, "adamw") == 0 ? bnd_adamw_default_params() : bnd_adam_default_params();
    p.lr = (float)cfg_number(config, "lr", p.lr);
    const cJSON *betas = cJSON_GetObjectItemCaseSensitive(config, "betas");
    if (cJSON_IsArray(betas) && cJSON_GetArraySize(betas) == 2) {
        p.beta1 = (float)cJSON_GetArrayItem(betas, 0)->valuedouble;
        p.beta2 = (float)cJSON_GetArrayItem(betas, 1)->valuedouble;
    }
    p.eps = (float)cfg_number(config, "eps", p.eps);
    p.weight_decay = (float)cfg_number(config, "weight_decay", p.weight_decay);
    return bnd_optimizer_create_adam(net, &p, out);
}

/* A parameter of n values is held by Linear(in = n-1, out = 1): weight n-1 values, then bias 1. */
static void run_optimizer_case(const char *op, const cJSON *root) {
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(root, "steps");
    tensor param;
    if (!need_tensor(tensors, "param_before", &param)) return;
    if (param.n < 2) {
        EXPECT(0, "parameter of %zu values is too small for this harness", param.n);
        tensor_free(&param);
        return;
    }
    int64_t in = (int64_t)param.n - 1;
    bnd_net *net = NULL;
    bnd_optimizer *opt = NULL;
    EXPECT_OK(bnd_net_create(&in, 1, &net));
    EXPECT_OK(bnd_net_add_linear(net, 1));
    EXPECT_OK(bnd_net_set_tensor(net, "0.weight", param.data, param.n - 1));
    EXPECT_OK(bnd_net_set_tensor(net, "0.bias", param.data + param.n - 1, 1));
    EXPECT_OK(make_optimizer(net, op, config, &opt));
    float *got = malloc(param.n * sizeof(float));
    int index = 0;
    const cJSON *step;
    cJSON_ArrayForEach(step, steps) {
        tensor grad, after;
        if (!need_tensor(step, "grad", &grad)) break;
        if (!need_tensor(step, "param_after", &after)) { tensor_free(&grad); break; }
        EXPECT_OK(bnd_net_set_grad(net, "0.weight", grad.data, param.n - 1));
        EXPECT_OK(bnd_net_set_grad(net, "0.bias", grad.data + param.n - 1, 1));
        EXPECT_OK(bnd_optimizer_step(opt));
        EXPECT_OK(bnd_net_get_tensor(net, "0.weight", got, param.n - 1));
        EXPECT_OK(bnd_net_get_tensor(net, "0.bias", got + param.n - 1, 1));
        char what[64];
        snprintf(what, sizeof what, "step %d param", index++);
        expect_close(what, got, after.data, param.n, LAYER_ABS, LAYER_REL);
        tensor_free(&grad);
        tensor_free(&after);
    }
    free(got);
    bnd_optimizer_free(opt);
    bnd_net_free(net);
    tensor_free(&param);
}

/* ------------------------------------------------------------------ networks */

static bnd_net *build_network(const cJSON *config) {
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(config, "input_shape");
    int64_t dims[8];
    size_t rank = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, shape) if (rank < 8) dims[rank++] = (int64_t)d->valuedouble;
    bnd_net *net = NULL;
    if (bnd_net_create(dims, rank, &net) != BND_OK) {
        EXPECT(0, "create: %s", bnd_last_error());
        return NULL;
    }
    const cJSON *layer;
    cJSON_ArrayForEach(layer, cJSON_GetObjectItemCaseSensitive(config, "layers")) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(layer, "type");
        const char *t = cJSON_IsString(type) ? type->valuestring : "?";
        bnd_status s;
        if (strcmp(t, "linear") == 0) {
            s = bnd_net_add_linear(net, (int64_t)cfg_number(layer, "out", 0));
        } else if (strcmp(t, "conv2d") == 0) {
            s = bnd_net_add_conv2d(net, (int64_t)cfg_number(layer, "out", 0), (int64_t)cfg_number(layer, "kernel", 0),
                                   (int64_t)cfg_number(layer, "stride", 1), (int64_t)cfg_number(layer, "padding", 0));
        } else if (strcmp(t, "relu") == 0) {
            s = bnd_net_add_relu(net);
        } else if (strcmp(t, "flatten") == 0) {
            s = bnd_net_add_flatten(net);
        } else if (strcmp(t, "avgpool2d") == 0) {
            s = bnd_net_add_avgpool2d(net, (int64_t)cfg_number(layer, "kernel", 0), (int64_t)cfg_number(layer, "stride", 0));
        } else if (strcmp(t, "maxpool2d") == 0) {
            s = bnd_net_add_maxpool2d(net, (int64_t)cfg_number(layer, "kernel", 0), (int64_t)cfg_number(layer, "stride", 0));
        } else if (strcmp(t, "batchnorm1d") == 0 || strcmp(t, "batchnorm2d") == 0) {
            bnd_batchnorm_params p = bnd_batchnorm_default_params();
            p.eps = (float)cfg_number(layer, "eps", p.eps);
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(layer, "momentum");
            if (cJSON_IsNull(m)) p.cumulative_average = 1;
            else p.momentum = (float)cfg_number(layer, "momentum", p.momentum);
            p.affine = cfg_bool(layer, "affine", 1);
            p.track_running_stats = cfg_bool(layer, "track_running_stats", 1);
            s = bnd_net_add_batchnorm(net, &p);
        } else if (strcmp(t, "dropout") == 0) {
            s = bnd_net_add_dropout(net, (float)cfg_number(layer, "p", 0.5));
        } else {
            EXPECT(0, "unknown layer type '%s'", t);
            bnd_net_free(net);
            return NULL;
        }
        if (s != BND_OK) {
            EXPECT(0, "add %s: %s", t, bnd_last_error());
            bnd_net_free(net);
            return NULL;
        }
    }
    return net;
}

static void set_state(bnd_net *net, const cJSON *state) {
    const cJSON *entry;
    cJSON_ArrayForEach(entry, state) {
        tensor t;
        if (json_tensor(state, entry->string, &t)) {
            EXPECT_OK(bnd_net_set_tensor(net, entry->string, t.data, t.n));
            tensor_free(&t);
        }
    }
}

static void compare_state(bnd_net *net, const cJSON *state, const char *context) {
    size_t count = 0, golden = (size_t)cJSON_GetArraySize(state);
    EXPECT_OK(bnd_net_tensor_count(net, &count));
    EXPECT(count == golden, "%s: net has %zu tensors, golden state %zu", context, count, golden);
    const cJSON *entry;
    cJSON_ArrayForEach(entry, state) {
        tensor t;
        if (json_tensor(state, entry->string, &t)) {
            compare_net_tensor(net, entry->string, &t, 0, NET_ABS, NET_REL, context);
            tensor_free(&t);
        }
    }
}

/* Runs the trajectory twice: path A with forward / loss / backward / step (checking every output),
   path B with the one-call training step. */
static void run_network_case(const cJSON *root) {
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    const cJSON *steps = cJSON_GetObjectItemCaseSensitive(root, "steps");
    const cJSON *optimizer = cJSON_GetObjectItemCaseSensitive(config, "optimizer");
    const cJSON *loss_kind = cJSON_GetObjectItemCaseSensitive(config, "loss");
    const char *opt_name = cJSON_IsString(optimizer) ? optimizer->valuestring : "sgd";
    int classification = cJSON_IsString(loss_kind) && strcmp(loss_kind->valuestring, "cross_entropy") == 0;
    const cJSON *opt_config = cJSON_GetObjectItemCaseSensitive(config, "optimizer_config");

    for (int path = 0; path < 2; path++) {
        const char *label = path == 0 ? "forward/backward" : "train_step";
        bnd_net *net = build_network(config);
        if (net == NULL) return;
        set_state(net, cJSON_GetObjectItemCaseSensitive(root, "state_initial"));
        bnd_optimizer *opt = NULL;
        EXPECT_OK(make_optimizer(net, opt_name, opt_config, &opt));
        size_t out_count = 0;
        EXPECT_OK(bnd_net_output_count(net, &out_count));
        int index = 0;
        const cJSON *step;
        cJSON_ArrayForEach(step, steps) {
            tensor input, target, output, loss;
            char context[96];
            snprintf(context, sizeof context, "%s step %d", label, index++);
            if (!need_tensor(step, "input", &input)) break;
            need_tensor(step, "target", &target);
            need_tensor(step, "output", &output);
            need_tensor(step, "loss", &loss);
            int64_t batch = input.shape[0];
            float got_loss = NAN;
            if (path == 0) {
                float *out = calloc(output.n, sizeof(float)), *grad = calloc(output.n, sizeof(float));
                EXPECT_OK(bnd_net_zero_grad(net));
                EXPECT_OK(bnd_net_forward(net, input.data, batch, out, output.n));
                char what[128];
                snprintf(what, sizeof what, "%s output", context);
                expect_close(what, out, output.data, output.n, NET_ABS, NET_REL);
                if (classification) {
                    int32_t *labels = to_labels(&target);
                    EXPECT_OK(bnd_loss_cross_entropy(out, labels, batch, (int64_t)out_count, &got_loss, grad));
                    free(labels);
                } else {
                    EXPECT_OK(bnd_loss_mse(out, target.data, output.n, &got_loss, grad));
                }
                EXPECT_OK(bnd_net_backward(net, grad, batch, NULL, 0));
                EXPECT_OK(bnd_optimizer_step(opt));
                free(out);
                free(grad);
            } else if (classification) {
                int32_t *labels = to_labels(&target);
                EXPECT_OK(bnd_net_train_step_classification(net, opt, input.data, labels, batch, &got_loss));
                free(labels);
            } else {
                EXPECT_OK(bnd_net_train_step_regression(net, opt, input.data, target.data, batch, &got_loss));
            }
            char what[128];
            snprintf(what, sizeof what, "%s loss", context);
            expect_close(what, &got_loss, loss.data, 1, NET_ABS, NET_REL);
            tensor_free(&input);
            tensor_free(&target);
            tensor_free(&output);
            tensor_free(&loss);
        }
        char context[64];
        snprintf(context, sizeof context, "%s state_final", label);
        compare_state(net, cJSON_GetObjectItemCaseSensitive(root, "state_final"), context);

        tensor eval_input, eval_output;
        if (json_tensor(tensors, "eval_input", &eval_input) && need_tensor(tensors, "eval_output", &eval_output)) {
            float *out = calloc(eval_output.n, sizeof(float));
            EXPECT_OK(bnd_net_set_training(net, 0));
            EXPECT_OK(bnd_net_forward(net, eval_input.data, eval_input.shape[0], out, eval_output.n));
            snprintf(context, sizeof context, "%s eval_output", label);
            expect_close(context, out, eval_output.data, eval_output.n, NET_ABS, NET_REL);
            free(out);
            tensor_free(&eval_output);
        }
        tensor_free(&eval_input);
        bnd_optimizer_free(opt);
        bnd_net_free(net);
    }
}

/* ------------------------------------------------------------------ discovery */

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    size_t got = fread(text, 1, (size_t)size, f);
    text[got] = '\0';
    fclose(f);
    return text;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_case_file(const char *dir, const char *file) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    test_begin(file);
    char *text = read_file(path);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    if (root == NULL) {
        EXPECT(0, "cannot read or parse %s", path);
    } else {
        const cJSON *op_item = cJSON_GetObjectItemCaseSensitive(root, "op");
        const cJSON *case_item = cJSON_GetObjectItemCaseSensitive(root, "case");
        const char *op = cJSON_IsString(op_item) ? op_item->valuestring : "";
        const char *name = cJSON_IsString(case_item) ? case_item->valuestring : file;
        if (strcmp(op, "linear") == 0 || strcmp(op, "relu") == 0 || strcmp(op, "conv2d") == 0 ||
            strcmp(op, "avgpool2d") == 0 || strcmp(op, "maxpool2d") == 0) {
            run_layer_case(op, root);
        } else if (strcmp(op, "batchnorm1d") == 0 || strcmp(op, "batchnorm2d") == 0) {
            run_batchnorm_case(name, root);
        } else if (strcmp(op, "cross_entropy") == 0 || strcmp(op, "mse") == 0) {
            run_loss_case(op, root);
        } else if (strcmp(op, "sgd") == 0 || strcmp(op, "adam") == 0 || strcmp(op, "adamw") == 0) {
            run_optimizer_case(op, root);
        } else if (strcmp(op, "network") == 0) {
            run_network_case(root);
        } else {
            EXPECT(0, "unknown op '%s'", op);
        }
        cJSON_Delete(root);
    }
    free(text);
    test_end();
}

int run_golden_tests(const char *golden_dir) {
    DIR *dir = opendir(golden_dir);
    char **names = NULL;
    size_t count = 0, capacity = 0;
    if (dir != NULL) {
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            size_t len = strlen(e->d_name);
            if (len > 5 && strcmp(e->d_name + len - 5, ".json") == 0) {
                if (count == capacity) {
                    capacity = capacity ? capacity * 2 : 64;
                    names = realloc(names, capacity * sizeof *names);
                }
                names[count++] = strdup(e->d_name);
            }
        }
        closedir(dir);
    }
    test_begin("golden directory has cases");
    EXPECT(count > 0, "no *.json cases in '%s'", golden_dir);
    test_end();
    if (count > 0) qsort(names, count, sizeof *names, compare_names);
    for (size_t i = 0; i < count; i++) {
        run_case_file(golden_dir, names[i]);
        free(names[i]);
    }
    free(names);
    return (int)count;
}
