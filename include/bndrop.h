/*
 * bndrop.h - the C API of libbndrop.so: neural networks with batch normalization and dropout that
 * behave like PyTorch (CPU, float32).
 *
 * This header is the whole API: if it is not declared here, it is not API.
 *
 * ---------------------------------------------------------------------------------------------------
 * CONVENTIONS (said once, valid everywhere below)
 *
 * Status.   Every fallible function returns a bnd_status; BND_OK (0) is success. On failure nothing
 *           the caller asked to be written has been written unless the function says otherwise, and
 *           bnd_last_error() returns a non-empty, human-readable message for the calling thread.
 *           Each kind of mistake has one status, in every function:
 *             BND_ERR_INVALID_ARGUMENT  a value outside its allowed range: NULL where a pointer is
 *                                       required, a flag not 0/1, an unknown enum value or name, a NaN
 *                                       or out-of-range hyper-parameter (lr, p, eps, epochs, kernel
 *                                       size, ...), an index or a label out of range, a loss that does
 *                                       not suit the data's kind, a handle used with a foreign one.
 *             BND_ERR_SHAPE             sizes that are not positive, overflow, or do not fit each other:
 *                                       batch sizes and sample counts <= 0, ranks, a capacity too small,
 *                                       a dataset whose sample size, target count or number of classes
 *                                       does not fit the net, a kernel larger than its input, a batch
 *                                       too small for BatchNorm to train on, drop_last leaving no batch.
 *             BND_ERR_STATE             a call that is valid, but not now (backward before forward).
 *             BND_ERR_OUT_OF_MEMORY     an allocation that really failed.
 *           Every function that returns a bnd_status lists all the statuses it can return besides
 *           BND_OK in one sentence of its comment that begins "Returns BND_ERR_...": the names
 *           outside parentheses are the statuses, the parentheses say when (BND_ERR_INTERNAL, a bug
 *           in bndrop, is never listed). bndrop's tests check these lists against the library.
 *           No argument makes the library abort the process: NULL where a pointer is required,
 *           negative or overflowing sizes, too-small capacities, NaN or out-of-range
 *           hyper-parameters, unknown names and calls in the wrong state are all statuses.
 *           What the library cannot check is the caller's side of a pointer: a buffer must really
 *           hold the number of elements the call says it does, strings must be NUL-terminated, and
 *           handles must be live values returned by this library (not freed, not forged).
 *
 * Errors.   bnd_last_error() describes the most recent FAILED call on the calling thread. A
 *           successful call does not clear it (as errno); call bnd_clear_last_error() to reset it.
 *           The returned pointer is owned by the library, is never freed by the caller and stays
 *           valid for the life of the thread; its text changes at the next failure on that thread.
 *
 * Numbers.  Shapes and batch sizes are int64_t; counts, capacities and indices are size_t, counted
 *           in elements, not bytes. Flags are int32_t and must be exactly 0 or 1 (anything else is
 *           BND_ERR_INVALID_ARGUMENT, which catches uninitialised structs). Float data is float32.
 *
 * Strings.  Names and paths are NUL-terminated UTF-8. A string that is not valid UTF-8 (a path in
 *           another encoding) is BND_ERR_INVALID_ARGUMENT, never silently repaired into another name.
 *
 * Layout.   Row-major (C order) everywhere. A batch of activations is N x C (flat samples),
 *           N x C x L or N x C x H x W; "sample shape" means one sample's shape without N, e.g.
 *           {784} or {1, 28, 28}. Linear weights are (out, in); Conv2d weights are
 *           (out_c, in_c, k, k).
 *
 * Buffers.  Output buffers come with a capacity. A capacity smaller than the data is
 *           BND_ERR_SHAPE and the message names the size needed; a larger one is fine (only the
 *           first elements are written). Input arrays are never retained after a call returns.
 *
 * Names.    Tensors are named as a PyTorch nn.Sequential state_dict: "<layer index>.weight",
 *           ".bias", ".running_mean", ".running_var", ".num_batches_tracked" (one float holding a
 *           whole number). Every added layer takes an index, ReLU/Flatten/Dropout included.
 *
 * Threads.  Calls on DIFFERENT nets (and their optimizers) from different threads at the same time
 *           are safe: there is no global mutable state apart from the per-thread error message and
 *           the thread count (bnd_set_num_threads, safe at any time).
 *           One net, or one optimizer together with its net, must not be used from two threads at
 *           once (not even read-only functions while another thread trains it); serialize such use
 *           yourself. Functions without a handle (losses, defaults, version, status strings) are
 *           always safe.
 *
 * Structs.  Struct layouts never change within a major version (the soname libbndrop.so.0): no field
 *           is added, removed or moved. Parameter structs are filled from their *_default_params()
 *           function and then changed field by field; when one needs a new field, a successor struct
 *           with a new name and new functions taking it are added, and the old ones keep working.
 *           Fields named `reserved` in structs the library writes (events, summaries) are 0 today; a
 *           later minor version may give them a meaning whose value 0 means "nothing to report", so
 *           callers must not rely on them beyond that and never write them.
 *
 * Linking.  Installed (make install):  gcc prog.c $(pkg-config --cflags --libs bndrop)
 *           From a build folder:  gcc prog.c -I<bndrop>/include -L<dir> -Wl,-rpath,<dir> -lbndrop
 *           The soname is libbndrop.so.0 (the major version): programs load that name (make puts the
 *           link libbndrop.so.0 beside the build folder's libbndrop.so; the rpath finds it there).
 *           The Swift runtime is linked in; at run time the library needs libc, libstdc++, libgcc_s,
 *           libm, zlib, and libopenblas.so.0 (Debian's libopenblas0), loaded at its first use.
 * ---------------------------------------------------------------------------------------------------
 */
#ifndef BNDROP_H
#define BNDROP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define BND_API __attribute__((visibility("default")))
#else
#define BND_API
#endif

/* ======================================= Version ================================================ */

/* The version of this header. Compare BND_VERSION_NUMBER with bnd_version_number() to detect a
   header / library mismatch. */
#define BND_VERSION_MAJOR 0
#define BND_VERSION_MINOR 1
#define BND_VERSION_PATCH 0
#define BND_VERSION_NUMBER (BND_VERSION_MAJOR * 10000 + BND_VERSION_MINOR * 100 + BND_VERSION_PATCH)
#define BND_VERSION_STRING "0.1.0"

/* The library's version as MAJOR*10000 + MINOR*100 + PATCH (0.1.0 -> 100). Never fails. */
BND_API uint32_t bnd_version_number(void);

/* The library's version as static text, e.g. "0.1.0". Never NULL, never freed by the caller. */
BND_API const char *bnd_version_string(void);

/* ======================================= Errors ================================================= */

/* Values are explicit and will only ever be appended to. */
typedef enum bnd_status {
    BND_OK = 0,
    BND_ERR_INVALID_ARGUMENT = 1,  /* NULL, out-of-range value, unknown name        */
    BND_ERR_SHAPE = 2,             /* shapes or capacities that do not fit          */
    BND_ERR_STATE = 3,             /* not valid now (e.g. backward before forward)  */
    BND_ERR_IO = 4,                /* file system                                   */
    BND_ERR_FORMAT = 5,            /* malformed file or data                        */
    BND_ERR_OUT_OF_MEMORY = 6,     /* allocation failed or a size cannot fit memory */
    BND_ERR_NUMERIC = 7,           /* non-finite loss or values                     */
    BND_ERR_INTERNAL = 8           /* a bug in bndrop: please report it             */
} bnd_status;

/* Static text naming `status` ("BND_ERR_SHAPE: shape mismatch", ...); an unknown value gives
   "unknown bnd_status". Never NULL, never freed by the caller. */
BND_API const char *bnd_status_string(bnd_status status);

/* The calling thread's message about its most recent failed call; "" when there was none (or after
   bnd_clear_last_error). Successful calls leave it unchanged. Owned by the library; valid for the
   life of the thread; the text is replaced at the next failure on this thread. Never NULL. */
BND_API const char *bnd_last_error(void);

/* Resets the calling thread's message to "". Never fails. */
BND_API void bnd_clear_last_error(void);

/* ======================================= Handles and parameters ================================= */

/* A feed-forward network (PyTorch nn.Sequential): layers, parameters, gradients, buffers and the
   scratch memory of its last forward pass. Create with bnd_net_create, free with bnd_net_free. */
typedef struct bnd_net bnd_net;

/* An optimizer bound to the parameters a net had when the optimizer was created (its momentum /
   moment buffers live here). Free with bnd_optimizer_free. */
typedef struct bnd_optimizer bnd_optimizer;

/* Large enough for every tensor or layer-type name this library produces (incl. the NUL). */
#define BND_NAME_MAX 64
/* Large enough for every shape this library reports (samples have rank 1-3, weights up to 4). */
#define BND_MAX_RANK 4

/* BatchNorm1d / BatchNorm2d constructor arguments (PyTorch's defaults in brackets). */
typedef struct bnd_batchnorm_params {
    float   eps;                  /* [1e-5] added to the variance; finite and > 0                   */
    float   momentum;             /* [0.1] running-statistics factor in [0, 1]; ignored (even if
                                     NaN) when cumulative_average != 0                             */
    int32_t cumulative_average;   /* [0] 1 = PyTorch momentum=None: factor 1/num_batches_tracked  */
    int32_t affine;               /* [1] 1 = learnable weight (gamma) and bias (beta)             */
    int32_t track_running_stats;  /* [1] 1 = keep running_mean / running_var / num_batches_tracked */
} bnd_batchnorm_params;

