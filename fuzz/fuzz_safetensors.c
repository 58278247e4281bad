/* libFuzzer target: the safetensors loader. The fuzzer's bytes (after a first byte choosing a net) are
   written to a file, then read by bnd_net_load, by bnd_net_load_weights into one of three small nets
   (an MLP with BatchNorm1d and dropout, a CNN with BatchNorm2d, a plain Linear), and by
   bnd_optimizer_load into an Adam and an SGD-with-momentum optimizer of that net. Each call must follow
   the contract; a failed load_weights must leave the net's tensors unchanged. */
#include "fuzz_common.h"

static bnd_net *make_net(int kind) {
    bnd_net *net = NULL;
    int64_t flat[] = {4}, image[] = {1, 4, 4};
    int ok;
    switch (kind) {
    case 0:
        ok = bnd_net_create(flat, 1, &net) == BND_OK && bnd_net_add_linear(net, 3) == BND_OK &&
             bnd_net_add_batchnorm(net, NULL) == BND_OK && bnd_net_add_relu(net) == BND_OK &&
             bnd_net_add_dropout(net, 0.5f) == BND_OK && bnd_net_add_linear(net, 2) == BND_OK;
        break;
    case 1:
        ok = bnd_net_create(image, 3, &net) == BND_OK && bnd_net_add_conv2d(net, 2, 3, 1, 1) == BND_OK &&
             bnd_net_add_batchnorm(net, NULL) == BND_OK && bnd_net_add_maxpool2d(net, 2, 2) == BND_OK &&
             bnd_net_add_flatten(net) == BND_OK && bnd_net_add_linear(net, 2) == BND_OK;
        break;
    default:
        ok = bnd_net_create(flat, 1, &net) == BND_OK && bnd_net_add_linear(net, 2) == BND_OK;
        break;
    }
    if (!ok) { fprintf(stderr, "setup failed: %s\n", bnd_last_error()); abort(); }
    return net;
}

/* All tensors, concatenated (the nets above are small). */
static size_t snapshot(const bnd_net *net, float *out, size_t capacity) {
    size_t count = 0, used = 0;
    CALL(bnd_net_tensor_count(net, &count));
    for (size_t t = 0; t < count; t++) {
        char name[BND_NAME_MAX];
        size_t numel = 0;
        CALL(bnd_net_tensor_name(net, t, name, sizeof name));
        CALL(bnd_net_tensor_numel(net, name, &numel));
        if (used + numel > capacity) abort();
        CALL(bnd_net_get_tensor(net, name, out + used, numel));
        used += numel;
    }
    return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int kind = data[0] % 3;
    data++, size--;
    char path[512];
    snprintf(path, sizeof path, "%s/fuzz.safetensors", fz_dir());
    fz_write_file(path, data, size);

    bnd_net *sentinel = (bnd_net *)(uintptr_t)0x5a5a5a50, *loaded = sentinel;
    bnd_status s = CALL(bnd_net_load(path, &loaded));
    UNTOUCHED(s, loaded, sentinel, "bnd_net_load");
    if (s == BND_OK) {
        /* a loaded net must work: a forward pass in eval mode and a save */
        size_t in = 0, out = 0;
        CALL(bnd_net_input_count(loaded, &in));
        CALL(bnd_net_output_count(loaded, &out));
        if (in <= 4096 && out <= 4096) {
            float *x = calloc(2 * in, sizeof(float)), *y = calloc(2 * out, sizeof(float));
            CALL(bnd_net_set_training(loaded, 0));
            CALL(bnd_net_forward(loaded, x, 2, y, 2 * out));
            free(x);
            free(y);
        }
        char again[600];
        snprintf(again, sizeof again, "%s.again", path);
        CALL(bnd_net_save(loaded, again));
        remove(again);
        bnd_net_free(loaded);
    }

    static float before[4096], after[4096];
    bnd_net *net = make_net(kind);
    size_t n = snapshot(net, before, 4096);
    s = CALL(bnd_net_load_weights(net, path));
    if (s != BND_OK) {
        size_t m = snapshot(net, after, 4096);
        if (m != n || memcmp(before, after, n * sizeof(float)) != 0) {
            fprintf(stderr, "CONTRACT: bnd_net_load_weights failed (%d) but changed the net\n", (int)s);
            abort();
        }
    }
    bnd_adam_params adam = bnd_adam_default_params();
    bnd_sgd_params sgd = bnd_sgd_default_params();
    sgd.momentum = 0.9f;
    bnd_optimizer *opt = NULL;
    if (CALL(bnd_optimizer_create_adam(net, &adam, &opt)) == BND_OK) {
        CALL(bnd_optimizer_load(opt, path));
        bnd_optimizer_free(opt);
    }
    opt = NULL;
    if (CALL(bnd_optimizer_create_sgd(net, &sgd, &opt)) == BND_OK) {
        CALL(bnd_optimizer_load(opt, path));
        bnd_optimizer_free(opt);
    }
    bnd_net_free(net);
    remove(path);
    return 0;
}
