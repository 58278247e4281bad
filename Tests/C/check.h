/* Tiny test harness shared by the C ABI tests: each test is counted once as passed or failed; the
   program ends with "N passed, M failed". */
#ifndef BNDROP_TEST_CHECK_H
#define BNDROP_TEST_CHECK_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include "bndrop.h"

extern int g_passed, g_failed;
/* Failures recorded by EXPECT since the current test began. */
extern int g_current_failures;
extern const char *g_current_test;

void test_begin(const char *name);
/* Ends the current test and counts it. Returns 1 when it passed. */
int test_end(void);

void expect_fail(const char *file, int line, const char *fmt, ...);

#define EXPECT(cond, ...) \
    do { if (!(cond)) expect_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* Records that the function named by the first identifier of `call_text` (e.g. "bnd_net_forward(net,
   ...)") returned `status`, for the status table (test_status_table.c). Any thread; never allocates. */
void record_status(const char *call_text, bnd_status status);

/* A call that must succeed; on failure the status and bnd_last_error() are reported. */
#define EXPECT_OK(call) \
    do { bnd_status s_ = (call); \
         record_status(#call, s_); \
         if (s_ != BND_OK) expect_fail(__FILE__, __LINE__, "%s -> %d (%s)", #call, (int)s_, bnd_last_error()); \
    } while (0)

/* Compares n floats with |a - e| <= abs_tol + rel_tol * |e|; reports the worst few. Returns 1 if equal. */
int expect_close(const char *what, const float *actual, const float *expected, size_t n, double abs_tol,
                 double rel_tol);

/* {inputs} -> Linear(hidden) -> BatchNorm1d -> ReLU [-> Dropout(dropout) when > 0] -> Linear(outputs),
   parameters from `seed`: the small net several test files train. NULL (and a failed check) on error. */
bnd_net *test_mlp(int64_t inputs, int64_t hidden, float dropout, int64_t outputs, uint64_t seed);

/* Makes a fresh temporary folder /tmp/bndrop-<what>-XXXXXX into dir (capacity bytes); returns 1 on
   success, else records a failed test named after `what` and returns 0. */
int make_temp_dir(char *dir, size_t capacity, const char *what);

/* One bad call as its own test: status == expected, a non-empty bnd_last_error(), and `needle` in it
   when given (e.g. the file name). The status it returned is recorded for the status table. */
void bad_call(const char *text, bnd_status expected, const char *needle, bnd_status got);
/* The error message is cleared first so that it must come from this very call. */
#define BAD(expected, call) bad_call(#call, (expected), NULL, (bnd_clear_last_error(), (call)))
#define BAD_MSG(expected, needle, call) bad_call(#call, (expected), (needle), (bnd_clear_last_error(), (call)))

/* Runs body(context) in a child process (fork; `seconds` of alarm, then a signal ends it) with a cleared
   error message, and checks it as part of the current test, named `text` (which begins with the name
   of the function whose status the body returns): the child must exit normally with `expected`, and
   when it did and `needle` is given, bnd_last_error() must contain it. The status is recorded for the
   status table. Returns the child's exit status, or minus the signal that ended it (-1000 when fork or
   waitpid failed). A body may _exit(100) itself when its setup fails. */
typedef bnd_status (*child_body)(void *context);
int run_in_child(const char *text, unsigned seconds, child_body body, void *context, bnd_status expected,
                 const char *needle);

/* Test groups (each file). */
void run_golden_network(const char *golden_dir); /* one golden network end to end (test_golden.c) */
void run_bad_call_tests(void);
void run_thread_tests(void);
void run_api_tests(void);
void run_data_tests(void); /* datasets, loaders, fit / evaluate (test_data.c) */
void run_alloc_tests(void); /* no allocation in a training step (test_alloc.c) */
void run_checkpoint_tests(void); /* safetensors checkpoints: PyTorch's files, round trips, resuming (test_checkpoint.c) */
/* Without OpenBLAS, the calls that load it return BND_ERR_IO: each in a child process (test_no_blas.c).
   Runs first: it needs a process that has not loaded OpenBLAS through bndrop yet. */
void run_no_blas_tests(void);
/* Allocation failures are statuses: each call in a child under RLIMIT_AS (test_oom.c; not under ASan/TSan). */
void run_oom_tests(void);
/* Set when BNDROP_TEST_SKIP_OOM=1 (make test-valgrind: each out-of-memory row would run a child under
   valgrind for minutes): the group is skipped and the status table does not require its statuses. */
extern int g_skip_oom_group;
void run_failed_step_tests(void); /* a failed training step changes nothing but the gradients (test_failed_step.c) */
void run_side_by_side_tests(void); /* several nets' steps at the same time (test_side_by_side.c) */
void run_fork_tests(void); /* fork() while the pool works: the child goes on (test_fork.c) */
/* Last: every status the header documents was produced by a test, and no other (test_status_table.c). */
void run_status_table(const char *header_path);

#endif
