/*
 * A C host of libconnectias_sandbox.so, built by the tests with cc and run against a real daemon:
 *   ffi_host SCENARIO ARGS...
 * Each scenario drives the library as a Dart or C host would and checks every answer (check.h).
 * This file: dispatch, every function's success path, NULL pointers and invalid UTF-8.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

static const struct {
    const char *name;
    int (*run)(int, char **);
} scenarios[] = {
    {"calls", scenario_calls},         {"nulls", scenario_nulls},
    {"utf8", scenario_utf8},           {"refusals", scenario_refusals},
    {"no-daemon", scenario_no_daemon}, {"default-socket", scenario_default_socket},
    {"restart", scenario_restart},     {"hung", scenario_hung},
    {"threads", scenario_threads},     {"shutdown-race", scenario_shutdown_race},
    {"memory", scenario_memory},
};

int main(int argc, char **argv) {
    CHECK(argc >= 2, "usage: ffi_host SCENARIO ARGS...");
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        if (strcmp(argv[1], scenarios[i].name) == 0) {
            int result = scenarios[i].run(argc - 2, argv + 2);
            printf("ok %s\n", argv[1]);
            return result;
        }
    }
    CHECK(0, "unknown scenario %s", argv[1]);
    return 2;
}

static void expect_output(const char *id, const char *command, const char *args, const char *expected) {
    char *out = NULL;
    CHECK_CODE(connectias_execute_plugin(id, command, args, &out), CONNECTIAS_OK);
    CHECK(out != NULL && strcmp(out, expected) == 0, "%s %s gave \"%s\", expected \"%s\"", id, command, out ? out : "(NULL)", expected);
    connectias_free_string(out);
}

/* calls SOCKET PACKAGE ID VERSION, with $CONNECTIAS_SANDBOX_SOCKET = SOCKET: every function's success path. */
int scenario_calls(int argc, char **argv) {
    CHECK(argc == 4, "calls SOCKET PACKAGE ID VERSION");
    const char *socket = argv[0], *package = argv[1], *id = argv[2], *version = argv[3];

    CHECK(connectias_get_last_error() == NULL, "a fresh thread has no last error");
    const char *v = connectias_version();
    CHECK(v != NULL && strcmp(v, version) == 0, "version \"%s\", expected \"%s\"", v ? v : "(NULL)", version);
    CHECK(connectias_version() == v, "the version string is static");

    CHECK_CODE(connectias_init(), CONNECTIAS_OK);
    CHECK_CODE(connectias_init(), CONNECTIAS_OK); /* idempotent */
    CHECK_CODE(connectias_init_with_socket(socket), CONNECTIAS_OK);

    LOAD(package, id);

    char *list = connectias_list_plugins();
    CHECK(list != NULL && list[0] == '[', "list_plugins gave %s", list ? list : "(NULL)");
    char expected[256];
    snprintf(expected, sizeof expected, "{\"plugin_id\":\"%s\",\"name\":\"hello\",\"version\":\"1.0.0\",\"state\":\"READY\",\"pid\":", id);
    const char *entry = strstr(list, expected);
    CHECK(entry != NULL, "list_plugins has no READY entry for %s: %s", id, list);
    CHECK(atoi(entry + strlen(expected)) > 0, "the worker pid is missing: %s", list);
    connectias_free_string(list);

    expect_output(id, "greet", "Ada", "Hello, Ada!");
    expect_output(id, "echo", "{\"name\":\"Zo\xc3\xab \xe2\x82\xac\"}", "{\"name\":\"Zo\xc3\xab \xe2\x82\xac\"}");
    expect_output(id, "echo", "", "");

    const uint8_t binary[] = {0x00, 0xff, 0x10, 'a', 0x00, 0xc0};
    uint8_t *out = NULL;
    size_t out_len = 99;
    CHECK_CODE(connectias_execute_plugin_bytes(id, "echo", binary, sizeof binary, &out, &out_len), CONNECTIAS_OK);
    CHECK(out != NULL && out_len == sizeof binary && memcmp(out, binary, sizeof binary) == 0, "binary echo gave %zu bytes", out_len);
    connectias_free_bytes(out);
    CHECK_CODE(connectias_execute_plugin_bytes(id, "echo", NULL, 0, &out, &out_len), CONNECTIAS_OK);
    CHECK(out != NULL && out_len == 0, "no arguments echo to an empty, non-NULL buffer (%zu bytes)", out_len);
    connectias_free_bytes(out);

    CHECK(connectias_get_last_error() == NULL, "successful calls set no last error");
    connectias_free_string(NULL);
    connectias_free_bytes(NULL);

    CHECK_CODE(connectias_unload_plugin(id), CONNECTIAS_OK);
    char *result = (char *)1;
    CHECK_CODE(connectias_execute_plugin(id, "greet", "Ada", &result), CONNECTIAS_ERR_PLUGIN_NOT_FOUND);
    CHECK(result == NULL, "a failed call leaves *out_result NULL");
    EXPECT_ERROR("PLUGIN_NOT_FOUND: ", id);

    connectias_shutdown();
    CHECK_CODE(connectias_execute_plugin(id, "greet", "Ada", &result), CONNECTIAS_ERR_INIT_FAILED);
    EXPECT_ERROR("DAEMON_UNAVAILABLE: ", "not initialised");
    CHECK(connectias_list_plugins() == NULL, "list_plugins after shutdown");
    EXPECT_ERROR("DAEMON_UNAVAILABLE: ", NULL);
    connectias_shutdown(); /* a second shutdown is harmless */

    CHECK_CODE(connectias_init(), CONNECTIAS_OK); /* init again after shutdown */
    list = connectias_list_plugins();
    CHECK(list != NULL, "list_plugins after a new init");
    connectias_free_string(list);
    connectias_shutdown();
    return 0;
}

