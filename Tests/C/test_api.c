/* Positive checks of the C API beyond the golden cases: version (header against library), statuses,
   defaults, introspection and layer outputs, modes, seeding, gradients, the error-message contract,
   folding BatchNorm and Monte-Carlo dropout.
   Dropout's masks and scaling are the Swift API's (Tests/BNDropTests/DropoutTests.swift). */
#include <math.h>
#include <string.h>
#include "check.h"

static void test_version_and_statuses(void) {
    test_begin("version: header and library agree");
    EXPECT(bnd_version_number() == BND_VERSION_NUMBER, "library %u, header %d", bnd_version_number(), BND_VERSION_NUMBER);
    EXPECT(strcmp(bnd_version_string(), BND_VERSION_STRING) == 0, "library '%s', header '%s'", bnd_version_string(),
           BND_VERSION_STRING);
    test_end();

    test_begin("bnd_status_string names every status");
    static const char *const names[] = {"BND_OK", "BND_ERR_INVALID_ARGUMENT", "BND_ERR_SHAPE", "BND_ERR_STATE",
                                        "BND_ERR_IO", "BND_ERR_FORMAT", "BND_ERR_OUT_OF_MEMORY", "BND_ERR_NUMERIC",
                                        "BND_ERR_INTERNAL"};
    for (int s = 0; s <= 8; s++) {
        const char *text = bnd_status_string((bnd_status)s);
        EXPECT(text != NULL && strncmp(text, names[s], strlen(names[s])) == 0, "status %d: '%s'", s, text);
    }
    EXPECT(strcmp(bnd_status_string((bnd_status)99), "unknown bnd_status") == 0, "unknown status text");
    test_end();
}

static void test_defaults(void) {
    test_begin("default params are PyTorch's");
    bnd_batchnorm_params b = bnd_batchnorm_default_params();
    EXPECT(b.eps == 1e-5f && b.momentum == 0.1f && b.cumulative_average == 0 && b.affine == 1 &&
           b.track_running_stats == 1, "batchnorm defaults");
    bnd_sgd_params s = bnd_sgd_default_params();
    EXPECT(s.lr == 0.01f && s.momentum == 0 && s.dampening == 0 && s.weight_decay == 0 && s.nesterov == 0,
           "sgd defaults");
    bnd_adam_params a = bnd_adam_default_params();
    EXPECT(a.lr == 1e-3f && a.beta1 == 0.9f && a.beta2 == 0.999f && a.eps == 1e-8f && a.weight_decay == 0 &&
           a.decoupled_weight_decay == 0, "adam defaults");
    bnd_adam_params w = bnd_adamw_default_params();
    EXPECT(w.weight_decay == 1e-2f && w.decoupled_weight_decay == 1, "adamw defaults");
    bnd_conv2d_params cp = bnd_conv2d_default_params(6, 5);
    EXPECT(cp.out_channels == 6 && cp.kernel_size == 5 && cp.stride == 1 && cp.padding == 0 && cp.dilation == 1 &&
           cp.groups == 1, "conv2d defaults");
    bnd_avgpool2d_params ap = bnd_avgpool2d_default_params(3);
    EXPECT(ap.kernel_size == 3 && ap.stride == 0 && ap.padding == 0 && ap.ceil_mode == 0 && ap.count_include_pad == 1 &&
           ap.divisor_override == 0, "avgpool2d defaults");
    bnd_maxpool2d_params mp = bnd_maxpool2d_default_params(3);
    EXPECT(mp.kernel_size == 3 && mp.stride == 0 && mp.padding == 0 && mp.dilation == 1 && mp.ceil_mode == 0,
           "maxpool2d defaults");
    test_end();
}

/* Pooling with PyTorch's other arguments, from C: the output sizes (PyTorch's formulas, worked by hand
   below) and values of a small plane. Tests/golden holds PyTorch's own results for these arguments. */
