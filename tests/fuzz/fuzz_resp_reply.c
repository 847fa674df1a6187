/*
 * fuzz_resp_reply.c -- libFuzzer target for resp_reply_len (the framing of
 * a forwarded request's replies, net/fwd.c).
 *
 * On any input (an exactly-sized copy, so ASan sees a read past the end):
 *   - the answer is -1, 0 or a length within the input;
 *   - when the front is a whole reply of length L, every proper prefix of it
 *     asks for more (0), and the answer on the first L bytes is L: the
 *     framing never cuts a reply short nor reads past it;
 *   - resp_reply_array_count's header lies within the input.
 *
 * resp_reply.c is #included so that libFuzzer's coverage covers it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/proto/resp_reply.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    memcpy(p, data, size);
    long long len = resp_reply_len(p, size);
    if (len < -1 || len > (long long)size) {
        abort();
    }
    if (len > 0) {
        if (resp_reply_len(p, (size_t)len) != len) {
            abort();
        }
        /* a sample of prefixes (all of them would be quadratic) */
        for (size_t k = 0; k < (size_t)len; k += 1 + (size_t)len / 64) {
            char *q = malloc(k ? k : 1);
            memcpy(q, p, k);
            if (resp_reply_len(q, k) != 0) {
                abort();
            }
            free(q);
        }
    }
    size_t hdr = 0;
    if (resp_reply_array_count(p, size, &hdr) >= 0 && (hdr < 4 || hdr > size)) {
        abort();
    }
    free(p);
    return 0;
}
