/* The alert ledger (see ledger.h and docs/delivery.md). Memory: an open-
 * addressing table of alert id -> the routes that have an outcome, with
 * route names interned once. */
#include "ledger.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/daemon.h"
#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

/* Largest ledger record read back (bytes) and longest key/route name. */
#define LEDGER_MAX_VALUE_BYTES (1024u * 1024u)
#define LEDGER_MAX_KEY 128u
/* Every route of a config fits (a record carries each route's outcome). */
#define LEDGER_MAX_ROUTES_PER_ALERT NA_MAX_ROUTES
/* Records that are not ledger records logged one by one, per minute at
 * most; the others are counted only (a topic others write to may hold any
 * number of them). */
#define LEDGER_INVALID_LOGS_PER_MIN 10u

/* In the order of what they say: sent (never downgraded), dead-lettered
 * (only sending upgrades it), then the transient ones. */
enum outcome {
    OUT_DELIVERED,
    OUT_DIGEST,
    OUT_DEAD,
    OUT_LINKED,
    OUT_PARKED,
    OUT_PENDING,
    OUT_RELEASED,
    OUT_OTHER
};

static const char *const outcome_names[] = {"delivered", "digest", "dead_lettered",
                                            "linked",    "parked", "pending",
                                            "released",  "other"};

struct mark {
    const char *route; /* interned: l->routes[ridx].name */
    unsigned ridx;
    long status;
    int attempts;
    int64_t at_ms;
    int64_t until_ms; /* "pending": the hand-over holds until then */
    unsigned char outcome;
};

struct slot {
    char *id; /* NULL: empty */
    struct mark *marks;
    unsigned marks_cnt;
};

struct rname {
    char *name;
    size_t refs; /* marks that have it */
};

struct mem_pending {
    void *opaque;
    struct mem_pending *next;
};

/* The owner record of one partition of an input topic. */
struct owner {
    char *topic;
    int32_t partition;
    unsigned char state; /* enum na_ledger_owner */
    int64_t at_ms;
};

#define LEDGER_OWNER_PREFIX "owner/"
/* Owner records kept (partitions of the topics this group reads). */
#define LEDGER_MAX_OWNERS 65536u

struct na_ledger_s {
    struct owner *owners;
    size_t owners_cnt;
    struct slot *slots;
    size_t size; /* power of two */
    size_t cnt;
    /* Interned route names, each kept while a mark has it (refs): names of
     * alerts deleted or forgotten do not pile up. NULL name: a free entry. */
    struct rname *routes;
    size_t routes_len; /* entries, free ones included */
    size_t routes_cnt; /* names */
    rd_kafka_t *rk;    /* NULL: memory ledger */
    char *topic;
    na_ledger_confirm_cb *cb;
    void *ctx;
    size_t outstanding;
    struct mem_pending *mem_head, **mem_tail;
    int64_t horizon_ms; /* 0: keep every alert */
    rd_kafka_t *follow; /* reads what every member writes, after the load */
    int follow_parts;   /* partitions of the topic when it was loaded */
    int64_t *next;      /* per partition: the offset the follower reads next */
    na_ledger_load_cb *load_cb;
    void *load_ctx;
    uint64_t followed; /* records read while following */
    /* invalid_record()'s rate limit: lines in the minute from window_ms
     * (monotonic; 0: none yet), and the records not logged since the
     * last line */
    int64_t invalid_window_ms;
    unsigned invalid_logged;
    uint64_t invalid_unlogged;
};

/* ---- table ---- */