/* torch.nn.Conv2d arguments, square kernel, with a bias (PyTorch's defaults in brackets). */
typedef struct bnd_conv2d_params {
    int64_t out_channels;         /* > 0 (no default)                                              */
    int64_t kernel_size;          /* > 0 (no default)                                              */
    int64_t stride;               /* [1] > 0                                                       */
    int64_t padding;              /* [0] >= 0: zeros on every side                                 */
    int64_t dilation;             /* [1] > 0: the distance between the kernel's taps               */
    int64_t groups;               /* [1] > 0, dividing in_channels and out_channels: each group's
                                     output channels see only its in_channels / groups inputs     */
} bnd_conv2d_params;

/* torch.nn.AvgPool2d arguments, square windows (PyTorch's defaults in brackets). */
typedef struct bnd_avgpool2d_params {
    int64_t kernel_size;          /* > 0 (no default)                                              */
    int64_t stride;               /* [0] > 0, or 0 = kernel_size (PyTorch's stride=None)           */
    int64_t padding;              /* [0] implicit zeros on every side, 0 to kernel_size / 2        */
    int32_t ceil_mode;            /* [0] 1 = output sizes rounded up: a last window may hang past the
                                     input (it starts inside the input or its left padding)       */
    int32_t count_include_pad;    /* [1] 1 = divide by the window's size within the padded input;
                                     0 = by its cells inside the input                             */
    int64_t divisor_override;     /* [0] 0 = none; else every window's sum is divided by it        */
} bnd_avgpool2d_params;

/* torch.nn.MaxPool2d arguments, square windows (PyTorch's defaults in brackets). */
typedef struct bnd_maxpool2d_params {
    int64_t kernel_size;          /* > 0 (no default)                                              */
    int64_t stride;               /* [0] > 0, or 0 = kernel_size (PyTorch's stride=None)           */
    int64_t padding;              /* [0] implicit -infinity on every side, 0 to kernel_size / 2    */
    int64_t dilation;             /* [1] > 0: the distance between a window's cells                */
    int32_t ceil_mode;            /* [0] as in bnd_avgpool2d_params                                */
} bnd_maxpool2d_params;

/* torch.optim.SGD arguments (defaults in brackets). All finite; lr, momentum, weight_decay >= 0.
   nesterov = 1 needs momentum > 0 and dampening == 0. The optimizers' and BatchNorm's arguments are
   floats: the scalars derived from them are computed in double as PyTorch does, from the float values,
   so a value a float cannot hold exactly (beta2 = 0.999999 becomes 0.99999899) is what the results
   follow. */
typedef struct bnd_sgd_params {
    float   lr;                   /* [0.01] learning rate                                          */
    float   momentum;             /* [0]                                                           */
    float   dampening;            /* [0]                                                           */
    float   weight_decay;         /* [0] L2 penalty added to the gradient                          */
    int32_t nesterov;             /* [0]                                                           */
} bnd_sgd_params;

/* torch.optim.Adam / AdamW arguments (Adam defaults in brackets). lr, eps, weight_decay finite and
   >= 0; beta1, beta2 in [0, 1). */
typedef struct bnd_adam_params {
    float   lr;                   /* [0.001]                                                       */
    float   beta1;                /* [0.9]                                                         */
    float   beta2;                /* [0.999]                                                       */
    float   eps;                  /* [1e-8]                                                        */
    float   weight_decay;         /* [0]                                                           */
    int32_t decoupled_weight_decay; /* [0] 1 = AdamW: p *= 1 - lr*weight_decay instead of adding
                                       weight_decay*p to the gradient                              */
} bnd_adam_params;

/* The defaults above, by value. Never fail. */
BND_API bnd_batchnorm_params bnd_batchnorm_default_params(void);
BND_API bnd_sgd_params bnd_sgd_default_params(void);
BND_API bnd_adam_params bnd_adam_default_params(void);
/* torch.optim.AdamW's defaults: Adam's, with weight_decay 1e-2 and decoupled_weight_decay 1. */
BND_API bnd_adam_params bnd_adamw_default_params(void);
/* The defaults above with the arguments that have none (not checked here: the bnd_net_add_*_v2 calls
   do). */
BND_API bnd_conv2d_params bnd_conv2d_default_params(int64_t out_channels, int64_t kernel_size);
BND_API bnd_avgpool2d_params bnd_avgpool2d_default_params(int64_t kernel_size);
BND_API bnd_maxpool2d_params bnd_maxpool2d_default_params(int64_t kernel_size);

/* ======================================= Building a network ===================================== */

/* Creates an empty network taking samples of shape sample_shape[0..rank-1], in train mode, seed 0.
   sample_shape: in, `rank` values, each > 0; rank 1 ({features}), 2 ({C, L}) or 3 ({C, H, W}).
   out_net:      out, receives the new net; owned by the caller, release with bnd_net_free.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer), BND_ERR_SHAPE (rank not 1-3, a dimension <= 0, or
   a sample larger than 2^31-1 elements). *out_net is untouched on failure. */
BND_API bnd_status bnd_net_create(const int64_t *sample_shape, size_t rank, bnd_net **out_net);

/* Frees the net and everything it owns. NULL is a harmless no-op. An optimizer created for this net
   must not be used afterwards (undefined behaviour; free it too). */
BND_API void bnd_net_free(bnd_net *net);

/* The add_* functions append one layer whose input shape is the net's current output shape (sizes
   are never repeated) and initialise its parameters from the net's seed as PyTorch does (layer i
   draws from its own stream, so adding a layer never changes the others). Their statuses mean:
   BND_ERR_INVALID_ARGUMENT a NULL net or an out-of-range argument, BND_ERR_SHAPE a layer that does not
   fit the current shape, BND_ERR_OUT_OF_MEMORY parameters or buffers that cannot be allocated, and
   BND_ERR_IO an OpenBLAS (libopenblas.so.0, loaded by the first Linear or Conv2d) that cannot be
   loaded. On failure the net is unchanged. Adding a layer discards the last forward pass (backward
   needs a new one).
   Create optimizers after the last add_*: an optimizer refuses to step a net that gained layers. */

/* Linear: flat input {in} -> {out_features}; weight (out, in), bias (out); W, b ~ U(-1/sqrt(in), +).
   A multi-dimensional shape needs bnd_net_add_flatten first. out_features > 0.
   Returns BND_ERR_INVALID_ARGUMENT (NULL net, out_features <= 0), BND_ERR_SHAPE (a shape that is not
   flat, an output or weight larger than 2^31-1 elements), BND_ERR_OUT_OF_MEMORY, BND_ERR_IO (no
   OpenBLAS). */
BND_API bnd_status bnd_net_add_linear(bnd_net *net, int64_t out_features);

/* Conv2d on a {C, H, W} shape: square kernel, stride, zero padding (dilation and groups: below).
   Output {out_channels, (H + 2p - k)/s + 1, (W + 2p - k)/s + 1}. out_channels, kernel_size, stride > 0;
   padding >= 0; the kernel must fit the padded input.
   Returns BND_ERR_INVALID_ARGUMENT (NULL net, an argument out of range), BND_ERR_SHAPE (a shape that
   is not {C, H, W}, a kernel larger than the padded input, sizes that overflow),
   BND_ERR_OUT_OF_MEMORY, BND_ERR_IO (no OpenBLAS). */
BND_API bnd_status bnd_net_add_conv2d(bnd_net *net, int64_t out_channels, int64_t kernel_size,
                                      int64_t stride, int64_t padding);

/* Conv2d with every argument of torch.nn.Conv2d but bias (always on): dilation and groups besides.
   Output {out_channels, OH, OW}, OH = (H + 2p - dilation*(k-1) - 1)/s + 1 (OW likewise); weight
   {out_channels, C / groups, k, k} (its state_dict name and shape, as PyTorch's). kernel_size,
   padding and dilation at most 2^20.
   params: in, required (from bnd_conv2d_default_params), read during the call only.
   Returns BND_ERR_INVALID_ARGUMENT (NULL net or params, an argument out of range, groups not dividing
   C and out_channels), BND_ERR_SHAPE (as bnd_net_add_conv2d), BND_ERR_OUT_OF_MEMORY, BND_ERR_IO (no
   OpenBLAS). */
BND_API bnd_status bnd_net_add_conv2d_v2(bnd_net *net, const bnd_conv2d_params *params);

/* ReLU: y = max(x, 0), any shape. Returns BND_ERR_INVALID_ARGUMENT (NULL net). */
BND_API bnd_status bnd_net_add_relu(bnd_net *net);

/* AvgPool2d / MaxPool2d on a {C, H, W} shape, padding 0, floor mode: the _v2 calls below with these
   two arguments and the defaults. kernel_size > 0 and no larger than H and W; stride > 0, or 0 meaning
   "= kernel_size" (PyTorch's stride=None).
   Returns BND_ERR_INVALID_ARGUMENT (NULL net, kernel_size <= 0, stride < 0), BND_ERR_SHAPE (a shape
   that is not {C, H, W}, a kernel larger than H or W). */
BND_API bnd_status bnd_net_add_avgpool2d(bnd_net *net, int64_t kernel_size, int64_t stride);
BND_API bnd_status bnd_net_add_maxpool2d(bnd_net *net, int64_t kernel_size, int64_t stride);

