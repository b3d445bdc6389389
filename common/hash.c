#include "newsalert/hash.h"
#include "newsalert/timeutil.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void to_hex(const unsigned char *md, size_t len, char *hex) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 0xf];
    }
    hex[2 * len] = '\0';
}

/* SHA-256 into @p md of @p parts (a NULL-terminated list, each part
 * followed by a NUL byte), or when @p parts is NULL of data[0..len). */
static na_err_t digest(const char *const *parts, const void *data, size_t len,
                       unsigned char md[NA_SHA256_LEN]) {
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    if (!parts) {
        ok = ok && EVP_DigestUpdate(ctx, data, len);
    }
    for (; ok && parts && *parts; parts++) {
        ok = EVP_DigestUpdate(ctx, *parts, strlen(*parts) + 1);
    }
    ok = ok && EVP_DigestFinal_ex(ctx, buf, &mdlen) && mdlen == NA_SHA256_LEN;
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        /* libcrypto fails a SHA-256 only when it has no memory */
        memset(md, 0, NA_SHA256_LEN);
        return NA_ERR_NOMEM;
    }
    memcpy(md, buf, NA_SHA256_LEN);
    return NA_OK;
}

/* The hex of digest(), or "" on failure. */
static na_err_t digest_hex(const char *const *parts, const void *data, size_t len,
                           char hex[NA_SHA256_HEX_LEN + 1]) {
    unsigned char md[NA_SHA256_LEN];
    na_err_t err = digest(parts, data, len, md);
    if (err) {
        hex[0] = '\0';
        return err;
    }
    to_hex(md, NA_SHA256_LEN, hex);
    return NA_OK;
}

na_err_t na_sha256(const void *data, size_t len, unsigned char md[NA_SHA256_LEN]) {
    return digest(NULL, data, len, md);
}

na_err_t na_sha256_hex(const void *data, size_t len, char hex[NA_SHA256_HEX_LEN + 1]) {
    return digest_hex(NULL, data, len, hex);
}

na_err_t na_sha256_hex_parts(const char *const *parts, char hex[NA_SHA256_HEX_LEN + 1]) {
    return digest_hex(parts, NULL, 0, hex);
}

na_err_t na_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                        unsigned char mac[NA_SHA256_LEN]) {
    unsigned int maclen = 0;
    if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, mac, &maclen) ||
        maclen != NA_SHA256_LEN) {
        return NA_ERR_INVALID;
    }
    return NA_OK;
}

char *na_base64_encode(const void *data, size_t len) {
    size_t outlen = 4 * ((len + 2) / 3) + 1;
    char *out = malloc(outlen);
    if (!out) {
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

unsigned char *na_base64_decode(const char *text, size_t *out_len) {
    size_t len = strlen(text);
    if (len % 4 != 0) {
        return NULL;
    }
    unsigned char *out = malloc(len / 4 * 3 + 1);
    if (!out) {
        return NULL;
    }
    int n = EVP_DecodeBlock(out, (const unsigned char *)text, (int)len);
    if (n < 0) {
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts padding bytes as output; take them back. */
    if (len >= 1 && text[len - 1] == '=') {
        n--;
    }
    if (len >= 2 && text[len - 2] == '=') {
        n--;
    }
    *out_len = (size_t)n;
    return out;
}

static uint64_t hash_seed;
static pthread_once_t hash_seed_once = PTHREAD_ONCE_INIT;

static void hash_seed_init(void) {
    uint64_t seed;
    if (RAND_bytes((unsigned char *)&seed, sizeof(seed)) != 1) {
        seed = (uint64_t)na_mono_us() ^ (uint64_t)(uintptr_t)&seed;
    }
    hash_seed = seed;
}

uint64_t na_hash_seed(void) {
    pthread_once(&hash_seed_once, hash_seed_init);
    return hash_seed;
}
