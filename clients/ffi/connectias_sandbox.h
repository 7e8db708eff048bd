/*
 * connectias_sandbox.h - the C ABI of libconnectias_sandbox.so (SPEC section 7).
 *
 * The original Connectias FFI bridge's functions, each performed as a call to connectias-sandboxd over
 * its Unix socket, so a host that loaded plugins in-process moves to the daemon without changing its
 * calling code. The library is a NativeAOT build: the host needs no .NET runtime.
 *
 * Conventions:
 *   - Strings are UTF-8 and NUL-terminated. Arguments are checked strictly: a NULL pointer is
 *     CONNECTIAS_ERR_NULL_POINTER, bytes that are not UTF-8 (overlong forms and surrogates included)
 *     are CONNECTIAS_ERR_INVALID_UTF8; both are reported before anything reaches the daemon.
 *   - A char* or uint8_t* the library returns belongs to the caller: release it with
 *     connectias_free_string or connectias_free_bytes, and with nothing else (not free()).
 *     connectias_version is the one exception: its string is static.
 *   - Every function may be called from any thread at any time.
 *   - A failing call sets this thread's last error, "REASON: message", where REASON is a SPEC section 4
 *     reason (PLUGIN_ERROR, INVALID_SIGNATURE, TIMEOUT, ...) or DAEMON_UNAVAILABLE. A bad argument
 *     reports CORRUPTED_DATA (the section 4 reason for a malformed request) naming the parameter.
 *   - No call blocks longer than the plugin's timeout_ms plus a few seconds (see docs/ffi-hosts.md);
 *     a daemon restarted between two calls is reached again by the next call.
 */
#ifndef CONNECTIAS_SANDBOX_H
#define CONNECTIAS_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes, as the original bridge numbered them. */
#define CONNECTIAS_OK 0
/* An argument, or for connectias_execute_plugin the plugin's output, is not UTF-8 without NUL. */
#define CONNECTIAS_ERR_INVALID_UTF8 (-1)
/* A pointer argument is NULL. */
#define CONNECTIAS_ERR_NULL_POINTER (-2)
/* Not initialised, or the daemon cannot be reached (last error DAEMON_UNAVAILABLE: ...). */
#define CONNECTIAS_ERR_INIT_FAILED (-3)
/* No plugin with that id is loaded. */
#define CONNECTIAS_ERR_PLUGIN_NOT_FOUND (-4)
/* The plugin failed: PLUGIN_ERROR, a limit, a trap, a crash, TIMEOUT, QUEUE_FULL; see the last error. */
#define CONNECTIAS_ERR_EXECUTION_FAILED (-5)
/* INVALID_SIGNATURE, PERMISSION_DENIED or SECURITY_VIOLATION. */
#define CONNECTIAS_ERR_SECURITY_VIOLATION (-6)
/* Any other refusal of a load (CORRUPTED_DATA, UNSUPPORTED_VERSION, ALREADY_LOADED, INIT_FAILED, ...). */
#define CONNECTIAS_ERR_LOAD_FAILED (-8)
/* The plugin's manifest declares its commands and this is not one of them. */
#define CONNECTIAS_ERR_INVALID_COMMAND (-9)

/*
 * Connects to the socket in $CONNECTIAS_SANDBOX_SOCKET, else the default daemon's socket
 * ($XDG_STATE_HOME/connectias-sandbox/run/sandboxd.sock, or ~/.local/state/... without XDG_STATE_HOME),
 * and checks that a daemon answers. Returns CONNECTIAS_OK, or CONNECTIAS_ERR_INIT_FAILED with the last
 * error "DAEMON_UNAVAILABLE: ...". Idempotent: calling it again while connected keeps the connection.
 * A failed call leaves an earlier connection in place.
 */
int32_t connectias_init(void);

/*
 * As connectias_init, with an explicit socket path. Called with another path while connected, it
 * switches to that daemon once it answers. Returns CONNECTIAS_OK, -1, -2 or -3.
 */
int32_t connectias_init_with_socket(const char *socket_path);

/* The library's version, e.g. "1.0.0". Static: never free it. */
const char *connectias_version(void);

/*
 * Reads the package file (a signed plugin ZIP) and loads it into the daemon, which need not see the
 * file. Returns the plugin id once the plugin is READY (free it with connectias_free_string), or NULL
 * with the last error set (INVALID_SIGNATURE, CORRUPTED_DATA, PERMISSION_DENIED, DAEMON_UNAVAILABLE, ...).
 */
char *connectias_load_plugin(const char *package_path);

/* Unloads a plugin (its cleanup runs). Returns CONNECTIAS_OK, -1, -2, -3, -4 or -5. */
int32_t connectias_unload_plugin(const char *plugin_id);

/*
 * Runs a command; args_json is sent as its UTF-8 bytes. On CONNECTIAS_OK, *out_result is the plugin's
 * output as a NUL-terminated UTF-8 string (free it with connectias_free_string); on any other code it is
 * NULL. Output that is not UTF-8, or holds a NUL, gives CONNECTIAS_ERR_INVALID_UTF8: use
 * connectias_execute_plugin_bytes for it. Returns 0, -1, -2, -3, -4, -5, -6 or -9.
 */
int32_t connectias_execute_plugin(const char *plugin_id, const char *command, const char *args_json,
                                  char **out_result);

/*
 * As connectias_execute_plugin with binary arguments and output. args may be NULL only when args_len
 * is 0. On CONNECTIAS_OK, *out is a buffer of *out_len bytes (never NULL, even for no bytes; free it
 * with connectias_free_bytes); on any other code *out is NULL and *out_len is 0.
 */
int32_t connectias_execute_plugin_bytes(const char *plugin_id, const char *command, const uint8_t *args,
                                        size_t args_len, uint8_t **out, size_t *out_len);

/* Releases a buffer from connectias_execute_plugin_bytes. NULL is ignored. */
void connectias_free_bytes(uint8_t *p);

/*
 * The daemon's plugins as a JSON array of {"plugin_id", "name", "version", "state", "pid"}, state one
 * of LOADING, READY, TERMINATED, UNLOADED, CRASHED and pid 0 when no worker runs. Free it with
 * connectias_free_string. NULL with the last error set on failure.
 */
char *connectias_list_plugins(void);

/*
 * This thread's last error as "REASON: message", or NULL if there is none. Reading it clears it. Other
 * threads' errors are never seen here. Free it with connectias_free_string.
 */
char *connectias_get_last_error(void);

/* Releases a string from this library. NULL is ignored. */
void connectias_free_string(char *s);

/*
 * Closes the connection. Calls still running on other threads fail with CONNECTIAS_ERR_INIT_FAILED;
 * later calls do too until connectias_init is called again.
 */
void connectias_shutdown(void);

#ifdef __cplusplus
}
#endif

#endif /* CONNECTIAS_SANDBOX_H */
