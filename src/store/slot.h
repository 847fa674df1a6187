/*
 * slot.h -- Redis Cluster key slots.
 *
 * slot = CRC16-XMODEM(key) mod 16384, where the key is replaced by the part
 * inside the first {...} when that part is non-empty (a "hash tag"), so that
 * related keys can be kept together. Identical to Redis Cluster's keyHashSlot.
 */
#ifndef CRAB_STORE_SLOT_H
#define CRAB_STORE_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define SLOT_COUNT 16384

uint16_t slot_crc16(const char *buf, size_t len);
unsigned slot_of(const char *key, size_t klen);

#endif
