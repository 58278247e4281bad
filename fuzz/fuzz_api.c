/* libFuzzer target: sequences of C API calls with arbitrary arguments. The fuzzer's bytes are decoded
   into calls (one opcode byte, then the call's arguments) on a few slots of nets, optimizers, datasets
   and loaders. After every call: a status inside the enum, never BND_ERR_INTERNAL, a non-empty
   bnd_last_error() after a failure, and handle out-pointers untouched on failure (fz_check, UNTOUCHED).
   Buffers always really hold what the harness claims (a library may trust the caller's capacities);
   sizes are small, zero, negative or absurd, never merely large. Everything is freed at the end of each
   input, in an order the header allows (optimizers before their nets). */
#include "fuzz_common.h"

#define NETS 3
#define OPTS 2
#define DATA 2
#define LOADERS 2
#define MAX_BATCH 8
#define MAX_FLOATS 65536

static bnd_net *g_net[NETS];
static bnd_optimizer *g_opt[OPTS];
static int g_opt_net[OPTS];
static bnd_dataset *g_data[DATA];
static bnd_loader *g_loader[LOADERS];
static float g_in[MAX_FLOATS], g_out[MAX_FLOATS], g_aux[MAX_FLOATS];
static int32_t g_labels[MAX_FLOATS];
static int64_t g_labels64[MAX_FLOATS];

#define SENTINEL ((void *)(uintptr_t)0x5a5a5a50)

static void free_opts_of(int net) {
    for (int o = 0; o < OPTS; o++)
        if (g_opt[o] != NULL && g_opt_net[o] == net) { bnd_optimizer_free(g_opt[o]); g_opt[o] = NULL; }
}
static void put_net(int slot, bnd_net *net) {
    free_opts_of(slot);
    bnd_net_free(g_net[slot]);
    g_net[slot] = net;
}

/* The batch for a forward-like call: small (1..MAX_BATCH) and within the buffers for this net, or a
   bad value (0, negative, absurd). */
static int64_t pick_batch(fz_reader *r, bnd_net *net) {
    int64_t b = fz_size(r);
    if (b <= 0 || b > MAX_BATCH) return b;
    size_t in = 0, out = 0;
    if (net == NULL || bnd_net_input_count(net, &in) != BND_OK || bnd_net_output_count(net, &out) != BND_OK)
        return b;
    size_t widest = in > out ? in : out;
    size_t layers = 0;
    bnd_net_layer_count(net, &layers);
    for (size_t i = 0; i < layers; i++) {
        int64_t shape[BND_MAX_RANK];
        size_t rank = 0, n = 1;
        if (bnd_net_layer_output_shape(net, i, shape, BND_MAX_RANK, &rank) == BND_OK) {
            for (size_t k = 0; k < rank; k++) n *= (size_t)shape[k];
            if (n > widest) widest = n;
        }
    }
    while (b > 1 && (size_t)b * widest > MAX_FLOATS) b /= 2;
    return (size_t)b * widest > MAX_FLOATS ? -1 : b;
}

static size_t capacity(fz_reader *r, size_t exact) {
    switch (fz_u8(r) & 3) {
    case 0: return exact > 0 ? exact - 1 : 0;
    case 1: return 0;
    default: return exact < MAX_FLOATS ? MAX_FLOATS : exact;
    }
}

static void fill(fz_reader *r, float *x, size_t n) {
    uint8_t mode = fz_u8(r);
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 37 + mode) % 17) / 8.0f - 1.0f;
    /* Mostly zeros, as images and dropout's output are: two entries in three, or all but one in 64
       (Linear's products skip zeros where they are many enough, in tasks that each decide alone). */
    if (mode >= 200 && mode < 250)
        for (size_t i = 0; i < n; i++)
            if (mode < 225 ? (i * 7 + mode) % 3 != 0 : (i + mode) % 64 != 0) x[i] = 0.0f;
    if (mode == 255 && n > 0) x[n / 2] = __builtin_nanf("");
    if (mode == 254 && n > 0) x[0] = __builtin_inff();
}