/* torch.nn.AvgPool2d / MaxPool2d with every argument (square windows): padding, ceil_mode,
   count_include_pad and divisor_override (AvgPool2d), dilation (MaxPool2d), with PyTorch's rules and
   results. Output {C, OH, OW}, OH = floor((H + 2p - dilation*(k-1) - 1 + (ceil_mode ? s-1 : 0)) / s) + 1,
   less one in ceil mode when that last window would start at or past H + p (OW likewise); at least 1.
   AvgPool2d sums the window's cells inside the input (padding adds nothing) and divides as
   count_include_pad and divisor_override say; MaxPool2d's padding never wins, the gradient goes to the
   first maximum of a window (or its last NaN), and a window with no cell inside the input (a dilation
   wider than the input) gives -infinity and takes no gradient, as in PyTorch.
   params: in, required (from bnd_avgpool2d_default_params / bnd_maxpool2d_default_params), read during
   the call only.
   Returns BND_ERR_INVALID_ARGUMENT (NULL net or params; kernel_size, dilation <= 0; stride < 0 or above
   2^31 - 1; padding < 0 or > kernel_size / 2; divisor_override above 2^31 - 1 in magnitude; a flag not
   0 or 1), BND_ERR_SHAPE (a shape that is not {C, H, W}; an output smaller than 1x1; kernel_size or
   dilation above 2^31 - 1). */
BND_API bnd_status bnd_net_add_avgpool2d_v2(bnd_net *net, const bnd_avgpool2d_params *params);
BND_API bnd_status bnd_net_add_maxpool2d_v2(bnd_net *net, const bnd_maxpool2d_params *params);

/* Flatten: {C, ...} -> {C * ...} (torch.nn.Flatten, start_dim=1). No copy.
   Returns BND_ERR_INVALID_ARGUMENT (NULL net). */
BND_API bnd_status bnd_net_add_flatten(bnd_net *net);

/* BatchNorm over the channel axis: BatchNorm1d for a {C} or {C, L} shape, BatchNorm2d for {C, H, W}.
   params: in, may be NULL for bnd_batchnorm_default_params(); read during the call only.
   Train mode normalises with the batch statistics (biased variance) and updates the running ones
   (unbiased variance); eval mode uses the running statistics. A train-mode batch with a single value
   per channel (e.g. batch 1 of a {C} shape) is refused by forward (a shape error).
   Returns BND_ERR_INVALID_ARGUMENT (NULL net; eps not finite or <= 0, momentum outside [0, 1], a flag
   not 0/1), BND_ERR_OUT_OF_MEMORY (the per-channel buffers). */
BND_API bnd_status bnd_net_add_batchnorm(bnd_net *net, const bnd_batchnorm_params *params);

/* Inverted dropout (torch.nn.Dropout): in train mode each element is zeroed with probability p and
   the kept ones are scaled by 1/(1-p); identity in eval mode. p in [0, 1] (NaN is refused); p == 1
   gives zeros. Masks come from the net's seed: the same seed gives the same masks. The scale is
   PyTorch's for the float p given: a p a float cannot hold (0.9, 0.999) is rounded first, which moves
   the scale by up to a few float steps of 1/(1-p) (relative 1.3e-5 at 0.999; 0 for 0.5, 0.25).
   Returns BND_ERR_INVALID_ARGUMENT (NULL net, p outside [0, 1]). */
BND_API bnd_status bnd_net_add_dropout(bnd_net *net, float p);

/* Re-initialises every layer as if the net had been built with `seed`: parameters drawn anew,
   BatchNorm reset (weight 1, bias 0, running_mean 0, running_var 1, num_batches_tracked 0), dropout
   masks reseeded, gradients zeroed. Layers added later also use this seed. Optimizer state (momentum,
   Adam moments) is not reset: create a new optimizer for a fresh start.
   Returns BND_ERR_INVALID_ARGUMENT (NULL net). */
BND_API bnd_status bnd_net_seed(bnd_net *net, uint64_t seed);

/* Train mode (training = 1, the default) or eval mode (0) for every layer, as model.train() /
   model.eval(). Only BatchNorm and Dropout behave differently. Layers added later get this mode.
   Returns BND_ERR_INVALID_ARGUMENT (NULL net, a value other than 0 and 1). */
BND_API bnd_status bnd_net_set_training(bnd_net *net, int32_t training);

/* out_training: out, 1 in train mode, 0 in eval mode. Returns BND_ERR_INVALID_ARGUMENT (NULL pointer). */
BND_API bnd_status bnd_net_is_training(const bnd_net *net, int32_t *out_training);

/* ======================================= Inspecting a network =================================== */

/* The functions returning a shape write `rank` int64_t values to out_shape and the rank to
   *out_rank; BND_MAX_RANK values always suffice. A capacity below the rank is BND_ERR_SHAPE (and
   *out_rank still receives the rank needed). NULL pointers are BND_ERR_INVALID_ARGUMENT. */

/* One sample's input shape (the shape given to bnd_net_create).
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer), BND_ERR_SHAPE (capacity below the rank). */
BND_API bnd_status bnd_net_input_shape(const bnd_net *net, int64_t *out_shape, size_t capacity,
                                       size_t *out_rank);
/* One sample's output shape (after the last layer; the input shape when there are no layers).
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer), BND_ERR_SHAPE (capacity below the rank). */
BND_API bnd_status bnd_net_output_shape(const bnd_net *net, int64_t *out_shape, size_t capacity,
                                        size_t *out_rank);
/* Elements in one input sample / one output sample. Returns BND_ERR_INVALID_ARGUMENT (NULL pointer). */
BND_API bnd_status bnd_net_input_count(const bnd_net *net, size_t *out_count);
BND_API bnd_status bnd_net_output_count(const bnd_net *net, size_t *out_count);

/* The number of layers added so far. Returns BND_ERR_INVALID_ARGUMENT (NULL pointer). */
BND_API bnd_status bnd_net_layer_count(const bnd_net *net, size_t *out_count);

/* Layer `index`'s PyTorch class name ("Linear", "Conv2d", "ReLU", "AvgPool2d", "MaxPool2d",
   "Flatten", "BatchNorm1d", "BatchNorm2d", "Dropout"), NUL-terminated, into out[0..capacity-1].
   Returns BND_ERR_INVALID_ARGUMENT (NULL, index >= layer count), BND_ERR_SHAPE (capacity too small;
   BND_NAME_MAX always suffices). */
BND_API bnd_status bnd_net_layer_type(const bnd_net *net, size_t index, char *out, size_t capacity);

/* Layer `index`'s output shape for one sample. Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, index
   >= layer count), BND_ERR_SHAPE (capacity below the rank). */
BND_API bnd_status bnd_net_layer_output_shape(const bnd_net *net, size_t index, int64_t *out_shape,
                                              size_t capacity, size_t *out_rank);

/* ======================================= Tensors by name ======================================== */

/* The number of state_dict entries (parameters and buffers) of the net.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer). */
BND_API bnd_status bnd_net_tensor_count(const bnd_net *net, size_t *out_count);

/* The name of state_dict entry `index` (0 <= index < bnd_net_tensor_count), in PyTorch's order,
   NUL-terminated, into out[0..capacity-1]. Returns BND_ERR_INVALID_ARGUMENT (NULL, index out of
   range), BND_ERR_SHAPE (capacity too small; BND_NAME_MAX always suffices). */
BND_API bnd_status bnd_net_tensor_name(const bnd_net *net, size_t index, char *out, size_t capacity);

/* The number of elements of tensor `name` (1 for num_batches_tracked).
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, unknown name). */
BND_API bnd_status bnd_net_tensor_numel(const bnd_net *net, const char *name, size_t *out_count);

/* The shape of tensor `name` (rank 0 for num_batches_tracked). Returns BND_ERR_INVALID_ARGUMENT (NULL
   pointer, unknown name), BND_ERR_SHAPE (capacity below the rank; *out_rank still receives it). */
BND_API bnd_status bnd_net_tensor_shape(const bnd_net *net, const char *name, int64_t *out_shape,
                                        size_t capacity, size_t *out_rank);

/* *out_is_parameter = 1 when `name` is a trainable parameter (has a gradient, is updated by
   optimizers), 0 for a buffer (running statistics, num_batches_tracked).
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, unknown name). */
BND_API bnd_status bnd_net_tensor_is_parameter(const bnd_net *net, const char *name,
                                               int32_t *out_is_parameter);

/* Replaces the values of tensor `name` with data[0..count-1]; count must equal its element count
   exactly. num_batches_tracked takes one non-negative whole number. Data is copied.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, unknown name (the message lists the known ones),
   bad num_batches_tracked value), BND_ERR_SHAPE (count mismatch). */
BND_API bnd_status bnd_net_set_tensor(bnd_net *net, const char *name, const float *data, size_t count);

/* Copies the values of tensor `name` into out[0..capacity-1] (its element count is
   bnd_net_tensor_numel). num_batches_tracked comes as a float, rounded above 2^24 (16,777,216):
   bnd_net_get_tensor_int64 reads it exactly. Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, unknown
   name), BND_ERR_SHAPE (capacity too small). */
BND_API bnd_status bnd_net_get_tensor(const bnd_net *net, const char *name, float *out, size_t capacity);

/* The value of int64 entry `name` of the state_dict (a BatchNorm's num_batches_tracked, an int64 as in
   PyTorch), exactly. Training adds 1 per train-mode batch and stays at INT64_MAX once there.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, unknown name, a float32 tensor). */
BND_API bnd_status bnd_net_get_tensor_int64(const bnd_net *net, const char *name, int64_t *out_value);

/* Replaces the value of int64 entry `name` (num_batches_tracked) with `value`, exactly.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, unknown name, a float32 tensor, a negative value;
   a refused value changes nothing). */
BND_API bnd_status bnd_net_set_tensor_int64(bnd_net *net, const char *name, int64_t value);

/* Copies the accumulated gradient of parameter `name` into out[0..capacity-1]. Returns
   BND_ERR_INVALID_ARGUMENT (NULL pointer, unknown name, a buffer: buffers have no gradient),
   BND_ERR_SHAPE (capacity too small). */