static void test_pooling_arguments(void) {
    test_begin("pooling: padding, ceil_mode, count_include_pad, divisor_override, dilation");
    int64_t shape[] = {1, 3, 3}, dims[BND_MAX_RANK];
    size_t rank = 0;
    bnd_net *net = NULL;
    EXPECT_OK(bnd_net_create(shape, 3, &net));
    bnd_avgpool2d_params a = bnd_avgpool2d_default_params(2);
    a.ceil_mode = 1;                      /* 3x3, k2 s2: floor gives 1x1, ceil 2x2 (last windows clipped) */
    a.count_include_pad = 0;
    EXPECT_OK(bnd_net_add_avgpool2d_v2(net, &a));
    EXPECT_OK(bnd_net_layer_output_shape(net, 0, dims, BND_MAX_RANK, &rank));
    EXPECT(rank == 3 && dims[0] == 1 && dims[1] == 2 && dims[2] == 2, "ceil-mode avgpool shape");
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float y[4] = {0};
    EXPECT_OK(bnd_net_set_training(net, 0));
    EXPECT_OK(bnd_net_forward(net, x, 1, y, 4));
    /* windows {1,2,4,5}/4, {3,6}/2, {7,8}/2, {9}/1 */
    EXPECT(y[0] == 3.0f && y[1] == 4.5f && y[2] == 7.5f && y[3] == 9.0f, "ceil-mode averages %g %g %g %g",
           y[0], y[1], y[2], y[3]);
    bnd_net_free(net);

    EXPECT_OK(bnd_net_create(shape, 3, &net));
    bnd_maxpool2d_params m = bnd_maxpool2d_default_params(2);
    m.stride = 1;
    m.padding = 1;
    m.dilation = 2;                       /* (3 + 2 - 2 - 1) / 1 + 1 = 3 */
    EXPECT_OK(bnd_net_add_maxpool2d_v2(net, &m));
    EXPECT_OK(bnd_net_layer_output_shape(net, 0, dims, BND_MAX_RANK, &rank));
    EXPECT(rank == 3 && dims[1] == 3 && dims[2] == 3, "dilated maxpool shape");
    float z[9] = {0};
    EXPECT_OK(bnd_net_set_training(net, 0));
    EXPECT_OK(bnd_net_forward(net, x, 1, z, 9));
    /* output (0, 0) covers cells (-1|1, -1|1): only x[1][1] = 5 is inside; (1, 1) covers (0|2, 0|2) */
    EXPECT(z[0] == 5.0f && z[4] == 9.0f && z[8] == 5.0f, "dilated maxima %g %g %g", z[0], z[4], z[8]);
    bnd_net_free(net);
    test_end();
}

/* The losses' other arguments from C: the defaults give bnd_loss_cross_entropy's bits, a sum is the mean
   times the batch, an ignored sample takes a zero gradient row, and in place equals apart. */
