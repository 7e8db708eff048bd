/*
 * The FFI test host: refusals and connection failures, each with its SPEC section 7 code and the
 * section 4 reason at the start of the last error.
 */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

static void load_refused(const char *package, const char *reason, const char *text) {
    char *id = connectias_load_plugin(package);
    CHECK(id == NULL, "load of %s gave %s", package, id ? id : "");
    EXPECT_ERROR(reason, text);
}

/* refusals HELLO HELLO_ID COMMANDS COMMANDS_ID TAMPERED UNTRUSTED MISSING */
int scenario_refusals(int argc, char **argv) {
    CHECK(argc == 7, "refusals HELLO HELLO_ID COMMANDS COMMANDS_ID TAMPERED UNTRUSTED MISSING");
    const char *hello = argv[0], *hello_id = argv[1], *commands = argv[2], *commands_id = argv[3];
    CHECK_CODE(connectias_init(), CONNECTIAS_OK);

    char *out = (char *)1;
    uint8_t *bytes = (uint8_t *)1;
    size_t len = 1;
    CHECK_CODE(connectias_execute_plugin("com.test.ffi.absent", "greet", "x", &out), CONNECTIAS_ERR_PLUGIN_NOT_FOUND);
    CHECK(out == NULL, "*out_result is NULL after a refusal");
    EXPECT_ERROR("PLUGIN_NOT_FOUND: ", "com.test.ffi.absent");
    CHECK_CODE(connectias_execute_plugin_bytes("com.test.ffi.absent", "echo", NULL, 0, &bytes, &len), CONNECTIAS_ERR_PLUGIN_NOT_FOUND);
    CHECK(bytes == NULL && len == 0, "*out is NULL and *out_len 0 after a refusal");
    EXPECT_ERROR("PLUGIN_NOT_FOUND: ", "com.test.ffi.absent");
    CHECK_CODE(connectias_unload_plugin("com.test.ffi.absent"), CONNECTIAS_ERR_PLUGIN_NOT_FOUND);
    EXPECT_ERROR("PLUGIN_NOT_FOUND: ", "com.test.ffi.absent");

    LOAD(hello, hello_id);
    CHECK_CODE(connectias_execute_plugin(hello_id, "fail", "{}", &out), CONNECTIAS_ERR_EXECUTION_FAILED);
    CHECK(out == NULL, "*out_result is NULL after a plugin error");
    EXPECT_ERROR("PLUGIN_ERROR: ", "returned error code 42: failure requested by the caller");
    CHECK_CODE(connectias_execute_plugin_bytes(hello_id, "fail", NULL, 0, &bytes, &len), CONNECTIAS_ERR_EXECUTION_FAILED);
    EXPECT_ERROR("PLUGIN_ERROR: ", "failure requested by the caller");
    load_refused(hello, "ALREADY_LOADED: ", hello_id);

    LOAD(commands, commands_id);
    CHECK_CODE(connectias_execute_plugin(commands_id, "echo", "x", &out), CONNECTIAS_ERR_INVALID_COMMAND);
    EXPECT_ERROR("INVALID_COMMAND: ", "echo");
    CHECK_CODE(connectias_execute_plugin(commands_id, "greet", "Bo", &out), CONNECTIAS_OK); /* a declared command runs */
    CHECK(strcmp(out, "Hello, Bo!") == 0, "greet gave %s", out);
    connectias_free_string(out);

    load_refused(argv[4], "INVALID_SIGNATURE: ", NULL); /* signed, then one byte of plugin.json changed */
    load_refused(argv[5], "INVALID_SIGNATURE: ", NULL); /* signed by a key the daemon does not trust */
    load_refused(argv[6], "CORRUPTED_DATA: ", "cannot read package file");

    CHECK_CODE(connectias_unload_plugin(hello_id), CONNECTIAS_OK);
    CHECK_CODE(connectias_unload_plugin(commands_id), CONNECTIAS_OK);
    connectias_shutdown();
    return 0;
}

/* no-daemon MISSING_SOCKET PACKAGE, with $CONNECTIAS_SANDBOX_SOCKET = MISSING_SOCKET: every call is -3. */
int scenario_no_daemon(int argc, char **argv) {
    CHECK(argc == 2, "no-daemon MISSING_SOCKET PACKAGE");
    const char *missing = argv[0], *package = argv[1];
    char *out = (char *)1;
    CHECK_CODE(connectias_execute_plugin("com.test.ffi.any", "greet", "x", &out), CONNECTIAS_ERR_INIT_FAILED);
    CHECK(out == NULL, "*out_result is NULL before init");
    EXPECT_ERROR("DAEMON_UNAVAILABLE: ", "not initialised");

    CHECK_CODE(connectias_init(), CONNECTIAS_ERR_INIT_FAILED);
    EXPECT_ERROR("DAEMON_UNAVAILABLE: ", missing);
    CHECK_CODE(connectias_init_with_socket(missing), CONNECTIAS_ERR_INIT_FAILED);
    EXPECT_ERROR("DAEMON_UNAVAILABLE: ", missing);

    /* A failed init leaves the library uninitialised: every call says so. */
    CHECK(connectias_list_plugins() == NULL, "list_plugins without a daemon");
    EXPECT_ERROR("DAEMON_UNAVAILABLE: ", "not initialised");
    CHECK(connectias_load_plugin(package) == NULL, "load_plugin without a daemon");
    EXPECT_ERROR("DAEMON_UNAVAILABLE: ", NULL);
    CHECK_CODE(connectias_unload_plugin("com.test.ffi.any"), CONNECTIAS_ERR_INIT_FAILED);
    EXPECT_ERROR("DAEMON_UNAVAILABLE: ", NULL);
    uint8_t *bytes = (uint8_t *)1;
    size_t len = 1;
    CHECK_CODE(connectias_execute_plugin_bytes("com.test.ffi.any", "echo", NULL, 0, &bytes, &len), CONNECTIAS_ERR_INIT_FAILED);
    EXPECT_ERROR("DAEMON_UNAVAILABLE: ", NULL);
    connectias_shutdown(); /* harmless without a connection */
    return 0;
}

/* default-socket PACKAGE ID, with no $CONNECTIAS_SANDBOX_SOCKET and $XDG_STATE_HOME set: init finds the default daemon. */
int scenario_default_socket(int argc, char **argv) {
    CHECK(argc == 2, "default-socket PACKAGE ID");
    CHECK(getenv("CONNECTIAS_SANDBOX_SOCKET") == NULL, "the test must not set CONNECTIAS_SANDBOX_SOCKET");
    CHECK_CODE(connectias_init(), CONNECTIAS_OK);
    LOAD(argv[0], argv[1]);
    CHECK_CODE(connectias_unload_plugin(argv[1]), CONNECTIAS_OK);
    connectias_shutdown();
    return 0;
}