/* nulls PACKAGE ID: every pointer parameter, NULL, is -2 naming the parameter. */
int scenario_nulls(int argc, char **argv) {
    CHECK(argc == 2, "nulls PACKAGE ID");
    const char *package = argv[0], *id = argv[1];
    CHECK_CODE(connectias_init_with_socket(NULL), CONNECTIAS_ERR_NULL_POINTER);
    EXPECT_ERROR("CORRUPTED_DATA: ", "socket_path is NULL");
    CHECK_CODE(connectias_init(), CONNECTIAS_OK);
    LOAD(package, id);

    CHECK(connectias_load_plugin(NULL) == NULL, "load_plugin(NULL)");
    EXPECT_ERROR("CORRUPTED_DATA: ", "package_path is NULL");
    CHECK_CODE(connectias_unload_plugin(NULL), CONNECTIAS_ERR_NULL_POINTER);
    EXPECT_ERROR("CORRUPTED_DATA: ", "plugin_id is NULL");

    char *out = (char *)1;
    CHECK_CODE(connectias_execute_plugin(NULL, "greet", "x", &out), CONNECTIAS_ERR_NULL_POINTER);
    CHECK(out == NULL, "*out_result is NULL after a refusal");
    EXPECT_ERROR("CORRUPTED_DATA: ", "plugin_id is NULL");
    CHECK_CODE(connectias_execute_plugin(id, NULL, "x", &out), CONNECTIAS_ERR_NULL_POINTER);
    EXPECT_ERROR("CORRUPTED_DATA: ", "command is NULL");
    CHECK_CODE(connectias_execute_plugin(id, "greet", NULL, &out), CONNECTIAS_ERR_NULL_POINTER);
    EXPECT_ERROR("CORRUPTED_DATA: ", "args_json is NULL");
    CHECK_CODE(connectias_execute_plugin(id, "greet", "x", NULL), CONNECTIAS_ERR_NULL_POINTER);
    EXPECT_ERROR("CORRUPTED_DATA: ", "out_result is NULL");

    const uint8_t args[] = {'x'};
    uint8_t *bytes = (uint8_t *)1;
    size_t len = 99;
    CHECK_CODE(connectias_execute_plugin_bytes(NULL, "echo", args, 1, &bytes, &len), CONNECTIAS_ERR_NULL_POINTER);
    CHECK(bytes == NULL && len == 0, "*out is NULL and *out_len 0 after a refusal");
    EXPECT_ERROR("CORRUPTED_DATA: ", "plugin_id is NULL");
    CHECK_CODE(connectias_execute_plugin_bytes(id, NULL, args, 1, &bytes, &len), CONNECTIAS_ERR_NULL_POINTER);
    EXPECT_ERROR("CORRUPTED_DATA: ", "command is NULL");
    CHECK_CODE(connectias_execute_plugin_bytes(id, "echo", NULL, 1, &bytes, &len), CONNECTIAS_ERR_NULL_POINTER);
    EXPECT_ERROR("CORRUPTED_DATA: ", "args is NULL but args_len is 1");
    CHECK_CODE(connectias_execute_plugin_bytes(id, "echo", args, 1, NULL, &len), CONNECTIAS_ERR_NULL_POINTER);
    EXPECT_ERROR("CORRUPTED_DATA: ", "out is NULL");
    CHECK_CODE(connectias_execute_plugin_bytes(id, "echo", args, 1, &bytes, NULL), CONNECTIAS_ERR_NULL_POINTER);
    EXPECT_ERROR("CORRUPTED_DATA: ", "out_len is NULL");

    connectias_free_string(NULL);
    connectias_free_bytes(NULL);
    CHECK_CODE(connectias_unload_plugin(id), CONNECTIAS_OK);
    connectias_shutdown();
    return 0;
}

