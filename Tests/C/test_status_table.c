/* The status table: the statuses include/bndrop.h documents against the statuses the tests produce.

   Every fallible function (one returning a bnd_status) states its statuses in one sentence of its own
   comment that begins "Returns BND_ERR_..." (the header's CONVENTIONS say so): the BND_ERR_* names
   outside parentheses, up to the sentence's full stop, are the statuses it documents (parentheses give
   the reasons). The C tests record each call they check, by the first identifier of the call
   expression: every BAD / BAD_MSG row (the status it returned), every EXPECT_OK (BND_OK on success),
   and every out-of-memory row (test_oom.c; its child passes the status back as its exit code).

   Walking the header once, run_status_table then fails a function
     - whose comment has no such sentence, or lists BND_ERR_INTERNAL (a bug is never a documented
       outcome) or a name that is not a bnd_status;
     - that no test called;
     - that never returned BND_OK in a test;
     - with a documented status that no test produced;
     - with a produced status that its comment does not document;
   and a recorded bnd_* name that the header does not declare fails too (a renamed function). It prints
   one line per function (documented statuses, calls recorded per status) and a summary. */
#include <ctype.h>
#include <pthread.h>
#include <string.h>
#include "check.h"

#define STATUS_COUNT 9 /* BND_OK .. BND_ERR_INTERNAL */
#define MAX_FUNCTIONS 160
#define NAME_CAPACITY 64

static const char *const k_status_names[STATUS_COUNT] = {
    "BND_OK", "BND_ERR_INVALID_ARGUMENT", "BND_ERR_SHAPE", "BND_ERR_STATE", "BND_ERR_IO",
    "BND_ERR_FORMAT", "BND_ERR_OUT_OF_MEMORY", "BND_ERR_NUMERIC", "BND_ERR_INTERNAL"};

/* ---------------------------------------------------------------------------------------------------
   Recording (any thread; no allocation: test_alloc.c counts the allocations of training steps) */

typedef struct {
    char name[NAME_CAPACITY];
    unsigned long calls[STATUS_COUNT];
    unsigned long other_calls; /* a value outside the enum */
} seen_function;

static seen_function g_seen[MAX_FUNCTIONS];
static size_t g_seen_count;
static int g_seen_overflow;
static pthread_mutex_t g_seen_lock = PTHREAD_MUTEX_INITIALIZER;

void record_status(const char *call_text, bnd_status status) {
    char name[NAME_CAPACITY];
    size_t n = 0;
    const char *p = call_text;
    while (*p != '\0' && !(isalpha((unsigned char)*p) || *p == '_')) p++;
    while ((isalnum((unsigned char)*p) || *p == '_') && n + 1 < sizeof name) name[n++] = *p++;
    name[n] = '\0';
    if (n == 0) return;
    pthread_mutex_lock(&g_seen_lock);
    size_t i = 0;
    while (i < g_seen_count && strcmp(g_seen[i].name, name) != 0) i++;
    if (i == g_seen_count) {
        if (g_seen_count == MAX_FUNCTIONS) {
            g_seen_overflow = 1;
            pthread_mutex_unlock(&g_seen_lock);
            return;
        }
        memcpy(g_seen[i].name, name, n + 1);
        g_seen_count++;
    }
    if ((int)status >= 0 && (int)status < STATUS_COUNT) g_seen[i].calls[status]++;
    else g_seen[i].other_calls++;
    pthread_mutex_unlock(&g_seen_lock);
}

