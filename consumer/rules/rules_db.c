/*
 * The rules engine's ASCII fast path: every key that an ASCII word can hit,
 * compiled into one case-insensitive multi-literal database, so that a
 * field is scanned once for the starts of candidate words instead of
 * cutting and hashing every word. rules.c decides which hits are words and
 * looks them up in the dictionary as before; see scan_field_fast() there.
 *
 * A scan needs a scratch space of its own: calls take one from a small
 * lock-free pool on the rules object (or clone the prototype) and give it
 * back, so concurrent na_rules_classify() calls stay safe.
 */
#include <hs/hs.h>
#include <stdlib.h>
#include <string.h>

#include "rules_match.h"

enum na_rules_db_mode na_rules_db_mode;

/* @returns true when key text s[0..len) is lower-case ASCII letters and
 * digits: the only keys an ASCII word (plain or joined) can hit. */
static bool ascii_key(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            return false;
        }
    }
    return true;
}

/* Set the pre3 bits of every word that starts with s[0..len). */
static void pre3_mark(uint64_t *pre3, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    for (uint32_t x = 0; x < 32; x++) {
        for (uint32_t y = 0; y < 32; y++) {
            uint32_t i;
            if (len >= 3) {
                i = na_rules_pre3(u[0], u[1], u[2]);
            } else if (len == 2) {
                i = na_rules_pre3(u[0], u[1], (unsigned char)y);
            } else {
                i = na_rules_pre3(u[0], (unsigned char)x, (unsigned char)y);
            }
            pre3[i >> 6] |= (uint64_t)1 << (i & 63);
            if (len >= 3 || (len == 2 && y == 31)) {
                return;
            }
        }
    }
}

na_err_t na_rules_db_build(na_rules_t *r) {
    const struct na_rbuild *b = &r->b;
    const char **lits = NULL;
    size_t *lens = NULL;
    unsigned *flags = NULL;
    unsigned *ids = NULL;
    size_t n = 0;
    hs_compile_error_t *cerr = NULL;
    hs_database_t *db = NULL;
    hs_scratch_t *scratch = NULL;
    na_err_t err = NA_ERR_NOMEM;

    r->db_ok = false;
    if (b->keys_cnt > UINT32_MAX / 2) {
        return NA_OK;
    }
    lits = malloc((b->keys_cnt + 1) * sizeof(*lits));
    lens = malloc((b->keys_cnt + 1) * sizeof(*lens));
    flags = malloc((b->keys_cnt + 1) * sizeof(*flags));
    ids = malloc((b->keys_cnt + 1) * sizeof(*ids));
    r->db_lens = malloc(b->keys_cnt + 1);
    r->db_pool = calloc(NA_RULES_DB_POOL, sizeof(*r->db_pool));
    r->pre3 = calloc(2 * 32768 / 64, sizeof(*r->pre3));
    if (!lits || !lens || !flags || !ids || !r->db_lens || !r->db_pool || !r->pre3) {
        goto out;
    }
    for (size_t i = 0; i < b->keys_cnt; i++) {
        const struct na_rkey *k = &b->keys[i];
        const char *s = b->strs + k->str_off;
        size_t len = k->len;
        if (!ascii_key(s, len)) {
            continue; /* folded non-ASCII: no ASCII word has it */
        }
        if (!k->prefix && len >= 3 && s[len - 1] == 'y') {
            len--; /* "policy" is also "policies" */
        }
        if (len == 0 || len > 255) {
            err = NA_OK; /* not a key a word can hit: no fast path */
            goto out;
        }
        pre3_mark(r->pre3, s, len);
        if (k->prefix) {
            pre3_mark(r->pre3 + 32768 / 64, s, len);
        }
        lits[n] = s;
        lens[n] = len;
        flags[n] = HS_FLAG_CASELESS;
        ids[n] = (unsigned)n;
        r->db_lens[n] = (uint8_t)len;
        n++;
    }
    if (n == 0 || n > NA_RULES_DB_MAX_LITS) {
        /* no key can hit a plain word; or too many keys for the database to
         * pay (and its compile would only raise peak memory): the bitmap
         * scan with the pre3 filter alone */
        r->db_ok = true;
        err = NA_OK;
        goto out;
    }
    if (hs_compile_lit_multi(lits, flags, ids, lens, (unsigned)n, HS_MODE_BLOCK, NULL,
                             &db, &cerr) != HS_SUCCESS) {
        hs_free_compile_error(cerr);
        err = NA_OK; /* e.g. a CPU the library does not support: the slow path */
        goto out;
    }
    hs_error_t rc = hs_alloc_scratch(db, &scratch);
    if (rc != HS_SUCCESS) {
        hs_free_database(db);
        err = rc == HS_NOMEM ? NA_ERR_NOMEM : NA_OK;
        goto out;
    }
    r->db = db;
    r->db_scratch = scratch;
    r->db_ok = true;
    err = NA_OK;
out:
    free(lits);
    free(lens);
    free(flags);
    free(ids);
    return err;
}

void na_rules_db_free(na_rules_t *r) {
    if (r->db_pool) {
        for (size_t i = 0; i < NA_RULES_DB_POOL; i++) {
            hs_free_scratch(atomic_exchange(&r->db_pool[i], NULL));
        }
    }
    free((void *)r->db_pool);
    hs_free_scratch(r->db_scratch);
    hs_free_database(r->db);
    free(r->db_lens);
    free(r->pre3);
    r->pre3 = NULL;
    r->db_pool = NULL;
    r->db_scratch = NULL;
    r->db = NULL;
    r->db_lens = NULL;
}

void *na_rules_db_take(const na_rules_t *r) {
    hs_scratch_t *s = NULL;
    for (size_t i = 0; i < NA_RULES_DB_POOL; i++) {
        if (atomic_load_explicit(&r->db_pool[i], memory_order_relaxed) &&
            (s = atomic_exchange(&r->db_pool[i], NULL))) {
            return s;
        }
    }
    if (hs_clone_scratch(r->db_scratch, &s) != HS_SUCCESS) {
        return NULL;
    }
    return s;
}

void na_rules_db_put(const na_rules_t *r, void *scratch) {
    if (!scratch) {
        return;
    }
    for (size_t i = 0; i < NA_RULES_DB_POOL; i++) {
        void *expect = NULL;
        if (atomic_compare_exchange_strong(&r->db_pool[i], &expect, scratch)) {
            return;
        }
    }
    hs_free_scratch(scratch);
}
