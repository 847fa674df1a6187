/*
 * fuzz_toml.c -- libFuzzer target for the TOML reader (src/conf/toml.c).
 *
 * Parses the input; on success walks the whole tree checking the invariants
 * callers rely on (strings NUL-terminated at their length, lines >= 1, tables
 * without duplicate keys, arrays and tables with sane counts); on failure
 * checks the message has the "name:line: " shape. Seeds: corpus/toml/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
walk(const struct toml_value *v, int depth)
{
    if (v->line < 1 || depth > 4 * TOML_MAX_DEPTH + 2 * TOML_MAX_KEY_PARTS) {
        abort();
    }
    switch (v->type) {
    case TOML_STRING:
        if (v->u.str.ptr[v->u.str.len] != '\0') {
            abort();
        }
        break;
    case TOML_TABLE:
        for (size_t i = 0; i < v->u.table.n; i++) {
            const struct toml_pair *p = &v->u.table.pairs[i];
            if (p->line < 1 || toml_get(v, p->key) != p->value) {
                abort(); /* a duplicate key would shadow this one */
            }
            walk(p->value, depth + 1);
        }
        break;
    case TOML_ARRAY:
        for (size_t i = 0; i < v->u.array.n; i++) {
            walk(v->u.array.items[i], depth + 1);
        }
        break;
    case TOML_INTEGER:
    case TOML_FLOAT:
    case TOML_BOOLEAN:
        break;
    default:
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct toml_value *root = toml_parse((const char *)data, size, "f", err, sizeof(err));
    if (root == NULL) {
        if (strncmp(err, "f:", 2) != 0) {
            abort();
        }
        return 0;
    }
    walk(root, 0);
    (void)toml_get_path(root, "security.allowed_ips");
    (void)toml_get_path(root, "a.b.c");
    toml_free(root);
    return 0;
}