static void test_loss_arguments(void) {
    test_begin("losses: weight, ignore_index, label_smoothing, reduction");
    const float logits[12] = {0.5f, -1, 2, 0, 1, 1, 3, -2, 0.25f, 0, -0.5f, 4};
    const int32_t labels[3] = {2, 0, 3}, some_ignored[3] = {2, -100, 3};
    float plain = 0, loss = 0, sum = 0, grad[12], plain_grad[12];
    bnd_cross_entropy_params p = bnd_cross_entropy_default_params();
    EXPECT(p.weight == NULL && p.weight_count == 0 && p.ignore_index == -100 && p.label_smoothing == 0 &&
           p.reduction == BND_REDUCTION_MEAN, "cross-entropy defaults");
    EXPECT_OK(bnd_loss_cross_entropy(logits, labels, 3, 4, &plain, plain_grad));
    EXPECT_OK(bnd_loss_cross_entropy_v2(logits, labels, 3, 4, &p, &loss, grad));
    EXPECT(loss == plain && memcmp(grad, plain_grad, sizeof grad) == 0, "defaults: not the plain call's bits");
    p.reduction = BND_REDUCTION_SUM;
    EXPECT_OK(bnd_loss_cross_entropy_v2(logits, labels, 3, 4, &p, &sum, grad));
    EXPECT(fabsf(sum - 3 * plain) <= 1e-5f * sum, "sum %g, mean %g", sum, plain);
    EXPECT(fabsf(grad[5] - 3 * plain_grad[5]) <= 1e-6f, "sum gradient");
    p.reduction = BND_REDUCTION_MEAN;
    p.label_smoothing = 0.3f;
    EXPECT_OK(bnd_loss_cross_entropy_v2(logits, some_ignored, 3, 4, &p, &loss, grad));
    EXPECT(grad[4] == 0 && grad[5] == 0 && grad[6] == 0 && grad[7] == 0 && grad[0] != 0, "ignored row");
    float in_place[12];
    memcpy(in_place, logits, sizeof in_place);
    float in_place_loss = 0;
    EXPECT_OK(bnd_loss_cross_entropy_v2(in_place, some_ignored, 3, 4, &p, &in_place_loss, in_place));
    EXPECT(in_place_loss == loss && memcmp(in_place, grad, sizeof grad) == 0, "in place differs");
    const float prediction[3] = {1, 2, 3}, target[3] = {0, 0, 0};
    float mse_grad[3];
    EXPECT_OK(bnd_loss_mse_v2(prediction, target, 3, BND_REDUCTION_SUM, &loss, mse_grad));
    EXPECT(loss == 14 && mse_grad[0] == 2 && mse_grad[2] == 6, "mse sum %g", loss);

    /* The training steps: twin nets {4} -> Linear(4) -> ReLU -> Linear(3); the _v2 step with NULL loss
       arguments is the plain step, bit for bit; a sum's loss is the mean's times the batch (x 3 outputs
       for the squared error). */
    int64_t shape[] = {4};
    bnd_net *a = NULL, *b = NULL;
    bnd_optimizer *oa = NULL, *ob = NULL;
    EXPECT_OK(bnd_net_create(shape, 1, &a));
    EXPECT_OK(bnd_net_create(shape, 1, &b));
    bnd_net *both[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        EXPECT_OK(bnd_net_add_linear(both[i], 4));
        EXPECT_OK(bnd_net_add_relu(both[i]));
        EXPECT_OK(bnd_net_add_linear(both[i], 3));
        EXPECT_OK(bnd_net_seed(both[i], 5));
    }
    EXPECT_OK(bnd_optimizer_create_sgd(a, NULL, &oa));
    EXPECT_OK(bnd_optimizer_create_sgd(b, NULL, &ob));
    const float x[12] = {1, -2, 0.5f, 3, 0, 1, -1, 2, 4, 0.25f, -3, 1};
    const int32_t y[3] = {2, 0, 1};
    float la = 0, lb = 0, wa[12], wb[12];
    EXPECT_OK(bnd_net_train_step_classification(a, oa, x, y, 3, &la));
    EXPECT_OK(bnd_net_train_step_classification_v2(b, ob, x, y, 3, NULL, &lb));
    EXPECT_OK(bnd_net_get_tensor(a, "2.weight", wa, 12));
    EXPECT_OK(bnd_net_get_tensor(b, "2.weight", wb, 12));
    EXPECT(la == lb && memcmp(wa, wb, sizeof wa) == 0, "the _v2 step with the defaults differs from the plain one");
    const float t[9] = {0, 1, 0, 1, 0, 0, 0, 0, 1};
    EXPECT_OK(bnd_net_train_step_regression(a, oa, x, t, 3, &la));
    EXPECT_OK(bnd_net_train_step_regression_v2(b, ob, x, t, 3, BND_REDUCTION_SUM, &lb));
    EXPECT(fabsf(lb - 9 * la) <= 1e-5f * lb, "squared error: sum %g, mean %g", (double)lb, (double)la);
    bnd_optimizer_free(oa);
    bnd_optimizer_free(ob);
    bnd_net_free(a);
    bnd_net_free(b);
    test_end();
}

/* Conv2d with dilation and groups from C: shapes, the grouped weight, and a value worked by hand. */
static void test_conv2d_arguments(void) {
    test_begin("conv2d: dilation and groups");
    int64_t shape[] = {2, 5, 5}, dims[BND_MAX_RANK];
    size_t rank = 0;
    bnd_net *net = NULL;
    EXPECT_OK(bnd_net_create(shape, 3, &net));
    bnd_conv2d_params p = bnd_conv2d_default_params(2, 2);
    p.dilation = 2;                       /* taps 2 apart: (5 - 2 - 1) / 1 + 1 = 3 */
    p.groups = 2;                         /* output channel o sees input channel o only */
    EXPECT_OK(bnd_net_add_conv2d_v2(net, &p));
    EXPECT_OK(bnd_net_layer_output_shape(net, 0, dims, BND_MAX_RANK, &rank));
    EXPECT(rank == 3 && dims[0] == 2 && dims[1] == 3 && dims[2] == 3, "dilated grouped conv shape");
    EXPECT_OK(bnd_net_tensor_shape(net, "0.weight", dims, BND_MAX_RANK, &rank));
    EXPECT(rank == 4 && dims[0] == 2 && dims[1] == 1 && dims[2] == 2 && dims[3] == 2, "grouped weight shape");
    const float ones[8] = {1, 1, 1, 1, 1, 1, 1, 1}, zeros[2] = {0, 0};
    EXPECT_OK(bnd_net_set_tensor(net, "0.weight", ones, 8));
    EXPECT_OK(bnd_net_set_tensor(net, "0.bias", zeros, 2));
    float x[50], y[18];
    for (int i = 0; i < 50; i++) x[i] = (float)i;   /* channel 1 = channel 0 + 25 */
    EXPECT_OK(bnd_net_set_training(net, 0));
    EXPECT_OK(bnd_net_forward(net, x, 1, y, 18));
    /* y[o][0][0] = x[o][0][0] + x[o][0][2] + x[o][2][0] + x[o][2][2]: 0 + 2 + 10 + 12, then + 4 * 25 */
    EXPECT(y[0] == 24.0f && y[9] == 124.0f, "dilated grouped sums %g %g", y[0], y[9]);
    bnd_net_free(net);
    test_end();
}