BND_API bnd_status bnd_net_get_grad(const bnd_net *net, const char *name, float *out, size_t capacity);

/* Overwrites the gradient of parameter `name` with data[0..count-1] (count must match exactly), e.g.
   to apply an optimizer to gradients computed elsewhere. Returns BND_ERR_INVALID_ARGUMENT (NULL
   pointer, unknown name, a buffer: buffers have no gradient), BND_ERR_SHAPE (count mismatch). */
BND_API bnd_status bnd_net_set_grad(bnd_net *net, const char *name, const float *data, size_t count);

/* ======================================= Forward and backward =================================== */

/* Runs `batch` samples through the net in its current mode (PyTorch's net(input)).
   input:  in, batch * input_count floats (N x sample shape); copied, not retained.
   output: out, receives batch * output_count floats; output_capacity is its size in floats.
   In train mode BatchNorm updates its running statistics and Dropout draws new masks. The layers keep
   what backward needs until the next forward / add_*.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer), BND_ERR_SHAPE (batch <= 0, batch * sample size
   overflows or exceeds 2^31-1, output_capacity too small (checked before anything runs), a train-mode
   BatchNorm with one value per channel), BND_ERR_OUT_OF_MEMORY. After a failure, backward is refused
   until a forward succeeds. */
BND_API bnd_status bnd_net_forward(bnd_net *net, const float *input, int64_t batch, float *output,
                                   size_t output_capacity);

/* bnd_net_forward without copies, either way: *out_view receives a read-only pointer to the net's own
   output (batch * output_count floats, also written to *out_count), owned by the net and valid until the
   next call that runs, changes or frees the net (forward, a training step, add_*, seed, free, ...); and
   the layers read `input` in place rather than a copy, so it must stay valid and unchanged until the
   bnd_net_backward of this forward, if any (PyTorch's autograd keeps its input the same way).
   Use it when the output is only read, e.g. for a loss or an argmax. On failure *out_view is
   untouched. Returns BND_ERR_INVALID_ARGUMENT (NULL pointer), BND_ERR_SHAPE (as bnd_net_forward,
   without a capacity), BND_ERR_OUT_OF_MEMORY. */
BND_API bnd_status bnd_net_forward_view(bnd_net *net, const float *input, int64_t batch, const float **out_view,
                                        size_t *out_count);

/* Sets every parameter gradient to zero (optimizer.zero_grad() with set_to_none=False).
   Returns BND_ERR_INVALID_ARGUMENT (NULL net). */
BND_API bnd_status bnd_net_zero_grad(bnd_net *net);

/* Back-propagates grad_output (d loss / d output of the last forward, batch * output_count floats)
   and ADDS the parameter gradients to the accumulated ones, as output.backward(grad_output) does.
   Calling it twice after one forward accumulates twice.
   grad_input: out, may be NULL; otherwise receives d loss / d input (batch * input_count floats) and
               grad_input_capacity is its size in floats.
   batch must equal the last forward's batch. Uses the mode of that forward pass.
   Returns BND_ERR_INVALID_ARGUMENT (NULL net or grad_output), BND_ERR_STATE (no successful forward
   since creation / the last add_*, the last forward was a training step's, or a parameter changed
   since that forward: an optimizer step, bnd_net_set_tensor, a load, a seed; as PyTorch's "modified
   by an inplace operation"), BND_ERR_SHAPE (batch
   differs from the forward's, grad_input_capacity too small: checked before anything runs),
   BND_ERR_OUT_OF_MEMORY (the layers' input-gradient buffers, allocated by the first backward of a
   batch size). */
BND_API bnd_status bnd_net_backward(bnd_net *net, const float *grad_output, int64_t batch,
                                    float *grad_input, size_t grad_input_capacity);

/* Copies the output of layer `layer_index` from the last successful forward pass (batch x that
   layer's output shape) into out[0..capacity-1], e.g. for activation histograms.
   out_count: out, may be NULL; receives the number of floats written, or on BND_ERR_SHAPE the
              number needed.
   A layer that passed the input through unchanged (a leading Flatten) in a forward that read the
   caller's input in place (bnd_net_forward_view, a training step, bnd_fit) has no output of its own:
   BND_ERR_STATE (its output is that input, which the library does not keep).
   Returns BND_ERR_INVALID_ARGUMENT (NULL net/out, index out of range), BND_ERR_STATE (no successful
   forward since creation / the last add_*, or such a layer), BND_ERR_SHAPE (capacity too small). */
BND_API bnd_status bnd_net_get_layer_output(const bnd_net *net, size_t layer_index, float *out,
                                            size_t capacity, size_t *out_count);

/* ======================================= Optimizers ============================================= */

/* Creates an SGD / Adam(W) optimizer over the parameters the net has now, in state_dict order.
   params: in, may be NULL for the defaults; read during the call only.
   out:    out, receives the optimizer; release with bnd_optimizer_free.
   The optimizer refers to the net's parameters: free it before or with the net; using it after the
   net was freed is undefined behaviour. It only steps the net it was created for.
   Returns BND_ERR_INVALID_ARGUMENT (NULL net/out, a NaN or out-of-range hyper-parameter, nesterov
   without momentum or with dampening, a flag not 0/1, a net without parameters),
   BND_ERR_OUT_OF_MEMORY (SGD's momentum buffers, Adam's moments: one of each per parameter). */
BND_API bnd_status bnd_optimizer_create_sgd(bnd_net *net, const bnd_sgd_params *params, bnd_optimizer **out);
BND_API bnd_status bnd_optimizer_create_adam(bnd_net *net, const bnd_adam_params *params, bnd_optimizer **out);

/* One update from the accumulated gradients (optimizer.step()). Buffers such as running statistics
   are never touched. Returns BND_ERR_INVALID_ARGUMENT (NULL), BND_ERR_STATE (the net gained layers
   since the optimizer was created). */
BND_API bnd_status bnd_optimizer_step(bnd_optimizer *opt);

/* Frees the optimizer and its state. NULL is a harmless no-op. Never frees the net. */
BND_API void bnd_optimizer_free(bnd_optimizer *opt);

/* ======================================= Losses ================================================= */

/* Pure functions, mean reduction, as torch.nn.functional. They compute faithfully: non-finite
   inputs give a non-finite *out_loss with BND_OK. Safe from any thread. A large call (over about a
   million operations: e.g. 8192 x 10 logits) runs on bndrop's threads (bnd_set_num_threads), in
   chunks fixed by its sizes: the loss and gradient have the same bits for every thread count. */

/* Cross-entropy: mean over the batch of -log_softmax(logits)[label].
   logits:      in, batch x classes floats.    labels: in, batch labels in [0, classes).
   out_loss:    out, the loss.
   grad_logits: out, may be NULL or `logits` itself (in place); receives (softmax - onehot) / batch,
                batch x classes floats.
   Returns BND_ERR_INVALID_ARGUMENT (NULL logits/labels/out_loss, a label out of range),
   BND_ERR_SHAPE (batch or classes <= 0, batch * classes overflows). */
BND_API bnd_status bnd_loss_cross_entropy(const float *logits, const int32_t *labels, int64_t batch,
                                          int64_t classes, float *out_loss, float *grad_logits);

/* Mean squared error over `count` elements; grad (may be NULL) receives 2 (prediction - target) /
   count. Returns BND_ERR_INVALID_ARGUMENT (NULL prediction/target/out_loss), BND_ERR_SHAPE (count 0
   or too large). */
BND_API bnd_status bnd_loss_mse(const float *prediction, const float *target, size_t count,
                                float *out_loss, float *grad);

/* A loss's reduction, as PyTorch's `reduction` argument ('none' is not offered). */
typedef enum bnd_reduction {
    BND_REDUCTION_MEAN = 0,
    BND_REDUCTION_SUM = 1
} bnd_reduction;

/* torch.nn.CrossEntropyLoss arguments (PyTorch's defaults in brackets). */
typedef struct bnd_cross_entropy_params {
    const float *weight;          /* [NULL] or `classes` per-class weights, read during the call     */
    int64_t weight_count;         /* [0] the floats at weight (must be `classes` when weight is set) */
    int64_t ignore_index;         /* [-100] samples with this label add no loss, weight or gradient */
    float   label_smoothing;      /* [0] in [0, 1]: target (1 - e) * onehot + e / classes           */
    int32_t reduction;            /* [BND_REDUCTION_MEAN] a bnd_reduction                           */
} bnd_cross_entropy_params;

/* PyTorch's defaults above, by value. Never fails. */
BND_API bnd_cross_entropy_params bnd_cross_entropy_default_params(void);

/* Cross-entropy with torch.nn.functional.cross_entropy's arguments. With w_c the class weights (1
   without), p = softmax(logits), e the smoothing, over the samples whose label is not ignore_index:
   each adds (1 - e) * w_label * (-log p_label) + e / classes * sum_c w_c * (-log p_c); the mean divides
   the sum by the sum of w_label (NaN when every sample is ignored, as in PyTorch). grad_logits: as in
   bnd_loss_cross_entropy (may be NULL or `logits`), the gradient of that loss; zero rows for ignored
   samples. params: in, may be NULL for the defaults. With the defaults and no ignored label, the very
   result of bnd_loss_cross_entropy; otherwise computed on the calling thread.
   Returns BND_ERR_INVALID_ARGUMENT (NULL logits/labels/out_loss; a label that is neither a class
   index nor ignore_index; label_smoothing outside 0..1; weight_count not classes, or weight NULL with
   a weight_count; an unknown reduction), BND_ERR_SHAPE (batch or classes <= 0, batch * classes
   overflows). */
