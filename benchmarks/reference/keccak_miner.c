/* A hand-written C KALE miner loop, the yardstick for kalepool's numba kernel.
 *
 * What a careful C programmer writes without the kernel's symbolic tricks: Keccak-f[1600]
 * on W nonces side by side in GCC vector extensions (W = 8 with AVX-512, 4 with AVX2,
 * 2 otherwise), all 24 rounds fully unrolled, lanes in registers, rotations as shift
 * pairs (which GCC turns into vprolq where the target has it), the state rebuilt from
 * the 76-byte preimage for every group of nonces, best = smallest hash (most leading
 * zero nibbles, lowest nonce on ties). Built by benchmarks/miner_bench.py with
 * `cc -O3 -march=native`; not part of the package.
 *
 * usage: keccak_miner <10 preimage lanes as 16-hex-digit words> <start nonce> <count>
 * prints: {"width": W, "hashes": N, "seconds": S, "nonce": BEST, "lane0": "<hex>"}
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
#define W 8
#elif defined(__AVX2__)
#define W 4
#else
#define W 2
#endif

typedef uint64_t V __attribute__((vector_size(W * 8)));

static const uint64_t RC[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808AULL, 0x8000000080008000ULL,
    0x000000000000808BULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008AULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000AULL,
    0x000000008000808BULL, 0x800000000000008BULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800AULL, 0x800000008000000AULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};
/* rho offset of lane x + 5 y */
static const int RHO[25] = {0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39,
                            41, 45, 15, 21, 8, 18, 2, 61, 56, 14};

static inline __attribute__((always_inline)) V rol(V x, int n) {
    return n == 0 ? x : (x << n) | (x >> (64 - n));
}

static inline __attribute__((always_inline)) void keccak_f1600(V *s) {
#pragma GCC unroll 24
    for (int r = 0; r < 24; r++) {
        V c[5], d[5], b[25];
#pragma GCC unroll 5
        for (int x = 0; x < 5; x++) c[x] = s[x] ^ s[x + 5] ^ s[x + 10] ^ s[x + 15] ^ s[x + 20];
#pragma GCC unroll 5
        for (int x = 0; x < 5; x++) d[x] = c[(x + 4) % 5] ^ rol(c[(x + 1) % 5], 1);
#pragma GCC unroll 25
        for (int i = 0; i < 25; i++) {
            int x = i % 5, y = i / 5;
            b[y + 5 * ((2 * x + 3 * y) % 5)] = rol(s[i] ^ d[x], RHO[i]);
        }
#pragma GCC unroll 25
        for (int i = 0; i < 25; i++) {
            int x = i % 5, y = i / 5;
            s[i] = b[i] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]);
        }
        s[0] ^= RC[r];
    }
}

static uint64_t bswap64(uint64_t v) { return __builtin_bswap64(v); }

int main(int argc, char **argv) {
    if (argc != 13) {
        fprintf(stderr, "usage: %s <10 lanes hex> <start nonce> <count>\n", argv[0]);
        return 2;
    }
    uint64_t lanes[25] = {0};
    for (int i = 0; i < 10; i++) lanes[i] = strtoull(argv[1 + i], NULL, 16);
    lanes[16] = 0x8000000000000000ULL;
    uint64_t start = strtoull(argv[11], NULL, 10), count = strtoull(argv[12], NULL, 10);
    uint64_t best_key = ~0ULL, best_nonce = start, best_lane0 = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t k = 0; k < count; k += W) {
        V s[25];
        for (int i = 0; i < 25; i++) s[i] = (V){0} + lanes[i];
        for (int j = 0; j < W; j++) {
            uint64_t n = start + k + (uint64_t)j;
            s[0][j] ^= (uint64_t)__builtin_bswap32((uint32_t)(n >> 32)) << 32;
            s[1][j] ^= (uint64_t)__builtin_bswap32((uint32_t)n);
        }
        keccak_f1600(s);
        for (int j = 0; j < W && k + (uint64_t)j < count; j++) {
            uint64_t key = bswap64(s[0][j]); /* hash bytes 0..7, big-endian: fewer = more zeros */
            if (key < best_key) {
                best_key = key;
                best_nonce = start + k + (uint64_t)j;
                best_lane0 = s[0][j];
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"width\": %d, \"hashes\": %llu, \"seconds\": %.6f, \"nonce\": %llu, \"lane0\": \"%016llx\"}\n", W,
           (unsigned long long)count, secs, (unsigned long long)best_nonce, (unsigned long long)best_lane0);
    return 0;
}
