/**
 * @file hash.h
 * @brief SHA-256, HMAC-SHA256, base64 and random seeds from libcrypto;
 *        nothing hand-rolled.
 */
#ifndef NEWSALERT_HASH_H
#define NEWSALERT_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "newsalert/err.h"

#define NA_SHA256_LEN 32
#define NA_SHA256_HEX_LEN 64

/*
 * The digests allocate (libcrypto's digest context), so they can fail:
 * on no memory they return NA_ERR_NOMEM and leave the output an empty
 * string (hex) or zeroes (raw), never a digest of something else.
 */

/** @brief SHA-256 of @p data into @p md (raw bytes).
 *  @returns NA_OK or NA_ERR_NOMEM. */
NA_WUR na_err_t na_sha256(const void *data, size_t len, unsigned char md[NA_SHA256_LEN]);

/** @brief Lower-case hex SHA-256 of @p data into @p hex (65 bytes, NUL-terminated).
 *  @returns NA_OK or NA_ERR_NOMEM. */
NA_WUR na_err_t na_sha256_hex(const void *data, size_t len,
                              char hex[NA_SHA256_HEX_LEN + 1]);

/**
 * @brief Lower-case hex SHA-256 over several parts, each followed by a NUL
 *        separator byte so ("ab","c") and ("a","bc") differ.
 * @param parts NULL-terminated array of strings.
 * @returns NA_OK or NA_ERR_NOMEM.
 */
NA_WUR na_err_t na_sha256_hex_parts(const char *const *parts,
                                    char hex[NA_SHA256_HEX_LEN + 1]);

/**
 * @brief A random 64-bit value drawn once per process (the first call; any
 *        thread), for the basis of hash tables keyed by what others choose
 *        (feed links, member names): with a basis known in advance, keys
 *        that all share one chain cost nothing to make.
 */
uint64_t na_hash_seed(void);

/** @brief HMAC-SHA256 of @p data with @p key into @p mac. */
NA_WUR na_err_t na_hmac_sha256(const void *key, size_t key_len, const void *data,
                               size_t len, unsigned char mac[NA_SHA256_LEN]);

/**
 * @brief Standard base64 (with padding) of @p data.
 * @returns new NUL-terminated string; free with free(); NULL on no memory.
 */
char *na_base64_encode(const void *data, size_t len);

/**
 * @brief Decode standard base64.
 * @returns new buffer of *out_len bytes; free with free(); NULL on bad input.
 */
unsigned char *na_base64_decode(const char *text, size_t *out_len);

#endif
