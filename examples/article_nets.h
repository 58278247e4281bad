/* The article's three networks, defined once: the experiments in examples/ and the bench in bench/
   build them from here. Each builder returns BND_OK with the new net in *out_net, or the status of the
   call that failed (nothing is then left allocated and *out_net is untouched). */
#ifndef BNDROP_ARTICLE_NETS_H
#define BNDROP_ARTICLE_NETS_H

#include <stddef.h>
#include <stdint.h>
#include "bndrop.h"

#define ARTICLE_ADD(call)                                      \
    do {                                                       \
        bnd_status status_ = (call);                           \
        if (status_ != BND_OK) { bnd_net_free(net); return status_; } \
    } while (0)

/* MLP 784-48-24-10 (ReLU after each hidden Linear), with BatchNorm1d after each hidden Linear when
   `batchnorm`. Samples of `shape`: {784}, or an image shape such as {1, 28, 28}, then flattened first. */
static inline bnd_status article_mlp(const int64_t *shape, size_t rank, int batchnorm, uint64_t seed,
                                     bnd_net **out_net) {
    bnd_net *net = NULL;
    bnd_status status = bnd_net_create(shape, rank, &net);
    if (status != BND_OK) return status;
    ARTICLE_ADD(bnd_net_seed(net, seed));
    if (rank > 1) ARTICLE_ADD(bnd_net_add_flatten(net));
    ARTICLE_ADD(bnd_net_add_linear(net, 48));
    if (batchnorm) ARTICLE_ADD(bnd_net_add_batchnorm(net, NULL));
    ARTICLE_ADD(bnd_net_add_relu(net));
    ARTICLE_ADD(bnd_net_add_linear(net, 24));
    if (batchnorm) ARTICLE_ADD(bnd_net_add_batchnorm(net, NULL));
    ARTICLE_ADD(bnd_net_add_relu(net));
    ARTICLE_ADD(bnd_net_add_linear(net, 10));
    *out_net = net;
    return BND_OK;
}

/* The CNN on {1, 28, 28}: Conv(1->3, 5) ReLU AvgPool(2) Conv(3->6, 3) [BatchNorm2d(6)] ReLU AvgPool(2)
   Flatten Linear(150->25) ReLU Linear(25->10). */
static inline bnd_status article_cnn(int batchnorm, uint64_t seed, bnd_net **out_net) {
    const int64_t shape[3] = {1, 28, 28};
    bnd_net *net = NULL;
    bnd_status status = bnd_net_create(shape, 3, &net);
    if (status != BND_OK) return status;
    ARTICLE_ADD(bnd_net_seed(net, seed));
    ARTICLE_ADD(bnd_net_add_conv2d(net, 3, 5, 1, 0));
    ARTICLE_ADD(bnd_net_add_relu(net));
    ARTICLE_ADD(bnd_net_add_avgpool2d(net, 2, 2));
    ARTICLE_ADD(bnd_net_add_conv2d(net, 6, 3, 1, 0));
    if (batchnorm) ARTICLE_ADD(bnd_net_add_batchnorm(net, NULL));
    ARTICLE_ADD(bnd_net_add_relu(net));
    ARTICLE_ADD(bnd_net_add_avgpool2d(net, 2, 2));
    ARTICLE_ADD(bnd_net_add_flatten(net));
    ARTICLE_ADD(bnd_net_add_linear(net, 25));
    ARTICLE_ADD(bnd_net_add_relu(net));
    ARTICLE_ADD(bnd_net_add_linear(net, 10));
    *out_net = net;
    return BND_OK;
}

/* The regression net 1-100-100-1: Linear(1->100) [Dropout(p1)] ReLU Linear(100->100) [Dropout(p2)]
   ReLU Linear(100->1); a probability of 0 leaves its Dropout out. */
static inline bnd_status article_regression(float p1, float p2, uint64_t seed, bnd_net **out_net) {
    const int64_t shape[1] = {1};
    bnd_net *net = NULL;
    bnd_status status = bnd_net_create(shape, 1, &net);
    if (status != BND_OK) return status;
    ARTICLE_ADD(bnd_net_seed(net, seed));
    ARTICLE_ADD(bnd_net_add_linear(net, 100));
    if (p1 > 0) ARTICLE_ADD(bnd_net_add_dropout(net, p1));
    ARTICLE_ADD(bnd_net_add_relu(net));
    ARTICLE_ADD(bnd_net_add_linear(net, 100));
    if (p2 > 0) ARTICLE_ADD(bnd_net_add_dropout(net, p2));
    ARTICLE_ADD(bnd_net_add_relu(net));
    ARTICLE_ADD(bnd_net_add_linear(net, 1));
    *out_net = net;
    return BND_OK;
}

#undef ARTICLE_ADD

#endif