static void test_last_error_contract(void) {
    test_begin("last error: per failure, kept by successful calls, cleared on request");
    bnd_clear_last_error();
    EXPECT(strcmp(bnd_last_error(), "") == 0, "not empty after clear");
    EXPECT(bnd_net_add_relu(NULL) == BND_ERR_INVALID_ARGUMENT, "status");
    const char *message = bnd_last_error();
    EXPECT(strstr(message, "bnd_net_add_relu") != NULL && strstr(message, "NULL") != NULL, "message '%s'", message);
    char copy[256];
    snprintf(copy, sizeof copy, "%s", message);
    int64_t shape[] = {3};
    bnd_net *net = NULL;
    EXPECT_OK(bnd_net_create(shape, 1, &net));
    EXPECT(strcmp(bnd_last_error(), copy) == 0, "a successful call changed the message to '%s'", bnd_last_error());
    bnd_clear_last_error();
    EXPECT(bnd_last_error()[0] == '\0', "clear did not clear");
    bnd_net_free(net);
    bnd_net_free(NULL);
    bnd_optimizer_free(NULL);
    test_end();
}

static void test_introspection(void) {
    test_begin("introspection: layers, shapes, tensor names");
    int64_t shape[] = {1, 8, 8}, dims[BND_MAX_RANK];
    size_t rank = 0, count = 0;
    bnd_net *net = NULL;
    EXPECT_OK(bnd_net_create(shape, 3, &net));
    EXPECT_OK(bnd_net_add_conv2d(net, 4, 3, 1, 1));   /* 0: {4, 8, 8} */
    EXPECT_OK(bnd_net_add_batchnorm(net, NULL));      /* 1: BatchNorm2d */
    EXPECT_OK(bnd_net_add_relu(net));                 /* 2 */
    EXPECT_OK(bnd_net_add_maxpool2d(net, 2, 0));      /* 3: {4, 4, 4}, stride 0 = kernel */
    EXPECT_OK(bnd_net_add_avgpool2d(net, 2, 2));      /* 4: {4, 2, 2} */
    EXPECT_OK(bnd_net_add_flatten(net));              /* 5: {16} */
    EXPECT_OK(bnd_net_add_dropout(net, 0.25f));       /* 6 */
    EXPECT_OK(bnd_net_add_linear(net, 5));            /* 7: {5} */
    EXPECT_OK(bnd_net_layer_count(net, &count));
    EXPECT(count == 8, "layer count %zu", count);
    static const char *const types[] = {"Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "AvgPool2d", "Flatten",
                                        "Dropout", "Linear"};
    for (size_t i = 0; i < 8; i++) {
        char type[BND_NAME_MAX];
        EXPECT_OK(bnd_net_layer_type(net, i, type, sizeof type));
        EXPECT(strcmp(type, types[i]) == 0, "layer %zu type '%s', expected '%s'", i, type, types[i]);
    }
    EXPECT_OK(bnd_net_layer_output_shape(net, 4, dims, BND_MAX_RANK, &rank));
    EXPECT(rank == 3 && dims[0] == 4 && dims[1] == 2 && dims[2] == 2, "layer 4 output shape");
    EXPECT_OK(bnd_net_input_shape(net, dims, 3, &rank));
    EXPECT(rank == 3 && dims[0] == 1 && dims[1] == 8 && dims[2] == 8, "input shape");
    EXPECT_OK(bnd_net_output_shape(net, dims, 1, &rank));
    EXPECT(rank == 1 && dims[0] == 5, "output shape");
    EXPECT_OK(bnd_net_input_count(net, &count));
    EXPECT(count == 64, "input count %zu", count);
    EXPECT_OK(bnd_net_output_count(net, &count));
    EXPECT(count == 5, "output count %zu", count);

    static const char *const names[] = {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                        "1.running_var", "1.num_batches_tracked", "7.weight", "7.bias"};
    static const size_t numels[] = {36, 4, 4, 4, 4, 4, 1, 80, 5};
    static const int params[] = {1, 1, 1, 1, 0, 0, 0, 1, 1};
    EXPECT_OK(bnd_net_tensor_count(net, &count));
    EXPECT(count == 9, "tensor count %zu", count);
    for (size_t i = 0; i < 9 && i < count; i++) {
        char name[BND_NAME_MAX];
        size_t numel = 0;
        int32_t is_param = -1;
        EXPECT_OK(bnd_net_tensor_name(net, i, name, sizeof name));
        EXPECT(strcmp(name, names[i]) == 0, "tensor %zu is '%s', expected '%s'", i, name, names[i]);
        EXPECT_OK(bnd_net_tensor_numel(net, names[i], &numel));
        EXPECT(numel == numels[i], "%s numel %zu", names[i], numel);
        EXPECT_OK(bnd_net_tensor_is_parameter(net, names[i], &is_param));
        EXPECT(is_param == params[i], "%s is_parameter %d", names[i], is_param);
    }
    EXPECT_OK(bnd_net_tensor_shape(net, "0.weight", dims, BND_MAX_RANK, &rank));
    EXPECT(rank == 4 && dims[0] == 4 && dims[1] == 1 && dims[2] == 3 && dims[3] == 3, "0.weight shape");
    EXPECT_OK(bnd_net_tensor_shape(net, "1.num_batches_tracked", dims, 0, &rank));
    EXPECT(rank == 0, "num_batches_tracked rank %zu", rank);
    float rv[4];
    EXPECT_OK(bnd_net_get_tensor(net, "1.running_var", rv, 4));
    EXPECT(rv[0] == 1 && rv[3] == 1, "running_var starts at 1");

    /* layer outputs after a forward; the last one equals the forward's output */
    float input[3 * 64], output[3 * 5], layer[3 * 256];
    for (int i = 0; i < 3 * 64; i++) input[i] = sinf((float)i * 0.37f);
    EXPECT_OK(bnd_net_forward(net, input, 3, output, 15));
    EXPECT_OK(bnd_net_get_layer_output(net, 7, layer, sizeof layer / sizeof *layer, &count));
    EXPECT(count == 15 && memcmp(layer, output, sizeof output) == 0, "layer 7 output differs from forward output");
    EXPECT_OK(bnd_net_get_layer_output(net, 2, layer, sizeof layer / sizeof *layer, &count));
    int negative = 0;
    for (size_t i = 0; i < count; i++) negative |= layer[i] < 0;
    EXPECT(count == 3 * 256 && !negative, "ReLU output: %zu values, negative %d", count, negative);
    EXPECT_OK(bnd_net_get_layer_output(net, 0, layer, sizeof layer / sizeof *layer, NULL));
    /* layer outputs of a BN-normalised batch have zero mean per channel */
    EXPECT_OK(bnd_net_get_layer_output(net, 1, layer, sizeof layer / sizeof *layer, &count));
    double mean = 0;
    for (int n = 0; n < 3; n++)
        for (int s = 0; s < 64; s++) mean += layer[n * 256 + s];
    EXPECT(fabs(mean / 192) < 1e-4, "channel 0 mean after BatchNorm2d %g", mean / 192);
    /* The same forward as a borrowed view (eval mode, so both passes compute the same): same values. */
    int32_t was_training = -1;
    EXPECT_OK(bnd_net_is_training(net, &was_training));
    EXPECT_OK(bnd_net_set_training(net, 0));
    EXPECT_OK(bnd_net_forward(net, input, 3, output, 15));
    const float *view = NULL;
    size_t view_count = 0;
    EXPECT_OK(bnd_net_forward_view(net, input, 3, &view, &view_count));
    EXPECT(view != NULL && view_count == 15 && memcmp(view, output, sizeof output) == 0,
           "the view differs from the copied output (%zu values)", view_count);
    EXPECT_OK(bnd_net_set_training(net, was_training));
    bnd_net_free(net);
    test_end();
}

