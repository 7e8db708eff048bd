/*
 * The FFI test host: the connection over time - a daemon restarted between two calls, a daemon that
 * stops answering, and connectias_shutdown racing calls on other threads. The first two wait on stdin
 * for the test to act (await_line).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <time.h>

#include "check.h"

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void expect_greeting(const char *id) {
    char *out = NULL;
    CHECK_CODE(connectias_execute_plugin(id, "greet", "Ada", &out), CONNECTIAS_OK);
    CHECK(strcmp(out, "Hello, Ada!") == 0, "greet gave %s", out);
    connectias_free_string(out);
}

/* restart PACKAGE ID PACKAGE_FOR_THE_SECOND_DAEMON: no new init between the two daemons. */
int scenario_restart(int argc, char **argv) {
    CHECK(argc == 3, "restart PACKAGE ID SECOND_PACKAGE");
    const char *id = argv[1];
    CHECK_CODE(connectias_init(), CONNECTIAS_OK);
    LOAD(argv[0], id);
    expect_greeting(id);

    await_line("stop", "stopped");
    char *out = (char *)1;
    CHECK_CODE(connectias_execute_plugin(id, "greet", "Ada", &out), CONNECTIAS_ERR_INIT_FAILED);
    CHECK(out == NULL, "*out_result is NULL while the daemon is down");
    EXPECT_ERROR("DAEMON_UNAVAILABLE: ", NULL);
    CHECK(connectias_list_plugins() == NULL, "list_plugins while the daemon is down");
    EXPECT_ERROR("DAEMON_UNAVAILABLE: ", NULL);

    await_line("start", "started");
    char *list = connectias_list_plugins();
    CHECK(list != NULL && strcmp(list, "[]") == 0, "the new daemon lists %s", list ? list : "(NULL)");
    connectias_free_string(list);
    LOAD(argv[2], id);
    expect_greeting(id);
    CHECK_CODE(connectias_unload_plugin(id), CONNECTIAS_OK);
    connectias_shutdown();
    return 0;
}

/*
 * hung PACKAGE ID: the test replaces the daemon with a listener on the same socket that accepts and
 * never answers; each call ends at its deadline with TIMEOUT, and the host prints how long it took.
 */
int scenario_hung(int argc, char **argv) {
    CHECK(argc == 2, "hung PACKAGE ID");
    const char *id = argv[1];
    CHECK_CODE(connectias_init(), CONNECTIAS_OK);
    LOAD(argv[0], id);
    expect_greeting(id);

    await_line("stop", "stopped");
    long started = now_ms();
    char *out = (char *)1;
    CHECK_CODE(connectias_execute_plugin(id, "greet", "Ada", &out), CONNECTIAS_ERR_EXECUTION_FAILED);
    printf("execute_ms=%ld\n", now_ms() - started);
    CHECK(out == NULL, "*out_result is NULL after a timeout");
    EXPECT_ERROR("TIMEOUT: ", NULL);

    started = now_ms();
    CHECK(connectias_list_plugins() == NULL, "list_plugins from a daemon that does not answer");
    printf("list_ms=%ld\n", now_ms() - started);
    EXPECT_ERROR("TIMEOUT: ", NULL);
    connectias_shutdown();
    return 0;
}

struct caller {
    const char *id;
    int ok, unavailable;
};

static pthread_mutex_t race_lock = PTHREAD_MUTEX_INITIALIZER;
static int race_over = 0;

static int race_running(void) {
    pthread_mutex_lock(&race_lock);
    int running = !race_over;
    pthread_mutex_unlock(&race_lock);
    return running;
}

/* Calls until the main thread has finished shutting down and initialising again. */
static void *call_repeatedly(void *arg) {
    struct caller *caller = arg;
    while (race_running()) {
        char *out = NULL;
        int32_t code = connectias_execute_plugin(caller->id, "greet", "Ada", &out);
        if (code == CONNECTIAS_OK) {
            CHECK(out != NULL && strcmp(out, "Hello, Ada!") == 0, "greet gave %s", out ? out : "(NULL)");
            connectias_free_string(out);
            caller->ok++;
        } else {
            CHECK(code == CONNECTIAS_ERR_INIT_FAILED && out == NULL, "a call racing shutdown returned %d", (int)code);
            EXPECT_ERROR("DAEMON_UNAVAILABLE: ", NULL);
            caller->unavailable++;
        }
    }
    return NULL;
}

/* shutdown-race PACKAGE ID: four threads call while the main thread shuts down and initialises again, ten times. */
int scenario_shutdown_race(int argc, char **argv) {
    CHECK(argc == 2, "shutdown-race PACKAGE ID");
    const char *id = argv[1];
    CHECK_CODE(connectias_init(), CONNECTIAS_OK);
    LOAD(argv[0], id);

    struct caller callers[4];
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) {
        callers[i] = (struct caller){id, 0, 0};
        CHECK(pthread_create(&threads[i], NULL, call_repeatedly, &callers[i]) == 0, "pthread_create");
    }
    struct timespec connected = {0, 100 * 1000000L}, closed = {0, 20 * 1000000L};
    for (int i = 0; i < 10; i++) {
        nanosleep(&connected, NULL);
        connectias_shutdown();
        nanosleep(&closed, NULL);
        CHECK_CODE(connectias_init(), CONNECTIAS_OK);
    }
    nanosleep(&connected, NULL);
    pthread_mutex_lock(&race_lock);
    race_over = 1;
    pthread_mutex_unlock(&race_lock);

    int ok = 0, unavailable = 0;
    for (int i = 0; i < 4; i++) {
        CHECK(pthread_join(threads[i], NULL) == 0, "pthread_join");
        ok += callers[i].ok;
        unavailable += callers[i].unavailable;
    }
    printf("calls_ok=%d calls_unavailable=%d\n", ok, unavailable);
    CHECK(ok > 0 && unavailable > 0, "the calls did not race the shutdowns");
    expect_greeting(id);
    CHECK_CODE(connectias_unload_plugin(id), CONNECTIAS_OK);
    connectias_shutdown();
    return 0;
}
