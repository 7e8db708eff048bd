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

/* Each thread provokes its own kind of error, with a token unique to the thread and round where the message can carry one. */
static void *provoke(void *arg) {
    int index = (int)(intptr_t)arg;
    pthread_barrier_wait(&start_together);
    for (int round = 0; round < ROUNDS; round++) {
        char token[128], *out = NULL, *id = NULL;
        const char *reason;
        int32_t code = 0, expected = 0;
        switch (index) {
        case 0:
            snprintf(token, sizeof token, "com.test.ffi.ghost-t0-r%d", round);
            code = connectias_execute_plugin(token, "greet", "x", &out), expected = CONNECTIAS_ERR_PLUGIN_NOT_FOUND, reason = "PLUGIN_NOT_FOUND: ";
            break;
        case 1:
            snprintf(token, sizeof token, "com.test.ffi.ghost-t1-r%d", round);
            code = connectias_unload_plugin(token), expected = CONNECTIAS_ERR_PLUGIN_NOT_FOUND, reason = "PLUGIN_NOT_FOUND: ";
            break;
        case 2:
            snprintf(token, sizeof token, "failure requested by the caller");
            code = connectias_execute_plugin(hello_id, "fail", "x", &out), expected = CONNECTIAS_ERR_EXECUTION_FAILED, reason = "PLUGIN_ERROR: ";
            break;
        case 3:
            snprintf(token, sizeof token, "undeclared-t3-r%d", round);
            code = connectias_execute_plugin(commands_id, token, "x", &out), expected = CONNECTIAS_ERR_INVALID_COMMAND, reason = "INVALID_COMMAND: ";
            break;
        case 4:
            snprintf(token, sizeof token, "signature");
            id = connectias_load_plugin(tampered), expected = 0, reason = "INVALID_SIGNATURE: ";
            CHECK(id == NULL, "thread 4 loaded a tampered package");
            break;
        case 5:
            snprintf(token, sizeof token, "plugin_id is NULL");
            code = connectias_execute_plugin(NULL, "greet", "x", &out), expected = CONNECTIAS_ERR_NULL_POINTER, reason = "CORRUPTED_DATA: ";
            break;
        case 6:
            snprintf(token, sizeof token, "command is not valid UTF-8");
            code = connectias_execute_plugin(hello_id, "\xc3(", "x", &out), expected = CONNECTIAS_ERR_INVALID_UTF8, reason = "CORRUPTED_DATA: ";
            break;
        default:
            snprintf(token, sizeof token, "/nonexistent/thread-7-round-%d.zip", round);
            id = connectias_load_plugin(token), expected = 0, reason = "CORRUPTED_DATA: ";
            CHECK(id == NULL, "thread 7 loaded a missing file");
            break;
        }
        CHECK(code == expected && out == NULL, "thread %d round %d returned %d, expected %d", index, round, (int)code, (int)expected);
        /* A successful call of this thread while the others fail does not touch its last error. */
        char *greeting = NULL;
        CHECK_CODE(connectias_execute_plugin(hello_id, "greet", "x", &greeting), CONNECTIAS_OK);
        connectias_free_string(greeting);
        EXPECT_ERROR(reason, token);
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