static void test_modes_and_steps(void) {
    test_begin("train step in eval mode trains in train mode and restores eval");
    int64_t shape[] = {2};
    bnd_net *net = NULL;
    bnd_optimizer *opt = NULL;
    int32_t training = -1;
    EXPECT_OK(bnd_net_create(shape, 1, &net));
    EXPECT_OK(bnd_net_is_training(net, &training));
    EXPECT(training == 1, "new nets train");
    EXPECT_OK(bnd_net_add_linear(net, 4));
    EXPECT_OK(bnd_net_add_batchnorm(net, NULL));
    EXPECT_OK(bnd_net_add_linear(net, 1));
    EXPECT_OK(bnd_optimizer_create_adam(net, NULL, &opt));
    EXPECT_OK(bnd_net_set_training(net, 0));
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[4] = {1, 0, 1, 0}, loss = -1, nbt = -1;
    EXPECT_OK(bnd_net_train_step_regression(net, opt, x, y, 4, &loss));
    EXPECT_OK(bnd_net_train_step_regression(net, opt, x, y, 4, NULL)); /* out_loss may be NULL */
    EXPECT(loss > 0 && isfinite(loss), "loss %g", (double)loss);
    EXPECT_OK(bnd_net_is_training(net, &training));
    EXPECT(training == 0, "mode not restored to eval");
    EXPECT_OK(bnd_net_get_tensor(net, "1.num_batches_tracked", &nbt, 1));
    EXPECT(nbt == 2, "num_batches_tracked %g: the steps did not run in train mode", (double)nbt);
    /* eval mode: a batch of one is fine and the running statistics do not move */
    float out = 0;
    EXPECT_OK(bnd_net_forward(net, x, 1, &out, 1));
    EXPECT_OK(bnd_net_get_tensor(net, "1.num_batches_tracked", &nbt, 1));
    EXPECT(nbt == 2, "eval forward changed num_batches_tracked");
    /* A leading pass-through layer after a step that read its input in place: no output of its own
       (it was the caller's batch, which may be gone), a state error instead of a read of it. */
    {
        int64_t image[3] = {1, 2, 2};
        bnd_net *flat = NULL;
        bnd_optimizer *flat_opt = NULL;
        float batch[8 * 4], seen[64];
        int32_t classes[8] = {0, 1, 2, 0, 1, 2, 0, 1};
        for (int i = 0; i < 8 * 4; i++) batch[i] = (float)(i % 7) - 3.0f;
        EXPECT_OK(bnd_net_create(image, 3, &flat));
        EXPECT_OK(bnd_net_add_flatten(flat));
        EXPECT_OK(bnd_net_add_linear(flat, 3));
        EXPECT_OK(bnd_optimizer_create_sgd(flat, NULL, &flat_opt));
        EXPECT_OK(bnd_net_train_step_classification(flat, flat_opt, batch, classes, 8, NULL));
        BAD_MSG(BND_ERR_STATE, "passed the caller's input through", bnd_net_get_layer_output(flat, 0, seen, 64, NULL));
        EXPECT_OK(bnd_net_get_layer_output(flat, 1, seen, 64, NULL));
        EXPECT_OK(bnd_net_forward(flat, batch, 8, seen, 64));   /* a copying forward keeps its own copy */
        EXPECT_OK(bnd_net_get_layer_output(flat, 0, seen, 64, NULL));
        EXPECT(seen[5] == batch[5], "Flatten's output after a copying forward: %g", (double)seen[5]);
        bnd_optimizer_free(flat_opt);
        bnd_net_free(flat);
    }
    /* num_batches_tracked exactly, as an int64: past 2^24 a float cannot hold it */
    int64_t count = -1;
    EXPECT_OK(bnd_net_get_tensor_int64(net, "1.num_batches_tracked", &count));
    EXPECT(count == 2, "num_batches_tracked as int64: %lld", (long long)count);
    EXPECT_OK(bnd_net_set_tensor_int64(net, "1.num_batches_tracked", (INT64_C(1) << 24) + 1));
    EXPECT_OK(bnd_net_get_tensor_int64(net, "1.num_batches_tracked", &count));
    EXPECT(count == (INT64_C(1) << 24) + 1, "int64 round trip gave %lld", (long long)count);
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "float32 tensor", bnd_net_get_tensor_int64(net, "0.weight", &count));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "float32 tensor", bnd_net_set_tensor_int64(net, "1.running_mean", 3));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "non-negative", bnd_net_set_tensor_int64(net, "1.num_batches_tracked", -1));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "out_value", bnd_net_get_tensor_int64(net, "1.num_batches_tracked", NULL));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "no tensor named", bnd_net_set_tensor_int64(net, "7.num_batches_tracked", 1));
    /* names are matched exactly: another spelling of the index is no name */
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "no tensor named", bnd_net_get_tensor_int64(net, "+1.num_batches_tracked", &count));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "no tensor named", bnd_net_get_tensor_int64(net, "01.num_batches_tracked", &count));
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "no tensor named", bnd_net_set_tensor_int64(net, "-1.num_batches_tracked", 1));
    EXPECT_OK(bnd_net_set_tensor_int64(net, "1.num_batches_tracked", INT64_MAX));
    EXPECT_OK(bnd_net_train_step_regression(net, opt, x, y, 4, NULL));
    EXPECT_OK(bnd_net_get_tensor_int64(net, "1.num_batches_tracked", &count));
    EXPECT(count == INT64_MAX, "a step at INT64_MAX gave %lld", (long long)count);
    /* implementation detail (documented as undefined): an optimizer whose net was freed is refused */
    bnd_net_free(net);
    EXPECT(bnd_optimizer_step(opt) == BND_ERR_STATE, "step after the net was freed");
    bnd_optimizer_free(opt);
    test_end();
}

