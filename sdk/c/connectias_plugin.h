/*
 * Connectias Sandbox plugin ABI v1 for C (SPEC §2).
 *
 * Build a plugin as a WASI reactor module:
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor -I sdk/c -o plugin.wasm plugin.c
 *
 * A plugin defines plugin_execute (and optionally plugin_init and plugin_cleanup) with
 * CONNECTIAS_EXPORT, and CONNECTIAS_DEFINE_ALLOCATOR() once to export connectias_alloc/free.
 * Every buffer the host passes in or hands back (command, args, storage values, ...) is allocated
 * with connectias_alloc and freed by the host with connectias_free when the call ends: copy what
 * you want to keep.
 */
#ifndef CONNECTIAS_PLUGIN_H
#define CONNECTIAS_PLUGIN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CONNECTIAS_ABI_VERSION 1

#define CONNECTIAS_IMPORT(name) __attribute__((import_module("connectias"), import_name(#name)))
#define CONNECTIAS_EXPORT(name) __attribute__((export_name(#name)))

/* Negative results of host functions. */
#define CONNECTIAS_NOT_FOUND (-1)         /* no such key */
#define CONNECTIAS_DENIED (-2)            /* permission, allow-list or address rule */
#define CONNECTIAS_RATE_LIMITED (-3)
#define CONNECTIAS_TIMEOUT (-4)
#define CONNECTIAS_TOO_LARGE (-5)         /* size limit, storage quota or entry limit */
#define CONNECTIAS_IO_FAILURE (-6)        /* network or disk failure */
#define CONNECTIAS_BAD_REQUEST (-7)       /* e.g. empty or over-long key, malformed request JSON */
#define CONNECTIAS_ALLOCATION_FAILED (-8) /* connectias_alloc returned 0 */

enum connectias_log_level {
    CONNECTIAS_LOG_TRACE = 0,
    CONNECTIAS_LOG_DEBUG = 1,
    CONNECTIAS_LOG_INFO = 2,
    CONNECTIAS_LOG_WARN = 3,
    CONNECTIAS_LOG_ERROR = 4,
};

/* Sets the call's result (a later call replaces an earlier one). Over the output limit
 * (default 4 MiB) the call ends with OUTPUT_TOO_LARGE and the plugin is terminated. */
CONNECTIAS_IMPORT(output) void connectias_output(const void *data, int32_t len);
/* Sets the message returned with a non-zero plugin_execute/plugin_init result. */
CONNECTIAS_IMPORT(error) void connectias_error(const void *message, int32_t len);
/* One log line, tagged with the plugin id in the daemon's log; over the log budget it is dropped (and counted) quietly. */
CONNECTIAS_IMPORT(log) void connectias_log(int32_t level, const void *message, int32_t len);

/* Needs the "storage" permission. Keys are 1..1024 bytes. */
CONNECTIAS_IMPORT(storage_get) int64_t connectias_storage_get(const void *key, int32_t key_len);
CONNECTIAS_IMPORT(storage_set) int32_t connectias_storage_set(const void *key, int32_t key_len, const void *value, int32_t value_len);
CONNECTIAS_IMPORT(storage_delete) int32_t connectias_storage_delete(const void *key, int32_t key_len);

/* Needs "system_info": JSON {"os","arch","cpu_count","core_version"}. */
CONNECTIAS_IMPORT(system_info) int64_t connectias_system_info(void);

/* Needs "network": request JSON {method,url,headers,body_base64} -> response JSON {status,headers,body_base64}. */
CONNECTIAS_IMPORT(http_request) int64_t connectias_http_request(const void *request, int32_t len);

/* An int64 result is (len << 32) | ptr of a buffer the host filled, or a negative error code. */
static inline int connectias_is_error(int64_t result) { return result < 0; }
static inline void *connectias_result_ptr(int64_t result) { return (void *)(uintptr_t)(uint32_t)(result & 0xffffffff); }
static inline int32_t connectias_result_len(int64_t result) { return (int32_t)(result >> 32); }

static inline void connectias_output_str(const char *text) { connectias_output(text, (int32_t)strlen(text)); }
static inline void connectias_error_str(const char *text) { connectias_error(text, (int32_t)strlen(text)); }
static inline void connectias_log_str(int32_t level, const char *text) { connectias_log(level, text, (int32_t)strlen(text)); }

/* The exports. plugin_execute is required; plugin_init and plugin_cleanup are optional. */
int32_t plugin_execute(const char *command, int32_t command_len, const uint8_t *args, int32_t args_len);
int32_t plugin_init(const char *context_json, int32_t context_len);
int32_t plugin_cleanup(void);

/* Exports connectias_alloc and connectias_free backed by malloc/free. Use once per plugin. */
#define CONNECTIAS_DEFINE_ALLOCATOR()                                                                     \
    CONNECTIAS_EXPORT(connectias_alloc) int32_t connectias_alloc(int32_t size) {                          \
        return (int32_t)(uintptr_t)malloc(size > 0 ? (size_t)size : 1);                                  \
    }                                                                                                     \
    CONNECTIAS_EXPORT(connectias_free) void connectias_free(int32_t ptr, int32_t size) {                  \
        (void)size;                                                                                       \
        free((void *)(uintptr_t)ptr);                                                                     \
    }

#endif /* CONNECTIAS_PLUGIN_H */
