/*
 * Checks for the FFI test host. A failed check prints "FAIL file:line: ..." on stderr and exits 1, so
 * the C# test sees the exit code and the reason; the scenarios print "ok SCENARIO" when they finish.
 */
#ifndef FFI_HOST_CHECK_H
#define FFI_HOST_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectias_sandbox.h"

#define CHECK(condition, ...)                                              \
    do {                                                                   \
        if (!(condition)) {                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);           \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

/* The call returns the expected code; on a mismatch the last error is shown too. */
#define CHECK_CODE(call, expected)                                                                  \
    do {                                                                                            \
        int32_t code_ = (call);                                                                     \
        if (code_ != (expected)) {                                                                  \
            char *error_ = connectias_get_last_error();                                             \
            CHECK(0, "%s returned %d, expected %d (last error: %s)", #call, (int)code_, (int)(expected), \
                  error_ ? error_ : "none");                                                        \
        }                                                                                           \
    } while (0)

/* Loads a package and checks the id it returns; on failure the last error is shown. */
#define LOAD(package, expected_id) load_package(__FILE__, __LINE__, (package), (expected_id))

static inline void load_package(const char *file, int line, const char *package, const char *expected_id) {
    char *id = connectias_load_plugin(package);
    if (id == NULL || (expected_id != NULL && strcmp(id, expected_id) != 0)) {
        char *error = connectias_get_last_error();
        fprintf(stderr, "FAIL %s:%d: load of %s gave %s (last error: %s)\n", file, line, package, id ? id : "NULL", error ? error : "none");
        exit(1);
    }
    connectias_free_string(id);
}

/* This thread's last error starts with reason ("PLUGIN_ERROR: ") and contains text (if not NULL); reading it cleared it. */
#define EXPECT_ERROR(reason, text) expect_error(__FILE__, __LINE__, (reason), (text))

static inline void expect_error(const char *file, int line, const char *reason, const char *text) {
    char *error = connectias_get_last_error();
    if (error == NULL || strncmp(error, reason, strlen(reason)) != 0 || (text != NULL && strstr(error, text) == NULL)) {
        fprintf(stderr, "FAIL %s:%d: last error is \"%s\", expected \"%s...%s\"\n", file, line,
                error ? error : "(none)", reason, text ? text : "");
        exit(1);
    }
    connectias_free_string(error);
    char *again = connectias_get_last_error();
    if (again != NULL) {
        fprintf(stderr, "FAIL %s:%d: reading the last error did not clear it: \"%s\"\n", file, line, again);
        exit(1);
    }
}

/* Waits for the test to say it did what the host asked for (stop a daemon, start one). */
static inline void await_line(const char *request, const char *expected) {
    char line[64];
    printf("%s\n", request);
    fflush(stdout);
    CHECK(fgets(line, sizeof line, stdin) != NULL, "stdin closed while waiting for %s", expected);
    CHECK(strncmp(line, expected, strlen(expected)) == 0, "got \"%s\" while waiting for %s", line, expected);
}

int scenario_calls(int argc, char **argv);
int scenario_nulls(int argc, char **argv);
int scenario_utf8(int argc, char **argv);
int scenario_refusals(int argc, char **argv);
int scenario_no_daemon(int argc, char **argv);
int scenario_default_socket(int argc, char **argv);
int scenario_restart(int argc, char **argv);
int scenario_hung(int argc, char **argv);
int scenario_threads(int argc, char **argv);
int scenario_shutdown_race(int argc, char **argv);
int scenario_memory(int argc, char **argv);

#endif