static void test_seeding_and_gradients(void) {
    test_begin("seed: same seed same parameters; reseed equals building with that seed");
    int64_t shape[] = {6};
    bnd_net *a = NULL, *b = NULL;
    float wa[24], wb[24];
    EXPECT_OK(bnd_net_create(shape, 1, &a));
    EXPECT_OK(bnd_net_create(shape, 1, &b));
    EXPECT_OK(bnd_net_seed(b, 7));
    EXPECT_OK(bnd_net_add_linear(a, 4));
    EXPECT_OK(bnd_net_add_linear(b, 4));
    EXPECT_OK(bnd_net_get_tensor(a, "0.weight", wa, 24));
    EXPECT_OK(bnd_net_get_tensor(b, "0.weight", wb, 24));
    EXPECT(memcmp(wa, wb, sizeof wa) != 0, "seeds 0 and 7 gave the same weights");
    float bound = 1.0f / sqrtf(6.0f);
    for (int i = 0; i < 24; i++) EXPECT(fabsf(wa[i]) <= bound, "weight %g outside U(-1/sqrt(6), +)", (double)wa[i]);
    EXPECT_OK(bnd_net_seed(a, 7));
    EXPECT_OK(bnd_net_get_tensor(a, "0.weight", wa, 24));
    EXPECT(memcmp(wa, wb, sizeof wa) == 0, "reseeding to 7 differs from building with 7");
    bnd_net_free(a);
    bnd_net_free(b);
    test_end();

    test_begin("backward accumulates; zero_grad resets; grad_input optional");
    int64_t two[] = {2};
    bnd_net *lin = NULL;
    float x[2] = {1, 2}, go[1] = {1}, g1[2], g2[2];
    EXPECT_OK(bnd_net_create(two, 1, &lin));
    EXPECT_OK(bnd_net_add_linear(lin, 1));
    EXPECT_OK(bnd_net_forward(lin, x, 1, go, 1));
    go[0] = 1;
    EXPECT_OK(bnd_net_backward(lin, go, 1, NULL, 0));
    EXPECT_OK(bnd_net_get_grad(lin, "0.weight", g1, 2));
    EXPECT_OK(bnd_net_backward(lin, go, 1, NULL, 0));
    EXPECT_OK(bnd_net_get_grad(lin, "0.weight", g2, 2));
    EXPECT(g1[0] == 1 && g1[1] == 2 && g2[0] == 2 && g2[1] == 4, "grads %g %g / %g %g", (double)g1[0], (double)g1[1],
           (double)g2[0], (double)g2[1]);
    EXPECT_OK(bnd_net_zero_grad(lin));
    EXPECT_OK(bnd_net_get_grad(lin, "0.weight", g1, 2));
    EXPECT(g1[0] == 0 && g1[1] == 0, "zero_grad");
    const float set[2] = {0.5f, -3};
    EXPECT_OK(bnd_net_set_grad(lin, "0.weight", set, 2));
    EXPECT_OK(bnd_net_get_grad(lin, "0.weight", g1, 2));
    EXPECT(g1[0] == 0.5f && g1[1] == -3, "set_grad gave %g %g", (double)g1[0], (double)g1[1]);
    bnd_net_free(lin);
    test_end();
}