BND_API bnd_status bnd_loss_cross_entropy_v2(const float *logits, const int32_t *labels, int64_t batch,
                                             int64_t classes, const bnd_cross_entropy_params *params,
                                             float *out_loss, float *grad_logits);

/* Squared error with a reduction (a bnd_reduction): BND_REDUCTION_MEAN is bnd_loss_mse; SUM gives the
   sum and grad 2 (prediction - target). Returns BND_ERR_INVALID_ARGUMENT (NULL prediction/target/
   out_loss, an unknown reduction), BND_ERR_SHAPE (count 0 or too large). */
BND_API bnd_status bnd_loss_mse_v2(const float *prediction, const float *target, size_t count,
                                   int32_t reduction, float *out_loss, float *grad);

/* ======================================= Training steps ========================================= */

/* One step: zero_grad, forward in train mode, loss, backward, optimizer step. A net in eval mode is
   switched to train mode for the step and back to eval afterwards. The layers read `input` in place
   during the call; after a successful step, bnd_net_get_layer_output shows its forward pass, but
   bnd_net_backward returns BND_ERR_STATE until a new forward (the step does not keep its input).
   opt must have been created for this net (BND_ERR_INVALID_ARGUMENT otherwise).
   input:    in, batch * input_count floats.
   labels:   in, batch class indices in [0, output_count) (classification; the output must be flat).
   targets:  in, batch * output_count floats (regression, mean squared error).
   out_loss: out, may be NULL; the loss of this batch before the update.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, foreign optimizer, label out of range),
   BND_ERR_SHAPE (batch <= 0 or too large, a non-flat output for classification, a batch too small
   for a BatchNorm of the net to train on: one value per channel), BND_ERR_STATE (the net gained
   layers since the optimizer was created), BND_ERR_NUMERIC (a NaN or infinite value in input or
   targets; a non-finite loss; a NaN or infinite parameter gradient with a finite loss, e.g. an
   overflow in backward), BND_ERR_OUT_OF_MEMORY.
   What a failed step leaves changed:
     - refused (every status above except the non-finite loss or gradient and out-of-memory: all
       arguments, labels included, are checked before anything runs): nothing at all;
     - failed while running (non-finite loss or gradient, out of memory): the parameter gradients
       (zeroed, then partly or wholly back-propagated) and the last forward pass, which is discarded
       (bnd_net_backward and bnd_net_get_layer_output return BND_ERR_STATE until a new forward).
       The parameters, running_mean, running_var, num_batches_tracked, the optimizer's state
       (momentum buffers; Adam's step and moments), the dropout generators (the next train-mode masks
       are those the failed step would have drawn) and the net's mode are exactly as before the call.
       The optimizer never steps with a non-finite gradient. */
BND_API bnd_status bnd_net_train_step_classification(bnd_net *net, bnd_optimizer *opt, const float *input,
                                                     const int32_t *labels, int64_t batch, float *out_loss);
BND_API bnd_status bnd_net_train_step_regression(bnd_net *net, bnd_optimizer *opt, const float *input,
                                                 const float *targets, int64_t batch, float *out_loss);

/* The steps with the losses' other arguments: cross-entropy with bnd_cross_entropy_params (loss: in,
   may be NULL for PyTorch's defaults, under which a label equal to -100 is ignored; the class weights,
   output_count of them, read during the call; see bnd_loss_cross_entropy_v2), the squared error with
   a bnd_reduction. Everything else as the two steps above, what a failed step leaves changed included;
   the loss's arguments are checked before anything runs.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, foreign optimizer, a label that is neither a class
   index nor ignore_index, a loss argument out of range or an unknown reduction), BND_ERR_SHAPE (batch
   <= 0 or too large, a non-flat output for classification, a batch too small for a BatchNorm of the
   net to train on), BND_ERR_STATE (the net gained layers since the optimizer was created),
   BND_ERR_NUMERIC (a NaN or infinite value in input or targets; a non-finite loss, e.g. a mean over
   samples that are all ignored; a NaN or infinite parameter gradient with a finite loss),
   BND_ERR_OUT_OF_MEMORY. */
BND_API bnd_status bnd_net_train_step_classification_v2(bnd_net *net, bnd_optimizer *opt, const float *input,
                                                        const int32_t *labels, int64_t batch,
                                                        const bnd_cross_entropy_params *loss, float *out_loss);
BND_API bnd_status bnd_net_train_step_regression_v2(bnd_net *net, bnd_optimizer *opt, const float *input,
                                                    const float *targets, int64_t batch, int32_t reduction,
                                                    float *out_loss);

/* One training step of each of `count` nets on the same batch, the steps running at the same time on
   the library's threads (one net per thread; a step's own parallel work then runs on that thread).
   For small nets that leave a core idle in a step of their own, such as the article's 1-100-100-1
   regression pair trained side by side (with and without dropout), this is how both cores are used.
   Each net's step is exactly bnd_net_train_step_classification / _regression(nets[i], opts[i], ...):
   the same bits as the calls one after the other, for any thread count.
   nets, opts:    in, `count` handles each (1 <= count <= 4096); opts[i] must have been created for
                  nets[i]. No net, optimizer or layer may appear twice.
   input, labels, targets, batch: as for the single step, the same for every net (every net must take
                  the same input size and give the same output size).
   out_losses:    out, may be NULL; count floats: each step's loss, NaN where the step failed.
   out_statuses:  out, may be NULL; count statuses: each step's outcome.
   Everything the single step refuses, for every net, and the rules above are checked before any step
   runs: such a refusal runs no step, writes neither output and leaves every net as it was. A step that
   fails while running (non-finite loss or gradient, out of memory) fails alone and leaves its net as a
   failed single step does; the other steps take place. The return value is then the status of the
   first failed step (lowest index), whose message names that net; out_statuses tells them all.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, count out of range, a net, optimizer or layer given
   twice, an optimizer of another net, a label out of range), BND_ERR_SHAPE (batch <= 0 or too large,
   nets of different input or output sizes, a non-flat output for classification, a batch too small
   for a BatchNorm to train on), BND_ERR_STATE (a net that gained layers since its optimizer was
   created), BND_ERR_NUMERIC (a NaN or infinite value in input or targets; a step's non-finite loss or
   gradient), BND_ERR_OUT_OF_MEMORY. */
BND_API bnd_status bnd_nets_train_step_classification(bnd_net *const *nets, bnd_optimizer *const *opts,
                                                      int64_t count, const float *input, const int32_t *labels,
                                                      int64_t batch, float *out_losses, bnd_status *out_statuses);
BND_API bnd_status bnd_nets_train_step_regression(bnd_net *const *nets, bnd_optimizer *const *opts, int64_t count,
                                                  const float *input, const float *targets, int64_t batch,
                                                  float *out_losses, bnd_status *out_statuses);

/* ======================================= Datasets =============================================== */

/* A dataset held in memory: `count` samples of float32 features, each with an integer class label
   (classification) or a fixed number of float targets (regression). Opaque; create with one of the
   functions below, free with bnd_dataset_free. A dataset never changes its values after creation
   (bnd_dataset_reshape only changes how a sample's shape is seen), so one dataset may be read by
   several threads at once, e.g. to train several nets. */
typedef struct bnd_dataset bnd_dataset;

/* Which files bnd_dataset_load_dir reads. */
typedef enum bnd_split {
    BND_SPLIT_TRAIN = 0,    /* train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz] */
    BND_SPLIT_TEST = 1      /* t10k-images-idx3-ubyte[.gz],  t10k-labels-idx1-ubyte[.gz]  */
} bnd_split;

/* Loads an image file and a label file in IDX format (MNIST's), gzip-compressed or not. Images
   (uint8, N x rows x cols) become float32 in [0, 1] (value / 255) with sample shape {1, rows, cols};
   labels (uint8, N) become class indices; classes = largest label + 1.
   images_path, labels_path: in, NUL-terminated paths.
   out_dataset:              out, the new dataset; set only on success.
   Returns BND_ERR_INVALID_ARGUMENT (NULL), BND_ERR_IO (a file missing or unreadable),
   BND_ERR_FORMAT (bad magic, unsupported type, wrong number of dimensions, truncated or trailing
   data, image and label counts that differ, sizes that would overflow), BND_ERR_OUT_OF_MEMORY (the
   images declare more than the default bnd_load_params.max_bytes, or the dataset cannot be
   allocated); the message names the file and the problem.
   The files are streamed: the headers are checked first, the dataset is allocated once and filled as
   the data is decompressed through a 64 KiB buffer, so the peak memory is the dataset itself. */
BND_API bnd_status bnd_dataset_load_idx(const char *images_path, const char *labels_path,
                                        bnd_dataset **out_dataset);

/* Loads one split of a directory holding the four standard IDX files of MNIST or Fashion-MNIST
   (each name with or without ".gz"). split: BND_SPLIT_TRAIN or BND_SPLIT_TEST (anything else is
   BND_ERR_INVALID_ARGUMENT). Returns BND_ERR_INVALID_ARGUMENT (NULL, an unknown split), BND_ERR_IO,
   BND_ERR_FORMAT, BND_ERR_OUT_OF_MEMORY (each as bnd_dataset_load_idx). */
BND_API bnd_status bnd_dataset_load_dir(const char *directory, bnd_split split, bnd_dataset **out_dataset);

/* Limits on what a dataset file may make the library allocate. A file's header decides how much memory
   loading it takes (a 2 MB gzip file can legally declare 46340 x 46340 pixels: 8.6 GB of floats), so
   the size it declares is checked against max_bytes before anything is allocated or decompressed.
   A declared size above the limit is BND_ERR_OUT_OF_MEMORY, not BND_ERR_FORMAT: the file is well
   formed, it is only larger than the memory the caller allows; the message says so and names the
   limit. Passed per call (no global setting: loads on different threads may use different limits). */
