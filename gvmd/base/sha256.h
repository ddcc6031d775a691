/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sha256.h — SHA-256 (FIPS 180-4) for image-checksum.  Uses the x86 SHA
 * extensions when the CPU has them (checked at run time), else portable C.
 */
#ifndef GVMD_SHA256_H
#define GVMD_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_HEX_SIZE    (2 * SHA256_DIGEST_SIZE + 1)

struct sha256_ctx {
    uint32_t h[8];
    uint64_t total;          /* bytes hashed so far                 */
    uint8_t buf[64];         /* a partial block                     */
    size_t nbuf;
    void (*blocks)(uint32_t h[8], const uint8_t *p, size_t nblocks);
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_DIGEST_SIZE]);
/* Lower-case hex of a digest, NUL-terminated. */
void sha256_hex(const uint8_t d[SHA256_DIGEST_SIZE], char out[SHA256_HEX_SIZE]);

#endif
