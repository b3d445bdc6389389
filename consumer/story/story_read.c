/*
 * An article read apart from the engine (story.h, na_story_read()): its
 * features as the text gives them (story_text.c), each distinct one once
 * with how often the text gave it, in the order the text first gave it,
 * its key hashed, and the id of the story the article would open. Nothing
 * here touches a set of stories, so the pipeline's worker threads read
 * while the engine's thread assigns the articles read before.
 */
#include <stdlib.h>
#include <string.h>

#include "newsalert/hash.h"
#include "newsalert/util.h"
#include "story_internal.h"

void na_story_read_init(struct na_story_read_s *r, bool keep) {
    memset(r, 0, sizeof(*r));
    r->keep = keep;
    na_story_text_init(&r->tx);
}

void na_story_read_cleanup(struct na_story_read_s *r) {
    free(r->pend);
    free(r->ptext);
    free(r->seen);
    na_story_text_cleanup(&r->tx);
    na_story_read_init(r, r->keep);
}

na_story_read_t *na_story_read_new(void) {
    na_story_read_t *r = malloc(sizeof(*r));
    if (r) {
        na_story_read_init(r, false);
    }
    return r;
}

void na_story_read_destroy(na_story_read_t *r) {
    if (r) {
        na_story_read_cleanup(r);
        free(r);
    }
}

/* Room for one more distinct feature of @p len bytes, and a table to find
 * the distinct ones in at most half full (emit()'s slow path, apart so
 * that its fast path saves no registers). */
static __attribute__((noinline)) bool emit_room(struct na_story_read_s *r, size_t len) {
    if (r->pend_cnt == r->pend_cap) {
        size_t cap = r->pend_cap ? r->pend_cap * 2 : 256;
        struct na_story_pend *n = realloc(r->pend, cap * sizeof(*n));
        if (!n) {
            return false;
        }
        r->pend = n;
        r->pend_cap = cap;
    }
    if (r->ptext_len + len > r->ptext_cap) {
        size_t cap = r->ptext_cap ? r->ptext_cap : 4096;
        while (cap < r->ptext_len + len) {
            cap *= 2;
        }
        char *n = realloc(r->ptext, cap);
        if (!n) {
            return false;
        }
        r->ptext = n;
        r->ptext_cap = cap;
    }
    if ((r->pend_cnt + 1) * 2 > r->seen_cap) {
        size_t cap = r->seen_cap ? r->seen_cap * 2 : 512;
        uint32_t *n = calloc(cap, sizeof(*n));
        if (!n) {
            return false;
        }
        for (size_t i = 0; i < r->pend_cnt; i++) {
            size_t j = (size_t)r->pend[i].key & (cap - 1);
            while (n[j]) {
                j = (j + 1) & (cap - 1);
            }
            n[j] = (uint32_t)i + 1;
        }
        free(r->seen);
        r->seen = n;
        r->seen_cap = cap;
    }
    return true;
}

/* na_story_emit_cb: note one feature, or count it again when noted. */
static bool emit(void *ctx, const char *text, size_t len) {
    struct na_story_read_s *r = ctx;
    if ((r->pend_cnt == r->pend_cap || r->ptext_len + len > r->ptext_cap ||
         (r->pend_cnt + 1) * 2 > r->seen_cap) &&
        !emit_room(r, len)) {
        r->oom = true;
        return false;
    }
    /* copied as it is hashed; the copy is kept only when the feature is new */
    uint64_t key = na_story_hash_copy(r->ptext + r->ptext_len, text, len);
    size_t j = (size_t)key & (r->seen_cap - 1);
    for (; r->seen[j]; j = (j + 1) & (r->seen_cap - 1)) {
        struct na_story_pend *p = &r->pend[r->seen[j] - 1];
        if (p->key == key) {
            p->tf += p->tf < UINT16_MAX;
            return true;
        }
    }
    r->seen[j] = (uint32_t)++r->pend_cnt;
    r->pend[r->pend_cnt - 1] =
        (struct na_story_pend){key, (uint32_t)r->ptext_len, (uint8_t)len, r->in_title, 1};
    r->ptext_len += len;
    return true;
}

na_err_t na_story_read(na_story_read_t *r, const struct na_article *a) {
    const char *body[] = {a->summary, a->content};
    size_t left = NA_STORY_BODY_BYTES;
    na_err_t err = NA_OK;

    if (r->seen_cap) {
        memset(r->seen, 0, r->seen_cap * sizeof(*r->seen));
    }
    r->of = NULL;
    r->pend_cnt = 0;
    r->ptext_len = 0;
    r->oom = false;
    if (a->title) {
        size_t len = na_utf8_cut(a->title, strlen(a->title), NA_STORY_TITLE_BYTES);
        r->in_title = true;
        err = na_story_text_features(&r->tx, a->title, len, emit, r);
    }
    r->in_title = false;
    for (size_t i = 0; i < 2 && !err && left > 0; i++) {
        if (body[i] && *body[i]) {
            size_t len = na_utf8_cut(body[i], strnlen(body[i], left), left);
            err = na_story_text_features(&r->tx, body[i], len, emit, r);
            left -= len;
        }
    }
    if (!err && !r->oom) {
        const char *parts[] = {"story/v1", a->id, NULL};
        err = na_sha256_hex_parts(parts, r->new_id);
    }
    if (!r->keep) {
        /* a read kept in a record: only what the engine reads stays */
        na_story_text_cleanup(&r->tx);
        na_story_text_init(&r->tx);
        free(r->seen);
        r->seen = NULL;
        r->seen_cap = 0;
    }
    if (err || r->oom) {
        r->pend_cnt = 0;
        return NA_ERR_NOMEM;
    }
    r->of = a;
    return NA_OK;
}
