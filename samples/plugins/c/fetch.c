/*
 * A network sample: passes its args (a request JSON {method, url, headers, body_base64}) to
 * http_request. Command "request" outputs the response JSON, or {"error":CODE} when the host refused
 * or failed; command "strict" fails the call instead (so a timed-out request ends as NETWORK_TIMEOUT).
 */
#include <stdio.h>
#include "connectias_plugin.h"

CONNECTIAS_DEFINE_ALLOCATOR()

CONNECTIAS_EXPORT(plugin_execute)
int32_t plugin_execute(const char *command, int32_t command_len, const uint8_t *args, int32_t args_len) {
    int strict = command_len == 6 && memcmp(command, "strict", 6) == 0;
    int64_t result = connectias_http_request(args, args_len);
    if (connectias_is_error(result)) {
        char text[64];
        int n = snprintf(text, sizeof text, "{\"error\":%d}", (int)result);
        if (strict) {
            connectias_error(text, n);
            return 1;
        }
        connectias_output(text, n);
        return 0;
    }
    connectias_output(connectias_result_ptr(result), connectias_result_len(result));
    return 0;
}
