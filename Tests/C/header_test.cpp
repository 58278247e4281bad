// Compiles bndrop.h as C++ (extern "C") with -Wall -Wextra -Werror -pedantic.
#include "bndrop.h"
#include "bndrop.h" // include guard

namespace {
[[maybe_unused]] bnd_status create(bnd_net **out) {
    const int64_t shape[] = {1, 28, 28};
    bnd_batchnorm_params bn = bnd_batchnorm_default_params();
    bn.cumulative_average = 1;
    bnd_sgd_params sgd = bnd_sgd_default_params();
    bnd_adam_params adam = bnd_adam_default_params();
    (void)sgd;
    (void)adam;
    bnd_status s = bnd_net_create(shape, sizeof shape / sizeof *shape, out);
    if (s != BND_OK) return s;
    return bnd_net_add_batchnorm(*out, &bn);
}
static_assert(BND_OK == 0 && BND_ERR_INTERNAL == 8, "status values are fixed");
static_assert(BND_VERSION_NUMBER == BND_VERSION_MAJOR * 10000 + BND_VERSION_MINOR * 100 + BND_VERSION_PATCH,
              "version number");
}  // namespace
