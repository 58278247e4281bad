/* Compiles bndrop.h alone as C11 with -Wall -Wextra -Werror -pedantic and links one call against
   libbndrop.so. That every declared function is exported (and nothing else) is check_exports.sh's. */
#include "bndrop.h"
#include "bndrop.h" /* include guard */
#include <stdio.h>

int main(void) {
    bnd_net *net = NULL;
    int64_t shape[] = {2};
    bnd_status s = bnd_net_create(shape, 1, &net);
    int created = s == BND_OK && net != NULL;
    bnd_net_free(net);
    if (!created || bnd_version_number() != BND_VERSION_NUMBER) return 1;
    printf("header-test (C): bndrop.h compiles as C11 and links, version %s\n", bnd_version_string());
    return 0;
}
