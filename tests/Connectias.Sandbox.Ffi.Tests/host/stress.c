/*
 * The FFI test host under load: eight threads each keeping their own last error, and 10,000 calls
 * measured for growth of the host's resident memory.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

enum { THREADS = 8, ROUNDS = 20 };

static pthread_barrier_t start_together;
static const char *hello_id, *commands_id, *tampered;

/* What thread N provokes: the code, the reason, and text of its message (%d is the round, so a stale error shows). */
static const struct {
    int32_t code;
    const char *reason, *text;
} kinds[THREADS] = {
    {CONNECTIAS_ERR_PLUGIN_NOT_FOUND, "PLUGIN_NOT_FOUND: ", "com.test.ffi.ghost-t0-r%d"},  /* execute of an unknown id */
    {CONNECTIAS_ERR_PLUGIN_NOT_FOUND, "PLUGIN_NOT_FOUND: ", "com.test.ffi.ghost-t1-r%d"},  /* unload of an unknown id */
    {CONNECTIAS_ERR_EXECUTION_FAILED, "PLUGIN_ERROR: ", "failure requested by the caller"}, /* hello's fail */
    {CONNECTIAS_ERR_INVALID_COMMAND, "INVALID_COMMAND: ", "undeclared-t3-r%d"},            /* a command not declared */
    {0, "INVALID_SIGNATURE: ", "signature"},                                               /* load of a tampered package */
    {CONNECTIAS_ERR_NULL_POINTER, "CORRUPTED_DATA: ", "plugin_id is NULL"},
    {CONNECTIAS_ERR_INVALID_UTF8, "CORRUPTED_DATA: ", "command is not valid UTF-8"},
    {0, "CORRUPTED_DATA: ", "/nonexistent/thread-7-round-%d.zip"},                         /* load of a missing file */
};

static int32_t provoke_one(int index, const char *text, char **out) {
    char *id = NULL;
    switch (index) {
    case 0: return connectias_execute_plugin(text, "greet", "x", out);
    case 1: return connectias_unload_plugin(text);
    case 2: return connectias_execute_plugin(hello_id, "fail", "x", out);
    case 3: return connectias_execute_plugin(commands_id, text, "x", out);
    case 4: id = connectias_load_plugin(tampered); break;
    case 5: return connectias_execute_plugin(NULL, "greet", "x", out);
    case 6: return connectias_execute_plugin(hello_id, "\xc3(", "x", out);
    default: id = connectias_load_plugin(text); break;
    }
    CHECK(id == NULL, "thread %d loaded a package it should not", index);
    return 0;
}

/* Each thread provokes its own kind of error, then checks that its last error is its own. */
static void *provoke(void *arg) {
    int index = (int)(intptr_t)arg;
    pthread_barrier_wait(&start_together);
    for (int round = 0; round < ROUNDS; round++) {
        char text[128], *out = NULL;
        snprintf(text, sizeof text, kinds[index].text, round);
        int32_t code = provoke_one(index, text, &out);
        CHECK(code == kinds[index].code && out == NULL, "thread %d round %d returned %d, expected %d", index, round, (int)code, (int)kinds[index].code);
        /* A successful call of this thread while the others fail does not touch its last error. */
        char *greeting = NULL;
        CHECK_CODE(connectias_execute_plugin(hello_id, "greet", "x", &greeting), CONNECTIAS_OK);
        connectias_free_string(greeting);
        EXPECT_ERROR(kinds[index].reason, text);
    }
    return NULL;
}

/* threads HELLO HELLO_ID COMMANDS COMMANDS_ID TAMPERED */
int scenario_threads(int argc, char **argv) {
    CHECK(argc == 5, "threads HELLO HELLO_ID COMMANDS COMMANDS_ID TAMPERED");
    hello_id = argv[1], commands_id = argv[3], tampered = argv[4];
    CHECK_CODE(connectias_init(), CONNECTIAS_OK);
    LOAD(argv[0], hello_id);
    LOAD(argv[2], commands_id);

    pthread_t threads[THREADS];
    CHECK(pthread_barrier_init(&start_together, NULL, THREADS) == 0, "pthread_barrier_init");
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&threads[i], NULL, provoke, (void *)(intptr_t)i) == 0, "pthread_create");
    for (int i = 0; i < THREADS; i++) CHECK(pthread_join(threads[i], NULL) == 0, "pthread_join");
    pthread_barrier_destroy(&start_together);
    CHECK(connectias_get_last_error() == NULL, "the main thread saw none of the threads' errors");

    CHECK_CODE(connectias_unload_plugin(hello_id), CONNECTIAS_OK);
    CHECK_CODE(connectias_unload_plugin(commands_id), CONNECTIAS_OK);
    connectias_shutdown();
    return 0;
}

static long resident_kib(void) {
    long size = 0, resident = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    CHECK(statm != NULL && fscanf(statm, "%ld %ld", &size, &resident) == 2, "cannot read /proc/self/statm");
    fclose(statm);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void echo_calls(const char *id, const char *args, size_t args_len, int calls) {
    for (int i = 0; i < calls; i++) {
        char *out = NULL;
        CHECK_CODE(connectias_execute_plugin(id, "echo", args, &out), CONNECTIAS_OK);
        CHECK(strlen(out) == args_len && memcmp(out, args, args_len) == 0, "call %d echoed something else", i);
        connectias_free_string(out);
    }
}

/* memory PACKAGE ID: RSS after 1,000 warm-up calls and after 10,000 more, each echoing 4 KiB. */
int scenario_memory(int argc, char **argv) {
    CHECK(argc == 2, "memory PACKAGE ID");
    const char *id = argv[1];
    static char args[4097];
    memset(args, 'x', 4096);
    CHECK_CODE(connectias_init(), CONNECTIAS_OK);
    LOAD(argv[0], id);

    echo_calls(id, args, 4096, 1000);
    long warm = resident_kib();
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    echo_calls(id, args, 4096, 10000);
    clock_gettime(CLOCK_MONOTONIC, &end);
    long after = resident_kib();
    long elapsed = (long)(end.tv_sec - start.tv_sec) * 1000 + (end.tv_nsec - start.tv_nsec) / 1000000;
    printf("rss_warm_kib=%ld rss_after_kib=%ld calls=10000 elapsed_ms=%ld\n", warm, after, elapsed);

    CHECK_CODE(connectias_unload_plugin(id), CONNECTIAS_OK);
    connectias_shutdown();
    return 0;
}