typedef struct bnd_load_params {
    size_t max_bytes;   /* 4 GiB (BND_DEFAULT_LOAD_MAX_BYTES): the most memory the images may take as
                           float32 (4 bytes per pixel); the labels add 4 bytes per image. */
} bnd_load_params;
#define BND_DEFAULT_LOAD_MAX_BYTES ((size_t)4 << 30)
BND_API bnd_load_params bnd_load_default_params(void);

/* bnd_dataset_load_idx and bnd_dataset_load_dir with limits. params: in, NULL =
   bnd_load_default_params(); read during the call only. Returns BND_ERR_INVALID_ARGUMENT (NULL path
   or out_dataset, an unknown split), BND_ERR_IO, BND_ERR_FORMAT, BND_ERR_OUT_OF_MEMORY (each as
   bnd_dataset_load_idx, the limit being params->max_bytes). */
BND_API bnd_status bnd_dataset_load_idx_ex(const char *images_path, const char *labels_path,
                                           const bnd_load_params *params, bnd_dataset **out_dataset);
BND_API bnd_status bnd_dataset_load_dir_ex(const char *directory, bnd_split split, const bnd_load_params *params,
                                           bnd_dataset **out_dataset);

/* A classification dataset copied from caller-owned arrays (nothing is retained).
   features:     in, count * product(sample_shape) floats, sample after sample.
   sample_shape: in, rank values, each > 0; rank 1 to 3.
   labels:       in, count class indices >= 0.
   classes:      the number of classes (labels must be below it), or 0 for largest label + 1.
   Returns BND_ERR_INVALID_ARGUMENT (NULL, a negative label or one >= classes, classes < 0), BND_ERR_SHAPE
   (count <= 0, a bad shape, sizes that overflow), BND_ERR_OUT_OF_MEMORY. */
BND_API bnd_status bnd_dataset_from_labels(const float *features, const int64_t *sample_shape, size_t rank,
                                           const int32_t *labels, int64_t count, int64_t classes,
                                           bnd_dataset **out_dataset);

/* A regression dataset copied from caller-owned arrays: count samples, each with target_count float
   targets (targets: count * target_count floats). Returns BND_ERR_INVALID_ARGUMENT (NULL),
   BND_ERR_SHAPE (count or target_count <= 0, a bad shape, sizes that overflow),
   BND_ERR_OUT_OF_MEMORY. */
BND_API bnd_status bnd_dataset_from_targets(const float *features, const int64_t *sample_shape, size_t rank,
                                            const float *targets, int64_t target_count, int64_t count,
                                            bnd_dataset **out_dataset);

/* Frees a dataset. NULL is a no-op. Loaders created from it keep their own reference: they stay
   valid after this call. */
BND_API void bnd_dataset_free(bnd_dataset *dataset);

/* out_count: the number of samples. out_classes: the number of classes, 0 for a regression dataset.
   out_target_count: targets per sample, 0 for a classification dataset. Any out pointer may be NULL.
   Returns BND_ERR_INVALID_ARGUMENT (NULL dataset). */
BND_API bnd_status bnd_dataset_info(const bnd_dataset *dataset, int64_t *out_count, int64_t *out_classes,
                                    int64_t *out_target_count);

/* One sample's shape: out_shape receives *out_rank values (capacity >= 3 always suffices).
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer), BND_ERR_SHAPE (capacity below the rank; as by the
   net shape functions, *out_rank is still written). */
BND_API bnd_status bnd_dataset_sample_shape(const bnd_dataset *dataset, int64_t *out_shape, size_t capacity,
                                            size_t *out_rank);

/* Sees each sample with another shape of the same element count, e.g. {784} instead of {1, 28, 28}
   for an MLP. Do not call while another thread uses the dataset. Returns BND_ERR_INVALID_ARGUMENT
   (NULL pointer), BND_ERR_SHAPE (rank not 1-3, a dimension <= 0, element counts that differ). */
BND_API bnd_status bnd_dataset_reshape(bnd_dataset *dataset, const int64_t *sample_shape, size_t rank);

/* Copies samples first .. first+count-1: their features (count * sample size floats) into
   out_features, and their labels (classification) or targets (regression) into out_labels /
   out_targets. Any out pointer may be NULL; the one that does not apply to the dataset's kind must
   be NULL. Capacities are in elements; count 0 copies nothing. Returns BND_ERR_INVALID_ARGUMENT (NULL
   dataset, out_labels for a regression dataset or out_targets for a classification one),
   BND_ERR_SHAPE (a range outside the dataset: first or count negative, first + count > the sample
   count; a capacity too small). */
BND_API bnd_status bnd_dataset_get(const bnd_dataset *dataset, int64_t first, int64_t count,
                                   float *out_features, size_t features_capacity,
                                   int32_t *out_labels, size_t labels_capacity,
                                   float *out_targets, size_t targets_capacity);

/* ======================================= Mini-batches =========================================== */

/* A mini-batch loader over a dataset: each epoch visits every sample once, shuffled by a seeded
   Fisher-Yates permutation (the same seed gives the same batches), the last batch partial unless
   drop_last. Batches are assembled in buffers the loader owns and reuses. A loader changes with
   every call: use it from one thread at a time (its dataset may be shared). */
typedef struct bnd_loader bnd_loader;

/* batch_size > 0; shuffle and drop_last are 0 or 1; seed drives the shuffling.
   Returns BND_ERR_INVALID_ARGUMENT (NULL, flags not 0/1), BND_ERR_SHAPE (batch_size <= 0, or
   drop_last with fewer samples than one batch), BND_ERR_OUT_OF_MEMORY (the sample order and the
   batch buffers: one batch of features and labels or targets). */
BND_API bnd_status bnd_loader_create(const bnd_dataset *dataset, int64_t batch_size, int32_t shuffle,
                                     uint64_t seed, int32_t drop_last, bnd_loader **out_loader);
BND_API void bnd_loader_free(bnd_loader *loader);   /* NULL: no-op */

/* The next batch of the current epoch. On success *out_batch is the batch size, or 0 when the epoch
   has ended (the out pointers are then set to NULL; the next call starts a new epoch, reshuffled).
   Otherwise *out_inputs points at batch * sample size floats; *out_labels at batch labels (NULL for
   regression); *out_targets at batch * target_count floats (NULL for classification). The pointers
   are owned by the loader and valid until its next call or its free. While the caller uses a batch,
   the library's idle worker threads gather the next one into a second set of buffers (batches of up
   to 64 MB of inputs; the same values the next call would gather; the batch handed out is never
   written). out_labels and out_targets may be NULL when not wanted. Returns
   BND_ERR_INVALID_ARGUMENT (NULL loader, out_inputs or out_batch). */
BND_API bnd_status bnd_loader_next(bnd_loader *loader, const float **out_inputs, const int32_t **out_labels,
                                   const float **out_targets, int64_t *out_batch);

/* Batches in one epoch. Returns BND_ERR_INVALID_ARGUMENT (NULL pointer). */
BND_API bnd_status bnd_loader_batches_per_epoch(const bnd_loader *loader, int64_t *out_batches);

/* ======================================= Training loop ========================================== */

/* The loss bnd_fit and bnd_evaluate use. */
typedef enum bnd_loss {
    BND_LOSS_AUTO = -1,         /* cross-entropy for labelled data, MSE for targets */
    BND_LOSS_CROSS_ENTROPY = 0,
    BND_LOSS_MSE = 1
} bnd_loss;

/* Fields have fixed sizes (see Structs above): `loss` holds a bnd_loss value. */
typedef struct bnd_fit_params {
    int64_t  epochs;            /* 1; > 0 */
    int64_t  batch_size;        /* 64; > 0 */
    uint64_t shuffle_seed;      /* 0; the same seed gives the same batches */
    int32_t  drop_last;         /* 0 */
    int32_t  loss;              /* BND_LOSS_AUTO (a bnd_loss) */
    int64_t  eval_batch_size;   /* 256; > 0; for the validation set */
} bnd_fit_params;
BND_API bnd_fit_params bnd_fit_default_params(void);

/* The kinds of bnd_fit_event. */
typedef enum bnd_event_kind {
    BND_EVENT_STEP = 0,   /* after every optimizer step */
    BND_EVENT_EPOCH = 1   /* after every epoch (and its validation, when a validation set is given) */
} bnd_event_kind;

/* What bnd_fit reports to its callback. */
typedef struct bnd_fit_event {
    int32_t kind;                 /* a bnd_event_kind: BND_EVENT_STEP or BND_EVENT_EPOCH */
    int32_t reserved;             /* 0 */
    int64_t epoch;                /* 0-based */
    int64_t step;                 /* STEP: index within the epoch (0-based); EPOCH: steps in the epoch */
    int64_t global_step;          /* steps since bnd_fit began, this one included */
    int64_t batch_size;           /* STEP: the batch's size; EPOCH: samples trained on in the epoch */
    double  loss;                 /* STEP: the batch's loss; EPOCH: the epoch's mean training loss */
    double  samples_per_second;   /* training samples since bnd_fit began / elapsed_seconds */
    double  elapsed_seconds;      /* since bnd_fit began */
    double  validation_loss;      /* EPOCH with a validation set: its mean loss; NaN otherwise */
    double  validation_accuracy;  /* EPOCH with a labelled validation set: in [0, 1]; NaN otherwise */
} bnd_fit_event;

/* Called by bnd_fit after every step and every epoch, on the calling thread. Return nonzero to go
   on, 0 to stop training (bnd_fit then returns BND_OK with stopped_early set). The callback may use
   the net (e.g. an eval-mode forward to look at hidden values) as long as it leaves it in train
   mode, and must not free the net, the optimizer or the datasets. */
