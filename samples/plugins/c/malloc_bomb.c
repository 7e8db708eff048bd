/* Hostile: allocates and touches 1 MiB after 1 MiB until malloc fails, as a leaky C plugin would. */
#include <string.h>
#include "connectias_plugin.h"

CONNECTIAS_DEFINE_ALLOCATOR()

/* Every block is chained into a list the compiler must keep, or it would delete the allocations. */
static void *volatile newest_block = NULL;

CONNECTIAS_EXPORT(plugin_execute)
int32_t plugin_execute(const char *command, int32_t command_len, const uint8_t *args, int32_t args_len) {
    (void)command; (void)command_len; (void)args; (void)args_len;
    for (;;) {
        char *block = malloc(1024 * 1024);
        if (block == NULL) {
            /* Reaching this line would mean the host let growth fail silently. */
            connectias_error_str("malloc failed quietly");
            return 1;
        }
        memset(block, 0xAB, 1024 * 1024);
        *(void **)block = newest_block;
        newest_block = block;
    }
}