static uint64_t hash_id(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static struct slot *find_slot(const na_ledger_t *l, const char *id) {
    size_t mask = l->size - 1;
    for (size_t i = (size_t)hash_id(id) & mask;; i = (i + 1) & mask) {
        struct slot *s = &l->slots[i];
        if (!s->id || !strcmp(s->id, id)) {
            return s;
        }
    }
}

static na_err_t grow(na_ledger_t *l) {
    size_t old_size = l->size;
    struct slot *old = l->slots;
    size_t size = old_size ? old_size * 2 : 1024;
    struct slot *n = calloc(size, sizeof(*n));
    if (!n) {
        return NA_ERR_NOMEM;
    }
    l->slots = n;
    l->size = size;
    for (size_t i = 0; i < old_size; i++) {
        if (old[i].id) {
            *find_slot(l, old[i].id) = old[i];
        }
    }
    free(old);
    return NA_OK;
}

/* Take a reference to the interned @p route (interned now if new).
 * @returns NA_OK with its entry in *ridx, or NA_ERR_NOMEM. */
static na_err_t route_ref(na_ledger_t *l, const char *route, unsigned *ridx) {
    size_t free_at = l->routes_len;
    for (size_t i = 0; i < l->routes_len; i++) {
        if (!l->routes[i].name) {
            free_at = i < free_at ? i : free_at;
        } else if (!strcmp(l->routes[i].name, route)) {
            l->routes[i].refs++;
            *ridx = (unsigned)i;
            return NA_OK;
        }
    }
    if (free_at == l->routes_len) {
        struct rname *n = realloc(l->routes, (l->routes_len + 1) * sizeof(*n));
        if (!n) {
            return NA_ERR_NOMEM;
        }
        l->routes = n;
        l->routes[l->routes_len].name = NULL;
        l->routes_len++;
    }
    if (!(l->routes[free_at].name = na_strdup(route))) {
        return NA_ERR_NOMEM;
    }
    l->routes[free_at].refs = 1;
    l->routes_cnt++;
    *ridx = (unsigned)free_at;
    return NA_OK;
}

/* Drop the references of @p s's marks: a name no mark has is freed. */
static void marks_unref(na_ledger_t *l, const struct slot *s) {
    for (unsigned i = 0; i < s->marks_cnt; i++) {
        struct rname *r = &l->routes[s->marks[i].ridx];
        if (!--r->refs) {
            free(r->name);
            r->name = NULL;
            l->routes_cnt--;
        }
    }
}

/* Remove and re-insert the run after @p s so probing stays correct. */
static void erase(na_ledger_t *l, struct slot *s) {
    size_t mask = l->size - 1;
    size_t i = (size_t)(s - l->slots);
    marks_unref(l, s);
    free(s->id);
    free(s->marks);
    memset(s, 0, sizeof(*s));
    l->cnt--;
    for (i = (i + 1) & mask; l->slots[i].id; i = (i + 1) & mask) {
        struct slot tmp = l->slots[i];
        memset(&l->slots[i], 0, sizeof(l->slots[i]));
        *find_slot(l, tmp.id) = tmp;
    }
}

/* @returns the newest outcome time of @p s (0 when none has one). */
static int64_t slot_newest(const struct slot *s) {
    int64_t t = 0;
    for (unsigned i = 0; i < s->marks_cnt; i++) {
        t = s->marks[i].at_ms > t ? s->marks[i].at_ms : t;
    }
    return t;
}

/* Is @p s past the horizon at @p now_ms? An alert whose outcomes carry no
 * time is kept: its age is unknown, and forgetting it could send it twice. */
static bool slot_expired(const na_ledger_t *l, const struct slot *s, int64_t now_ms) {
    int64_t newest = slot_newest(s);
    return l->horizon_ms > 0 && newest > 0 && newest < now_ms - l->horizon_ms;
}

static struct slot *get_or_add(na_ledger_t *l, const char *id) {
    if ((l->cnt + 1) * 4 > l->size * 3 && grow(l)) {
        return NULL;
    }
    struct slot *s = find_slot(l, id);
    if (!s->id) {
        if (!(s->id = na_strdup(id))) {
            return NULL;
        }
        l->cnt++;
    }
    return s;
}

static na_err_t set_mark(na_ledger_t *l, struct slot *s, const char *route,
                         enum outcome outcome, long status, int attempts, int64_t at_ms,
                         int64_t until_ms) {
    struct mark *m = NULL;
    for (unsigned i = 0; i < s->marks_cnt && !m; i++) {
        if (!strcmp(s->marks[i].route, route)) {
            m = &s->marks[i];
        }
    }
    if (!m) {
        unsigned ridx;
        if (s->marks_cnt >= LEDGER_MAX_ROUTES_PER_ALERT) {
            return NA_ERR_TOO_LARGE;
        }
        struct mark *n = realloc(s->marks, (s->marks_cnt + 1) * sizeof(*n));
        if (!n) {
            return NA_ERR_NOMEM;
        }
        s->marks = n;
        if (route_ref(l, route, &ridx)) {
            return NA_ERR_NOMEM;
        }
        m = &n[s->marks_cnt++];
        memset(m, 0, sizeof(*m));
        m->route = l->routes[ridx].name;
        m->ridx = ridx;
    } else if ((m->outcome <= OUT_DIGEST && outcome > OUT_DIGEST) ||
               (m->outcome == OUT_DEAD && outcome > OUT_DEAD)) {
        return NA_OK; /* "sent" is never downgraded; "dead" only by sending */
    }
    m->outcome = (unsigned char)outcome;
    m->status = status;
    m->attempts = attempts;
    m->at_ms = at_ms;
    m->until_ms = outcome == OUT_PENDING ? until_ms : 0;
    return NA_OK;
}

static enum outcome outcome_parse(const char *s) {
    for (int i = 0; i < OUT_OTHER; i++) {
        if (!strcmp(s, outcome_names[i])) {
            return (enum outcome)i;
        }
    }
    return OUT_OTHER;
}

/* ---- queries ---- */

bool na_ledger_known(const na_ledger_t *l, const char *alert_id) {
    return l && l->size && find_slot(l, alert_id)->id;
}

static const struct mark *find_mark(const na_ledger_t *l, const char *alert_id,
                                    const char *route) {
    if (!l || !l->size) {
        return NULL;
    }
    const struct slot *s = find_slot(l, alert_id);
    for (unsigned i = 0; s->id && i < s->marks_cnt; i++) {
        if (!strcmp(s->marks[i].route, route)) {
            return &s->marks[i];
        }
    }
    return NULL;
}

bool na_ledger_delivered(const na_ledger_t *l, const char *alert_id, const char *route) {
    const struct mark *m = find_mark(l, alert_id, route);
    return m && m->outcome <= OUT_DIGEST;
}

enum na_ledger_state na_ledger_state(const na_ledger_t *l, const char *alert_id,
                                     const char *route, int64_t *until_ms) {
    const struct mark *m = find_mark(l, alert_id, route);
    if (until_ms) {
        *until_ms = 0;
    }
    if (!m) {
        return NA_LEDGER_NONE;
    }
    switch (m->outcome) {
    case OUT_DELIVERED:
    case OUT_DIGEST:
        return NA_LEDGER_SENT;
    case OUT_DEAD:
        return NA_LEDGER_DEAD;
    case OUT_PARKED:
        return NA_LEDGER_PARKED;
    case OUT_PENDING:
        if (until_ms) {
            *until_ms = m->until_ms;
        }
        return NA_LEDGER_PENDING;
    default:
        return NA_LEDGER_NONE;
    }
}

size_t na_ledger_count(const na_ledger_t *l) {
    return l ? l->cnt : 0;
}

size_t na_ledger_route_names(const na_ledger_t *l) {
    return l ? l->routes_cnt : 0;
}

size_t na_ledger_outstanding(const na_ledger_t *l) {
    return l ? l->outstanding : 0;
}

/* ---- owners ---- */

static struct owner *find_owner(const na_ledger_t *l, const char *topic,
                                int32_t partition) {
    for (size_t i = 0; i < l->owners_cnt; i++) {
        if (l->owners[i].partition == partition && !strcmp(l->owners[i].topic, topic)) {
            return &l->owners[i];
        }
    }
    return NULL;
}

static na_err_t set_owner(na_ledger_t *l, const char *topic, int32_t partition,
                          enum na_ledger_owner state, int64_t at_ms) {
    struct owner *o = find_owner(l, topic, partition);
    if (!o) {
        if (l->owners_cnt >= LEDGER_MAX_OWNERS) {
            return NA_ERR_INVALID;
        }
        struct owner *v = realloc(l->owners, (l->owners_cnt + 1) * sizeof(*v));
        if (!v) {
            return NA_ERR_NOMEM;
        }
        l->owners = v;
        o = &v[l->owners_cnt];
        if (!(o->topic = na_strdup(topic))) {
            return NA_ERR_NOMEM;
        }
        o->partition = partition;
        l->owners_cnt++;
    }
    o->state = (unsigned char)state;
    o->at_ms = at_ms;
    return NA_OK;
}

/* The key of @p partition's owner record: the topic's name, or its hash
 * when the name is too long for a key. @returns NA_OK or NA_ERR_NOMEM. */
static na_err_t owner_key(const char *topic, int32_t partition,
                          char key[LEDGER_MAX_KEY + 1]) {
    char hex[NA_SHA256_HEX_LEN + 1];
    int n = snprintf(key, LEDGER_MAX_KEY + 1, LEDGER_OWNER_PREFIX "%s/%ld", topic,
                     (long)partition);
    if (n < 0 || n > (int)LEDGER_MAX_KEY) {
        na_err_t err = na_sha256_hex(topic, strlen(topic), hex);
        if (err) {
            key[0] = '\0';
            return err;
        }
        snprintf(key, LEDGER_MAX_KEY + 1, LEDGER_OWNER_PREFIX "%s/%ld", hex,
                 (long)partition);
    }
    return NA_OK;
}

/* An owner record: {"owner": {"topic", "partition", "state", "member",
 * "at_ms"}}; a tombstone forgets nothing (the mark stays until replaced). */
static na_err_t apply_owner(na_ledger_t *l, const char *key, const char *value,
                            size_t len, const char **why) {
    json_error_t jerr;
    const char *topic = NULL, *state = NULL;
    json_int_t partition = -1, at_ms = 0;
    char want[LEDGER_MAX_KEY + 1];
    na_err_t err = NA_ERR_INVALID;
    if (!value) {
        return NA_OK;
    }
    json_t *root = len <= LEDGER_MAX_VALUE_BYTES
                       ? json_loadb(value, len, JSON_REJECT_DUPLICATES, &jerr)
                       : NULL;
    *why = "not an owner record";
    if (root &&
        !json_unpack_ex(root, &jerr, 0, "{s:{s:s, s:I, s:s, s?I}}", "owner", "topic",
                        &topic, "partition", &partition, "state", &state, "at_ms",
                        &at_ms) &&
        partition >= 0 && partition <= INT32_MAX &&
        (!strcmp(state, "taken") || !strcmp(state, "released"))) {
        if (owner_key(topic, (int32_t)partition, want)) {
            err = NA_ERR_NOMEM;
            *why = "no memory";
        } else if (!strcmp(want, key)) { /* a record under another key is not trusted */
            err = set_owner(l, topic, (int32_t)partition,
                            strcmp(state, "taken") ? NA_OWNER_RELEASED : NA_OWNER_TAKEN,
                            (int64_t)at_ms);
            if (err) {
                *why = err == NA_ERR_NOMEM ? "no memory" : "too many owner records";
            }
        } else {
            *why = "owner record under another key";
        }
    }
    json_decref(root);
    return err;
}

enum na_ledger_owner na_ledger_owner(const na_ledger_t *l, const char *topic,
                                     int32_t partition, int64_t *at_ms) {
    const struct owner *o = l ? find_owner(l, topic, partition) : NULL;
    if (at_ms) {
        *at_ms = o ? o->at_ms : 0;
    }
    return o ? (enum na_ledger_owner)o->state : NA_OWNER_UNKNOWN;
}

na_err_t na_ledger_mark_owner(na_ledger_t *l, const char *topic, int32_t partition,
                              enum na_ledger_owner state, const char *member) {
    char key[LEDGER_MAX_KEY + 1];
    int64_t now = na_now_ms();
    na_err_t err;
    if (state != NA_OWNER_TAKEN && state != NA_OWNER_RELEASED) {
        return NA_ERR_INVALID;
    }
    if ((err = set_owner(l, topic, partition, state, now))) {
        return err;
    }
    if (!l->rk) {
        return NA_OK;
    }
    if ((err = owner_key(topic, partition, key))) {
        return err;
    }
    json_t *root =
        json_pack("{s:{s:s, s:i, s:s, s:s, s:I}}", "owner", "topic", topic, "partition",
                  (int)partition, "state", state == NA_OWNER_TAKEN ? "taken" : "released",
                  "member", member ? member : "", "at_ms", (json_int_t)now);
    char *value = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!value) {
        return NA_ERR_NOMEM;
    }
    rd_kafka_resp_err_t kerr = rd_kafka_producev(
        l->rk, RD_KAFKA_V_TOPIC(l->topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE(value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
        RD_KAFKA_V_OPAQUE(NULL), RD_KAFKA_V_END);
    if (kerr) {
        na_log(NA_LOG_WARN, "ledger", "produce_failed", "key=%s err=%s", na_log_q(key),
               na_log_q(rd_kafka_err2str(kerr)));
        free(value);
        return NA_ERR_KAFKA;
    }
    l->outstanding++;
    return NA_OK;
}

/* ---- records ---- */

/* na_ledger_apply(); with @p cb, also hands the parsed record to it. On an
 * error, @p why (why_size bytes) says what was wrong with the record. */
static na_err_t apply(na_ledger_t *l, const char *key, size_t key_len, const char *value,
                      size_t len, na_ledger_load_cb *cb, void *cb_ctx, char *why,
                      size_t why_size) {
    const char *owner_why = NULL;
    char id[LEDGER_MAX_KEY + 1];
    json_t *root = NULL, *dels, *v;
    const char *route;
    json_error_t jerr;
    na_err_t err = NA_OK;

    if (!key || !key_len || key_len > LEDGER_MAX_KEY || memchr(key, '\0', key_len)) {
        snprintf(why, why_size, "key empty, with a NUL or over %u bytes", LEDGER_MAX_KEY);
        return NA_ERR_INVALID;
    }
    memcpy(id, key, key_len);
    id[key_len] = '\0';
    if (!strncmp(id, LEDGER_OWNER_PREFIX, strlen(LEDGER_OWNER_PREFIX))) {
        err = apply_owner(l, id, value, len, &owner_why);
        if (err) {
            snprintf(why, why_size, "%s", owner_why);
        }
        return err;
    }
    if (!value) { /* tombstone */
        if (l->size && find_slot(l, id)->id) {
            erase(l, find_slot(l, id));
        }
        if (cb) {
            cb(id, NULL, cb_ctx);
        }
        return NA_OK;
    }
    if (len > LEDGER_MAX_VALUE_BYTES) {
        snprintf(why, why_size, "value over %u bytes", LEDGER_MAX_VALUE_BYTES);
        return NA_ERR_INVALID;
    }
    root = json_loadb(value, len, JSON_REJECT_DUPLICATES, &jerr);
    dels = json_object_get(root, "deliveries");
    if (!json_is_object(dels)) {
        if (root) {
            snprintf(why, why_size, "no deliveries object");
        } else {
            snprintf(why, why_size, "not JSON: %s", jerr.text);
        }
        err = NA_ERR_INVALID;
        goto out;
    }
    struct slot *s = get_or_add(l, id);
    if (!s) {
        snprintf(why, why_size, "no memory");
        err = NA_ERR_NOMEM;
        goto out;
    }
    json_object_foreach(dels, route, v) {
        const char *outcome = json_string_value(json_object_get(v, "outcome"));
        if (!outcome || !*route) {
            continue;
        }
        err = set_mark(l, s, route, outcome_parse(outcome),
                       (long)json_integer_value(json_object_get(v, "status")),
                       (int)json_integer_value(json_object_get(v, "attempts")),
                       (int64_t)json_integer_value(json_object_get(v, "at_ms")),
                       (int64_t)json_integer_value(json_object_get(v, "until_ms")));
        if (err) {
            snprintf(why, why_size, "route %s: %s", route, na_err2str(err));
            goto out;
        }
    }
    if (slot_expired(l, s, na_now_ms())) {
        /* older than the horizon: as if the topic had deleted it */
        erase(l, s);
        na_metrics_inc("newsalert_ledger_forgotten_total",
                       "Alerts forgotten by the ledger: older than its horizon.", NULL);
        goto out;
    }
    if (cb) {
        cb(id, root, cb_ctx);
    }
out:
    json_decref(root);
    return err;
}

na_err_t na_ledger_apply(na_ledger_t *l, const char *key, size_t key_len,
                         const char *value, size_t len) {
    char why[256];
    return apply(l, key, key_len, value, len, NULL, NULL, why, sizeof(why));
}

/* The record's value: alert/v1 (if given) plus every route's outcome.
 * alert/v1 comes as json_dumps(JSON_COMPACT | JSON_PRESERVE_ORDER) wrote
 * it, so "deliveries" is put in before its closing brace, as parsing it,
 * adding the key and dumping it again would (the same bytes without the
 * round trip, which cost a fifth of the daemon's CPU). Anything else goes
 * the long way. */
static char *record_value(const struct slot *s, const char *alert_json) {
    json_error_t jerr;
    if (!alert_json) {
        alert_json = "{}";
    }
    size_t alen = strlen(alert_json);
    bool splice = alen >= 2 && alert_json[0] == '{' && alert_json[alen - 1] == '}' &&
                  !strstr(alert_json, "\"deliveries\"");
    json_t *root = NULL;
    json_t *dels = json_object();
    char *text = NULL, *dtext = NULL;
    if (!splice) {
        root = json_loads(alert_json, 0, &jerr);
        if (!json_is_object(root)) {
            goto out;
        }
    }
    if (!dels) {
        goto out;
    }
    for (unsigned i = 0; i < s->marks_cnt; i++) {
        const struct mark *m = &s->marks[i];
        json_t *v = json_pack("{s:s, s:i, s:i, s:I}", "outcome",
                              outcome_names[m->outcome], "status", (int)m->status,
                              "attempts", m->attempts, "at_ms", (json_int_t)m->at_ms);
        if (v && m->outcome == OUT_PENDING) {
            json_object_set_new(v, "until_ms", json_integer((json_int_t)m->until_ms));
        }
        json_object_set_new(dels, m->route, v);
    }
    if (!splice) {
        json_object_set(root, "deliveries", dels);
        text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
        goto out;
    }
    if (!(dtext = json_dumps(dels, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
        goto out;
    }
    static const char key[] = "\"deliveries\":";
    size_t dlen = strlen(dtext);
    bool comma = alen > 2; /* "{}" takes none */
    if (!(text = malloc(alen - 1 + comma + sizeof(key) - 1 + dlen + 2))) {
        goto out;
    }
    char *w = text;
    memcpy(w, alert_json, alen - 1);
    w += alen - 1;
    if (comma) {
        *w++ = ',';
    }
    memcpy(w, key, sizeof(key) - 1);
    w += sizeof(key) - 1;
    memcpy(w, dtext, dlen);
    w += dlen;
    *w++ = '}';
    *w = '\0';
out:
    free(dtext);
    json_decref(root);
    json_decref(dels);
    return text;
}

na_err_t na_ledger_record(na_ledger_t *l, const char *alert_id, const char *route,
                          const struct na_ledger_delivery *d, const char *alert_json,
                          void *opaque) {
    struct slot *s;
    char *value = NULL;
    na_err_t err;

    if (!*alert_id || strlen(alert_id) > LEDGER_MAX_KEY) {
        return NA_ERR_INVALID;
    }
    if (!(s = get_or_add(l, alert_id))) {
        return NA_ERR_NOMEM;
    }
    if ((err = set_mark(l, s, route, outcome_parse(d->outcome), d->status, d->attempts,
                        d->at_ms, d->until_ms))) {
        return err;
    }
    if (!l->rk) {
        struct mem_pending *p = calloc(1, sizeof(*p));
        if (!p) {
            return NA_ERR_NOMEM;
        }
        p->opaque = opaque;
        *l->mem_tail = p;
        l->mem_tail = &p->next;
        l->outstanding++;
        return NA_OK;
    }
    if (!(value = record_value(s, alert_json))) {
        return NA_ERR_NOMEM;
    }
    rd_kafka_resp_err_t kerr;
    do {
        /* F_FREE: librdkafka frees value once the record is delivered. */
        kerr = rd_kafka_producev(l->rk, RD_KAFKA_V_TOPIC(l->topic),
                                 RD_KAFKA_V_KEY(alert_id, strlen(alert_id)),
                                 RD_KAFKA_V_VALUE(value, strlen(value)),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                                 RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
        if (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(l->rk, 100);
        }
    } while (kerr == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (kerr) {
        na_log(NA_LOG_ERROR, "ledger", "produce_failed", "alert=%s err=%s", alert_id,
               na_log_q(rd_kafka_err2str(kerr)));
        free(value);
        return NA_ERR_KAFKA;
    }
    l->outstanding++;
    return NA_OK;
}

/* Runs inside rd_kafka_poll() on the caller's thread. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque) {
    na_ledger_t *l = opaque;
    (void)rk;
    l->outstanding--;
    if (rkm->err) {
        na_log(NA_LOG_ERROR, "ledger", "record_failed", "err=%s",
               na_log_q(rd_kafka_err2str(rkm->err)));
        na_metrics_inc("newsalert_consumer_ledger_errors_total",
                       "Ledger records the broker refused.", NULL);
    } else {
        na_metrics_inc("newsalert_consumer_ledger_records_total",
                       "Ledger records confirmed by the broker.", NULL);
    }
    if (l->cb) {
        l->cb(rkm->_private, rkm->err ? NA_ERR_KAFKA : NA_OK, l->ctx);
    }
}

/* A record of the topic that is not a ledger record (skipped), read at the
 * load or while following: counted, and named with @p why, at most
 * LEDGER_INVALID_LOGS_PER_MIN lines a minute (the next line says how many
 * were not logged). */
static void invalid_record(na_ledger_t *l, const rd_kafka_message_t *rkm,
                           const char *why) {
    int64_t now = na_mono_ms();
    na_metrics_inc("newsalert_ledger_invalid_total",
                   "Ledger records that could not be read (skipped).", NULL);
    if (!l->invalid_window_ms || now - l->invalid_window_ms >= 60000) {
        l->invalid_window_ms = now;
        l->invalid_logged = 0;
    }
    if (l->invalid_logged >= LEDGER_INVALID_LOGS_PER_MIN) {
        l->invalid_unlogged++;
        return;
    }
    l->invalid_logged++;
    na_log(NA_LOG_WARN, "ledger", "invalid_record",
           "topic=%s partition=%d offset=%lld reason=%s not_logged_before=%llu",
           na_log_q(l->topic), (int)rkm->partition, (long long)rkm->offset, na_log_q(why),
           (unsigned long long)l->invalid_unlogged);
    l->invalid_unlogged = 0;
}

/* Apply one followed record (and destroy it). */
static void follow_one(na_ledger_t *l, rd_kafka_message_t *rkm) {
    if (!rkm->err) {
        l->followed++;
        if (rkm->partition >= 0 && rkm->partition < l->follow_parts) {
            l->next[rkm->partition] = rkm->offset + 1;
        }
        char why[256];
        if (apply(l, rkm->key, rkm->key_len, rkm->payload, rkm->len, l->load_cb,
                  l->load_ctx, why, sizeof(why))) {
            invalid_record(l, rkm, why);
        }
    } else if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        na_log(NA_LOG_WARN, "ledger", "follow_error", "err=%s",
               na_log_q(rd_kafka_message_errstr(rkm)));
    }
    rd_kafka_message_destroy(rkm);
}

/* Apply what the members (this one too) wrote since: at most @p max
 * records, without waiting. */
static void follow(na_ledger_t *l, int max) {
    for (int i = 0; l->follow && i < max; i++) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(l->follow, 0);
        if (!rkm) {
            return;
        }
        follow_one(l, rkm);
    }
}

na_err_t na_ledger_catch_up(na_ledger_t *l, int timeout_ms) {
    int64_t deadline = na_mono_ms() + timeout_ms;
    int64_t *high = NULL;
    na_err_t err = NA_OK;
    if (!l || !l->follow) {
        return NA_OK;
    }
    if (!(high = calloc((size_t)l->follow_parts + 1, sizeof(*high)))) {
        return NA_ERR_NOMEM;
    }
    /* The end of every partition in one request per leader (a timestamp
     * of -1 asks for the end), through the producer's connection: the
     * follower's waits behind its own long-polling fetch. */
    rd_kafka_topic_partition_list_t *ends =
        rd_kafka_topic_partition_list_new(l->follow_parts);
    for (int p = 0; p < l->follow_parts; p++) {
        rd_kafka_topic_partition_list_add(ends, l->topic, p)->offset = -1;
    }
    rd_kafka_resp_err_t kerr = rd_kafka_offsets_for_times(l->rk, ends, timeout_ms);
    for (int i = 0; !kerr && i < ends->cnt; i++) {
        int32_t p = ends->elems[i].partition;
        if (ends->elems[i].err) {
            kerr = ends->elems[i].err;
        } else if (p >= 0 && p < l->follow_parts) {
            high[p] = ends->elems[i].offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(ends);
    if (kerr) {
        na_log(NA_LOG_WARN, "ledger", "catch_up_failed", "err=%s",
               na_log_q(rd_kafka_err2str(kerr)));
        err = kerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? NA_ERR_TIMEOUT : NA_ERR_KAFKA;
        goto out;
    }
    for (;;) {
        bool behind = false;
        for (int p = 0; p < l->follow_parts; p++) {
            behind |= l->next[p] < high[p];
        }
        if (!behind) {
            break;
        }
        if (na_mono_ms() >= deadline) {
            err = NA_ERR_TIMEOUT;
            na_log(NA_LOG_WARN, "ledger", "catch_up_failed", "err=%s",
                   na_log_q(na_err2str(err)));
            goto out;
        }
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(l->follow, 50);
        if (rkm) {
            follow_one(l, rkm);
        }
    }
out:
    free(high);
    return err;
}

void na_ledger_poll(na_ledger_t *l, int timeout_ms) {
    if (l->rk) {
        rd_kafka_poll(l->rk, timeout_ms);
        follow(l, 1000);
        return;
    }
    while (l->mem_head) {
        struct mem_pending *p = l->mem_head;
        l->mem_head = p->next;
        if (!l->mem_head) {
            l->mem_tail = &l->mem_head;
        }
        l->outstanding--;
        if (l->cb) {
            l->cb(p->opaque, NA_OK, l->ctx);
        }
        free(p);
    }
}

/* ---- lifecycle ---- */

void na_ledger_set_horizon(na_ledger_t *l, int64_t horizon_ms) {
    l->horizon_ms = horizon_ms > 0 ? horizon_ms : 0;
}

size_t na_ledger_prune(na_ledger_t *l, int64_t now_ms) {
    size_t expired = 0;
    if (!l || !l->horizon_ms) {
        return 0;
    }
    for (size_t i = 0; i < l->size; i++) {
        expired += l->slots[i].id && slot_expired(l, &l->slots[i], now_ms);
    }
    if (!expired) {
        return 0;
    }
    /* Rebuild rather than erase one by one (each erase re-inserts its run). */
    size_t size = 1024;
    while ((l->cnt - expired + 1) * 4 > size * 3) {
        size *= 2;
    }
    struct slot *n = calloc(size, sizeof(*n));
    if (!n) {
        return 0; /* tried again at the next prune */
    }
    struct slot *old = l->slots;
    size_t old_size = l->size;
    l->slots = n;
    l->size = size;
    l->cnt = 0;
    for (size_t i = 0; i < old_size; i++) {
        struct slot *s = &old[i];
        if (!s->id) {
            continue;
        }
        if (slot_expired(l, s, now_ms)) {
            marks_unref(l, s);
            free(s->id);
            free(s->marks);
            continue;
        }
        *find_slot(l, s->id) = *s;
        l->cnt++;
    }
    free(old);
    na_metric_add(
        na_metrics_get(NA_METRIC_COUNTER, "newsalert_ledger_forgotten_total",
                       "Alerts forgotten by the ledger: older than its horizon.", NULL),
        (double)expired);
    return expired;
}

na_ledger_t *na_ledger_new_memory(na_ledger_confirm_cb *cb, void *ctx) {
    na_ledger_t *l = calloc(1, sizeof(*l));
    if (!l) {
        return NULL;
    }
    l->cb = cb;
    l->ctx = ctx;
    l->mem_tail = &l->mem_head;
    if (grow(l)) {
        free(l);
        return NULL;
    }
    return l;
}

void na_ledger_destroy(na_ledger_t *l) {
    if (!l) {
        return;
    }
    if (l->rk) {
        /* A second SIGTERM/SIGINT: no wait; an alert whose record is not
         * confirmed may be sent again after the restart. */
        rd_kafka_flush(l->rk, na_daemon_should_abort() ? 0 : 10000);
        if (rd_kafka_outq_len(l->rk)) {
            na_log(NA_LOG_WARN, "ledger", "unflushed", "records=%d",
                   rd_kafka_outq_len(l->rk));
        }
        rd_kafka_destroy(l->rk);
    }
    if (l->follow) {
        rd_kafka_consumer_close(l->follow);
        rd_kafka_destroy(l->follow);
    }
    free(l->next);
    for (size_t i = 0; i < l->owners_cnt; i++) {
        free(l->owners[i].topic);
    }
    free(l->owners);
    while (l->mem_head) {
        struct mem_pending *p = l->mem_head;
        l->mem_head = p->next;
        free(p);
    }
    for (size_t i = 0; i < l->size; i++) {
        free(l->slots[i].id);
        free(l->slots[i].marks);
    }
    free(l->slots);
    for (size_t i = 0; i < l->routes_len; i++) {
        free(l->routes[i].name);
    }
    free(l->routes);
    free(l->topic);
    free(l);
}

static rd_kafka_t *client(const struct na_ledger_opts *opts, rd_kafka_type_t type,
                          na_ledger_t *l, char *errstr, size_t errstr_size) {
    rd_kafka_conf_t *kconf = na_kafka_conf_new(opts->brokers, NULL, errstr, errstr_size);
    rd_kafka_t *rk;
    if (!kconf) {
        return NULL;
    }
    if (type == RD_KAFKA_PRODUCER) {
        if (na_kafka_conf_set(kconf, "client.id", "newsalert-ledger", errstr,
                              errstr_size) ||
            na_kafka_conf_set(kconf, "enable.idempotence", "true", errstr, errstr_size) ||
            na_kafka_conf_set(kconf, "acks", "all", errstr, errstr_size) ||
            na_kafka_conf_set(kconf, "linger.ms", "0", errstr, errstr_size)) {
            goto fail;
        }
        rd_kafka_conf_set_dr_msg_cb(kconf, on_delivery);
        rd_kafka_conf_set_opaque(kconf, l);
    } else {
        if (na_kafka_conf_set(kconf, "client.id", "newsalert-ledger-load", errstr,
                              errstr_size) ||
            na_kafka_conf_set(kconf, "group.id", "newsalert-ledger-load", errstr,
                              errstr_size) ||
            na_kafka_conf_set(kconf, "enable.auto.commit", "false", errstr,
                              errstr_size) ||
            na_kafka_conf_set(kconf, "enable.partition.eof", "true", errstr,
                              errstr_size) ||
            /* Following: what another member wrote arrives within this. */
            na_kafka_conf_set(kconf, "fetch.wait.max.ms", "100", errstr, errstr_size)) {
            goto fail;
        }
    }
    /* -X last; a property of the other client type only warns. */
    for (size_t i = 0; opts->props && i < opts->props->cnt; i++) {
        char key[256], ignored[512];
        const char *kv = opts->props->kv[i];
        const char *eq = strchr(kv, '=');
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
        if (rd_kafka_conf_set(kconf, key, eq + 1, ignored, sizeof(ignored)) !=
            RD_KAFKA_CONF_OK) {
            snprintf(errstr, errstr_size, "%s", ignored);
            goto fail;
        }
    }
    rk = rd_kafka_new(type, kconf, errstr, errstr_size);
    if (!rk) {
        goto fail;
    }
    return rk;
fail:
    rd_kafka_conf_destroy(kconf);
    return NULL;
}

/* Read every partition of the topic from its start to the end it had when
 * loading began. */
static na_err_t load(na_ledger_t *l, const struct na_ledger_opts *opts, char *errstr,
                     size_t errstr_size) {
    rd_kafka_t *rk = NULL;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    int64_t *high = NULL;
    bool *done = NULL;
    int remaining = 0;
    size_t records = 0, skipped = 0;
    na_err_t err = NA_OK;
    int64_t t0 = na_mono_ms(), deadline = t0 + opts->load_timeout_ms;

    if (!(rk = client(opts, RD_KAFKA_CONSUMER, l, errstr, errstr_size))) {
        err = NA_ERR_CONFIG;
        goto out;
    }
    rkt = rd_kafka_topic_new(rk, l->topic, NULL);
    rd_kafka_resp_err_t kerr;
    for (;;) {
        kerr = rd_kafka_metadata(rk, 0, rkt, &md, opts->load_timeout_ms);
        /* A topic created a moment ago may be unknown to the broker we
         * asked for a while yet. */
        bool unknown = !kerr && md->topic_cnt == 1 &&
                       md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        if (kerr || md->topic_cnt != 1 || !md->topics[0].err ||
            (unknown && (!opts->create_topic || na_mono_ms() >= t0 + 5000)) ||
            na_mono_ms() >= deadline) {
            break;
        }
        /* Just created: leaders not elected yet. */
        rd_kafka_metadata_destroy(md);
        md = NULL;
        na_sleep_ms(100);
    }
    if (kerr || md->topic_cnt != 1) {
        snprintf(errstr, errstr_size, "ledger %s: metadata: %s", l->topic,
                 rd_kafka_err2str(kerr));
        err = kerr == RD_KAFKA_RESP_ERR__TIMED_OUT ? NA_ERR_TIMEOUT : NA_ERR_KAFKA;
        goto out;
    }
    if (md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        na_log(NA_LOG_WARN, "ledger", "no_topic", "topic=%s", na_log_q(l->topic));
        goto out; /* empty ledger */
    }
    if (md->topics[0].err) {
        snprintf(errstr, errstr_size, "ledger %s: %s", l->topic,
                 rd_kafka_err2str(md->topics[0].err));
        err = NA_ERR_KAFKA;
        goto out;
    }
    int cnt = md->topics[0].partition_cnt;
    parts = rd_kafka_topic_partition_list_new(cnt);
    high = calloc((size_t)cnt + 1, sizeof(*high));
    done = calloc((size_t)cnt + 1, sizeof(*done));
    if (!high || !done) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < cnt; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo = 0, hi = 0;
        if (p < 0 || p >= cnt) {
            continue;
        }
        /* A topic created a moment ago may not have a leader yet: retry
         * until the load deadline. */
        for (;;) {
            int left = (int)(deadline - na_mono_ms());
            kerr = rd_kafka_query_watermark_offsets(rk, l->topic, p, &lo, &hi,
                                                    left > 1000 ? 1000
                                                    : left > 0  ? left
                                                                : 1);
            if (!kerr || na_mono_ms() >= deadline ||
                na_kafka_classify(kerr, 0) != NA_OUTCOME_RETRY) {
                break;
            }
            na_sleep_ms(100);
        }
        if (kerr) {
            snprintf(errstr, errstr_size, "ledger %s [%d]: watermarks: %s", l->topic,
                     (int)p, rd_kafka_err2str(kerr));
            err = NA_ERR_KAFKA;
            goto out;
        }
        high[p] = hi;
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(parts, l->topic, p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
            remaining++;
        } else {
            done[p] = true;
        }
    }
    if (remaining && (kerr = rd_kafka_assign(rk, parts))) {
        snprintf(errstr, errstr_size, "ledger %s: assign: %s", l->topic,
                 rd_kafka_err2str(kerr));
        err = NA_ERR_KAFKA;
        goto out;
    }
    while (remaining > 0) {
        if (na_mono_ms() > deadline) {
            snprintf(errstr, errstr_size, "ledger %s: not read to its end within %d ms",
                     l->topic, opts->load_timeout_ms);
            err = NA_ERR_TIMEOUT;
            goto out;
        }
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);
        if (!rkm) {
            continue;
        }
        int32_t p = rkm->partition;
        bool in_range = p >= 0 && p < cnt && !done[p];
        if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            na_log(NA_LOG_WARN, "ledger", "load_error", "err=%s",
                   na_log_q(rd_kafka_message_errstr(rkm)));
        } else if (!rkm->err && (in_range || opts->follow)) {
            /* Following: what came after the end is applied too (the
             * follower goes on from the position). */
            char why[256];
            records++;
            if (apply(l, rkm->key, rkm->key_len, rkm->payload, rkm->len, opts->load_cb,
                      opts->load_ctx, why, sizeof(why))) {
                skipped++;
                invalid_record(l, rkm, why);
            }
        }
        if (in_range &&
            ((rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && rkm->offset >= high[p]) ||
             (!rkm->err && rkm->offset + 1 >= high[p]))) {
            done[p] = true;
            remaining--;
        }
        rd_kafka_message_destroy(rkm);
    }
    na_log(NA_LOG_INFO, "ledger", "loaded",
           "topic=%s records=%zu skipped=%zu alerts=%zu "
           "ms=%lld",
           na_log_q(l->topic), records, skipped, l->cnt, (long long)(na_mono_ms() - t0));
    if (opts->follow) {
        /* Go on reading every partition from where the load ended (an
         * empty partition from its start), for what the others write. */
        for (int i = 0; i < cnt; i++) {
            if (!rd_kafka_topic_partition_list_find(parts, l->topic, i)) {
                rd_kafka_topic_partition_list_add(parts, l->topic, i)->offset = high[i];
            }
        }
        rd_kafka_topic_partition_list_t *now = NULL;
        if (!rd_kafka_assignment(rk, &now)) {
            for (int i = 0; i < now->cnt; i++) {
                rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(
                    parts, l->topic, now->elems[i].partition);
                int64_t pos = RD_KAFKA_OFFSET_INVALID;
                rd_kafka_topic_partition_list_t *one =
                    rd_kafka_topic_partition_list_new(1);
                rd_kafka_topic_partition_list_add(one, l->topic, now->elems[i].partition);
                if (!rd_kafka_position(rk, one) && one->elems[0].offset >= 0) {
                    pos = one->elems[0].offset;
                }
                rd_kafka_topic_partition_list_destroy(one);
                if (p) {
                    p->offset = pos >= 0 ? pos : high[now->elems[i].partition];
                }
            }
            rd_kafka_topic_partition_list_destroy(now);
        }
        if (!(l->next = calloc((size_t)cnt + 1, sizeof(*l->next)))) {
            err = NA_ERR_NOMEM;
            goto out;
        }
        for (int i = 0; i < parts->cnt; i++) {
            int32_t p = parts->elems[i].partition;
            if (p >= 0 && p < cnt) {
                l->next[p] = parts->elems[i].offset;
            }
        }
        if ((kerr = rd_kafka_assign(rk, parts))) {
            snprintf(errstr, errstr_size, "ledger %s: follow: %s", l->topic,
                     rd_kafka_err2str(kerr));
            err = NA_ERR_KAFKA;
            goto out;
        }
        l->follow = rk;
        l->follow_parts = cnt;
        rk = NULL;
    }
out:
    free(high);
    free(done);
    if (parts) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    if (rkt) {
        rd_kafka_topic_destroy(rkt);
    }
    if (rk) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
    return err;
}

na_err_t na_ledger_open(const struct na_ledger_opts *opts, na_ledger_t **out,
                        char *errstr, size_t errstr_size) {
    na_ledger_t *l = na_ledger_new_memory(opts->confirm_cb, opts->ctx);
    na_err_t err = NA_OK;
    *out = NULL;
    if (!l || !(l->topic = na_strdup(opts->topic ? opts->topic : NA_TOPIC_ALERTS))) {
        err = NA_ERR_NOMEM;
        goto out;
    }
    if (!(l->rk = client(opts, RD_KAFKA_PRODUCER, l, errstr, errstr_size))) {
        err = NA_ERR_CONFIG;
        goto out;
    }
    na_ledger_set_horizon(l, opts->horizon_ms);
    l->load_cb = opts->load_cb;
    l->load_ctx = opts->load_ctx;
    if (opts->create_topic) {
        struct na_topic_spec spec = na_kafka_topic_alerts(l->topic);
        char retention[32];
        const char *configs[] = {"cleanup.policy", "compact,delete", "retention.ms",
                                 retention, NULL};
        if (opts->horizon_ms > 0) {
            snprintf(retention, sizeof(retention), "%lld", (long long)opts->horizon_ms);
            spec.configs = configs;
        }
        char terr[512];
        if (na_kafka_ensure_topics(l->rk, &spec, 1, opts->load_timeout_ms, terr,
                                   sizeof(terr))) {
            na_log(NA_LOG_WARN, "ledger", "topic_check_failed", "err=%s", na_log_q(terr));
        }
    }
    err = load(l, opts, errstr, errstr_size);
out:
    if (err) {
        na_ledger_destroy(l);
        return err;
    }
    *out = l;
    return NA_OK;
}

rd_kafka_t *na_ledger_client(na_ledger_t *l) {
    return l ? l->rk : NULL;
}