/* The article's MLP with BatchNorm1d after a few training steps: the folded copy has no BatchNorm and
   the same eval outputs; Monte-Carlo dropout on a net with dropout leaves it as it was. */
static void test_inference(void) {
    test_begin("fold_batchnorm: the folded MLP's eval output matches the original's");
    int64_t shape[] = {20};
    bnd_net *net = NULL, *folded = NULL;
    bnd_optimizer *opt = NULL;
    EXPECT_OK(bnd_net_create(shape, 1, &net));
    EXPECT_OK(bnd_net_add_linear(net, 16));
    EXPECT_OK(bnd_net_add_batchnorm(net, NULL));
    EXPECT_OK(bnd_net_add_relu(net));
    EXPECT_OK(bnd_net_add_dropout(net, 0.3f));
    EXPECT_OK(bnd_net_add_linear(net, 8));
    EXPECT_OK(bnd_net_add_batchnorm(net, NULL));
    EXPECT_OK(bnd_net_add_relu(net));
    EXPECT_OK(bnd_net_add_linear(net, 3));
    EXPECT_OK(bnd_optimizer_create_sgd(net, NULL, &opt));
    float x[16 * 20], expected[16 * 3], got[16 * 3];
    int32_t labels[16];
    for (int i = 0; i < 16 * 20; i++) x[i] = (float)((i * 37) % 23) * 0.1f - 1.0f;
    for (int i = 0; i < 16; i++) labels[i] = i % 3;
    for (int step = 0; step < 3; step++) EXPECT_OK(bnd_net_train_step_classification(net, opt, x, labels, 16, NULL));
    EXPECT_OK(bnd_net_fold_batchnorm(net, &folded));
    size_t layers = 0, tensors = 0;
    int32_t training = -1;
    EXPECT_OK(bnd_net_layer_count(folded, &layers));
    EXPECT_OK(bnd_net_tensor_count(folded, &tensors));
    EXPECT_OK(bnd_net_is_training(folded, &training));
    EXPECT(layers == 6 && tensors == 6 && training == 0, "folded: %zu layers, %zu tensors, training %d", layers,
           tensors, (int)training);
    char name[BND_NAME_MAX];
    EXPECT_OK(bnd_net_layer_type(folded, 4, name, sizeof name));
    EXPECT(strcmp(name, "ReLU") == 0, "layer 4 is %s", name);
    EXPECT_OK(bnd_net_set_training(net, 0));
    EXPECT_OK(bnd_net_forward(net, x, 16, expected, 16 * 3));
    EXPECT_OK(bnd_net_forward(folded, x, 16, got, 16 * 3));
    expect_close("folded eval output", got, expected, 16 * 3, 1e-5, 1e-5);
    test_end();

    test_begin("predict_mc_dropout: variance > 0 with dropout, 0 without; the net is left as it was");
    float mean[16 * 3], var[16 * 3], again[16 * 3], nbt_before = -1, nbt_after = -1, rm_before[16], rm_after[16];
    EXPECT_OK(bnd_net_set_training(net, 1));
    EXPECT_OK(bnd_net_get_tensor(net, "1.num_batches_tracked", &nbt_before, 1));
    EXPECT_OK(bnd_net_get_tensor(net, "1.running_mean", rm_before, 16));
    EXPECT_OK(bnd_net_predict_mc_dropout(net, x, 16, 40, 5, mean, var, 16 * 3));
    EXPECT_OK(bnd_net_get_tensor(net, "1.num_batches_tracked", &nbt_after, 1));
    EXPECT_OK(bnd_net_get_tensor(net, "1.running_mean", rm_after, 16));
    EXPECT_OK(bnd_net_is_training(net, &training));
    EXPECT(training == 1 && nbt_after == nbt_before && memcmp(rm_before, rm_after, sizeof rm_before) == 0,
           "the net changed: training %d, num_batches_tracked %g -> %g", (int)training, (double)nbt_before,
           (double)nbt_after);
    int positive = 0;
    for (int i = 0; i < 16 * 3; i++) positive += var[i] > 0;
    EXPECT(positive > 0, "no variance with dropout");
    EXPECT_OK(bnd_net_predict_mc_dropout(net, x, 16, 40, 5, again, var, 16 * 3));
    EXPECT(memcmp(mean, again, sizeof mean) == 0, "the same seed gave another mean");
    bnd_net *plain = NULL;
    EXPECT_OK(bnd_net_create(shape, 1, &plain));
    EXPECT_OK(bnd_net_add_linear(plain, 3));
    EXPECT_OK(bnd_net_predict_mc_dropout(plain, x, 16, 3, 5, mean, var, 16 * 3));
    EXPECT_OK(bnd_net_forward(plain, x, 16, expected, 16 * 3));
    expect_close("MC mean without dropout", mean, expected, 16 * 3, 0, 0);
    for (int i = 0; i < 16 * 3; i++) EXPECT(var[i] == 0, "variance %g without dropout", (double)var[i]);
    bnd_net_free(plain);
    bnd_optimizer_free(opt);
    bnd_net_free(folded);
    bnd_net_free(net);
    test_end();
}

void run_api_tests(void) {
    test_version_and_statuses();
    test_defaults();
    test_pooling_arguments();
    test_conv2d_arguments();
    test_loss_arguments();
    test_last_error_contract();
    test_introspection();
    test_modes_and_steps();
    test_seeding_and_gradients();
    test_inference();
}
