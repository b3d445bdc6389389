#include "tracker.h"

#include <stdlib.h>
#include <string.h>

/* Per partition, a FIFO of entries in offset order (records arrive in order
 * within a partition). */
struct part {
    int32_t partition;
    struct na_tracker_entry **q;
    size_t head, len, cap;
    int64_t next_offset; /* one past the last record added */
    int64_t stored;      /* last offset handed out by committable, -1 none */
};

struct na_tracker_s {
    struct part *parts;
    size_t parts_cnt;
    size_t unfinished;
    /* Unfinished entries of revoked partitions: freed by na_tracker_done(),
     * or by na_tracker_destroy() when their work never ends (a drain that
     * timed out, work abandoned at exit). */
    struct na_tracker_entry **orphans;
    size_t orphans_cnt, orphans_cap;
};

na_tracker_t *na_tracker_new(void) {
    return calloc(1, sizeof(na_tracker_t));
}

static void orphan_add(na_tracker_t *t, struct na_tracker_entry *e) {
    e->orphaned = true; /* freed by na_tracker_done() */
    if (t->orphans_cnt == t->orphans_cap) {
        size_t cap = t->orphans_cap ? t->orphans_cap * 2 : 16;
        struct na_tracker_entry **n = realloc(t->orphans, cap * sizeof(*n));
        if (!n) {
            return; /* untracked: freed by na_tracker_done() only */
        }
        t->orphans = n;
        t->orphans_cap = cap;
    }
    t->orphans[t->orphans_cnt++] = e;
}

static void orphan_remove(na_tracker_t *t, const struct na_tracker_entry *e) {
    for (size_t i = 0; i < t->orphans_cnt; i++) {
        if (t->orphans[i] == e) {
            t->orphans[i] = t->orphans[--t->orphans_cnt];
            return;
        }
    }
}

static void part_free_entries(na_tracker_t *t, struct part *p, bool orphan_unfinished) {
    for (size_t i = 0; i < p->len; i++) {
        struct na_tracker_entry *e = p->q[(p->head + i) % p->cap];
        if (e->finished || !orphan_unfinished) {
            free(e);
        } else {
            orphan_add(t, e);
        }
    }
    free(p->q);
    p->q = NULL;
    p->head = p->len = p->cap = 0;
}

void na_tracker_destroy(na_tracker_t *t) {
    if (!t) {
        return;
    }
    for (size_t i = 0; i < t->parts_cnt; i++) {
        part_free_entries(t, &t->parts[i], false);
    }
    for (size_t i = 0; i < t->orphans_cnt; i++) {
        free(t->orphans[i]);
    }
    free(t->orphans);
    free(t->parts);
    free(t);
}

static struct part *find_part(na_tracker_t *t, int32_t partition, bool create) {
    for (size_t i = 0; i < t->parts_cnt; i++) {
        if (t->parts[i].partition == partition) {
            return &t->parts[i];
        }
    }
    if (!create) {
        return NULL;
    }
    struct part *n = realloc(t->parts, (t->parts_cnt + 1) * sizeof(*n));
    if (!n) {
        return NULL;
    }
    t->parts = n;
    struct part *p = &n[t->parts_cnt++];
    memset(p, 0, sizeof(*p));
    p->partition = partition;
    p->stored = -1;
    return p;
}

struct na_tracker_entry *na_tracker_add(na_tracker_t *t, int32_t partition,
                                        int64_t offset) {
    struct part *p = find_part(t, partition, true);
    struct na_tracker_entry *e;
    if (!p || !(e = calloc(1, sizeof(*e)))) {
        return NULL;
    }
    if (p->len == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        struct na_tracker_entry **q = malloc(cap * sizeof(*q));
        if (!q) {
            free(e);
            return NULL;
        }
        for (size_t i = 0; i < p->len; i++) {
            q[i] = p->q[(p->head + i) % p->cap];
        }
        free(p->q);
        p->q = q;
        p->head = 0;
        p->cap = cap;
    }
    if (p->stored < 0) {
        p->stored = offset; /* storing the first record's own offset says nothing */
    }
    e->tracker = t;
    e->partition = partition;
    e->offset = offset;
    e->pending = 1; /* the record's own processing; see na_tracker_done() */
    p->q[(p->head + p->len) % p->cap] = e;
    p->len++;
    p->next_offset = offset + 1;
    t->unfinished++;
    return e;
}

void na_tracker_done(struct na_tracker_entry *e) {
    na_tracker_t *t = e->tracker;
    if (!e->pending || --e->pending) {
        return;
    }
    e->finished = true;
    t->unfinished--;
    if (e->orphaned) {
        orphan_remove(t, e);
        free(e);
    }
}

bool na_tracker_committable(na_tracker_t *t, int32_t partition, int64_t *offset) {
    struct part *p = find_part(t, partition, false);
    if (!p) {
        return false;
    }
    while (p->len && p->q[p->head]->finished) {
        free(p->q[p->head]);
        p->head = (p->head + 1) % p->cap;
        p->len--;
    }
    int64_t next = p->len ? p->q[p->head]->offset : p->next_offset;
    if (next <= p->stored) {
        return false;
    }
    p->stored = next;
    *offset = next;
    return true;
}

void na_tracker_revoke(na_tracker_t *t, int32_t partition) {
    for (size_t i = 0; i < t->parts_cnt; i++) {
        if (t->parts[i].partition != partition) {
            continue;
        }
        part_free_entries(t, &t->parts[i], true);
        t->parts[i] = t->parts[t->parts_cnt - 1];
        t->parts_cnt--;
        return;
    }
}

size_t na_tracker_partitions(const na_tracker_t *t) {
    return t->parts_cnt;
}

int32_t na_tracker_partition(const na_tracker_t *t, size_t i) {
    return t->parts[i].partition;
}

size_t na_tracker_unfinished(const na_tracker_t *t) {
    return t->unfinished;
}
