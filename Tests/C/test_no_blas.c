/* Without OpenBLAS: the calls that load it return BND_ERR_IO, a status, not a crash. Each runs in a
   child process (fork) that sets BNDROP_TEST_OPENBLAS_NAME, bndrop's test hook naming the file to
   load instead of libopenblas.so.0, to a file that does not exist. The hook is read once, when bndrop
   first loads OpenBLAS, so this group runs before anything in the test program has loaded it. The
   child passes its status back as its exit code (the status table records it). */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <string.h>
#include "check.h"

#define MISSING_BLAS "libbndrop-test-no-such-blas.so.0"

typedef bnd_status (*blas_call)(void);

static bnd_status runtime_info(void) {
    bnd_runtime_info info;
    return bnd_get_runtime_info(&info);
}

static bnd_status add_linear(void) {
    int64_t shape[1] = {4};
    bnd_net *net = NULL;
    bnd_status s = bnd_net_create(shape, 1, &net);
    if (s == BND_OK) s = bnd_net_add_linear(net, 3);
    bnd_net_free(net);
    return s;
}

static bnd_status add_conv2d(void) {
    int64_t shape[3] = {1, 6, 6};
    bnd_net *net = NULL;
    bnd_status s = bnd_net_create(shape, 3, &net);
    if (s == BND_OK) s = bnd_net_add_conv2d(net, 2, 3, 1, 0);
    bnd_net_free(net);
    return s;
}

static bnd_status add_conv2d_v2(void) {
    int64_t shape[3] = {4, 6, 6};
    bnd_net *net = NULL;
    bnd_status s = bnd_net_create(shape, 3, &net);
    bnd_conv2d_params p = bnd_conv2d_default_params(2, 3);
    p.dilation = 2;
    p.groups = 2;
    if (s == BND_OK) s = bnd_net_add_conv2d_v2(net, &p);
    bnd_net_free(net);
    return s;
}

/* The child: bndrop told to load a file that does not exist, then the call. */
static bnd_status without_blas(void *context) {
    setenv("BNDROP_TEST_OPENBLAS_NAME", MISSING_BLAS, 1);
    return ((const blas_call *)context)[0]();
}

/* `text` begins with the name of the function whose status `call` returns. */
static void run_without_blas(const char *text, blas_call call) {
    test_begin(text);
    run_in_child(text, 60, without_blas, &call, BND_ERR_IO, MISSING_BLAS);
    test_end();
}

void run_no_blas_tests(void) {
    run_without_blas("bnd_get_runtime_info without OpenBLAS", runtime_info);
    run_without_blas("bnd_net_add_linear without OpenBLAS", add_linear);
    run_without_blas("bnd_net_add_conv2d without OpenBLAS", add_conv2d);
    run_without_blas("bnd_net_add_conv2d_v2 without OpenBLAS", add_conv2d_v2);
}
