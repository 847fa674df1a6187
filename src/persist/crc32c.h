/*
 * crc32c.h -- CRC-32C (Castagnoli), the checksum of WAL records and snapshots.
 *
 * Polynomial 0x1EDC6F41 (reflected 0x82F63B78), initial value ~0, final xor ~0:
 * crc32c(0, "123456789", 9) == 0xE3069283. Uses the SSE4.2 crc32 instruction
 * when the CPU has it (checked once with __builtin_cpu_supports), else a
 * slicing-by-8 table. Both give identical results.
 *
 * Thread-safety: all functions are thread-safe (the tables are built once,
 * guarded by pthread_once).
 */
#ifndef CRAB_PERSIST_CRC32C_H
#define CRAB_PERSIST_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) with len bytes at buf; returns the new CRC. Chaining
 * crc32c(crc32c(0, a, n), b, m) equals the CRC of a followed by b. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The table implementation, whatever the CPU (for tests and comparisons). */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* True when crc32c() uses the SSE4.2 instruction. */
bool crc32c_hw_available(void);

#endif