static void sample_shape(fz_reader *r, int64_t *shape, size_t *rank) {
    *rank = (size_t)(fz_u8(r) % 5);
    for (size_t i = 0; i < 4; i++) shape[i] = fz_size(r);
    for (size_t i = 0; i < 4; i++)
        if (shape[i] > 8 && shape[i] < 64) shape[i] = 8;
}

static void one_call(fz_reader *r) {
    uint8_t op = fz_u8(r);
    int n = fz_u8(r) % NETS;
    bnd_net *net = (fz_u8(r) & 15) == 0 ? NULL : g_net[n];
    int o = fz_u8(r) % OPTS, d = fz_u8(r) % DATA, l = fz_u8(r) % LOADERS;
    bnd_status s;
    float loss = 0;
    switch (op % 40) {
    case 0: {
        int64_t shape[BND_MAX_RANK];
        size_t rank;
        sample_shape(r, shape, &rank);
        bnd_net *out = SENTINEL;
        s = CALL(bnd_net_create(shape, rank, &out));
        UNTOUCHED(s, out, SENTINEL, "bnd_net_create");
        if (s == BND_OK) put_net(n, out);
        break;
    }
    case 1: {
        /* Sometimes as wide as the products that skip zeros (32 to 128 outputs) or just beyond. */
        static const int64_t wide[4] = {32, 48, 128, 129};
        const uint8_t pick = fz_u8(r);
        CALL(bnd_net_add_linear(net, pick >= 192 ? wide[pick & 3] : fz_size(r)));
        break;
    }
    case 2: {
        if (fz_u8(r) & 1) {
            CALL(bnd_net_add_conv2d(net, fz_size(r), fz_size(r), fz_size(r), fz_small(r, 3) - 1));
            break;
        }
        /* Every argument: dilation and groups mostly small and sometimes absurd. */
        bnd_conv2d_params p = bnd_conv2d_default_params(fz_size(r), fz_size(r));
        p.stride = fz_size(r);
        p.padding = fz_small(r, 3) - 1;
        p.dilation = (fz_u8(r) & 3) == 0 ? fz_size(r) : 1 + fz_small(r, 2);
        p.groups = (fz_u8(r) & 3) == 0 ? fz_size(r) : 1 + fz_small(r, 2);
        CALL(bnd_net_add_conv2d_v2(net, (fz_u8(r) & 15) == 0 ? NULL : &p));
        break;
    }
    case 3: CALL(bnd_net_add_relu(net)); break;
    case 4: {
        /* The plain call, or every argument: padding up to 2, sometimes -1 or absurd; flags; divisors. */
        if (fz_u8(r) & 1) {
            CALL(bnd_net_add_avgpool2d(net, fz_size(r), fz_size(r)));
            break;
        }
        bnd_avgpool2d_params p = bnd_avgpool2d_default_params(fz_size(r));
        p.stride = fz_size(r);
        p.padding = (fz_u8(r) & 7) == 0 ? fz_size(r) : fz_small(r, 3) - 1;
        p.ceil_mode = fz_flag(r);
        p.count_include_pad = fz_flag(r);
        p.divisor_override = (fz_u8(r) & 3) == 0 ? fz_size(r) : 0;
        CALL(bnd_net_add_avgpool2d_v2(net, (fz_u8(r) & 15) == 0 ? NULL : &p));
        break;
    }
    case 5: {
        if (fz_u8(r) & 1) {
            CALL(bnd_net_add_maxpool2d(net, fz_size(r), fz_size(r)));
            break;
        }
        bnd_maxpool2d_params p = bnd_maxpool2d_default_params(fz_size(r));
        p.stride = fz_size(r);
        p.padding = (fz_u8(r) & 7) == 0 ? fz_size(r) : fz_small(r, 3) - 1;
        p.dilation = (fz_u8(r) & 3) == 0 ? fz_size(r) : 1 + fz_small(r, 3);
        p.ceil_mode = fz_flag(r);
        CALL(bnd_net_add_maxpool2d_v2(net, (fz_u8(r) & 15) == 0 ? NULL : &p));
        break;
    }
    case 6: CALL(bnd_net_add_flatten(net)); break;
    case 7: {
        bnd_batchnorm_params p = bnd_batchnorm_default_params();
        if (fz_u8(r) & 1) {
            p.eps = fz_param(r);
            p.momentum = fz_param(r);
            p.cumulative_average = fz_flag(r);
            p.affine = fz_flag(r);
            p.track_running_stats = fz_flag(r);
        }
        CALL(bnd_net_add_batchnorm(net, (fz_u8(r) & 7) == 0 ? NULL : &p));
        break;
    }
    case 8: CALL(bnd_net_add_dropout(net, fz_param(r))); break;
    case 9: CALL(bnd_net_seed(net, fz_u32(r))); break;
    case 10: CALL(bnd_net_set_training(net, fz_flag(r))); break;
    case 11: case 12: {
        int64_t b = pick_batch(r, net);
        size_t in = 0, out = 0;
        if (net) { bnd_net_input_count(net, &in); bnd_net_output_count(net, &out); }
        fill(r, g_in, MAX_FLOATS);
        if (op % 40 == 11) {
            size_t cap = b > 0 && b <= MAX_BATCH ? capacity(r, (size_t)b * out) : MAX_FLOATS;
            CALL(bnd_net_forward(net, g_in, b, g_out, cap));
        } else {
            const float *view = SENTINEL;
            size_t count = 0;
            s = CALL(bnd_net_forward_view(net, g_in, b, &view, &count));
            UNTOUCHED(s, view, SENTINEL, "bnd_net_forward_view");
            if (s == BND_OK && count > 0) { volatile float sink = view[count - 1]; (void)sink; }
        }
        break;
    }
    case 13: {
        int64_t b = pick_batch(r, net);
        fill(r, g_aux, MAX_FLOATS);
        int with_grad = fz_u8(r) & 1;
        CALL(bnd_net_backward(net, g_aux, b, with_grad ? g_out : NULL, with_grad ? capacity(r, MAX_FLOATS) : 0));
        break;
    }
    case 14: CALL(bnd_net_zero_grad(net)); break;
    case 15: case 16: {
        bnd_optimizer *out = SENTINEL;
        if (op % 40 == 15) {
            bnd_sgd_params p = bnd_sgd_default_params();
            p.lr = fz_param(r); p.momentum = fz_param(r); p.dampening = fz_param(r);
            p.weight_decay = fz_param(r); p.nesterov = fz_flag(r);
            s = CALL(bnd_optimizer_create_sgd(net, (fz_u8(r) & 7) == 0 ? NULL : &p, &out));
        } else {
            bnd_adam_params p = fz_u8(r) & 1 ? bnd_adam_default_params() : bnd_adamw_default_params();
            if (fz_u8(r) & 1) {
                p.lr = fz_param(r); p.beta1 = fz_param(r); p.beta2 = fz_param(r); p.eps = fz_param(r);
                p.weight_decay = fz_param(r); p.decoupled_weight_decay = fz_flag(r);
            }
            s = CALL(bnd_optimizer_create_adam(net, (fz_u8(r) & 7) == 0 ? NULL : &p, &out));
        }
        UNTOUCHED(s, out, SENTINEL, "bnd_optimizer_create");
        if (s == BND_OK) {
            bnd_optimizer_free(g_opt[o]);
            g_opt[o] = out;
            g_opt_net[o] = n;
        }
        break;
    }
    case 17: CALL(bnd_optimizer_step(fz_u8(r) & 7 ? g_opt[o] : NULL)); break;
    case 18: case 19: {
        /* the optimizer may belong to another net (a foreign optimizer must be refused) */
        int64_t b = pick_batch(r, net);
        size_t out = 0;
        if (net) bnd_net_output_count(net, &out);
        fill(r, g_in, MAX_FLOATS);
        if (op % 40 == 18) {
            int64_t classes = out > 0 ? (int64_t)out : 1;
            uint8_t bad = fz_u8(r);
            for (int i = 0; i < MAX_BATCH; i++) g_labels[i] = (int32_t)(i % classes);
            if (bad > 200) g_labels[bad % MAX_BATCH] = bad & 1 ? -1 : (int32_t)classes;
            if (fz_u8(r) & 1) {
                CALL(bnd_net_train_step_classification(net, g_opt[o], g_in, g_labels, b, &loss));
            } else {  /* with the losses' other arguments: weights from g_aux, some labels ignored */
                bnd_cross_entropy_params p = bnd_cross_entropy_default_params();
                fill(r, g_aux, MAX_FLOATS);
                if ((fz_u8(r) & 1) && classes <= MAX_FLOATS) {   /* (g_aux holds MAX_FLOATS weights) */
                    p.weight = g_aux;
                    p.weight_count = fz_u8(r) & 1 ? classes : fz_size(r);
                }
                p.ignore_index = fz_u8(r) & 1 ? 0 : -100;
                p.label_smoothing = fz_param(r);
                p.reduction = fz_flag(r);
                CALL(bnd_net_train_step_classification_v2(net, g_opt[o], g_in, g_labels, b,
                                                          (fz_u8(r) & 7) == 0 ? NULL : &p, &loss));
            }
        } else {
            fill(r, g_aux, MAX_FLOATS);
            if (fz_u8(r) & 1) CALL(bnd_net_train_step_regression(net, g_opt[o], g_in, g_aux, b, &loss));
            else CALL(bnd_net_train_step_regression_v2(net, g_opt[o], g_in, g_aux, b, fz_flag(r), &loss));
        }
        break;
    }
    case 20: case 21: {
        int64_t shape[BND_MAX_RANK];
        size_t rank;
        sample_shape(r, shape, &rank);
        int64_t count = fz_size(r), per = 1, classes = fz_size(r);
        int bad_shape = 0;
        for (size_t i = 0; i < rank; i++) {
            if (shape[i] <= 0 || shape[i] > 8) bad_shape = 1;
            else per *= shape[i];
        }
        /* only sizes whose buffers this harness really has, or sizes the library must refuse */
        if (!bad_shape && count > 0 && (count > MAX_BATCH * 2 || count * per > MAX_FLOATS)) count = 2;
        if (!bad_shape && count > 0 && classes > 0 && classes <= 16 && count * classes > MAX_FLOATS) count = 2;
        fill(r, g_in, MAX_FLOATS);
        bnd_dataset *out = SENTINEL;
        if (op % 40 == 20) {
            for (int i = 0; i < MAX_BATCH * 2; i++) g_labels[i] = classes > 0 ? (int32_t)(i % classes) : 0;
            if (fz_u8(r) > 220) g_labels[0] = -1;
            s = CALL(bnd_dataset_from_labels(g_in, shape, rank, g_labels, count, classes, &out));
        } else {
            fill(r, g_aux, MAX_FLOATS);
            int64_t targets = classes > 0 && classes <= 16 ? classes : fz_size(r);
            if (targets > 16 && targets < 64) targets = 2;
            s = CALL(bnd_dataset_from_targets(g_in, shape, rank, g_aux, targets, count, &out));
        }
        UNTOUCHED(s, out, SENTINEL, "bnd_dataset_from_*");
        if (s == BND_OK) { bnd_dataset_free(g_data[d]); g_data[d] = out; }
        break;
    }
    case 22: {
        bnd_loader *out = SENTINEL;
        s = CALL(bnd_loader_create(g_data[d], fz_size(r), fz_flag(r), fz_u32(r), fz_flag(r), &out));
        UNTOUCHED(s, out, SENTINEL, "bnd_loader_create");
        if (s == BND_OK) { bnd_loader_free(g_loader[l]); g_loader[l] = out; }
        break;
    }
    case 23: {
        const float *in = NULL, *targets = NULL;
        const int32_t *labels = NULL;
        int64_t batch = 0, per_epoch = 0;
        uint8_t which = fz_u8(r);
        s = CALL(bnd_loader_next(g_loader[l], &in, which & 1 ? &labels : NULL, which & 2 ? &targets : NULL, &batch));
        CALL(bnd_loader_batches_per_epoch(g_loader[l], &per_epoch));
        if (s == BND_OK && batch > 0 && in != NULL) {
            volatile float sink = in[0]; (void)sink;
            if (labels) { volatile int32_t sink2 = labels[batch - 1]; (void)sink2; }
        }
        break;
    }
    case 24: case 25: {
        bnd_fit_params p = bnd_fit_default_params();
        p.epochs = fz_small(r, 2) - (fz_u8(r) > 240);
        p.batch_size = fz_size(r);
        p.shuffle_seed = fz_u8(r);
        p.drop_last = fz_flag(r);
        p.loss = (int32_t)fz_small(r, 3) - 1;
        p.eval_batch_size = fz_size(r);
        bnd_fit_summary summary;
        double eval_loss, accuracy;
        if (op % 40 == 24)
            CALL(bnd_fit(net, g_opt[o], g_data[d], fz_u8(r) & 1 ? g_data[1 - d] : NULL, fz_u8(r) & 7 ? &p : NULL,
                         NULL, NULL, fz_u8(r) & 1 ? &summary : NULL));
        else
            CALL(bnd_evaluate(net, g_data[d], fz_size(r), fz_u8(r) & 1 ? &eval_loss : NULL, &accuracy));
        break;
    }
    case 26: {
        bnd_net *out = SENTINEL;
        s = CALL(bnd_net_fold_batchnorm(net, &out));
        UNTOUCHED(s, out, SENTINEL, "bnd_net_fold_batchnorm");
        if (s == BND_OK) put_net((n + 1) % NETS, out);
        break;
    }
    case 27: {
        int64_t b = pick_batch(r, net);
        size_t out = 0;
        if (net) bnd_net_output_count(net, &out);
        int64_t passes = fz_size(r);
        if (passes > 8) passes = 8;
        fill(r, g_in, MAX_FLOATS);
        size_t cap = b > 0 && b <= MAX_BATCH ? capacity(r, (size_t)b * out) : MAX_FLOATS;
        if (cap > MAX_FLOATS) cap = MAX_FLOATS;
        CALL(bnd_net_predict_mc_dropout(net, g_in, b, passes, fz_u32(r), g_out, fz_u8(r) & 1 ? g_aux : NULL, cap));
        break;
    }
    case 28: {
        int64_t shape[BND_MAX_RANK];
        size_t rank = 0, count = 0, cap = fz_small(r, 4);
        CALL(bnd_net_input_shape(net, shape, cap, &rank));
        CALL(bnd_net_output_shape(net, shape, cap, &rank));
        CALL(bnd_net_input_count(net, &count));
        CALL(bnd_net_output_count(net, &count));
        CALL(bnd_net_layer_count(net, &count));
        char name[BND_NAME_MAX];
        size_t index = (size_t)fz_small(r, 12);
        CALL(bnd_net_layer_type(net, index, name, (size_t)fz_small(r, BND_NAME_MAX)));
        CALL(bnd_net_layer_output_shape(net, index, shape, cap, &rank));
        int32_t training = 0;
        CALL(bnd_net_is_training(net, &training));
        break;
    }
    case 29: case 30: {
        size_t count = 0, index = (size_t)fz_small(r, 16), numel = 0, rank = 0;
        char name[BND_NAME_MAX] = "0.weight";
        int64_t shape[BND_MAX_RANK];
        int32_t is_param = 0;
        CALL(bnd_net_tensor_count(net, &count));
        if (fz_u8(r) < 200) CALL(bnd_net_tensor_name(net, index, name, (size_t)fz_small(r, BND_NAME_MAX)));
        else {
            static const char *const kinds[] = {"bias", "running_mean", "num_batches_tracked"};
            snprintf(name, sizeof name, "%d.%s", (int)fz_small(r, 9), kinds[fz_u8(r) % 3]);
        }
        s = CALL(bnd_net_tensor_numel(net, name, &numel));
        CALL(bnd_net_tensor_shape(net, name, shape, (size_t)fz_small(r, 4), &rank));
        CALL(bnd_net_tensor_is_parameter(net, name, &is_param));
        if (s != BND_OK || numel > MAX_FLOATS) numel = 4;
        size_t cap = capacity(r, numel);
        if (op % 40 == 29) {
            CALL(bnd_net_get_tensor(net, name, g_out, cap));
            CALL(bnd_net_get_grad(net, name, g_out, cap));
            int64_t whole = 0;
            CALL(bnd_net_get_tensor_int64(net, name, fz_u8(r) & 1 ? &whole : NULL));
        } else {
            if (fz_u8(r) < 64) {  // any int64: negative, 0, 2^24 + 1, INT64_MAX...
                uint64_t bits = 0;
                for (int k = 0; k < 8; k++) bits = bits << 8 | fz_u8(r);
                CALL(bnd_net_set_tensor_int64(net, name, (int64_t)bits));
            }
            fill(r, g_in, MAX_FLOATS);
            size_t c = fz_u8(r) & 1 ? numel : cap;
            if (fz_u8(r) & 1) CALL(bnd_net_set_tensor(net, name, g_in, c));
            else CALL(bnd_net_set_grad(net, name, g_in, c));
        }
        break;
    }
    case 31: {
        size_t count = 0;
        CALL(bnd_net_get_layer_output(net, (size_t)fz_small(r, 12), g_out, capacity(r, MAX_FLOATS),
                                      fz_u8(r) & 1 ? &count : NULL));
        break;
    }
    case 32: case 33: {
        char path[512];
        snprintf(path, sizeof path, "%s/api%d.safetensors", fz_dir(), fz_u8(r) % 3);
        uint8_t what = fz_u8(r) % 5;
        if (op % 40 == 32) {
            if (what < 3) CALL(bnd_net_save(net, path));
            else CALL(bnd_optimizer_save(g_opt[o], path));
        } else if (what == 0 || what == 1) {
            bnd_net *out = SENTINEL;
            s = CALL(bnd_net_load(path, &out));
            UNTOUCHED(s, out, SENTINEL, "bnd_net_load");
            if (s == BND_OK) put_net(n, out);
        } else if (what == 2 || what == 3) {
            CALL(bnd_net_load_weights(net, path));
        } else {
            CALL(bnd_optimizer_load(g_opt[o], path));
        }
        break;
    }
    case 34: {
        int64_t shape[BND_MAX_RANK], count = 0, classes = 0, targets = 0;
        size_t rank = 0;
        CALL(bnd_dataset_info(g_data[d], fz_u8(r) & 1 ? &count : NULL, &classes, &targets));
        CALL(bnd_dataset_sample_shape(g_data[d], shape, (size_t)fz_small(r, 4), &rank));
        sample_shape(r, shape, &rank);
        CALL(bnd_dataset_reshape(g_data[d], shape, rank));
        break;
    }
    case 35: {
        int64_t first = fz_size(r), count = fz_size(r);
        if (first != INT64_MIN) first -= 1; /* also -1, and first + count overflowing */
        CALL(bnd_dataset_get(g_data[d], first, count, fz_u8(r) & 1 ? g_out : NULL, capacity(r, MAX_FLOATS),
                             fz_u8(r) & 1 ? g_labels : NULL, capacity(r, MAX_FLOATS),
                             fz_u8(r) & 1 ? g_aux : NULL, capacity(r, MAX_FLOATS)));
        break;
    }
    case 36: {
        int64_t b = fz_size(r), classes = fz_size(r);
        if (b > 0 && classes > 0 && (b > 64 || classes > 64 || b * classes > MAX_FLOATS)) b = classes = 2;
        fill(r, g_in, MAX_FLOATS);
        for (int i = 0; i < 64; i++) g_labels[i] = classes > 0 ? (int32_t)(i % classes) : 0;
        if (fz_u8(r) > 220) g_labels[0] = (int32_t)classes;
        CALL(bnd_loss_cross_entropy(g_in, g_labels, b, classes, &loss, fz_u8(r) & 1 ? g_out : NULL));
        {   /* with PyTorch's other arguments: weights from the fuzzed floats (a count that may not match),
               an ignore_index that some labels hit, odd smoothing values and reductions */
            bnd_cross_entropy_params p = bnd_cross_entropy_default_params();
            if (fz_u8(r) & 1) {
                p.weight = g_aux;
                p.weight_count = fz_u8(r) & 1 ? classes : fz_size(r);
            }
            if (fz_u8(r) & 1) p.ignore_index = fz_u8(r) & 1 ? 1 : fz_size(r);
            p.label_smoothing = fz_param(r);
            p.reduction = fz_flag(r);
            CALL(bnd_loss_cross_entropy_v2(g_in, g_labels, b, classes, (fz_u8(r) & 7) == 0 ? NULL : &p, &loss,
                                           fz_u8(r) & 1 ? g_out : NULL));
        }
        fill(r, g_aux, MAX_FLOATS);
        CALL(bnd_loss_mse(g_in, g_aux, (size_t)fz_small(r, 64), &loss, fz_u8(r) & 1 ? g_out : NULL));
        CALL(bnd_loss_mse_v2(g_in, g_aux, (size_t)fz_small(r, 64), fz_flag(r), &loss, fz_u8(r) & 1 ? g_out : NULL));
        break;
    }
    case 37: {
        int32_t threads = (int32_t)fz_small(r, 4);
        if (fz_u8(r) > 240) threads = 300;
        CALL(bnd_set_num_threads(threads));
        break;
    }
    case 38: {
        /* frees (in an allowed order) */
        uint8_t what = fz_u8(r) % 4;
        if (what == 0) put_net(n, NULL);
        else if (what == 1) { bnd_optimizer_free(g_opt[o]); g_opt[o] = NULL; }
        else if (what == 2) { bnd_dataset_free(g_data[d]); g_data[d] = NULL; } /* loaders keep their own reference */
        else { bnd_loader_free(g_loader[l]); g_loader[l] = NULL; }
        break;
    }
    case 39: {
        /* two nets' steps side by side: the same net twice, a NULL net, a foreign or shared optimizer,
           nets of different sizes, counts 2, 1, 0 and -1 (never more than the arrays hold) */
        bnd_net *pair[2] = {net, (fz_u8(r) & 15) == 0 ? NULL : g_net[fz_u8(r) % NETS]};
        const uint8_t how = fz_u8(r);
        bnd_optimizer *opts[2] = {g_opt[how & 1], g_opt[(how >> 1) & 1]};
        const int64_t count = how > 200 ? 1 - (int64_t)(how % 3) : 2;
        int64_t b = pick_batch(r, net);
        size_t out = 0;
        if (net) bnd_net_output_count(net, &out);
        fill(r, g_in, MAX_FLOATS);
        float losses[2];
        bnd_status statuses[2];
        if (how & 4) {
            const int64_t classes = out > 0 ? (int64_t)out : 1;
            for (int i = 0; i < MAX_BATCH; i++) g_labels[i] = (int32_t)(i % classes);
            CALL(bnd_nets_train_step_classification(pair, opts, count, g_in, g_labels, b, losses, statuses));
        } else {
            fill(r, g_aux, MAX_FLOATS);
            CALL(bnd_nets_train_step_regression(pair, opts, count, g_in, g_aux, b, (how & 8) ? NULL : losses,
                                                (how & 16) ? NULL : statuses));
        }
        break;
    }
    default: {
        /* NULL out-pointers everywhere they are not allowed */
        CALL(bnd_net_create((const int64_t[]){4}, 1, NULL));
        CALL(bnd_net_input_count(net, NULL));
        CALL(bnd_optimizer_create_sgd(net, NULL, NULL));
        CALL(bnd_dataset_load_idx(NULL, NULL, NULL));
        CALL(bnd_net_load(NULL, NULL));
        CALL(bnd_get_runtime_info(NULL));
        break;
    }
    }
    (void)g_labels64;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_reader r = {data, size, 0};
    for (int calls = 0; calls < 64 && !fz_done(&r); calls++) one_call(&r);
    for (int o = 0; o < OPTS; o++) { bnd_optimizer_free(g_opt[o]); g_opt[o] = NULL; }
    for (int i = 0; i < NETS; i++) { bnd_net_free(g_net[i]); g_net[i] = NULL; }
    for (int i = 0; i < LOADERS; i++) { bnd_loader_free(g_loader[i]); g_loader[i] = NULL; }
    for (int i = 0; i < DATA; i++) { bnd_dataset_free(g_data[i]); g_data[i] = NULL; }
    bnd_set_num_threads(2);
    return 0;
}
