/*
 * slot.c -- CRC16 (XMODEM: poly 0x1021, init 0, no reflection) by a 256-entry
 * table built once at start-up, and the hash-tag rule of Redis Cluster.
 */
#include "store/slot.h"

#include <pthread.h>
#include <string.h>

static uint16_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (int b = 0; b < 8; b++) {
            c = (c & 0x8000) ? (uint16_t)((c << 1) ^ 0x1021) : (uint16_t)(c << 1);
        }
        crc_table[i] = c;
    }
}

uint16_t
slot_crc16(const char *buf, size_t len)
{
    pthread_once(&crc_once, crc_init);
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc = (uint16_t)((crc << 8) ^ crc_table[((crc >> 8) ^ (uint8_t)buf[i]) & 0xff]);
    }
    return crc;
}

unsigned
slot_of(const char *key, size_t klen)
{
    const char *open = memchr(key, '{', klen);
    if (open) {
        size_t off = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', klen - off);
        if (close && close > open + 1) {
            return slot_crc16(open + 1, (size_t)(close - open - 1)) & (SLOT_COUNT - 1);
        }
    }
    return slot_crc16(key, klen) & (SLOT_COUNT - 1);
}