typedef int32_t (*bnd_fit_callback)(const bnd_fit_event *event, void *user_data);

typedef struct bnd_fit_summary {
    int64_t steps;                /* optimizer steps run */
    int64_t epochs_completed;
    int32_t stopped_early;        /* 1 when the callback stopped training before its end (a 0
                                     returned by the last epoch's EPOCH event stops nothing: 0) */
    int32_t reserved;
    double  last_loss;            /* the last step's loss */
    double  last_epoch_loss;      /* the last completed epoch's mean loss (NaN if none) */
    double  validation_loss;      /* after the last epoch, NaN without a validation set */
    double  validation_accuracy;  /* NaN without a labelled validation set */
    int64_t samples;              /* training samples processed */
    double  seconds;              /* wall-clock time */
} bnd_fit_summary;

/* Trains `net` with `opt` on `train` for params->epochs epochs of shuffled mini-batches (each step:
   zero_grad, forward in train mode, loss, backward, optimizer step), reporting to `callback`.
   validation:  in, may be NULL; evaluated in eval mode after every epoch.
   params:      in, NULL = bnd_fit_default_params().
   callback:    may be NULL. user_data is passed to it untouched.
   out_summary: out, may be NULL; written on success (also when stopped early).
   The net is left in the mode it was in. Everything that can be known before the first step is
   checked before it. Returns BND_ERR_INVALID_ARGUMENT (NULL, a foreign optimizer, epochs <= 0, a
   flag not 0/1, an unknown loss, a loss that does not match the dataset's kind), BND_ERR_SHAPE
   (batch_size or eval_batch_size <= 0, drop_last with fewer samples than one batch, a dataset whose
   sample size or target count does not fit the net, a labelled dataset with more classes than the
   net has outputs, a last batch of one sample per epoch through a BatchNorm that needs more:
   use drop_last or another batch_size; a last validation batch of one sample through a BatchNorm
   without running statistics), BND_ERR_STATE (the net gained layers since the optimizer
   was created, also when a callback adds them: training stops after that callback),
   BND_ERR_NUMERIC (a NaN or infinite feature or target, or a non-finite loss or gradient: training
   stops there), BND_ERR_OUT_OF_MEMORY (the loader's buffers, a training step's). A failed step is one
   of bnd_net_train_step_*: it changed nothing but the gradients and the last forward pass, so the net
   and the optimizer are as after the last successful step (out_summary is not written). */
BND_API bnd_status bnd_fit(bnd_net *net, bnd_optimizer *opt, const bnd_dataset *train,
                           const bnd_dataset *validation, const bnd_fit_params *params,
                           bnd_fit_callback callback, void *user_data, bnd_fit_summary *out_summary);

/* Evaluates `net` on `data` in eval mode (the mode is restored afterwards), batch_size samples at a
   time. out_loss: the mean loss (cross-entropy for labelled data, MSE for targets).
   out_accuracy: the fraction of samples whose largest output is their label; NaN for regression.
   Either out pointer may be NULL. Non-finite values give a non-finite loss, as the loss functions.
   Returns BND_ERR_INVALID_ARGUMENT (NULL net or data), BND_ERR_SHAPE (batch_size <= 0, a dataset whose
   sample size or target count does not fit the net, a labelled dataset with more classes than the
   net has outputs, a non-flat output for a labelled dataset, a last batch of one sample through a
   BatchNorm without running statistics, which uses the batch's own in eval mode too: checked before
   the first batch), BND_ERR_OUT_OF_MEMORY (the forward passes). */
BND_API bnd_status bnd_evaluate(bnd_net *net, const bnd_dataset *data, int64_t batch_size,
                                double *out_loss, double *out_accuracy);

/* ======================================= Inference ============================================== */

/* A new, independent copy of `net` for inference: the same sample shape, seed and layers, in eval mode,
   except that every BatchNorm that directly follows a Linear or Conv2d and tracks running statistics
   is folded into that layer and removed. Per output channel o, with s = gamma / sqrt(running_var + eps)
   computed in double precision (gamma = 1, beta = 0 without affine):
     W'[o] = W[o] * s      b'[o] = (b[o] - running_mean[o]) * s + beta[o].
   Other layers (a BatchNorm after anything else, or without running statistics, included) are copied
   with their parameters, buffers and dropout generators. The copy's eval outputs equal `net`'s eval
   outputs up to float rounding (about 1e-6 relative); it has no gradients and no last forward pass.
   Removing layers renumbers the ones after them: the copy's tensor names differ from `net`'s (Linear,
   BatchNorm1d, ReLU, Linear names "0.*", "1.*", "3.*"; its folded copy "0.*", "2.*").
   out_net: out, receives the copy; release with bnd_net_free. `net` is not changed.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer), BND_ERR_OUT_OF_MEMORY. */
BND_API bnd_status bnd_net_fold_batchnorm(const bnd_net *net, bnd_net **out_net);

/* Monte-Carlo dropout: runs `batch` samples through the net `passes` times with Dropout active (fresh
   train-mode masks every pass) and BatchNorm in eval mode (running statistics, not updated), and
   writes per output value the mean (out_mean) and the POPULATION variance (sum of squared deviations
   / passes; 0 for passes == 1) over the passes, accumulated in double precision. The masks come from
   `seed` alone: the same seed gives the same result. A net without Dropout gives its eval output and
   variance 0.
   input:    in, batch * input_count floats.
   out_mean, out_var: out, batch * output_count floats each; capacity is the size of EACH in floats.
   Afterwards the net's tensors, num_batches_tracked, mode and dropout generators are as before the
   call (the next train-mode forward draws the masks it would have drawn without this call); as after a
   failed forward, the last forward pass is discarded (backward and bnd_net_get_layer_output need a new
   forward). Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, passes < 1), BND_ERR_SHAPE (batch <= 0,
   sizes that overflow, capacity too small: checked before anything runs; BatchNorm without running
   statistics and one value per channel), BND_ERR_OUT_OF_MEMORY. */
BND_API bnd_status bnd_net_predict_mc_dropout(bnd_net *net, const float *input, int64_t batch, int64_t passes,
                                              uint64_t seed, float *out_mean, float *out_var, size_t capacity);

/* ======================================= Runtime ================================================ */

/* Threads: bndrop's layers share out their work among a pool of threads of bndrop's own, the calling
   thread included. The pool's size is the number of CPUs the process may run on (sched_getaffinity),
   or BNDROP_NUM_THREADS when that is set to a number from 1 to 256 when the library first needs it,
   until bnd_set_num_threads changes it.

   BLAS: matrix products run in OpenBLAS, except a Linear's with one input or one output feature
   (bndrop's own outer and dot products), and, on CPUs with AVX-512, a Linear's products whose left
   operand is at least half zeros (30% when the other operand is over 64 KB; its input after ReLU or
   Dropout, its output gradient through ReLU) and whose other operand is finite and 32 to 128 floats
   wide: bndrop's own kernel skips the zeros (README, "Skipping zeros"). libbndrop.so does not link OpenBLAS: it loads
   libopenblas.so.0 (dlopen) at its first matrix product or bnd_get_runtime_info call, so that it can choose
   OpenBLAS's kernels (its "core") first. OpenBLAS picks its core from the CPU model, and gives a
   model it does not know a generic core, several times slower (OpenBLAS 0.3.21 runs Intel Sapphire
   Rapids with "Prescott" kernels). So:
   - OPENBLAS_CORETYPE set in the environment (to anything, even ""): OpenBLAS uses it and bndrop
     changes nothing. bndrop never changes any other OPENBLAS_* variable either.
   - Otherwise, when OpenBLAS chose a generic core (one without AVX2 kernels: Prescott, Nehalem,
     Sandybridge, Core2, Katmai, Barcelona, ...) on a CPU that offers AVX-512 F, BW, VL and DQ, or AVX2
     and FMA (by CPUID, with operating-system support), bndrop loads it again with
     OPENBLAS_CORETYPE=SkylakeX, or =Haswell, set for that dlopen only and removed right after: the
     process's environment is left as it was. (setenv is not safe against a getenv running at the
     same time in another thread; this happens at most once per process, and only on a CPU that
     OpenBLAS does not recognise.)
   - A process that has loaded libopenblas.so.0 before (e.g. linked with -lopenblas) keeps the core
     it chose: bndrop uses that library as it is.
   OpenBLAS then runs single-threaded (openblas_set_num_threads(1), also in a library the process
   loaded itself: there is one OpenBLAS per process): bndrop's threads work around it.
   Without libopenblas.so.0 (not installed), bnd_get_runtime_info returns BND_ERR_IO with the loader's
   message, and so does adding a Linear or Conv2d layer.
   Test hooks, for bndrop's own tests only: BNDROP_TEST_ASSUME_GENERIC_CORE=1 makes bndrop decide as if
   OpenBLAS had chosen "Prescott"; BNDROP_TEST_OPENBLAS_NAME=<file> loads that file instead of
   libopenblas.so.0. Both are read once, when OpenBLAS is loaded. */

/* Large enough for every OpenBLAS core name (incl. the NUL). */
#define BND_CORE_NAME_MAX 32
/* The size of bnd_runtime_info.blas_config (a longer configuration text is cut). */
#define BND_BLAS_CONFIG_MAX 128

/* What bnd_get_runtime_info reports. Texts are NUL-terminated. At most one of the three
   blas_core_by_* / blas_loaded_by_host flags is 1; all 0 means OpenBLAS chose its core itself and
   bndrop kept it. */