static seen_function *find_seen(const char *name) {
    for (size_t i = 0; i < g_seen_count; i++)
        if (strcmp(g_seen[i].name, name) == 0) return &g_seen[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------------------
   Reading the header */

typedef struct {
    char name[NAME_CAPACITY];
    int fallible;                    /* returns a bnd_status */
    int line;                        /* of its declaration */
    int sentences;                   /* "Returns BND_ERR_..." sentences in its comment */
    int documented[STATUS_COUNT];    /* listed by that sentence */
    char problem[160];               /* a name in the sentence that is not a status */
} declared_function;

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t size = 0, capacity = 1 << 16;
    char *text = malloc(capacity);
    size_t got;
    while (text != NULL && (got = fread(text + size, 1, capacity - size - 1, f)) > 0) {
        size += got;
        if (capacity - size - 1 == 0) {
            char *bigger = realloc(text, capacity * 2);
            if (bigger == NULL) free(text);
            text = bigger;
            capacity *= 2;
        }
    }
    fclose(f);
    if (text != NULL) text[size] = '\0';
    return text;
}

static int is_ident(char c) { return isalnum((unsigned char)c) || c == '_'; }

/* The statuses of the "Returns BND_ERR_..." sentences in comment [begin, end). */
static void read_statuses(const char *begin, const char *end, declared_function *fn) {
    for (const char *p = begin; p + 8 < end; p++) {
        if (strncmp(p, "Returns", 7) != 0 || (p > begin && is_ident(p[-1]))) continue;
        const char *q = p + 7;
        while (q < end && isspace((unsigned char)*q)) q++;
        if (end - q < 8 || strncmp(q, "BND_ERR_", 8) != 0) continue;
        fn->sentences++;
        int depth = 0;
        for (; q < end; q++) {
            if (*q == '(') depth++;
            else if (*q == ')') depth--;
            else if (*q == '.' && depth == 0 && (q + 1 == end || isspace((unsigned char)q[1]))) break;
            else if (depth == 0 && strncmp(q, "BND_", 4) == 0 && (q == begin || !is_ident(q[-1]))) {
                const char *t = q;
                while (t < end && is_ident(*t)) t++;
                int known = -1;
                for (int s = 1; s < STATUS_COUNT; s++)
                    if ((size_t)(t - q) == strlen(k_status_names[s]) && strncmp(q, k_status_names[s], t - q) == 0)
                        known = s;
                if (known > 0) fn->documented[known] = 1;
                else if (fn->problem[0] == '\0')
                    snprintf(fn->problem, sizeof fn->problem, "'%.*s' in its Returns sentence is not a bnd_status",
                             (int)(t - q), q);
                q = t - 1;
            }
        }
        p = q;
    }
}

/* Walks the header: every BND_API declaration with the comment block right above it (no blank line in
   between; consecutive declarations share one comment). Returns the number of functions, -1 on error. */
static int read_header(const char *text, declared_function *fns, int capacity) {
    int count = 0, line = 1, at_line_start = 1;
    const char *comment = NULL, *comment_end = NULL; /* the attached comment's text */
    const char *p = text;
    while (*p != '\0') {
        if (*p == '\n') {
            line++;
            p++;
            /* a blank line detaches the comment above it */
            const char *q = p;
            while (*q == ' ' || *q == '\t') q++;
            if (*q == '\n') comment = NULL;
            at_line_start = 1;
            continue;
        }
        if (*p == ' ' || *p == '\t' || *p == '\r') { p++; continue; }
        if (p[0] == '/' && p[1] == '*') {
            const char *close = strstr(p + 2, "*/");
            if (close == NULL) return -1;
            if (at_line_start) { comment = p + 2; comment_end = close; }
            for (const char *c = p; c < close; c++) line += *c == '\n';
            p = close + 2;
            continue;
        }
        if (strncmp(p, "BND_API", 7) == 0 && !is_ident(p[7]) && at_line_start) {
            const char *semicolon = strchr(p, ';'), *paren = strchr(p, '(');
            if (semicolon == NULL || paren == NULL || paren > semicolon || count == capacity) return -1;
            const char *name_end = paren, *name_begin;
            while (name_end > p && isspace((unsigned char)name_end[-1])) name_end--;
            name_begin = name_end;
            while (name_begin > p && is_ident(name_begin[-1])) name_begin--;
            declared_function *fn = &fns[count++];
            memset(fn, 0, sizeof *fn);
            snprintf(fn->name, sizeof fn->name, "%.*s", (int)(name_end - name_begin), name_begin);
            fn->line = line;
            /* the return type: the text between BND_API and the name */
            const char *type = p + 7;
            while (isspace((unsigned char)*type)) type++;
            const char *type_end = name_begin;
            while (type_end > type && isspace((unsigned char)type_end[-1])) type_end--;
            fn->fallible = type_end - type == 10 && strncmp(type, "bnd_status", 10) == 0;
            if (comment != NULL) read_statuses(comment, comment_end, fn);
            for (const char *c = p; c < semicolon; c++) line += *c == '\n';
            p = semicolon + 1;
            at_line_start = 0;
            continue;
        }
        /* anything else (code, a preprocessor line): the comment above belongs to it */
        comment = NULL;
        at_line_start = 0;
        while (*p != '\0' && *p != '\n') {
            if (p[0] == '/' && p[1] == '*') break; /* a comment after code: handled above, not attached */
            p++;
        }
    }
    return count;
}

/* ---------------------------------------------------------------------------------------------------
   The check */

static void format_statuses(char *out, size_t capacity, const int *set, const unsigned long *calls) {
    size_t used = 0;
    out[0] = '\0';
    for (int s = 1; s < STATUS_COUNT && used < capacity; s++) {
        if (set != NULL && !set[s]) continue;
        if (calls != NULL && calls[s] == 0) continue;
        const char *short_name = k_status_names[s] + strlen("BND_ERR_");
        int n = calls != NULL ? snprintf(out + used, capacity - used, "%s%s %lu", used ? ", " : "", short_name, calls[s])
                              : snprintf(out + used, capacity - used, "%s%s", used ? ", " : "", short_name);
        if (n < 0) break;
        used += (size_t)n;
    }
}

void run_status_table(const char *header_path) {
    static declared_function fns[MAX_FUNCTIONS];
    test_begin("status table: the header can be read");
    char *text = read_file(header_path);
    EXPECT(text != NULL, "cannot read %s", header_path);
    int count = text != NULL ? read_header(text, fns, MAX_FUNCTIONS) : -1;
    EXPECT(text == NULL || count > 0, "cannot parse the BND_API declarations of %s", header_path);
    EXPECT(!g_seen_overflow, "more than %d distinct functions recorded", MAX_FUNCTIONS);
    free(text);
    if (!test_end()) return;

    int fallible = 0, documented = 0, covered = 0;
    unsigned long calls = 0;
    printf("status table (%s): documented statuses | calls per status\n", header_path);
    for (int i = 0; i < count; i++) {
        declared_function *fn = &fns[i];
        seen_function *seen = find_seen(fn->name);
        char title[NAME_CAPACITY + 32];
        snprintf(title, sizeof title, "status table: %.63s", fn->name);
        if (!fn->fallible) continue; /* void, a value, a struct: nothing to report */
        fallible++;
        test_begin(title);
        EXPECT(fn->sentences == 1, "%s (line %d): its comment has %d \"Returns BND_ERR_...\" sentences, not 1",
               fn->name, fn->line, fn->sentences);
        EXPECT(fn->problem[0] == '\0', "%s (line %d): %s", fn->name, fn->line, fn->problem);
        EXPECT(!fn->documented[BND_ERR_INTERNAL], "%s (line %d) documents BND_ERR_INTERNAL, a bug in bndrop",
               fn->name, fn->line);
        EXPECT(seen != NULL, "%s: no test calls it (no BAD row, EXPECT_OK or out-of-memory row)", fn->name);
        if (seen != NULL) {
            EXPECT(seen->calls[BND_OK] > 0, "%s: no test call succeeded (EXPECT_OK)", fn->name);
            EXPECT(seen->other_calls == 0, "%s returned a value outside bnd_status %lu times", fn->name,
                   seen->other_calls);
            for (int s = 1; s < STATUS_COUNT; s++) {
                calls += seen->calls[s];
                if (fn->documented[s] && seen->calls[s] == 0 && s == BND_ERR_OUT_OF_MEMORY && g_skip_oom_group)
                    continue; /* the out-of-memory group did not run (see test_main.c) */
                if (fn->documented[s] && seen->calls[s] == 0)
                    EXPECT(0, "%s: documented %s, which no test produced", fn->name, k_status_names[s]);
                if (!fn->documented[s] && seen->calls[s] > 0)
                    EXPECT(0, "%s returned %s (%lu calls), which its comment does not document", fn->name,
                           k_status_names[s], seen->calls[s]);
            }
            calls += seen->calls[BND_OK];
        }
        for (int s = 1; s < STATUS_COUNT; s++) {
            documented += fn->documented[s];
            covered += fn->documented[s] && seen != NULL && seen->calls[s] > 0;
        }
        char listed[200], produced[240];
        format_statuses(listed, sizeof listed, fn->documented, NULL);
        produced[0] = '\0';
        if (seen != NULL) format_statuses(produced, sizeof produced, NULL, seen->calls);
        printf("  %-34s | %-58s | OK %lu%s%s\n", fn->name, listed, seen != NULL ? seen->calls[BND_OK] : 0UL,
               produced[0] ? ", " : "", produced);
        test_end();
    }

    test_begin("status table: every recorded bnd_* function is declared");
    for (size_t j = 0; j < g_seen_count; j++) {
        if (strncmp(g_seen[j].name, "bnd_", 4) != 0) continue; /* a helper of the tests */
        int found = 0;
        for (int i = 0; i < count && !found; i++) found = strcmp(fns[i].name, g_seen[j].name) == 0;
        EXPECT(found, "%s was called in a test but is not declared in %s", g_seen[j].name, header_path);
    }
    test_end();
    printf("status table: %d functions, %d return a bnd_status; %d documented (function, status) pairs, "
           "%d covered; %lu calls recorded%s\n", count, fallible, documented, covered, calls,
           g_skip_oom_group ? " (out-of-memory group skipped: BND_ERR_OUT_OF_MEMORY not required)" : "");
}
