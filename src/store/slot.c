/*
 * slot.c -- CRC16 (XMODEM: poly 0x1021, init 0, no reflection) and the
 * hash-tag rule of Redis Cluster.
 *
 * The CRC takes eight bytes a step: by carry-less multiplication (two
 * PCLMULQDQ, Barrett reduction) where the CPU has it, else from slicing-by-8
 * tables derived at start-up from the byte table below. slot_of, on every
 * keyed command, tests a key of 8 bytes or more for a '{' 16 bytes at a
 * time (SSE2) and, without one, folds it straight into the CRC; keys with a
 * brace, and short keys, take the general path (memchr, then the CRC of the
 * tag).
 */
#include "store/slot.h"

#include <string.h>

#if defined(__x86_64__)
#define SLOT_CLMUL 1
#include <immintrin.h>
#else
#define SLOT_CLMUL 0
#endif

/* crc_table[i] = CRC16-XMODEM of the byte i followed by a zero byte, i.e.
 * the byte-at-a-time step table (generated, and checked by test_store's
 * known values). */
static const uint16_t crc_table[256] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
    0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
    0x1231, 0x0210, 0x3273, 0x2252, 0x52b5, 0x4294, 0x72f7, 0x62d6,
    0x9339, 0x8318, 0xb37b, 0xa35a, 0xd3bd, 0xc39c, 0xf3ff, 0xe3de,
    0x2462, 0x3443, 0x0420, 0x1401, 0x64e6, 0x74c7, 0x44a4, 0x5485,
    0xa56a, 0xb54b, 0x8528, 0x9509, 0xe5ee, 0xf5cf, 0xc5ac, 0xd58d,
    0x3653, 0x2672, 0x1611, 0x0630, 0x76d7, 0x66f6, 0x5695, 0x46b4,
    0xb75b, 0xa77a, 0x9719, 0x8738, 0xf7df, 0xe7fe, 0xd79d, 0xc7bc,
    0x48c4, 0x58e5, 0x6886, 0x78a7, 0x0840, 0x1861, 0x2802, 0x3823,
    0xc9cc, 0xd9ed, 0xe98e, 0xf9af, 0x8948, 0x9969, 0xa90a, 0xb92b,
    0x5af5, 0x4ad4, 0x7ab7, 0x6a96, 0x1a71, 0x0a50, 0x3a33, 0x2a12,
    0xdbfd, 0xcbdc, 0xfbbf, 0xeb9e, 0x9b79, 0x8b58, 0xbb3b, 0xab1a,
    0x6ca6, 0x7c87, 0x4ce4, 0x5cc5, 0x2c22, 0x3c03, 0x0c60, 0x1c41,
    0xedae, 0xfd8f, 0xcdec, 0xddcd, 0xad2a, 0xbd0b, 0x8d68, 0x9d49,
    0x7e97, 0x6eb6, 0x5ed5, 0x4ef4, 0x3e13, 0x2e32, 0x1e51, 0x0e70,
    0xff9f, 0xefbe, 0xdfdd, 0xcffc, 0xbf1b, 0xaf3a, 0x9f59, 0x8f78,
    0x9188, 0x81a9, 0xb1ca, 0xa1eb, 0xd10c, 0xc12d, 0xf14e, 0xe16f,
    0x1080, 0x00a1, 0x30c2, 0x20e3, 0x5004, 0x4025, 0x7046, 0x6067,
    0x83b9, 0x9398, 0xa3fb, 0xb3da, 0xc33d, 0xd31c, 0xe37f, 0xf35e,
    0x02b1, 0x1290, 0x22f3, 0x32d2, 0x4235, 0x5214, 0x6277, 0x7256,
    0xb5ea, 0xa5cb, 0x95a8, 0x8589, 0xf56e, 0xe54f, 0xd52c, 0xc50d,
    0x34e2, 0x24c3, 0x14a0, 0x0481, 0x7466, 0x6447, 0x5424, 0x4405,
    0xa7db, 0xb7fa, 0x8799, 0x97b8, 0xe75f, 0xf77e, 0xc71d, 0xd73c,
    0x26d3, 0x36f2, 0x0691, 0x16b0, 0x6657, 0x7676, 0x4615, 0x5634,
    0xd94c, 0xc96d, 0xf90e, 0xe92f, 0x99c8, 0x89e9, 0xb98a, 0xa9ab,
    0x5844, 0x4865, 0x7806, 0x6827, 0x18c0, 0x08e1, 0x3882, 0x28a3,
    0xcb7d, 0xdb5c, 0xeb3f, 0xfb1e, 0x8bf9, 0x9bd8, 0xabbb, 0xbb9a,
    0x4a75, 0x5a54, 0x6a37, 0x7a16, 0x0af1, 0x1ad0, 0x2ab3, 0x3a92,
    0xfd2e, 0xed0f, 0xdd6c, 0xcd4d, 0xbdaa, 0xad8b, 0x9de8, 0x8dc9,
    0x7c26, 0x6c07, 0x5c64, 0x4c45, 0x3ca2, 0x2c83, 0x1ce0, 0x0cc1,
    0xef1f, 0xff3e, 0xcf5d, 0xdf7c, 0xaf9b, 0xbfba, 0x8fd9, 0x9ff8,
    0x6e17, 0x7e36, 0x4e55, 0x5e74, 0x2e93, 0x3eb2, 0x0ed1, 0x1ef0,
};

