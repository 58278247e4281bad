/* Writes the safetensors target's seed corpus (fuzz/corpus/safetensors): for each of fuzz_safetensors.c's
   three nets, a first byte choosing that net, then a file bndrop saved: the net after one training step,
   its Adam optimizer and its SGD-with-momentum optimizer. Run by hand from the top folder, after
   `make build`:  cc -std=c11 -Iinclude -Ifuzz fuzz/make_seeds.c -L.build/release -Wl,-rpath,.build/release
   -lbndrop -o /tmp/seeds && /tmp/seeds */
#define LLVMFuzzerTestOneInput fuzz_safetensors_entry /* the fuzz target's nets, not its entry point */
#include "fuzz_safetensors.c"

static void seed(const char *from, int kind, const char *name) {
    FILE *in = fopen(from, "rb");
    char path[256];
    snprintf(path, sizeof path, "fuzz/corpus/safetensors/%s", name);
    FILE *out = fopen(path, "wb");
    if (in == NULL || out == NULL) abort();
    fputc(kind, out);
    int c;
    while ((c = fgetc(in)) != EOF) fputc(c, out);
    fclose(in);
    fclose(out);
}

int main(void) {
    for (int kind = 0; kind < 3; kind++) {
        bnd_net *net = make_net(kind);
        size_t in = 0, out = 0;
        bnd_net_input_count(net, &in);
        bnd_net_output_count(net, &out);
        float x[2 * 64] = {0}, y[2 * 8] = {0}, loss = 0;
        for (size_t i = 0; i < 2 * in; i++) x[i] = (float)(i % 7) - 3.0f;
        bnd_adam_params adam = bnd_adam_default_params();
        bnd_sgd_params sgd = bnd_sgd_default_params();
        sgd.momentum = 0.9f;
        bnd_optimizer *a = NULL, *s = NULL;
        if (bnd_optimizer_create_adam(net, &adam, &a) != BND_OK || bnd_optimizer_create_sgd(net, &sgd, &s) != BND_OK ||
            bnd_net_train_step_regression(net, a, x, y, 2, &loss) != BND_OK || bnd_optimizer_step(s) != BND_OK ||
            bnd_net_save(net, "/tmp/bndrop-seed-net") != BND_OK || bnd_optimizer_save(a, "/tmp/bndrop-seed-adam") != BND_OK ||
            bnd_optimizer_save(s, "/tmp/bndrop-seed-sgd") != BND_OK) {
            fprintf(stderr, "%s\n", bnd_last_error());
            return 1;
        }
        char name[64];
        snprintf(name, sizeof name, "net%d", kind);
        seed("/tmp/bndrop-seed-net", kind, name);
        snprintf(name, sizeof name, "adam%d", kind);
        seed("/tmp/bndrop-seed-adam", kind, name);
        snprintf(name, sizeof name, "sgd%d", kind);
        seed("/tmp/bndrop-seed-sgd", kind, name);
        bnd_optimizer_free(a);
        bnd_optimizer_free(s);
        bnd_net_free(net);
    }
    remove("/tmp/bndrop-seed-net");
    remove("/tmp/bndrop-seed-adam");
    remove("/tmp/bndrop-seed-sgd");
    return 0;
}