/* utf8 PACKAGE ID: every string parameter refuses bytes that are not UTF-8 with -1, and so does output that is not. */
int scenario_utf8(int argc, char **argv) {
    CHECK(argc == 2, "utf8 PACKAGE ID");
    const char *package = argv[0], *id = argv[1];
    /* overlong '/', a lone continuation byte, a UTF-16 surrogate, a truncated sequence, a byte UTF-8 never uses */
    const char *invalid[] = {"\xc0\xaf", "a\x80", "\xed\xa0\x80", "\xe2\x82", "\xff"};
    CHECK_CODE(connectias_init(), CONNECTIAS_OK);
    LOAD(package, id);

    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        const char *bad = invalid[i];
        char *out = (char *)1;
        uint8_t *bytes = (uint8_t *)1;
        size_t len = 1;
        CHECK_CODE(connectias_init_with_socket(bad), CONNECTIAS_ERR_INVALID_UTF8);
        EXPECT_ERROR("CORRUPTED_DATA: ", "socket_path is not valid UTF-8");
        CHECK(connectias_load_plugin(bad) == NULL, "load_plugin of a non-UTF-8 path");
        EXPECT_ERROR("CORRUPTED_DATA: ", "package_path is not valid UTF-8");
        CHECK_CODE(connectias_unload_plugin(bad), CONNECTIAS_ERR_INVALID_UTF8);
        EXPECT_ERROR("CORRUPTED_DATA: ", "plugin_id is not valid UTF-8");
        CHECK_CODE(connectias_execute_plugin(bad, "echo", "x", &out), CONNECTIAS_ERR_INVALID_UTF8);
        EXPECT_ERROR("CORRUPTED_DATA: ", "plugin_id is not valid UTF-8");
        CHECK_CODE(connectias_execute_plugin(id, bad, "x", &out), CONNECTIAS_ERR_INVALID_UTF8);
        EXPECT_ERROR("CORRUPTED_DATA: ", "command is not valid UTF-8");
        CHECK_CODE(connectias_execute_plugin(id, "echo", bad, &out), CONNECTIAS_ERR_INVALID_UTF8);
        EXPECT_ERROR("CORRUPTED_DATA: ", "args_json is not valid UTF-8");
        CHECK(out == NULL, "*out_result is NULL after a refusal");
        CHECK_CODE(connectias_execute_plugin_bytes(bad, "echo", NULL, 0, &bytes, &len), CONNECTIAS_ERR_INVALID_UTF8);
        EXPECT_ERROR("CORRUPTED_DATA: ", "plugin_id is not valid UTF-8");
        CHECK_CODE(connectias_execute_plugin_bytes(id, bad, NULL, 0, &bytes, &len), CONNECTIAS_ERR_INVALID_UTF8);
        EXPECT_ERROR("CORRUPTED_DATA: ", "command is not valid UTF-8");
        CHECK(bytes == NULL && len == 0, "*out is NULL and *out_len 0 after a refusal");
    }

    /* greet keeps 200 bytes of its argument: 199 'a' and a two-byte 'é' leave half a character. */
    char args[202];
    memset(args, 'a', 199);
    memcpy(args + 199, "\xc3\xa9", 3);
    char *out = (char *)1;
    CHECK_CODE(connectias_execute_plugin(id, "greet", args, &out), CONNECTIAS_ERR_INVALID_UTF8);
    CHECK(out == NULL, "*out_result is NULL after output that is not UTF-8");
    EXPECT_ERROR("CORRUPTED_DATA: ", "connectias_execute_plugin_bytes");
    uint8_t *bytes = NULL;
    size_t len = 0;
    CHECK_CODE(connectias_execute_plugin_bytes(id, "greet", (const uint8_t *)args, 201, &bytes, &len), CONNECTIAS_OK);
    CHECK(len == 208 && bytes[206] == 0xc3 && bytes[207] == '!', "the same output as bytes (%zu bytes)", len);
    connectias_free_bytes(bytes);

    CHECK_CODE(connectias_unload_plugin(id), CONNECTIAS_OK);
    connectias_shutdown();
    return 0;
}
