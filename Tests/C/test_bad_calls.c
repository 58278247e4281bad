/* A table of bad calls: each must return its specific status with a non-empty bnd_last_error() (and
   of course must not take the process down). */
#include <math.h>
#include <string.h>
#include "check.h"



/* {4} -> Linear(3) -> BatchNorm1d -> ReLU -> Linear(2) */
static bnd_net *small_mlp(void) {
    int64_t shape[] = {4};
    bnd_net *net = NULL;
    if (bnd_net_create(shape, 1, &net) != BND_OK) return NULL;
    bnd_net_add_linear(net, 3);
    bnd_net_add_batchnorm(net, NULL);
    bnd_net_add_relu(net);
    bnd_net_add_linear(net, 2);
    return net;
}

void run_bad_call_tests(void) {
    const float nanf_ = NAN;
    int64_t shape1[] = {4}, shape3[] = {1, 6, 6}, shape4[] = {1, 2, 3, 4};
    int64_t neg[] = {-3}, zero[] = {0}, huge[] = {INT64_MAX}, huge3[] = {1, 65536, 65536};
    bnd_net *net = NULL, *mlp = small_mlp(), *img = NULL, *other = small_mlp();
    bnd_optimizer *opt = NULL;
    float in[64] = {0}, out[64] = {0}, buf[256] = {0};
    int32_t labels[8] = {0, 1, 0, 1, 0, 1, 0, 1};
    char name[BND_NAME_MAX];
    size_t n = 0;
    int64_t dims[BND_MAX_RANK];
    for (int i = 0; i < 64; i++) in[i] = (float)(i % 7) - 3.0f;

    /* ---- creating */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_create(NULL, 1, &net));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_create(shape1, 1, NULL));
    BAD(BND_ERR_SHAPE, bnd_net_create(shape1, 0, &net));
    BAD(BND_ERR_SHAPE, bnd_net_create(shape4, 4, &net));
    BAD(BND_ERR_SHAPE, bnd_net_create(shape1, SIZE_MAX, &net));
    BAD(BND_ERR_SHAPE, bnd_net_create(neg, 1, &net));
    BAD(BND_ERR_SHAPE, bnd_net_create(zero, 1, &net));
    BAD(BND_ERR_SHAPE, bnd_net_create(huge, 1, &net));
    BAD(BND_ERR_SHAPE, bnd_net_create(huge3, 3, &net));
    test_begin("failed create leaves *out_net untouched");
    EXPECT(net == NULL, "out_net was written");
    test_end();

    /* ---- adding layers */
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "NULL", bnd_net_add_linear(NULL, 3));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_relu(NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_flatten(NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_dropout(NULL, 0.5f));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_batchnorm(NULL, NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d(NULL, 1, 1, 1, 0));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_avgpool2d(NULL, 2, 2));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_maxpool2d(NULL, 2, 2));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_seed(NULL, 1));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_set_training(NULL, 1));

    EXPECT_OK(bnd_net_create(shape1, 1, &net));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_linear(net, 0));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_linear(net, -5));
    BAD(BND_ERR_SHAPE, bnd_net_add_linear(net, INT64_MAX));
    BAD(BND_ERR_SHAPE, bnd_net_add_linear(net, (int64_t)1 << 30)); /* 4 * 2^30 > 2^31-1 */
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "between 0 and 1", bnd_net_add_dropout(net, 1.5f));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_dropout(net, -0.1f));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_dropout(net, nanf_));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_dropout(net, INFINITY));
    BAD(BND_ERR_SHAPE, bnd_net_add_conv2d(net, 2, 3, 1, 0));  /* conv on a flat sample */
    BAD(BND_ERR_SHAPE, bnd_net_add_avgpool2d(net, 2, 2));
    {
        bnd_batchnorm_params p = bnd_batchnorm_default_params();
        p.eps = 0;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_batchnorm(net, &p));
        p = bnd_batchnorm_default_params();
        p.eps = nanf_;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_batchnorm(net, &p));
        p = bnd_batchnorm_default_params();
        p.momentum = 1.5f;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_batchnorm(net, &p));
        p.momentum = nanf_;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_batchnorm(net, &p));
        p.cumulative_average = 1; /* momentum is then ignored, even NaN */
        EXPECT_OK(bnd_net_add_batchnorm(net, &p));
        p = bnd_batchnorm_default_params();
        p.cumulative_average = 2;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_batchnorm(net, &p));
        p = bnd_batchnorm_default_params();
        p.affine = 7;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_batchnorm(net, &p));
        p = bnd_batchnorm_default_params();
        p.track_running_stats = -1;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_batchnorm(net, &p));
    }
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_set_training(net, 2));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_set_training(net, -1));
    test_begin("failed adds leave the net unchanged");
    EXPECT_OK(bnd_net_layer_count(net, &n));
    EXPECT(n == 1, "layer count %zu, expected 1 (the cumulative batchnorm)", n);
    test_end();
    bnd_net_free(net);
    net = NULL;

    /* image-shaped net: {1, 6, 6} */
    EXPECT_OK(bnd_net_create(shape3, 3, &img));
    BAD_MSG(BND_ERR_SHAPE, "Flatten", bnd_net_add_linear(img, 3));     /* linear after 3-D, no flatten */
    BAD(BND_ERR_SHAPE, bnd_net_add_conv2d(img, 2, 7, 1, 0));           /* kernel bigger than input */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d(img, 0, 3, 1, 0));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d(img, 2, 0, 1, 0));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d(img, 2, 3, 0, 0));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d(img, 2, 3, 1, -1));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d(img, 2, INT64_MAX, 1, 0));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d(img, 2, 3, 1, INT64_MAX));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d(img, 2, 3, INT64_MIN, 0));
    BAD(BND_ERR_SHAPE, bnd_net_add_conv2d(img, INT64_MAX, 3, 1, 0));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_avgpool2d(img, 0, 2));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_avgpool2d(img, 2, -1));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_maxpool2d(img, -2, 2));
    BAD(BND_ERR_SHAPE, bnd_net_add_maxpool2d(img, 7, 1));
    BAD(BND_ERR_SHAPE, bnd_net_add_avgpool2d(img, INT64_MAX, 0));
    {   /* Conv2d with every argument, on {1, 6, 6} */
        bnd_conv2d_params c = bnd_conv2d_default_params(2, 3);
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d_v2(NULL, &c));
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "params", bnd_net_add_conv2d_v2(img, NULL));
        c.groups = 2;                     /* 1 input channel */
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "divisible by groups", bnd_net_add_conv2d_v2(img, &c));
        c.groups = 0;
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "groups", bnd_net_add_conv2d_v2(img, &c));
        c.groups = INT64_MIN;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d_v2(img, &c));
        c.groups = 1;
        c.dilation = 0;
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "dilation", bnd_net_add_conv2d_v2(img, &c));
        c.dilation = INT64_MAX;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d_v2(img, &c));
        c.dilation = 3;                   /* taps spanning 7 cells of 6 */
        BAD_MSG(BND_ERR_SHAPE, "larger than the padded input", bnd_net_add_conv2d_v2(img, &c));
        c.dilation = 1;
        c.stride = 0;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d_v2(img, &c));
        c.stride = 1;
        c.padding = -1;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_conv2d_v2(img, &c));
        c.padding = 0;
        c.out_channels = INT64_MAX;
        BAD(BND_ERR_SHAPE, bnd_net_add_conv2d_v2(img, &c));
    }
    {   /* the pooling calls with every argument, on {1, 6, 6} */
        bnd_avgpool2d_params a = bnd_avgpool2d_default_params(3);
        bnd_maxpool2d_params m = bnd_maxpool2d_default_params(3);
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_avgpool2d_v2(NULL, &a));
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "params", bnd_net_add_avgpool2d_v2(img, NULL));
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "params", bnd_net_add_maxpool2d_v2(img, NULL));
        a.padding = 2;                    /* more than kernel_size / 2 */
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "padding", bnd_net_add_avgpool2d_v2(img, &a));
        a.padding = -1;
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "padding", bnd_net_add_avgpool2d_v2(img, &a));
        a.padding = INT64_MAX;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_avgpool2d_v2(img, &a));
        a.padding = 1;
        a.ceil_mode = 2;
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "ceil_mode", bnd_net_add_avgpool2d_v2(img, &a));
        a.ceil_mode = 1;
        a.count_include_pad = -1;
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "count_include_pad", bnd_net_add_avgpool2d_v2(img, &a));
        a.count_include_pad = 0;
        a.divisor_override = INT64_MIN;
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "divisor_override", bnd_net_add_avgpool2d_v2(img, &a));
        a.divisor_override = 0;
        a.stride = INT64_MAX;
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "stride", bnd_net_add_avgpool2d_v2(img, &a));
        a.stride = -3;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_avgpool2d_v2(img, &a));
        a.stride = 0;
        a.kernel_size = INT64_MAX;
        BAD(BND_ERR_SHAPE, bnd_net_add_avgpool2d_v2(img, &a));
        a.kernel_size = INT64_MIN;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_avgpool2d_v2(img, &a));
        m.dilation = 0;
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "dilation", bnd_net_add_maxpool2d_v2(img, &m));
        m.dilation = 3;                   /* a window of 7 cells on 6 */
        BAD_MSG(BND_ERR_SHAPE, "output", bnd_net_add_maxpool2d_v2(img, &m));
        m.dilation = INT64_MAX;
        BAD(BND_ERR_SHAPE, bnd_net_add_maxpool2d_v2(img, &m));
        m.dilation = 1;
        m.ceil_mode = 7;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_add_maxpool2d_v2(img, &m));
        size_t layers = 1;
        EXPECT_OK(bnd_net_layer_count(img, &layers));
        EXPECT(layers == 0, "refused pooling calls added %zu layers", layers);
    }
    EXPECT_OK(bnd_net_add_conv2d(img, 2, 3, 1, 0)); /* -> {2, 4, 4}, not flat */
    {
        bnd_sgd_params p = bnd_sgd_default_params();
        EXPECT_OK(bnd_optimizer_create_sgd(img, &p, &opt));
        BAD_MSG(BND_ERR_SHAPE, "flat", bnd_net_train_step_classification(img, opt, in, labels, 1, NULL));
        bnd_optimizer_free(opt);
        opt = NULL;
    }
    bnd_net_free(img);

    /* ---- forward / backward */
    BAD(BND_ERR_STATE, bnd_net_backward(mlp, buf, 4, NULL, 0));                /* before forward */
    BAD(BND_ERR_STATE, bnd_net_get_layer_output(mlp, 0, buf, 256, &n));       /* before forward */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_forward(NULL, in, 4, out, 64));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_forward(mlp, NULL, 4, out, 64));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_forward(mlp, in, 4, NULL, 64));
    BAD(BND_ERR_SHAPE, bnd_net_forward(mlp, in, 0, out, 64));
    BAD(BND_ERR_SHAPE, bnd_net_forward(mlp, in, -1, out, 64));
    BAD(BND_ERR_SHAPE, bnd_net_forward(mlp, in, INT64_MIN, out, 64));
    BAD(BND_ERR_SHAPE, bnd_net_forward(mlp, in, INT64_MAX, out, 64));          /* batch * 4 overflows */
    BAD(BND_ERR_SHAPE, bnd_net_forward(mlp, in, INT64_MAX / 4, out, SIZE_MAX)); /* > 2^31-1 values */
    BAD_MSG(BND_ERR_SHAPE, "8", bnd_net_forward(mlp, in, 4, out, 7));          /* needs 4*2 = 8 */
    const float *view = NULL;
    size_t view_count = 0;
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_forward_view(NULL, in, 4, &view, &view_count));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_forward_view(mlp, NULL, 4, &view, &view_count));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_forward_view(mlp, in, 4, NULL, &view_count));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_forward_view(mlp, in, 4, &view, NULL));
    BAD(BND_ERR_SHAPE, bnd_net_forward_view(mlp, in, 0, &view, &view_count));
    BAD_MSG(BND_ERR_SHAPE, "per channel", bnd_net_forward_view(mlp, in, 1, &view, &view_count));
    test_begin("a failed bnd_net_forward_view leaves *out_view untouched");
    EXPECT(view == NULL && view_count == 0, "out_view or out_count was written");
    test_end();
    BAD_MSG(BND_ERR_SHAPE, "per channel", bnd_net_forward(mlp, in, 1, out, 64)); /* BN batch 1, train */
    BAD(BND_ERR_STATE, bnd_net_backward(mlp, buf, 1, NULL, 0));                /* the failed forward */
    EXPECT_OK(bnd_net_forward(mlp, in, 4, out, 64));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_backward(NULL, buf, 4, NULL, 0));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_backward(mlp, NULL, 4, NULL, 0));
    BAD(BND_ERR_SHAPE, bnd_net_backward(mlp, buf, 3, NULL, 0));                /* forward batch was 4 */
    BAD(BND_ERR_SHAPE, bnd_net_backward(mlp, buf, -4, NULL, 0));
    BAD(BND_ERR_SHAPE, bnd_net_backward(mlp, buf, INT64_MAX, buf, 256));
    BAD_MSG(BND_ERR_SHAPE, "16", bnd_net_backward(mlp, buf, 4, buf + 64, 15));  /* needs 4*4 = 16 */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_zero_grad(NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_layer_output(mlp, 0, NULL, 256, &n));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_layer_output(mlp, 4, buf, 256, &n));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_layer_output(mlp, SIZE_MAX, buf, 256, &n));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_layer_output(NULL, 0, buf, 256, &n));
    n = 0;
    BAD_MSG(BND_ERR_SHAPE, "12", bnd_net_get_layer_output(mlp, 0, buf, 11, &n)); /* 4 x 3 */
    test_begin("too-small capacity reports the size needed through out_count");
    EXPECT(n == 12, "out_count %zu, expected 12", n);
    test_end();
    /* eval mode: batch 1 is fine with running statistics */
    EXPECT_OK(bnd_net_set_training(mlp, 0));
    EXPECT_OK(bnd_net_forward(mlp, in, 1, out, 2));
    EXPECT_OK(bnd_net_set_training(mlp, 1));

    /* ---- tensors */
    BAD_MSG(BND_ERR_INVALID_ARGUMENT, "0.weight", bnd_net_get_tensor(mlp, "9.weight", buf, 256)); /* lists known */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_tensor(mlp, "weight", buf, 256));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_tensor(mlp, "", buf, 256));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_tensor(mlp, "2.weight", buf, 256)); /* ReLU has none */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_tensor(mlp, "-1.weight", buf, 256));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_tensor(mlp, "99999999999999999999999.weight", buf, 256));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_tensor(mlp, NULL, buf, 256));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_tensor(NULL, "0.weight", buf, 256));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_tensor(mlp, "0.weight", NULL, 256));
    BAD_MSG(BND_ERR_SHAPE, "12", bnd_net_get_tensor(mlp, "0.weight", buf, 11));
    BAD(BND_ERR_SHAPE, bnd_net_get_tensor(mlp, "0.weight", buf, 0));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_grad(mlp, "1.running_mean", buf, 256)); /* a buffer */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_grad(mlp, "1.num_batches_tracked", buf, 256));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_get_grad(mlp, "nope", buf, 256));
    BAD(BND_ERR_SHAPE, bnd_net_get_grad(mlp, "3.bias", buf, 1));
    BAD(BND_ERR_SHAPE, bnd_net_set_tensor(mlp, "0.weight", buf, 11));
    BAD(BND_ERR_SHAPE, bnd_net_set_tensor(mlp, "0.weight", buf, SIZE_MAX));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_set_tensor(mlp, "0.weight", NULL, 12));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_set_tensor(mlp, "0.nope", buf, 12));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_set_tensor(NULL, "0.weight", buf, 12));
    {
        float v = -1;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_set_tensor(mlp, "1.num_batches_tracked", &v, 1));
        v = 1.5f;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_set_tensor(mlp, "1.num_batches_tracked", &v, 1));
        v = NAN;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_set_tensor(mlp, "1.num_batches_tracked", &v, 1));
        v = INFINITY;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_set_tensor(mlp, "1.num_batches_tracked", &v, 1));
    }
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_set_grad(mlp, "1.running_var", buf, 3));
    BAD(BND_ERR_SHAPE, bnd_net_set_grad(mlp, "0.bias", buf, 2));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_set_grad(mlp, "0.bias", NULL, 3));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_tensor_numel(mlp, "x", &n));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_tensor_numel(mlp, "0.bias", NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_tensor_shape(mlp, "0.weight", NULL, 4, &n));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_tensor_shape(mlp, "0.weight", dims, 4, NULL));
    BAD(BND_ERR_SHAPE, bnd_net_tensor_shape(mlp, "0.weight", dims, 1, &n));
    test_begin("too-small shape capacity reports the rank needed");
    EXPECT(n == 2, "out_rank %zu, expected 2", n);
    test_end();
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_tensor_is_parameter(mlp, "zz", (int32_t *)&n));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_tensor_count(mlp, NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_tensor_name(mlp, 9, name, sizeof name));  /* 9 tensors: 0-8 */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_tensor_name(mlp, SIZE_MAX, name, sizeof name));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_tensor_name(mlp, 0, NULL, 64));
    BAD_MSG(BND_ERR_SHAPE, "9", bnd_net_tensor_name(mlp, 0, name, 8));    /* "0.weight" + NUL = 9 */
    BAD(BND_ERR_SHAPE, bnd_net_tensor_name(mlp, 0, name, 0));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_layer_type(mlp, 4, name, sizeof name));
    BAD(BND_ERR_SHAPE, bnd_net_layer_type(mlp, 1, name, 11));            /* "BatchNorm1d" needs 12 */
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_layer_output_shape(mlp, 4, dims, 4, &n));
    BAD(BND_ERR_SHAPE, bnd_net_input_shape(mlp, dims, 0, &n));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_input_shape(NULL, dims, 4, &n));
    BAD(BND_ERR_SHAPE, bnd_net_output_shape(mlp, dims, 0, &n));
    BAD(BND_ERR_SHAPE, bnd_net_layer_output_shape(mlp, 0, dims, 0, &n));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_output_shape(mlp, dims, 4, NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_input_count(NULL, &n));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_output_count(mlp, NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_layer_count(mlp, NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_is_training(mlp, NULL));
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_is_training(NULL, (int32_t *)&n));

    /* ---- optimizers */
    {
        bnd_sgd_params s = bnd_sgd_default_params();
        bnd_adam_params a = bnd_adam_default_params();
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_sgd(NULL, &s, &opt));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_sgd(mlp, &s, NULL));
        s.lr = nanf_;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_sgd(mlp, &s, &opt));
        s.lr = -0.1f;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_sgd(mlp, &s, &opt));
        s.lr = INFINITY;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_sgd(mlp, &s, &opt));
        s = bnd_sgd_default_params();
        s.momentum = -0.5f;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_sgd(mlp, &s, &opt));
        s = bnd_sgd_default_params();
        s.weight_decay = nanf_;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_sgd(mlp, &s, &opt));
        s = bnd_sgd_default_params();
        s.nesterov = 1; /* momentum 0 */
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "Nesterov", bnd_optimizer_create_sgd(mlp, &s, &opt));
        s.momentum = 0.9f;
        s.dampening = 0.1f;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_sgd(mlp, &s, &opt));
        s = bnd_sgd_default_params();
        s.nesterov = 5;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_sgd(mlp, &s, &opt));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_adam(NULL, &a, &opt));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_adam(mlp, NULL, NULL));
        a.beta1 = 1.0f;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_adam(mlp, &a, &opt));
        a = bnd_adam_default_params();
        a.beta2 = -0.1f;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_adam(mlp, &a, &opt));
        a = bnd_adam_default_params();
        a.eps = nanf_;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_adam(mlp, &a, &opt));
        a = bnd_adam_default_params();
        a.lr = nanf_;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_adam(mlp, &a, &opt));
        a = bnd_adam_default_params();
        a.decoupled_weight_decay = 3;
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_create_adam(mlp, &a, &opt));
        test_begin("failed optimizer creation leaves *out untouched");
        EXPECT(opt == NULL, "out was written");
        test_end();
        /* a net without parameters */
        bnd_net *plain = NULL;
        EXPECT_OK(bnd_net_create(shape1, 1, &plain));
        EXPECT_OK(bnd_net_add_relu(plain));
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "empty parameter list", bnd_optimizer_create_sgd(plain, NULL, &opt));
        bnd_net_free(plain);
    }
    BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_step(NULL));

    /* ---- losses */
    {
        float logits[8] = {1, 2, 3, 4, 5, 6, 7, 8}, loss = 0, grad[8];
        int32_t bad_hi[2] = {0, 4}, bad_lo[2] = {-1, 0}, ok[2] = {0, 3};
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "out of bounds", bnd_loss_cross_entropy(logits, bad_hi, 2, 4, &loss, grad));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_loss_cross_entropy(logits, bad_lo, 2, 4, &loss, grad));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_loss_cross_entropy(NULL, ok, 2, 4, &loss, grad));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_loss_cross_entropy(logits, NULL, 2, 4, &loss, grad));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_loss_cross_entropy(logits, ok, 2, 4, NULL, grad));
        BAD(BND_ERR_SHAPE, bnd_loss_cross_entropy(logits, ok, 0, 4, &loss, grad));
        BAD(BND_ERR_SHAPE, bnd_loss_cross_entropy(logits, ok, -2, 4, &loss, grad));
        BAD(BND_ERR_SHAPE, bnd_loss_cross_entropy(logits, ok, 2, 0, &loss, grad));
        BAD(BND_ERR_SHAPE, bnd_loss_cross_entropy(logits, ok, 2, -4, &loss, grad));
        BAD(BND_ERR_SHAPE, bnd_loss_cross_entropy(logits, ok, INT64_MAX, 4, &loss, grad));
        BAD(BND_ERR_SHAPE, bnd_loss_mse(logits, logits, 0, &loss, grad));
        BAD(BND_ERR_SHAPE, bnd_loss_mse(logits, logits, SIZE_MAX, &loss, grad));
        /* counts no buffer can hold (2^64 bytes): refused as sizes, never read */
        BAD_MSG(BND_ERR_SHAPE, "too large", bnd_loss_mse(logits, logits, (size_t)1 << 62, &loss, grad));
        BAD_MSG(BND_ERR_SHAPE, "too many", bnd_loss_cross_entropy(logits, ok, INT64_C(1) << 31, INT64_C(1) << 31, &loss, grad));
        {   /* the losses with PyTorch's other arguments */
            bnd_cross_entropy_params p = bnd_cross_entropy_default_params();
            const float weight[4] = {1, 2, 3, 4};
            BAD(BND_ERR_INVALID_ARGUMENT, bnd_loss_cross_entropy_v2(NULL, ok, 2, 4, &p, &loss, grad));
            BAD(BND_ERR_INVALID_ARGUMENT, bnd_loss_cross_entropy_v2(logits, NULL, 2, 4, &p, &loss, grad));
            BAD(BND_ERR_INVALID_ARGUMENT, bnd_loss_cross_entropy_v2(logits, ok, 2, 4, &p, NULL, grad));
            BAD_MSG(BND_ERR_INVALID_ARGUMENT, "out of bounds", bnd_loss_cross_entropy_v2(logits, bad_hi, 2, 4, &p, &loss, grad));
            BAD(BND_ERR_SHAPE, bnd_loss_cross_entropy_v2(logits, ok, 0, 4, &p, &loss, grad));
            BAD(BND_ERR_SHAPE, bnd_loss_cross_entropy_v2(logits, ok, 2, -4, NULL, &loss, grad));
            p.ignore_index = 4;           /* now label 4 is ignored, -1 still out of bounds */
            EXPECT_OK(bnd_loss_cross_entropy_v2(logits, bad_hi, 2, 4, &p, &loss, grad));
            BAD_MSG(BND_ERR_INVALID_ARGUMENT, "out of bounds", bnd_loss_cross_entropy_v2(logits, bad_lo, 2, 4, &p, &loss, grad));
            p.ignore_index = -100;
            p.label_smoothing = 1.5f;
            BAD_MSG(BND_ERR_INVALID_ARGUMENT, "label_smoothing", bnd_loss_cross_entropy_v2(logits, ok, 2, 4, &p, &loss, grad));
            p.label_smoothing = __builtin_nanf("");
            BAD_MSG(BND_ERR_INVALID_ARGUMENT, "label_smoothing", bnd_loss_cross_entropy_v2(logits, ok, 2, 4, &p, &loss, grad));
            p.label_smoothing = 0;
            p.reduction = 2;              /* 'none' is not offered */
            BAD_MSG(BND_ERR_INVALID_ARGUMENT, "reduction", bnd_loss_cross_entropy_v2(logits, ok, 2, 4, &p, &loss, grad));
            p.reduction = BND_REDUCTION_SUM;
            p.weight = weight;
            p.weight_count = 3;
            BAD_MSG(BND_ERR_INVALID_ARGUMENT, "weight_count", bnd_loss_cross_entropy_v2(logits, ok, 2, 4, &p, &loss, grad));
            p.weight = NULL;
            BAD_MSG(BND_ERR_INVALID_ARGUMENT, "weight", bnd_loss_cross_entropy_v2(logits, ok, 2, 4, &p, &loss, grad));
            p.weight = weight;
            p.weight_count = 4;
            EXPECT_OK(bnd_loss_cross_entropy_v2(logits, ok, 2, 4, &p, &loss, grad));
            BAD(BND_ERR_INVALID_ARGUMENT, bnd_loss_mse_v2(NULL, logits, 8, BND_REDUCTION_SUM, &loss, grad));
            BAD(BND_ERR_INVALID_ARGUMENT, bnd_loss_mse_v2(logits, logits, 8, BND_REDUCTION_SUM, NULL, grad));
            BAD_MSG(BND_ERR_INVALID_ARGUMENT, "reduction", bnd_loss_mse_v2(logits, logits, 8, -1, &loss, grad));
            BAD(BND_ERR_SHAPE, bnd_loss_mse_v2(logits, logits, 0, BND_REDUCTION_MEAN, &loss, grad));
        }
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_loss_mse(NULL, logits, 8, &loss, grad));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_loss_mse(logits, NULL, 8, &loss, grad));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_loss_mse(logits, logits, 8, NULL, grad));
        EXPECT_OK(bnd_loss_mse(logits, logits, 8, &loss, grad));
        /* the gradient written over the logits (in place): the same loss and gradient */
        {
            float apart_grad[8], in_place[8], apart_loss = 0, in_place_loss = 0;
            memcpy(in_place, logits, sizeof in_place);
            EXPECT_OK(bnd_loss_cross_entropy(logits, ok, 2, 4, &apart_loss, apart_grad));
            EXPECT_OK(bnd_loss_cross_entropy(in_place, ok, 2, 4, &in_place_loss, in_place));
            EXPECT(apart_loss == in_place_loss && memcmp(apart_grad, in_place, sizeof in_place) == 0,
                   "cross-entropy in place: loss %g against %g", (double)in_place_loss, (double)apart_loss);
        }
    }

    /* ---- training steps */
    {
        bnd_optimizer *foreign = NULL;
        float targets[16] = {0}, loss = 0;
        int32_t bad_labels[4] = {0, 1, 2, 0};
        EXPECT_OK(bnd_optimizer_create_sgd(mlp, NULL, &opt));
        EXPECT_OK(bnd_optimizer_create_adam(other, NULL, &foreign));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_train_step_classification(NULL, opt, in, labels, 4, &loss));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_train_step_classification(mlp, NULL, in, labels, 4, &loss));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_train_step_classification(mlp, opt, NULL, labels, 4, &loss));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_train_step_classification(mlp, opt, in, NULL, 4, &loss));
        BAD(BND_ERR_SHAPE, bnd_net_train_step_classification(mlp, opt, in, labels, 0, &loss));
        BAD(BND_ERR_SHAPE, bnd_net_train_step_classification(mlp, opt, in, labels, INT64_MAX, &loss));
        BAD(BND_ERR_SHAPE, bnd_net_train_step_classification(mlp, opt, in, labels, 1, &loss)); /* BN batch 1 */
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "out of bounds",
                bnd_net_train_step_classification(mlp, opt, in, bad_labels, 4, &loss)); /* label 2 of 2 classes */
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "different network",
                bnd_net_train_step_classification(mlp, foreign, in, labels, 4, &loss));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_train_step_regression(mlp, opt, in, NULL, 4, &loss));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_train_step_regression(mlp, foreign, in, targets, 4, &loss));
        BAD(BND_ERR_SHAPE, bnd_net_train_step_regression(mlp, opt, in, targets, -3, &loss));
        {   /* the steps with the losses' other arguments */
            bnd_cross_entropy_params p = bnd_cross_entropy_default_params();
            const float weight[2] = {1, 3};
            BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_train_step_classification_v2(NULL, opt, in, labels, 4, &p, &loss));
            BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_train_step_classification_v2(mlp, opt, in, NULL, 4, &p, &loss));
            BAD_MSG(BND_ERR_INVALID_ARGUMENT, "different network",
                    bnd_net_train_step_classification_v2(mlp, foreign, in, labels, 4, NULL, &loss));
            BAD_MSG(BND_ERR_INVALID_ARGUMENT, "out of bounds",
                    bnd_net_train_step_classification_v2(mlp, opt, in, bad_labels, 4, &p, &loss));
            p.weight = weight;
            p.weight_count = 3;           /* the net has 2 outputs */
            BAD_MSG(BND_ERR_INVALID_ARGUMENT, "weight_count",
                    bnd_net_train_step_classification_v2(mlp, opt, in, labels, 4, &p, &loss));
            p.weight_count = 2;
            p.label_smoothing = -1;
            BAD_MSG(BND_ERR_INVALID_ARGUMENT, "label_smoothing",
                    bnd_net_train_step_classification_v2(mlp, opt, in, labels, 4, &p, &loss));
            p.label_smoothing = 0.1f;
            BAD(BND_ERR_SHAPE, bnd_net_train_step_classification_v2(mlp, opt, in, labels, 0, &p, &loss));
            BAD(BND_ERR_SHAPE, bnd_net_train_step_classification_v2(mlp, opt, in, labels, INT64_MAX, &p, &loss));
            BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_train_step_regression_v2(mlp, opt, in, targets, 4, 5, &loss));
            BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_train_step_regression_v2(mlp, opt, in, NULL, 4, BND_REDUCTION_SUM, &loss));
            BAD(BND_ERR_SHAPE, bnd_net_train_step_regression_v2(mlp, opt, in, targets, 0, BND_REDUCTION_SUM, &loss));
            /* every label ignored: the mean is NaN, a failed step that updates no parameter */
            float before[12], after[12];
            int32_t ignored[4] = {1, 1, 1, 1};
            p.ignore_index = 1;
            EXPECT_OK(bnd_net_get_tensor(mlp, "0.weight", before, 12));
            BAD_MSG(BND_ERR_NUMERIC, "the loss is",
                    bnd_net_train_step_classification_v2(mlp, opt, in, ignored, 4, &p, &loss));
            EXPECT_OK(bnd_net_get_tensor(mlp, "0.weight", after, 12));
            test_begin("a step whose labels are all ignored updates no parameter");
            EXPECT(memcmp(before, after, sizeof before) == 0, "0.weight changed");
            test_end();
            p.reduction = BND_REDUCTION_SUM;   /* the sum is 0: a step with zero gradients from the loss */
            EXPECT_OK(bnd_net_train_step_classification_v2(mlp, opt, in, ignored, 4, &p, &loss));
            EXPECT(loss == 0, "sum over no sample: %g", (double)loss);
        }

        /* non-finite loss: a status, and no parameter changes */
        float before[12], after[12], nan_in[16];
        for (int i = 0; i < 16; i++) nan_in[i] = i == 5 ? NAN : 1.0f;
        EXPECT_OK(bnd_net_get_tensor(mlp, "0.weight", before, 12));
        BAD(BND_ERR_NUMERIC, bnd_net_train_step_classification(mlp, opt, nan_in, labels, 4, &loss));
        BAD(BND_ERR_NUMERIC, bnd_net_train_step_regression(mlp, opt, nan_in, targets, 4, &loss));
        BAD(BND_ERR_NUMERIC, bnd_net_train_step_classification_v2(mlp, opt, nan_in, labels, 4, NULL, &loss));
        BAD(BND_ERR_NUMERIC, bnd_net_train_step_regression_v2(mlp, opt, nan_in, targets, 4, BND_REDUCTION_SUM, &loss));
        targets[3] = INFINITY;
        BAD(BND_ERR_NUMERIC, bnd_net_train_step_regression(mlp, opt, in, targets, 4, &loss));
        targets[3] = 0;
        EXPECT_OK(bnd_net_get_tensor(mlp, "0.weight", after, 12));
        test_begin("a non-finite loss updates no parameter");
        EXPECT(memcmp(before, after, sizeof before) == 0, "0.weight changed");
        test_end();

        /* a step's forward pass is used up by its own backward (the step reads the input in place) */
        EXPECT_OK(bnd_net_train_step_classification(mlp, opt, in, labels, 4, &loss));
        BAD_MSG(BND_ERR_STATE, "training step", bnd_net_backward(mlp, buf, 4, NULL, 0));
        EXPECT_OK(bnd_net_forward(mlp, in, 4, out, 64));
        EXPECT_OK(bnd_net_backward(mlp, buf, 4, NULL, 0));

        /* a net that gained layers after its optimizer was created */
        EXPECT_OK(bnd_net_add_relu(mlp));
        BAD_MSG(BND_ERR_STATE, "after the last", bnd_optimizer_step(opt));
        BAD(BND_ERR_STATE, bnd_net_train_step_classification(mlp, opt, in, labels, 4, &loss));
        BAD(BND_ERR_STATE, bnd_net_train_step_regression(mlp, opt, in, targets, 4, &loss));
        BAD(BND_ERR_STATE, bnd_net_train_step_classification_v2(mlp, opt, in, labels, 4, NULL, &loss));
        BAD(BND_ERR_STATE, bnd_net_train_step_regression_v2(mlp, opt, in, targets, 4, BND_REDUCTION_MEAN, &loss));
        BAD(BND_ERR_STATE, bnd_net_backward(mlp, buf, 4, NULL, 0)); /* the add discarded the forward */
        bnd_optimizer_free(foreign);
        bnd_optimizer_free(opt);
        opt = NULL;
    }

    /* ---- checkpoints (damaged files: test_checkpoint.c and Tests/BNDropTests/CheckpointDamageTests.swift) */
    {
        bnd_net *loaded = NULL;
        EXPECT_OK(bnd_optimizer_create_sgd(mlp, NULL, &opt));
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "net is NULL", bnd_net_save(NULL, "/tmp/bndrop-never.safetensors"));
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "path is NULL", bnd_net_save(mlp, NULL));
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "path is NULL", bnd_net_load(NULL, &loaded));
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "out_net is NULL", bnd_net_load("/tmp/bndrop-never.safetensors", NULL));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_load_weights(NULL, "/tmp/bndrop-never.safetensors"));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_load_weights(mlp, NULL));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_save(NULL, "/tmp/bndrop-never.safetensors"));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_save(opt, NULL));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_load(NULL, "/tmp/bndrop-never.safetensors"));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_optimizer_load(opt, NULL));
        BAD_MSG(BND_ERR_IO, "No such file", bnd_net_load("/nonexistent-bndrop/net.safetensors", &loaded));
        BAD_MSG(BND_ERR_IO, "No such file", bnd_net_load_weights(mlp, "/nonexistent-bndrop/net.safetensors"));
        BAD_MSG(BND_ERR_IO, "No such file", bnd_optimizer_load(opt, "/nonexistent-bndrop/opt.safetensors"));
        BAD_MSG(BND_ERR_IO, "not a regular file", bnd_net_load("/tmp", &loaded));
        BAD(BND_ERR_IO, bnd_net_load("", &loaded));
        BAD_MSG(BND_ERR_IO, "/nonexistent-bndrop/net.safetensors", bnd_net_save(mlp, "/nonexistent-bndrop/net.safetensors"));
        BAD(BND_ERR_IO, bnd_optimizer_save(opt, "/nonexistent-bndrop/opt.safetensors"));
        BAD_MSG(BND_ERR_IO, "folder", bnd_net_save(mlp, "/tmp/"));
        BAD(BND_ERR_IO, bnd_net_save(mlp, ""));
        test_begin("a failed bnd_net_load leaves *out_net untouched");
        EXPECT(loaded == NULL, "out_net was written");
        test_end();
        bnd_optimizer_free(opt);
        opt = NULL;
    }

    /* ---- inference: folding BatchNorm, Monte-Carlo dropout */
    {
        bnd_net *fresh = small_mlp(), *folded = NULL;
        float mean[8] = {0}, var[8] = {0};
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_fold_batchnorm(NULL, &folded));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_fold_batchnorm(fresh, NULL));
        test_begin("a failed fold leaves *out_net untouched");
        EXPECT(folded == NULL, "out_net written on failure");
        test_end();
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_predict_mc_dropout(NULL, in, 4, 3, 0, mean, var, 8));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_predict_mc_dropout(fresh, NULL, 4, 3, 0, mean, var, 8));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_predict_mc_dropout(fresh, in, 4, 3, 0, NULL, var, 8));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_predict_mc_dropout(fresh, in, 4, 3, 0, mean, NULL, 8));
        BAD_MSG(BND_ERR_INVALID_ARGUMENT, "passes", bnd_net_predict_mc_dropout(fresh, in, 4, 0, 0, mean, var, 8));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_predict_mc_dropout(fresh, in, 4, -1, 0, mean, var, 8));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_net_predict_mc_dropout(fresh, in, 4, INT64_MIN, 0, mean, var, 8));
        BAD(BND_ERR_SHAPE, bnd_net_predict_mc_dropout(fresh, in, 0, 3, 0, mean, var, 8));
        BAD(BND_ERR_SHAPE, bnd_net_predict_mc_dropout(fresh, in, -4, 3, 0, mean, var, 8));
        BAD(BND_ERR_SHAPE, bnd_net_predict_mc_dropout(fresh, in, INT64_MAX, 3, 0, mean, var, 8));
        BAD_MSG(BND_ERR_SHAPE, "8", bnd_net_predict_mc_dropout(fresh, in, 4, 3, 0, mean, var, 7));
        EXPECT_OK(bnd_net_predict_mc_dropout(fresh, in, 4, 3, 0, mean, var, 8));
        BAD(BND_ERR_STATE, bnd_net_backward(fresh, buf, 4, NULL, 0)); /* MC discarded the forward pass */
        bnd_net_free(fresh);
    }

    /* ---- runtime */
    {
        bnd_runtime_info info;
        int32_t threads = bnd_get_num_threads();
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_get_runtime_info(NULL));
        EXPECT_OK(bnd_get_runtime_info(&info));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_set_num_threads(0));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_set_num_threads(-1));
        BAD(BND_ERR_INVALID_ARGUMENT, bnd_set_num_threads(257));
        EXPECT_OK(bnd_set_num_threads(threads)); /* unchanged */
    }

    bnd_net_free(mlp);
    bnd_net_free(other);
}