typedef struct bnd_runtime_info {
    char    blas_core[BND_CORE_NAME_MAX];          /* the OpenBLAS core in use, e.g. "Haswell"      */
    char    blas_detected_core[BND_CORE_NAME_MAX]; /* the core OpenBLAS chose by itself: blas_core,
                                                      or the generic one bndrop replaced; "" when
                                                      the environment or the host chose            */
    char    blas_config[BND_BLAS_CONFIG_MAX];      /* openblas_get_config(), e.g. "OpenBLAS 0.3.21
                                                      NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell
                                                      MAX_THREADS=64"                              */
    int32_t blas_core_by_environment;   /* 1 when OPENBLAS_CORETYPE was set when bndrop loaded OpenBLAS */
    int32_t blas_core_by_bndrop;        /* 1 when bndrop replaced a generic core (see BLAS above)       */
    int32_t blas_loaded_by_host;        /* 1 when the process had loaded libopenblas.so.0 before bndrop */
    int32_t blas_threads;               /* OpenBLAS's threads (openblas_get_num_threads); bndrop sets 1 */
    int32_t threads;                    /* bndrop's threads, as bnd_get_num_threads()                  */
    int32_t simd_width;                 /* floats per vector register the CPU offers: 16 (AVX-512F),
                                           8 (AVX2), 4 (otherwise); OpenBLAS's kernels use it           */
    int32_t kernel_simd_width;          /* floats per vector of bndrop's own C kernels (BatchNorm, the
                                           optimizers, ...): each is built for AVX-512F (16), AVX2 (8)
                                           and the x86-64 baseline (4) and the best the CPU runs is
                                           chosen when the library loads, so one libbndrop.so runs on
                                           every x86-64 CPU. The choice changes no result: the kernels
                                           round every operation as written (no fused multiply-add) and
                                           sum in fixed lanes                                           */
    int32_t subnormals_in_double;       /* 1 when Adam's and SGD-with-momentum's steps compute the
                                           parameters whose values are tiny or subnormal in double
                                           precision, each result rounded to float (the same bits),
                                           because this CPU's float operations on subnormal values are
                                           slow (measured once per process; Intel's cores take a
                                           microcode assist of 110-135 cycles each); 0 when they run at
                                           full speed. Late in a run with dead ReLU units, their first
                                           moments and momentum buffers fall through the subnormal range */
    int32_t reserved[8];                /* 0                                                           */
} bnd_runtime_info;

/* Fills *out_info; loads OpenBLAS if nothing has yet. Safe from any thread.
   Returns BND_ERR_INVALID_ARGUMENT (NULL), BND_ERR_IO (libopenblas.so.0 cannot be loaded, or lacks a
   function bndrop needs; the message says why). */
BND_API bnd_status bnd_get_runtime_info(bnd_runtime_info *out_info);

/* Sets bndrop's thread count (the calling thread included) for every net, from the next forward or
   backward pass on; the one process-wide setting of the library. Safe from any thread at any time.
   Returns BND_ERR_INVALID_ARGUMENT for a count outside 1..256. */
BND_API bnd_status bnd_set_num_threads(int32_t threads);

/* bndrop's thread count: the default described under Threads above, or the last
   bnd_set_num_threads. Never fails. */
BND_API int32_t bnd_get_num_threads(void);

/* ======================================= Checkpoints ============================================ */

/* Checkpoints are safetensors files (https://github.com/huggingface/safetensors): an 8-byte
   little-endian header length, a JSON header, then the tensors' raw little-endian bytes.

   A net's file holds its state_dict by PyTorch's names ("0.weight", "1.running_var", ...): float
   tensors as F32, num_batches_tracked as an I64 scalar (as PyTorch stores it). PyTorch reads it with
   model.load_state_dict(safetensors.torch.load_file(path), strict=True) into the equivalent
   nn.Sequential. The header's "__metadata__" (string values) rebuilds the net: "format" "bndrop-1",
   "bndrop_version" (BND_VERSION_STRING), "sample_shape" (JSON array), "seed", "training" ("true" or
   "false"), "layers" (a JSON array: per layer its PyTorch class name as "type" and every constructor
   argument by PyTorch's name, e.g. {"type":"Linear","in_features":784,"out_features":48,"bias":true},
   {"type":"BatchNorm1d","num_features":48,"eps":1e-05,"momentum":0.1,"affine":true,
   "track_running_stats":true}, momentum null for cumulative_average), and "rng.<i>" for each Dropout
   layer i: its mask generator's state, so that training continues with the same masks.

   An optimizer's file holds, once it has stepped, "state.<i>.momentum_buffer" (SGD with momentum) or
   "state.<i>.step" (I64 scalar), "state.<i>.exp_avg", "state.<i>.exp_avg_sq" (Adam, AdamW), where i is
   the parameter's index in state_dict order, and in "__metadata__": "format" "bndrop-optimizer-1",
   "bndrop_version", "optimizer" ("SGD", "Adam" or "AdamW"), its hyper-parameters by PyTorch's names and
   "param_shapes" (JSON). Saving a net and its optimizer after N steps and loading both into fresh
   objects continues training bit for bit as if it had not stopped.

   Saving is atomic: the bytes go to a temporary file in the same folder (".bndrop-<pid>-<n>.tmp"), which
   is fsynced and renamed over `path` only when complete (then the folder is fsynced). A failure leaves
   an existing file at `path` unchanged and removes the temporary file. The new file's permissions are
   0666 minus the umask.

   Loading checks the whole file before trusting it: the header length (at most 16 MiB, and inside the
   file), the JSON, every tensor's dtype, shape and data offsets (inside the file, of the size the shape
   needs, covering the data with no gap or overlap), duplicate names; then the names, dtypes and shapes
   against the net. Any damage is BND_ERR_FORMAT, with a message naming the file and the tensor or field;
   nothing is changed unless everything could be read.

   The statuses of the functions below mean: BND_ERR_INVALID_ARGUMENT a NULL pointer, BND_ERR_IO the
   file system (a missing or unreadable file, a folder that cannot be written, a full disk),
   BND_ERR_FORMAT a damaged file (as above), BND_ERR_SHAPE a valid file that does not fit (tensor
   shapes that differ from the net's, an optimizer file for parameters of other shapes),
   BND_ERR_OUT_OF_MEMORY tensors read from a file that cannot be allocated.
   Test hook, for bndrop's own tests only: BNDROP_TEST_SAVE_FAIL_AFTER=<K> (read at each save) makes
   saving fail as on a full disk once K bytes have been written. */

/* Saves `net` (state_dict, architecture, seed, mode, dropout generators) to `path`, replacing any
   file there atomically. The net is not changed. A symbolic link is written through (its file is
   replaced, the link stays); a FIFO, device or socket at `path` is refused, as is a link to nothing
   or to a path that is not UTF-8.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, a path that is not UTF-8), BND_ERR_IO (an empty
   path, a folder, a folder that cannot be written, something other than a regular file at the path,
   a link to nothing or to a path that is not UTF-8, a failed write). */
BND_API bnd_status bnd_net_save(const bnd_net *net, const char *path);

/* Creates the net saved at `path` by bnd_net_save: same layers, tensors, seed, mode and dropout
   generators. out_net: out, set only on success; release with bnd_net_free. A file without bndrop's
   metadata (e.g. a plain PyTorch state_dict) is BND_ERR_FORMAT: build the net and use
   bnd_net_load_weights. Every mismatch inside the file (a layer that does not fit, a tensor missing,
   extra or of another shape than the layers give) is BND_ERR_FORMAT too. Returns
   BND_ERR_INVALID_ARGUMENT (NULL pointer), BND_ERR_IO, BND_ERR_FORMAT, BND_ERR_OUT_OF_MEMORY. */
BND_API bnd_status bnd_net_load(const char *path, bnd_net **out_net);

/* Replaces every tensor of `net` from the safetensors file at `path`, written by bndrop or by anything
   else with PyTorch's state_dict names (e.g. safetensors.torch.save_file(model.state_dict(), path)),
   as load_state_dict(strict=True): every tensor of the net must be there and no other (BND_ERR_FORMAT
   naming it), each F32, num_batches_tracked an I64 scalar >= 0 (else BND_ERR_FORMAT), of the net's
   shape (else BND_ERR_SHAPE). Metadata is ignored; the mode, seed and dropout generators are kept. On
   failure the net is unchanged. Returns BND_ERR_INVALID_ARGUMENT (NULL pointer), BND_ERR_IO,
   BND_ERR_FORMAT, BND_ERR_SHAPE, BND_ERR_OUT_OF_MEMORY. */
BND_API bnd_status bnd_net_load_weights(bnd_net *net, const char *path);

/* Saves the optimizer's state (see above) to `path`, atomically. The optimizer is not changed.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer), BND_ERR_IO (as bnd_net_save). */
BND_API bnd_status bnd_optimizer_save(const bnd_optimizer *opt, const char *path);

/* Replaces the optimizer's state (momentum buffers; Adam's step and moments) with the one saved at
   `path` by bnd_optimizer_save. The optimizer keeps its own hyper-parameters (a run may resume with,
   say, another learning rate); those in the file are a record. On failure the optimizer is unchanged.
   Returns BND_ERR_INVALID_ARGUMENT (NULL pointer, a file of another kind of optimizer (SGD, Adam,
   AdamW), momentum buffers for an SGD without momentum), BND_ERR_IO, BND_ERR_FORMAT (a damaged file, a
   net's checkpoint, state no step makes: a NaN, a negative exp_avg_sq), BND_ERR_SHAPE (a file saved for parameters of other shapes),
   BND_ERR_OUT_OF_MEMORY. */
BND_API bnd_status bnd_optimizer_load(bnd_optimizer *opt, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* BNDROP_H */
