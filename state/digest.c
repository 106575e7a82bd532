/*
 * Digests: the git blob id, SHA-1 over "blob <len>\0" and the data, with
 * Nettle's SHA-1 (Debian's build picks the SHA-NI code at run time where
 * the CPU has it). Every plan hashes each resource's whole request, 43 MB
 * for a 10,000-resource stack, so the hash is on the plan's critical path:
 * libgit2's collision-detecting SHA-1 took 6 to 9 instructions a byte, and
 * initialising libgit2 just to hash loaded the system's CA certificates.
 */
#include "state/digest.h"

#include <nettle/sha1.h>

#include <stdio.h>

int ibs_digest_hex(char out[41], const void *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char bin[SHA1_DIGEST_SIZE];
    char header[32];
    struct sha1_ctx ctx;
    int n;

    /* The header's terminating NUL is part of the hashed bytes. */
    n = snprintf(header, sizeof(header), "blob %zu", len);
    sha1_init(&ctx);
    sha1_update(&ctx, (size_t)n + 1, (const uint8_t *)header);
    if (len)
        sha1_update(&ctx, len, data);
    sha1_digest(&ctx, SHA1_DIGEST_SIZE, bin);
    for (size_t i = 0; i < SHA1_DIGEST_SIZE; i++) {
        out[2 * i] = hex[bin[i] >> 4];
        out[2 * i + 1] = hex[bin[i] & 15];
    }
    out[IBS_DIGEST_HEX_LEN] = '\0';
    return 0;
}