/*
 * Slicing-by-8: crc_slice[k][i] is the effect of the byte i followed by k
 * zero bytes (crc_slice[0] = crc_table). CRC is linear, so eight bytes b0..b7
 * entering a CRC c give
 *     crc_slice[7][b0 ^ (c >> 8)] ^ crc_slice[6][b1 ^ (c & 0xff)]
 *     ^ crc_slice[5][b2] ^ ... ^ crc_slice[0][b7]
 * (the CRC is 16 bits: only the first two bytes of a block see it). Eight
 * independent loads per eight bytes instead of a chain of eight dependent
 * steps. Built from crc_table before main().
 */
static uint16_t crc_slice[8][256];

__attribute__((constructor)) static void
slot_build_tables(void)
{
    for (int i = 0; i < 256; i++) {
        crc_slice[0][i] = crc_table[i];
    }
    for (int k = 1; k < 8; k++) {
        for (int i = 0; i < 256; i++) {
            uint16_t prev = crc_slice[k - 1][i];
            crc_slice[k][i] = (uint16_t)((prev << 8) ^ crc_table[prev >> 8]);
        }
    }
}

/* The table CRC, for short inputs and CPUs without carry-less multiply. */
static uint16_t
crc16_table(const uint8_t *p, size_t len)
{
    unsigned crc = 0;

    for (; len >= 8; p += 8, len -= 8) {
        crc = crc_slice[7][p[0] ^ (crc >> 8)] ^ crc_slice[6][p[1] ^ (crc & 0xff)] ^
              crc_slice[5][p[2]] ^ crc_slice[4][p[3]] ^ crc_slice[3][p[4]] ^
              crc_slice[2][p[5]] ^ crc_slice[1][p[6]] ^ crc_slice[0][p[7]];
    }
    if (len >= 4) {
        crc = crc_slice[3][p[0] ^ (crc >> 8)] ^ crc_slice[2][p[1] ^ (crc & 0xff)] ^
              crc_slice[1][p[2]] ^ crc_slice[0][p[3]];
        p += 4;
        len -= 4;
    }
    for (; len > 0; p++, len--) {
        crc = ((crc << 8) & 0xffff) ^ crc_table[(crc >> 8) ^ *p];
    }
    return (uint16_t)crc;
}

/*
 * Carry-less multiply (PCLMULQDQ), 8 bytes a step. Over GF(2), with the
 * message's first byte the highest power: the CRC of M is M * x^16 mod P,
 * P = x^16 + 0x1021. Appending 8 bytes C to a message of CRC c gives the CRC
 * (t * x^16) mod P with t = c * x^48 + C, a 64-bit polynomial. That is
 * reduced by Barrett's method: with mu = floor(x^80 / P) = x^64 + mu_low,
 * the quotient is q = t + floor(t * mu_low / x^64), and the remainder the
 * low 16 bits of q * 0x1021 (t * x^16 has none). Two multiplications a step.
 * Zero bytes in front of a message leave its CRC (initial value 0) alone, so
 * a length that is not a multiple of 8 starts with its first len % 8 bytes as
 * a short polynomial.
 */
#define CRC_POLY_LOW 0x1021u

#if SLOT_CLMUL
static int crc_use_clmul;
static uint64_t crc_mu_low; /* floor(x^80 / P) - x^64, computed at start-up */

static uint64_t
load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return __builtin_bswap64(v);
}

static uint32_t
load_be32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return __builtin_bswap32(v);
}

__attribute__((target("pclmul,sse2"))) static inline unsigned
clmul_reduce(uint64_t t)
{
    __m128i mu = _mm_cvtsi64_si128((long long)crc_mu_low);
    __m128i pl = _mm_cvtsi32_si128((int)CRC_POLY_LOW);
    __m128i h = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)t), mu, 0x00);
    uint64_t q = t ^ (uint64_t)_mm_cvtsi128_si64(_mm_srli_si128(h, 8));
    __m128i r = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)q), pl, 0x00);

    return (unsigned)_mm_cvtsi128_si32(r) & 0xffffu;
}

