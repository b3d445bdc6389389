#include "merge.h"

#include <stdlib.h>

struct mitem {
    int64_t ts;
    size_t bytes;
    void *item;
};

/* One partition's queue: a ring of items in push order. */
struct mpart {
    struct mitem *v;
    size_t head, cnt, cap;
    size_t bytes;
    bool closed;
};

struct na_merge_s {
    struct mpart *parts;
    size_t parts_cnt;
    size_t count;
};

na_merge_t *na_merge_new(size_t parts) {
    na_merge_t *m = calloc(1, sizeof(*m));
    if (!m || !(m->parts = calloc(parts ? parts : 1, sizeof(*m->parts)))) {
        free(m);
        return NULL;
    }
    m->parts_cnt = parts;
    return m;
}

void na_merge_destroy(na_merge_t *m) {
    if (!m) {
        return;
    }
    for (size_t i = 0; i < m->parts_cnt; i++) {
        free(m->parts[i].v);
    }
    free(m->parts);
    free(m);
}

bool na_merge_push(na_merge_t *m, size_t part, int64_t ts, size_t bytes, void *item) {
    struct mpart *p = &m->parts[part];
    if (p->cnt == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct mitem *v = malloc(cap * sizeof(*v));
        if (!v) {
            return false;
        }
        for (size_t i = 0; i < p->cnt; i++) {
            v[i] = p->v[(p->head + i) % p->cap];
        }
        free(p->v);
        p->v = v;
        p->head = 0;
        p->cap = cap;
    }
    p->v[(p->head + p->cnt) % p->cap] = (struct mitem){ts, bytes, item};
    p->cnt++;
    p->bytes += bytes;
    m->count++;
    return true;
}

void na_merge_close(na_merge_t *m, size_t part) {
    m->parts[part].closed = true;
}

bool na_merge_closed(const na_merge_t *m, size_t part) {
    return m->parts[part].closed;
}

void *na_merge_pop(na_merge_t *m, size_t *part) {
    struct mpart *best = NULL;
    size_t at = 0;
    for (size_t i = 0; i < m->parts_cnt; i++) {
        struct mpart *p = &m->parts[i];
        if (!p->cnt) {
            if (!p->closed) {
                return NULL; /* its next record may be the oldest */
            }
            continue;
        }
        /* ties go to the lower partition: the first one seen */
        if (!best || p->v[p->head].ts < best->v[best->head].ts) {
            best = p;
            at = i;
        }
    }
    if (!best) {
        return NULL;
    }
    struct mitem *x = &best->v[best->head];
    void *item = x->item;
    best->bytes -= x->bytes;
    best->head = (best->head + 1) % best->cap;
    best->cnt--;
    m->count--;
    *part = at;
    return item;
}

size_t na_merge_bytes(const na_merge_t *m, size_t part) {
    return m->parts[part].bytes;
}

size_t na_merge_count(const na_merge_t *m) {
    return m->count;
}
