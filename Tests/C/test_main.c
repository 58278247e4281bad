/* The C ABI test program: one golden network from the directory given as argv[1], the table of bad
   calls (the status of each export), API checks, datasets and training, threads and allocations, and
   last the status table (the statuses include/bndrop.h documents against those the tests produced).
   Prints "N passed, M failed" last; exits 1 when M > 0. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"

int g_passed = 0, g_failed = 0, g_current_failures = 0;
const char *g_current_test = "";

void test_begin(const char *name) {
    g_current_test = name;
    g_current_failures = 0;
}

int test_end(void) {
    if (g_current_failures == 0) {
        g_passed++;
        return 1;
    }
    g_failed++;
    printf("FAIL %s (%d problem%s)\n", g_current_test, g_current_failures, g_current_failures == 1 ? "" : "s");
    return 0;
}

void expect_fail(const char *file, int line, const char *fmt, ...) {
    g_current_failures++;
    if (g_current_failures > 12) return; /* keep the log readable */
    va_list args;
    va_start(args, fmt);
    printf("  [%s] %s:%d: ", g_current_test, file, line);
    vprintf(fmt, args);
    printf("\n");
    va_end(args);
}

void bad_call(const char *text, bnd_status expected, const char *needle, bnd_status got) {
    test_begin(text);
    record_status(text, got);
    const char *message = bnd_last_error();
    EXPECT(got == expected, "%s: expected status %d, got %d (%s)", text, (int)expected, (int)got, message);
    EXPECT(message != NULL && message[0] != '\0', "%s: empty bnd_last_error()", text);
    if (needle != NULL && message != NULL)
        EXPECT(strstr(message, needle) != NULL, "%s: message '%s' does not mention '%s'", text, message, needle);
    test_end();
}

int run_in_child(const char *text, unsigned seconds, child_body body, void *context, bnd_status expected,
                 const char *needle) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(seconds); /* a hang (e.g. a lock held across fork) ends as a signal, i.e. a failure */
        bnd_clear_last_error();
        bnd_status s = body(context);
        if (s == expected && needle != NULL && strstr(bnd_last_error(), needle) == NULL) {
            printf("  [%s] message '%s' lacks '%s'\n", text, bnd_last_error(), needle);
            fflush(stdout);
            _exit(101);
        }
        _exit((int)s);
    }
    int wstatus = 0;
    int waited = pid > 0 && waitpid(pid, &wstatus, 0) == pid;
    EXPECT(waited, "%s: fork or waitpid failed", text);
    if (!waited) return -1000;
    int signal_number = WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0;
    EXPECT(WIFEXITED(wstatus), "%s: the child died by signal %d", text, signal_number);
    if (!WIFEXITED(wstatus)) return -signal_number;
    int code = WEXITSTATUS(wstatus);
    EXPECT(code != 100, "%s: the child's setup failed", text);
    EXPECT(code != 101, "%s: wrong message (above)", text);
    EXPECT(code == (int)expected, "%s: expected status %d, got %d", text, (int)expected, code);
    if (code <= (int)BND_ERR_INTERNAL) record_status(text, (bnd_status)code);
    return code;
}

bnd_net *test_mlp(int64_t inputs, int64_t hidden, float dropout, int64_t outputs, uint64_t seed) {
    bnd_net *net = NULL;
    EXPECT_OK(bnd_net_create(&inputs, 1, &net));
    if (net == NULL) return NULL;
    EXPECT_OK(bnd_net_seed(net, seed));
    EXPECT_OK(bnd_net_add_linear(net, hidden));
    EXPECT_OK(bnd_net_add_batchnorm(net, NULL));
    EXPECT_OK(bnd_net_add_relu(net));
    if (dropout > 0) EXPECT_OK(bnd_net_add_dropout(net, dropout));
    EXPECT_OK(bnd_net_add_linear(net, outputs));
    return net;
}

int make_temp_dir(char *dir, size_t capacity, const char *what) {
    snprintf(dir, capacity, "/tmp/bndrop-%s-XXXXXX", what);
    if (mkdtemp(dir) != NULL) return 1;
    test_begin(what);
    EXPECT(0, "cannot create a temporary folder for the %s tests", what);
    test_end();
    return 0;
}

int expect_close(const char *what, const float *actual, const float *expected, size_t n, double abs_tol,
                 double rel_tol) {
    size_t bad = 0, worst = 0;
    double worst_excess = -1;
    for (size_t i = 0; i < n; i++) {
        double a = actual[i], e = expected[i];
        double diff = fabs(a - e), tol = abs_tol + rel_tol * fabs(e);
        int ok = diff <= tol || (isnan(a) && isnan(e));
        if (!ok) {
            bad++;
            double excess = isnan(diff) ? INFINITY : diff - tol;
            if (excess > worst_excess) { worst_excess = excess; worst = i; }
        }
    }
    if (bad > 0) {
        expect_fail(__FILE__, __LINE__, "%s: %zu of %zu values differ; worst [%zu] got %.9g expected %.9g", what,
                    bad, n, worst, (double)actual[worst], (double)expected[worst]);
    }
    return bad == 0;
}

/* Runs one group of tests and prints how many it counted. */
static void run_group(const char *name, void (*group)(void)) {
    int before = g_passed + g_failed;
    group();
    printf("%s: %d\n", name, g_passed + g_failed - before);
}

int g_skip_oom_group;
static const char *g_golden_dir;
static void run_golden(void) { run_golden_network(g_golden_dir); }

/* The header whose documented statuses the status table checks: the Makefile passes its path. */
#ifndef BNDROP_HEADER_PATH
#define BNDROP_HEADER_PATH "include/bndrop.h"
#endif
static const char *g_header_path;
static void run_status(void) { run_status_table(g_header_path); }

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s GOLDEN_DIR\n", argv[0]);
        return 2;
    }
    printf("bndrop %s (header %s)\n", bnd_version_string(), BND_VERSION_STRING);
    /* First, while the process has one thread: each of these tests forks. The children without
       OpenBLAS need a process that has not loaded it yet. */
    run_group("without OpenBLAS", run_no_blas_tests);
    const char *skip_oom = getenv("BNDROP_TEST_SKIP_OOM");
    g_skip_oom_group = skip_oom != NULL && strcmp(skip_oom, "1") == 0;
    if (g_skip_oom_group) printf("out of memory: skipped (BNDROP_TEST_SKIP_OOM=1)\n");
    else run_group("out of memory", run_oom_tests);
    g_golden_dir = argv[1];
    run_group("golden network", run_golden);
    run_group("bad calls", run_bad_call_tests);
    run_group("api checks", run_api_tests);
    run_group("data", run_data_tests);
    run_group("checkpoints", run_checkpoint_tests);
    run_group("failed steps", run_failed_step_tests);
    run_group("side by side", run_side_by_side_tests);
    run_group("fork", run_fork_tests);
    run_thread_tests();
    run_alloc_tests();
    g_header_path = BNDROP_HEADER_PATH;
    run_group("status table", run_status);
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed > 0 ? 1 : 0;
}
