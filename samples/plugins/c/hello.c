/*
 * The well-behaved sample: every export and every import of ABI v1.
 * Commands: greet, echo, count (state across calls), store/load/forget (storage), sysinfo, log
 * (log levels and WASI stdout/stderr), context (the ctx JSON plugin_init received), fail (an
 * ordinary plugin error).
 */
#include <stdio.h>
#include <string.h>
#include "connectias_plugin.h"

CONNECTIAS_DEFINE_ALLOCATOR()

static char *saved_context = NULL;
static int32_t saved_context_len = 0;
static int64_t call_count = 0;

static int command_is(const char *command, int32_t len, const char *name) {
    return (int32_t)strlen(name) == len && memcmp(command, name, (size_t)len) == 0;
}

CONNECTIAS_EXPORT(plugin_init) int32_t plugin_init(const char *context_json, int32_t context_len) {
    saved_context = malloc((size_t)context_len);
    if (saved_context == NULL) return 1;
    memcpy(saved_context, context_json, (size_t)context_len);
    saved_context_len = context_len;
    connectias_log_str(CONNECTIAS_LOG_INFO, "hello plugin initialised");
    return 0;
}

CONNECTIAS_EXPORT(plugin_cleanup) int32_t plugin_cleanup(void) {
    connectias_log_str(CONNECTIAS_LOG_INFO, "hello plugin cleaning up");
    free(saved_context);
    saved_context = NULL;
    return 0;
}

/* args "key=value" */
static int32_t store(const uint8_t *args, int32_t len) {
    const uint8_t *equals = memchr(args, '=', (size_t)len);
    if (equals == NULL) {
        connectias_error_str("store expects key=value");
        return 2;
    }
    int32_t key_len = (int32_t)(equals - args);
    int32_t result = connectias_storage_set(args, key_len, equals + 1, len - key_len - 1);
    if (result != 0) {
        char message[64];
        snprintf(message, sizeof message, "storage_set failed with %d", (int)result);
        connectias_error_str(message);
        return 3;
    }
    connectias_output_str("stored");
    return 0;
}

static int32_t load(const uint8_t *key, int32_t len) {
    int64_t result = connectias_storage_get(key, len);
    if (result == CONNECTIAS_NOT_FOUND) {
        connectias_error_str("not found");
        return 4;
    }
    if (connectias_is_error(result)) {
        connectias_error_str("storage_get failed");
        return 5;
    }
    connectias_output(connectias_result_ptr(result), connectias_result_len(result));
    return 0;
}

CONNECTIAS_EXPORT(plugin_execute)
int32_t plugin_execute(const char *command, int32_t command_len, const uint8_t *args, int32_t args_len) {
    call_count++;
    if (command_is(command, command_len, "greet")) {
        char greeting[256];
        int n = snprintf(greeting, sizeof greeting, "Hello, %.*s!", (int)(args_len > 200 ? 200 : args_len), (const char *)args);
        connectias_output(greeting, n);
        return 0;
    }
    if (command_is(command, command_len, "echo")) {
        connectias_output(args, args_len);
        return 0;
    }
    if (command_is(command, command_len, "count")) {
        char text[32];
        int n = snprintf(text, sizeof text, "%lld", (long long)call_count);
        connectias_output(text, n);
        return 0;
    }
    if (command_is(command, command_len, "store")) return store(args, args_len);
    if (command_is(command, command_len, "load")) return load(args, args_len);
    if (command_is(command, command_len, "forget")) {
        int32_t result = connectias_storage_delete(args, args_len);
        connectias_output_str(result == 0 ? "forgotten" : "absent");
        return 0;
    }
    if (command_is(command, command_len, "sysinfo")) {
        int64_t result = connectias_system_info();
        if (connectias_is_error(result)) return 6;
        connectias_output(connectias_result_ptr(result), connectias_result_len(result));
        return 0;
    }
    if (command_is(command, command_len, "log")) {
        for (int level = CONNECTIAS_LOG_TRACE; level <= CONNECTIAS_LOG_ERROR; level++) {
            char line[32];
            int n = snprintf(line, sizeof line, "log line at level %d", level);
            connectias_log(level, line, n);
        }
        printf("printf to stdout %d\n", 42);
        fprintf(stderr, "fprintf to stderr\n");
        fflush(stdout);
        connectias_output_str("logged");
        return 0;
    }
    if (command_is(command, command_len, "context")) {
        connectias_output(saved_context, saved_context_len);
        return 0;
    }
    if (command_is(command, command_len, "fail")) {
        connectias_error_str("failure requested by the caller");
        return 42;
    }
    connectias_error_str("unknown command");
    return 1;
}