/* len >= 4 */
__attribute__((target("pclmul,sse2"))) static uint16_t
crc16_clmul(const uint8_t *p, size_t len)
{
    size_t head = len & 7;
    unsigned crc = 0;

    if (len < 8) {
        /* 4..7 bytes, big-endian, from two overlapping loads */
        uint64_t t = ((uint64_t)load_be32(p) << ((len - 4) * 8)) | load_be32(p + len - 4);
        return (uint16_t)clmul_reduce(t);
    }
    if (head != 0) {
        crc = clmul_reduce(load_be64(p) >> ((8 - head) * 8));
        p += head;
        len -= head;
    }
    for (; len > 0; p += 8, len -= 8) {
        crc = clmul_reduce(((uint64_t)crc << 48) ^ load_be64(p));
    }
    return (uint16_t)crc;
}

__attribute__((constructor)) static void
slot_init_clmul(void)
{
    /* mu = floor(x^80 / P) by long division, one quotient bit per step:
     * rem holds the 17 dividend bits x^(i+16) .. x^i, the dividend's lower
     * bits are all 0. The quotient's top bit (x^64) is left out. */
    uint32_t rem = 1u << 16;
    uint64_t q = 0;

    for (int i = 64; i >= 0; i--) {
        unsigned bit = (rem >> 16) & 1u;
        if (i < 64) {
            q = (q << 1) | bit;
        }
        if (bit) {
            rem ^= 0x10000u | CRC_POLY_LOW;
        }
        rem <<= 1;
    }
    crc_mu_low = q;
    __builtin_cpu_init();
    crc_use_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse2");
}
#endif

uint16_t
slot_crc16(const char *buf, size_t len)
{
#if SLOT_CLMUL
    if (len >= 4 && crc_use_clmul) {
        return crc16_clmul((const uint8_t *)buf, len);
    }
#endif
    return crc16_table((const uint8_t *)buf, len);
}

/* The slot by the hash-tag rule, the general way (out of line: slot_of's
 * fast path then needs no saved registers). */
static __attribute__((noinline)) unsigned
slot_of_tagged(const char *key, size_t klen)
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

/*
 * A key of 8 bytes or more with no '{' (by far the common case): the brace
 * test takes 16 bytes at once (SSE2 byte compare, overlapping loads for the
 * tail), then the CRC folds the key 8 bytes a step (crc16_clmul's steps).
 * A brace anywhere sends the key to slot_of_tagged.
 */
#if SLOT_CLMUL
__attribute__((target("pclmul,sse2"))) static inline int
has_brace_sse(const uint8_t *p, size_t klen)
{
    const __m128i brace = _mm_set1_epi8('{');
    __m128i v;
    int m = 0;

    if (klen < 16) {
        uint64_t lo, hi;
        memcpy(&lo, p, 8);
        memcpy(&hi, p + klen - 8, 8);
        v = _mm_set_epi64x((long long)hi, (long long)lo);
        return _mm_movemask_epi8(_mm_cmpeq_epi8(v, brace));
    }
    for (size_t i = 0; i + 16 <= klen; i += 16) {
        v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        m |= _mm_movemask_epi8(_mm_cmpeq_epi8(v, brace));
    }
    if (klen & 15) {
        v = _mm_loadu_si128((const __m128i *)(const void *)(p + klen - 16));
        m |= _mm_movemask_epi8(_mm_cmpeq_epi8(v, brace));
    }
    return m;
}

__attribute__((target("pclmul,sse2"))) unsigned
slot_of(const char *key, size_t klen)
{
    const uint8_t *p = (const uint8_t *)key;
    size_t head = klen & 7;
    unsigned crc = 0;

    if (klen < 8 || !crc_use_clmul || has_brace_sse(p, klen)) {
        return slot_of_tagged(key, klen);
    }
    if (head != 0) {
        crc = clmul_reduce(load_be64(p) >> ((8 - head) * 8));
        p += head;
        klen -= head;
    }
    for (; klen > 0; p += 8, klen -= 8) {
        crc = clmul_reduce(((uint64_t)crc << 48) ^ load_be64(p));
    }
    return crc & (SLOT_COUNT - 1);
}
#else
unsigned
slot_of(const char *key, size_t klen)
{
    return slot_of_tagged(key, klen);
}
#endif
