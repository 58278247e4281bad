/* Compiles bndrop.h as C11 with -Wall -Wextra -Werror -pedantic and links every declared function, so
   a declaration without a definition in libbndrop.so fails the build. Generated list kept by hand. */
#include "bndrop.h"
#include <stdio.h>

/* Taking each function's address forces the linker to resolve it. */
typedef void (*any_function)(void);
static const any_function all_functions[] = {
    (void (*)(void))bnd_adam_default_params,
    (void (*)(void))bnd_adamw_default_params,
    (void (*)(void))bnd_batchnorm_default_params,
    (void (*)(void))bnd_clear_last_error,
    (void (*)(void))bnd_dataset_free,
    (void (*)(void))bnd_dataset_from_labels,
    (void (*)(void))bnd_dataset_from_targets,
    (void (*)(void))bnd_dataset_get,
    (void (*)(void))bnd_dataset_info,
    (void (*)(void))bnd_dataset_load_dir,
    (void (*)(void))bnd_dataset_load_idx,
    (void (*)(void))bnd_dataset_reshape,
    (void (*)(void))bnd_dataset_sample_shape,
    (void (*)(void))bnd_evaluate,
    (void (*)(void))bnd_fit,
    (void (*)(void))bnd_fit_default_params,
    (void (*)(void))bnd_last_error,
    (void (*)(void))bnd_loader_batches_per_epoch,
    (void (*)(void))bnd_loader_create,
    (void (*)(void))bnd_loader_free,
    (void (*)(void))bnd_loader_next,
    (void (*)(void))bnd_loss_cross_entropy,
    (void (*)(void))bnd_loss_mse,
    (void (*)(void))bnd_net_add_avgpool2d,
    (void (*)(void))bnd_net_add_batchnorm,
    (void (*)(void))bnd_net_add_conv2d,
    (void (*)(void))bnd_net_add_dropout,
    (void (*)(void))bnd_net_add_flatten,
    (void (*)(void))bnd_net_add_linear,
    (void (*)(void))bnd_net_add_maxpool2d,
    (void (*)(void))bnd_net_add_relu,
    (void (*)(void))bnd_net_backward,
    (void (*)(void))bnd_net_create,
    (void (*)(void))bnd_net_forward,
    (void (*)(void))bnd_net_free,
    (void (*)(void))bnd_net_get_grad,
    (void (*)(void))bnd_net_get_layer_output,
    (void (*)(void))bnd_net_get_tensor,
    (void (*)(void))bnd_net_input_count,
    (void (*)(void))bnd_net_input_shape,
    (void (*)(void))bnd_net_is_training,
    (void (*)(void))bnd_net_layer_count,
    (void (*)(void))bnd_net_layer_output_shape,
    (void (*)(void))bnd_net_layer_type,
    (void (*)(void))bnd_net_output_count,
    (void (*)(void))bnd_net_output_shape,
    (void (*)(void))bnd_net_seed,
    (void (*)(void))bnd_net_set_grad,
    (void (*)(void))bnd_net_set_tensor,
    (void (*)(void))bnd_net_set_training,
    (void (*)(void))bnd_net_tensor_count,
    (void (*)(void))bnd_net_tensor_is_parameter,
    (void (*)(void))bnd_net_tensor_name,
    (void (*)(void))bnd_net_tensor_numel,
    (void (*)(void))bnd_net_tensor_shape,
    (void (*)(void))bnd_net_train_step_classification,
    (void (*)(void))bnd_net_train_step_regression,
    (void (*)(void))bnd_net_zero_grad,
    (void (*)(void))bnd_optimizer_create_adam,
    (void (*)(void))bnd_optimizer_create_sgd,
    (void (*)(void))bnd_optimizer_free,
    (void (*)(void))bnd_optimizer_step,
    (void (*)(void))bnd_sgd_default_params,
    (void (*)(void))bnd_status_string,
    (void (*)(void))bnd_version_number,
    (void (*)(void))bnd_version_string
};

int main(void) {
    bnd_net *net = NULL;
    int64_t shape[] = {2};
    bnd_status s = bnd_net_create(shape, 1, &net);
    bnd_net_free(net);
    if (s != BND_OK || bnd_version_number() != BND_VERSION_NUMBER) return 1;
    printf("header-test (C): %zu functions linked, version %s\n", sizeof all_functions / sizeof *all_functions,
           bnd_version_string());
    return 0;
}
