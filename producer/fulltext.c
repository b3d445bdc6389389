#include "fulltext.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "newsalert/http.h"
#include "newsalert/limits.h"
#include "newsalert/log.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "producer.h"
#include "robots.h"
#include "url.h"

#define PAGE_ACCEPT "text/html, application/xhtml+xml;q=0.9, text/plain;q=0.5, */*;q=0.1"
#define PAGE_HINT                                                                        \
    "page addresses must be public unless the source sets allow_private_addresses"
/* How long a robots.txt refused for its address is not asked again. */
#define REFUSED_TTL_MS (10LL * 60 * 1000)

/* ---------------------------------------------------------------------------
 * a small chained hash table of structs that start with a struct hnode */

struct hnode {
    struct hnode *next;
    const char *key;
};

struct htab {
    struct hnode **b;
    size_t size, cnt;
};

/* The keys are URLs a feed chooses (its links, their origins). With a
 * hash known in advance, links that all share one chain cost nothing to
 * make (in FNV-1a the last bytes steer the low bits, which pick the
 * bucket), and each look-up then walks all of them: seconds of the main
 * thread per fetch. So the basis is random per process, and the high bits
 * are mixed into the low ones. */
static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL ^ na_hash_seed(); /* FNV-1a */
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    h ^= h >> 33; /* murmur3's finaliser */
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static struct hnode *ht_get(const struct htab *t, const char *key) {
    if (!t->size) {
        return NULL;
    }
    for (struct hnode *n = t->b[hash_str(key) % t->size]; n; n = n->next) {
        if (!strcmp(n->key, key)) {
            return n;
        }
    }
    return NULL;
}

static na_err_t ht_put(struct htab *t, struct hnode *node) {
    if (t->cnt >= t->size) {
        size_t size = t->size ? t->size * 2 : 64;
        struct hnode **b = calloc(size, sizeof(*b));
        if (!b) {
            return NA_ERR_NOMEM;
        }
        for (size_t i = 0; i < t->size; i++) {
            while (t->b[i]) {
                struct hnode *n = t->b[i];
                t->b[i] = n->next;
                size_t k = hash_str(n->key) % size;
                n->next = b[k];
                b[k] = n;
            }
        }
        free(t->b);
        t->b = b;
        t->size = size;
    }
    size_t k = hash_str(node->key) % t->size;
    node->next = t->b[k];
    t->b[k] = node;
    t->cnt++;
    return NA_OK;
}

static void ht_del(struct htab *t, struct hnode *node) {
    if (!t->size) {
        return;
    }
    for (struct hnode **pp = &t->b[hash_str(node->key) % t->size]; *pp;
         pp = &(*pp)->next) {
        if (*pp == node) {
            *pp = node->next;
            t->cnt--;
            return;
        }
    }
}

/* The most nodes in one bucket of @p t. */
static size_t ht_longest(const struct htab *t) {
    size_t most = 0;
    for (size_t i = 0; i < t->size; i++) {
        size_t n = 0;
        for (const struct hnode *h = t->b[i]; h; h = h->next) {
            n++;
        }
        most = n > most ? n : most;
    }
    return most;
}

/* ---------------------------------------------------------------------------
 * state */

struct page;

/* One item waiting for its page. */
struct item {
    void *opaque;
    const void *owner;
    int64_t deadline_ms;
    struct page *page;
    struct item *in_page;     /* the page's items */
    struct item *prev, *next; /* every item, in order of submission = of deadline */
};

enum page_state {
    P_ROBOTS,  /* waiting for its origin's robots.txt */
    P_QUEUED,  /* allowed, waiting for a slot */
    P_RUNNING, /* its transfer runs */
};

/* One page wanted by one or more items (a live blog's posts share one). */
struct page {
    struct hnode h; /* key: key */
    char *key;      /* url, " private" when fetched with private addresses */
    char *url;      /* fragment dropped */
    struct site *site;
    enum page_state state;
    bool cut_to_wait; /* its transfer's timeout is what was left of a wait */
    struct item *items;
    char **headers;
    size_t headers_cnt;
    char *headers_origin;
    struct page *next; /* its site's robots-wait list or queue */
};

/* One origin, as fetched with or without private addresses. */
struct site {
    struct hnode h; /* key: key */
    char *key;
    char *robots_url;
    bool allow_private;
    na_robots_t *robots;     /* the rules, NULL until known */
    const char *robots_fail; /* while robots_until: why there are none */
    char *robots_detail;     /* with robots_fail: the fetcher's line, or NULL */
    int64_t robots_until_ms; /* rules or failure hold until then (mono) */
    bool robots_running;
    unsigned errors; /* failures in a row worth retrying */
    int64_t backoff_until_ms;
    struct page *wait_head, *wait_tail;   /* P_ROBOTS */
    struct page *queue_head, *queue_tail; /* P_QUEUED */
    size_t running;                       /* transfers in flight (pages and robots.txt) */
    bool active;                          /* in the stage's list of sites with work */
    struct site *next_active;
    struct site *lru_prev, *lru_next;
};

/* A page's story kept for conditional GETs. */
struct cached {
    struct hnode h; /* key: url */
    char *url;
    char *etag;
    char *last_modified;
    struct na_extract x;
    size_t bytes;
    struct cached *lru_prev, *lru_next;
};

struct na_fulltext_s {
    struct na_fulltext_opts opts;
    char *user_agent;
    char agent[64];
    na_fetcher_t *fetcher;
    struct na_fulltext_slots slots;
    na_fulltext_done_cb *done;
    void *done_ctx;
    struct item *head, *tail; /* every item waiting */
    size_t items;
    struct htab pages, sites, cache;
    struct site *active;              /* sites with work to start */
    struct site *lru_head, *lru_tail; /* sites, least recently used first */
    struct cached *c_head, *c_tail;   /* cache, least recently used first */
    size_t cache_bytes;
};

/* ---------------------------------------------------------------------------
 * reporting items */

static void item_unlink(na_fulltext_t *ft, struct item *it) {
    if (it->prev) {
        it->prev->next = it->next;
    } else {
        ft->head = it->next;
    }
    if (it->next) {
        it->next->prev = it->prev;
    } else {
        ft->tail = it->prev;
    }
    if (it->page) {
        for (struct item **pp = &it->page->items; *pp; pp = &(*pp)->in_page) {
            if (*pp == it) {
                *pp = it->in_page;
                break;
            }
        }
    }
    ft->items--;
}

/* Report @p it and free it. */
static void report(na_fulltext_t *ft, struct item *it, enum na_fulltext_status status,
                   const char *reason, const char *detail, const struct na_extract *x) {
    struct na_fulltext_result res = {status, reason, detail, x};
    void *opaque = it->opaque;
    item_unlink(ft, it);
    free(it);
    ft->done(opaque, &res, ft->done_ctx);
}

/* Report every item of @p page. */
static void report_page(na_fulltext_t *ft, struct page *page,
                        enum na_fulltext_status status, const char *reason,
                        const char *detail, const struct na_extract *x) {
    while (page->items) {
        report(ft, page->items, status, reason, detail, x);
    }
}

/* ---------------------------------------------------------------------------
 * pages and sites */

static void page_free(na_fulltext_t *ft, struct page *page) {
    if (!page) {
        return;
    }
    ht_del(&ft->pages, &page->h);
    for (size_t i = 0; i < page->headers_cnt; i++) {
        free(page->headers[i]);
    }
    free(page->headers);
    free(page->headers_origin);
    free(page->key);
    free(page->url);
    free(page);
}

static void site_touch(na_fulltext_t *ft, struct site *s) {
    if (ft->lru_tail == s) {
        return;
    }
    if (s->lru_prev || s->lru_next || ft->lru_head == s) { /* unlink */
        if (s->lru_prev) {
            s->lru_prev->lru_next = s->lru_next;
        } else {
            ft->lru_head = s->lru_next;
        }
        if (s->lru_next) {
            s->lru_next->lru_prev = s->lru_prev;
        } else {
            ft->lru_tail = s->lru_prev;
        }
    }
    s->lru_prev = ft->lru_tail;
    s->lru_next = NULL;
    if (ft->lru_tail) {
        ft->lru_tail->lru_next = s;
    } else {
        ft->lru_head = s;
    }
    ft->lru_tail = s;
}

static bool site_idle(const struct site *s) {
    return !s->running && !s->robots_running && !s->wait_head && !s->queue_head &&
           !s->active;
}

static void site_free(na_fulltext_t *ft, struct site *s) {
    ht_del(&ft->sites, &s->h);
    if (s->lru_prev) {
        s->lru_prev->lru_next = s->lru_next;
    } else if (ft->lru_head == s) {
        ft->lru_head = s->lru_next;
    }
    if (s->lru_next) {
        s->lru_next->lru_prev = s->lru_prev;
    } else if (ft->lru_tail == s) {
        ft->lru_tail = s->lru_prev;
    }
    na_robots_destroy(s->robots);
    free(s->robots_detail);
    free(s->key);
    free(s->robots_url);
    free(s);
}

/* At NA_FULLTEXT_MAX_SITES, forget idle sites, least recently used first
 * (their robots.txt is read again when needed), to make room for one. */
static void sites_trim(na_fulltext_t *ft) {
    struct site *s = ft->lru_head;
    while (ft->sites.cnt >= NA_FULLTEXT_MAX_SITES && s) {
        struct site *next = s->lru_next;
        if (site_idle(s)) {
            site_free(ft, s);
        }
        s = next;
    }
}

/* The site of @p url, made when missing. @returns borrowed, NULL on no
 * memory or when @p url is not http(s). */
static struct site *site_get(na_fulltext_t *ft, const char *url, bool allow_private) {
    struct na_buf key;
    struct site *s = NULL;
    char *origin = na_url_origin(url);
    if (!origin) {
        return NULL;
    }
    na_buf_init(&key);
    na_buf_printf(&key, "%s%s", origin, allow_private ? " private" : "");
    if (key.oom) {
        free(origin);
        return NULL;
    }
    s = (struct site *)ht_get(&ft->sites, key.data);
    if (s) {
        na_buf_cleanup(&key);
        free(origin);
        site_touch(ft, s);
        return s;
    }
    sites_trim(ft);
    if (!(s = calloc(1, sizeof(*s)))) {
        goto fail;
    }
    s->key = na_buf_steal(&key);
    {
        struct na_buf r;
        na_buf_init(&r);
        na_buf_printf(&r, "%s/robots.txt", origin);
        s->robots_url = na_buf_steal(&r);
    }
    s->allow_private = allow_private;
    s->h.key = s->key;
    if (!s->key || !s->robots_url || ht_put(&ft->sites, &s->h)) {
        goto fail;
    }
    free(origin);
    site_touch(ft, s);
    return s;
fail:
    if (s) {
        free(s->key);
        free(s->robots_url);
        free(s);
    }
    na_buf_cleanup(&key);
    free(origin);
    return NULL;
}

static void site_activate(na_fulltext_t *ft, struct site *s) {
    if (!s->active) {
        s->active = true;
        s->next_active = ft->active;
        ft->active = s;
    }
}

static void queue_page(struct page **head, struct page **tail, struct page *page) {
    page->next = NULL;
    if (*tail) {
        (*tail)->next = page;
    } else {
        *head = page;
    }
    *tail = page;
}

static struct page *dequeue_page(struct page **head, struct page **tail) {
    struct page *page = *head;
    if (page) {
        *head = page->next;
        if (!*head) {
            *tail = NULL;
        }
        page->next = NULL;
    }
    return page;
}

/* ---------------------------------------------------------------------------
 * the cache */

static void cache_unlink(na_fulltext_t *ft, struct cached *c) {
    if (c->lru_prev) {
        c->lru_prev->lru_next = c->lru_next;
    } else {
        ft->c_head = c->lru_next;
    }
    if (c->lru_next) {
        c->lru_next->lru_prev = c->lru_prev;
    } else {
        ft->c_tail = c->lru_prev;
    }
    c->lru_prev = c->lru_next = NULL;
}

static void cache_push(na_fulltext_t *ft, struct cached *c) {
    c->lru_prev = ft->c_tail;
    c->lru_next = NULL;
    if (ft->c_tail) {
        ft->c_tail->lru_next = c;
    } else {
        ft->c_head = c;
    }
    ft->c_tail = c;
}

static void cache_free(na_fulltext_t *ft, struct cached *c) {
    ht_del(&ft->cache, &c->h);
    cache_unlink(ft, c);
    ft->cache_bytes -= c->bytes;
    na_extract_cleanup(&c->x);
    free(c->url);
    free(c->etag);
    free(c->last_modified);
    free(c);
}

static struct cached *cache_get(na_fulltext_t *ft, const char *url) {
    struct cached *c = (struct cached *)ht_get(&ft->cache, url);
    if (c) {
        cache_unlink(ft, c);
        cache_push(ft, c);
    }
    return c;
}

static char *dup_or_null(const char *s, bool *oom) {
    char *d = s ? na_strdup(s) : NULL;
    *oom |= s && !d;
    return d;
}

/* Keep the story of @p url (copied) with its validators; without
 * validators there is nothing to ask with, so nothing is kept. */
static void cache_put(na_fulltext_t *ft, const char *url, const char *etag,
                      const char *last_modified, const struct na_extract *x) {
    struct cached *c = (struct cached *)ht_get(&ft->cache, url);
    bool oom = false;
    if (c) {
        cache_free(ft, c);
    }
    if ((!etag && !last_modified) || !x->text) {
        return;
    }
    if (!(c = calloc(1, sizeof(*c)))) {
        return;
    }
    na_extract_init(&c->x);
    c->url = dup_or_null(url, &oom);
    c->etag = dup_or_null(etag, &oom);
    c->last_modified = dup_or_null(last_modified, &oom);
    c->x.text = dup_or_null(x->text, &oom);
    c->x.title = dup_or_null(x->title, &oom);
    c->x.lang = dup_or_null(x->lang, &oom);
    c->x.published_at = x->published_at;
    c->x.from = x->from;
    for (size_t i = 0; i < x->authors_cnt && !oom; i++) {
        oom = na_article_list_add(&c->x.authors, &c->x.authors_cnt, NA_MAX_AUTHORS,
                                  x->authors[i]) != NA_OK;
    }
    c->bytes = sizeof(*c) + strlen(url) + strlen(x->text) + 256;
    c->h.key = c->url;
    if (oom || c->bytes > NA_FULLTEXT_CACHE_BYTES / 4 || ht_put(&ft->cache, &c->h)) {
        na_extract_cleanup(&c->x);
        free(c->url);
        free(c->etag);
        free(c->last_modified);
        free(c);
        return;
    }
    cache_push(ft, c);
    ft->cache_bytes += c->bytes;
    while (ft->cache_bytes > NA_FULLTEXT_CACHE_BYTES && ft->c_head) {
        cache_free(ft, ft->c_head);
    }
}

/* ---------------------------------------------------------------------------
 * metrics and logs */

static void count_fetch(const char *what, const char *result) {
    char labels[96];
    snprintf(labels, sizeof(labels), "what=\"%s\",result=\"%s\"", what, result);
    na_metrics_inc("newsalert_producer_page_fetches_total",
                   "Transfers of the full-text stage (what: page or robots), by result.",
                   labels);
}

/* ---------------------------------------------------------------------------
 * lifecycle */

na_fulltext_t *na_fulltext_new(const struct na_fulltext_opts *opts, na_fetcher_t *fetcher,
                               const struct na_fulltext_slots *slots,
                               na_fulltext_done_cb *done, void *done_ctx) {
    na_fulltext_t *ft = calloc(1, sizeof(*ft));
    if (!ft) {
        return NULL;
    }
    ft->opts = *opts;
    ft->user_agent = na_strdup(opts->user_agent ? opts->user_agent : "newsalert");
    if (!ft->user_agent) {
        free(ft);
        return NULL;
    }
    ft->opts.user_agent = ft->user_agent;
    na_robots_agent_token(ft->user_agent, ft->agent, sizeof(ft->agent));
    ft->fetcher = fetcher;
    ft->slots = *slots;
    ft->done = done;
    ft->done_ctx = done_ctx;
    return ft;
}

void na_fulltext_destroy(na_fulltext_t *ft) {
    if (!ft) {
        return;
    }
    while (ft->head) {
        struct item *it = ft->head;
        item_unlink(ft, it);
        free(it);
    }
    for (size_t i = 0; i < ft->pages.size; i++) {
        while (ft->pages.b[i]) {
            struct page *page = (struct page *)ft->pages.b[i];
            if (page->state == P_RUNNING && na_fetcher_cancel(ft->fetcher, page)) {
                ft->slots.release(ft->slots.ctx, page->url);
            }
            page_free(ft, page);
        }
    }
    for (size_t i = 0; i < ft->sites.size; i++) {
        while (ft->sites.b[i]) {
            struct site *s = (struct site *)ft->sites.b[i];
            if (s->robots_running && na_fetcher_cancel(ft->fetcher, s)) {
                ft->slots.release(ft->slots.ctx, s->robots_url);
            }
            site_free(ft, s);
        }
    }
    while (ft->c_head) {
        cache_free(ft, ft->c_head);
    }
    free(ft->pages.b);
    free(ft->sites.b);
    free(ft->cache.b);
    free(ft->user_agent);
    free(ft);
}

size_t na_fulltext_pending(const na_fulltext_t *ft) {
    return ft->items;
}

size_t na_fulltext_longest_chain(const na_fulltext_t *ft) {
    size_t pages = ht_longest(&ft->pages), sites = ht_longest(&ft->sites);
    size_t cache = ht_longest(&ft->cache);
    size_t most = pages > sites ? pages : sites;
    return cache > most ? cache : most;
}

/* ---------------------------------------------------------------------------
 * deciding a page */

/* Robots known (or failed) for @p s: queue @p page, or report its items. */
static void admit(na_fulltext_t *ft, struct page *page) {
    struct site *s = page->site;
    if (s->robots_fail) {
        report_page(ft, page, NA_FULLTEXT_FAILED, s->robots_fail, s->robots_detail, NULL);
        page_free(ft, page);
        return;
    }
    if (!na_robots_allowed(s->robots, page->url)) {
        report_page(ft, page, NA_FULLTEXT_DISALLOWED, "robots",
                    "robots.txt disallows the page", NULL);
        page_free(ft, page);
        return;
    }
    if (s->backoff_until_ms > na_mono_ms()) {
        report_page(ft, page, NA_FULLTEXT_FAILED, "backoff",
                    "the site failed recently; backing off", NULL);
        page_free(ft, page);
        return;
    }
    page->state = P_QUEUED;
    queue_page(&s->queue_head, &s->queue_tail, page);
    site_activate(ft, s);
}

na_err_t na_fulltext_submit(na_fulltext_t *ft, const struct na_fulltext_req *req) {
    struct item *it = NULL;
    struct page *page = NULL;
    struct site *s;
    struct na_buf key;
    char *url = NULL;

    if (!req->url ||
        (strncasecmp(req->url, "http://", 7) && strncasecmp(req->url, "https://", 8))) {
        return NA_ERR_INVALID;
    }
    if (!(url = na_url_canonical(req->url))) { /* the fragment goes */
        return NA_ERR_INVALID;
    }
    if (!(s = site_get(ft, url, req->allow_private)) || !(it = calloc(1, sizeof(*it)))) {
        free(url);
        return s ? NA_ERR_NOMEM : NA_ERR_INVALID;
    }
    na_buf_init(&key);
    na_buf_printf(&key, "%s%s", url, req->allow_private ? " private" : "");
    if (key.oom) {
        goto nomem;
    }
    page = (struct page *)ht_get(&ft->pages, key.data);
    if (page) {
        na_buf_cleanup(&key);
        free(url);
    } else {
        if (!(page = calloc(1, sizeof(*page)))) {
            goto nomem;
        }
        page->key = na_buf_steal(&key);
        page->url = url;
        url = NULL;
        page->site = s;
        page->h.key = page->key;
        if (req->headers_cnt &&
            !(page->headers = calloc(req->headers_cnt, sizeof(char *)))) {
            goto nomem_page;
        }
        for (size_t i = 0; i < req->headers_cnt; i++) {
            if (!(page->headers[i] = na_strdup(req->headers[i]))) {
                goto nomem_page;
            }
            page->headers_cnt++;
        }
        if (req->headers_origin &&
            !(page->headers_origin = na_strdup(req->headers_origin))) {
            goto nomem_page;
        }
        if (ht_put(&ft->pages, &page->h)) {
            goto nomem_page;
        }
        page->state = P_ROBOTS;
        queue_page(&s->wait_head, &s->wait_tail, page);
        site_activate(ft, s);
    }
    it->opaque = req->item;
    it->owner = req->owner;
    it->deadline_ms = na_mono_ms() + ft->opts.wait_ms;
    it->page = page;
    it->in_page = page->items;
    page->items = it;
    it->prev = ft->tail;
    if (ft->tail) {
        ft->tail->next = it;
    } else {
        ft->head = it;
    }
    ft->tail = it;
    ft->items++;
    return NA_OK;
nomem_page:
    page->h.key = page->key; /* never put: page_free's ht_del finds nothing */
    page_free(ft, page);
nomem:
    na_buf_cleanup(&key);
    free(url);
    free(it);
    return NA_ERR_NOMEM;
}

/* ---------------------------------------------------------------------------
 * transfers */

static void on_robots(struct na_fetch_res *res, void *ctx);
static void on_page(struct na_fetch_res *res, void *ctx);

static bool start_robots(na_fulltext_t *ft, struct site *s) {
    struct na_fetch_req req = {
        .url = s->robots_url,
        .allow_private = s->allow_private,
        .check_first = !s->allow_private,
        .opaque = s,
        .accept = "text/plain, */*;q=0.5",
        .max_bytes = NA_ROBOTS_MAX_BYTES,
        .refuse_hint = PAGE_HINT,
        .done = on_robots,
        .done_ctx = ft,
    };
    if (na_fetcher_add(ft->fetcher, &req)) {
        return false;
    }
    s->robots_running = true;
    s->running++;
    return true;
}

/* The earliest wait of @p page's items ends at (mono ms). */
static int64_t page_deadline(const struct page *page) {
    int64_t d = INT64_MAX;
    for (const struct item *it = page->items; it; it = it->in_page) {
        if (it->deadline_ms < d) {
            d = it->deadline_ms;
        }
    }
    return d;
}

static bool start_page(na_fulltext_t *ft, struct page *page) {
    struct cached *c = cache_get(ft, page->url);
    int64_t left = page_deadline(page) - na_mono_ms();
    long timeout = ft->opts.timeout_ms;
    if (left < timeout) {
        timeout = left < 1000 ? 1000 : (long)left;
        page->cut_to_wait = true;
    }
    struct na_fetch_req req = {
        .url = page->url,
        .headers = page->headers,
        .headers_cnt = page->headers_cnt,
        .headers_origin = page->headers_origin,
        .allow_private = page->site->allow_private,
        .check_first = !page->site->allow_private,
        .etag = c ? c->etag : NULL,
        .last_modified = c ? c->last_modified : NULL,
        .opaque = page,
        .accept = PAGE_ACCEPT,
        .timeout_ms = timeout,
        .max_bytes = ft->opts.max_bytes,
        .refuse_hint = PAGE_HINT,
        .done = on_page,
        .done_ctx = ft,
    };
    if (na_fetcher_add(ft->fetcher, &req)) {
        return false;
    }
    page->state = P_RUNNING;
    page->site->running++;
    return true;
}

/* Back the site off after a failure worth retrying. */
static void back_off(na_fulltext_t *ft, struct site *s, const struct na_fetch_res *res) {
    int64_t ra = na_http_retry_after_ms(res->retry_after, na_now_ms() / 1000);
    s->errors++;
    s->backoff_until_ms =
        na_mono_ms() + na_producer_backoff_ms(s->errors, ft->opts.retry_base_ms,
                                              ft->opts.retry_max_ms, ra);
}

/* A transfer of @p s ended: its slot goes back. */
static void transfer_end(na_fulltext_t *ft, struct site *s, const char *url) {
    s->running--;
    ft->slots.release(ft->slots.ctx, url);
    site_activate(ft, s); /* its queue may start now */
}

static void on_robots(struct na_fetch_res *res, void *ctx) {
    na_fulltext_t *ft = ctx;
    struct site *s = res->opaque;
    na_outcome_t outcome = na_http_classify(res->code, res->status);
    int64_t now = na_mono_ms();
    /* a status came, with its whole body or one over the cap: the status
     * decides (an error page over the cap is that error, not rules) */
    bool answered = res->code == CURLE_OK || res->too_large;
    const char *result;

    s->robots_running = false;
    na_robots_destroy(s->robots);
    s->robots = NULL;
    s->robots_fail = NULL;
    free(s->robots_detail);
    s->robots_detail = NULL;
    if (res->addr_refused) {
        s->robots_fail = "private_address";
        s->robots_until_ms = now + REFUSED_TTL_MS;
        result = "refused";
    } else if (res->redirect_refused) {
        s->robots_fail = "redirect_refused";
        s->robots_until_ms = now + REFUSED_TTL_MS;
        result = "refused";
    } else if (answered && res->status >= 200 && res->status < 300) {
        /* a robots.txt over the cap: its first NA_ROBOTS_MAX_BYTES */
        s->robots = na_robots_parse(res->body, res->body_len, ft->agent);
        s->robots_until_ms = now + NA_FULLTEXT_ROBOTS_TTL_MS;
        s->errors = 0;
        result = "ok";
    } else if (res->code == CURLE_TOO_MANY_REDIRECTS ||
               (answered && res->status >= 300 && res->status < 500 &&
                res->status != 429)) {
        /* unavailable (RFC 9309 2.3.1.2/3): everything is allowed */
        s->robots = na_robots_new_all(true);
        s->robots_until_ms = now + NA_FULLTEXT_ROBOTS_TTL_MS;
        s->errors = 0;
        result = "missing";
    } else {
        /* unreachable (2.3.1.4): nothing is allowed, until asked again */
        (void)outcome;
        back_off(ft, s, res);
        s->robots_fail = "robots_unreachable";
        s->robots_until_ms = s->backoff_until_ms;
        result = "unreachable";
    }
    if (!s->robots && !s->robots_fail) {
        s->robots_fail = "nomem";
        s->robots_until_ms = now + 1000;
    }
    if (s->robots_fail && res->errstr[0]) {
        /* NULL on no memory: the reason alone then */
        s->robots_detail = na_strdup(res->errstr);
    }
    count_fetch("robots", result);
    na_log(NA_LOG_DEBUG, "fulltext", "robots",
           "url=%s result=%s status=%ld rules=%zu err=%s", na_log_q(s->robots_url),
           result, res->status, s->robots ? na_robots_count(s->robots) : (size_t)0,
           na_log_q(res->errstr[0] ? res->errstr : "-"));
    transfer_end(ft, s, s->robots_url);
    while (s->wait_head) {
        admit(ft, dequeue_page(&s->wait_head, &s->wait_tail));
    }
}

/* The outcome of @p page's transfer for its items. */
static void page_result(na_fulltext_t *ft, struct page *page, struct na_fetch_res *res) {
    struct site *s = page->site;
    struct na_extract x;
    char errstr[256];
    na_outcome_t outcome = na_http_classify(res->code, res->status);

    if (res->addr_refused) {
        count_fetch("page", "refused");
        report_page(ft, page, NA_FULLTEXT_FAILED, "private_address", res->errstr, NULL);
        return;
    }
    if (res->code == CURLE_OK && res->status == 304) {
        struct cached *c = cache_get(ft, page->url);
        count_fetch("page", "not_modified");
        s->errors = 0;
        if (c) {
            report_page(ft, page, NA_FULLTEXT_OK, "ok", NULL, &c->x);
        } else {
            report_page(ft, page, NA_FULLTEXT_FAILED, "not_modified",
                        "304 for a page no longer cached", NULL);
        }
        return;
    }
    if (res->code == CURLE_OPERATION_TIMEDOUT && page->cut_to_wait) {
        /* full_text_wait passed, not fetch_timeout: the items' wait (their
         * time in the queue counts), no sign against the site */
        count_fetch("page", "error");
        report_page(ft, page, NA_FULLTEXT_FAILED, "wait",
                    "the page took longer than full_text_wait", NULL);
        return;
    }
    if (outcome != NA_OUTCOME_OK || res->too_large || res->redirect_refused) {
        const char *reason = na_fetch_reason(res);
        count_fetch("page", "error");
        if (outcome == NA_OUTCOME_RETRY && !res->too_large && !res->redirect_refused) {
            back_off(ft, s, res);
        }
        report_page(ft, page, NA_FULLTEXT_FAILED, reason,
                    res->errstr[0] ? res->errstr : "HTTP error status", NULL);
        return;
    }
    s->errors = 0;
    count_fetch("page", "ok");
    na_extract_init(&x);
    na_err_t err = na_extract_page(res->body, res->body_len, res->content_type, &x,
                                   errstr, sizeof(errstr));
    if (err) {
        report_page(ft, page, NA_FULLTEXT_FAILED,
                    err == NA_ERR_UNSUPPORTED ? "not_html"
                    : err == NA_ERR_TOO_LARGE ? "too_large"
                    : err == NA_ERR_NOMEM     ? "nomem"
                                              : "parse",
                    errstr, NULL);
    } else if (!x.text) {
        report_page(ft, page, NA_FULLTEXT_FAILED, "no_text", "no story found in the page",
                    NULL);
    } else {
        cache_put(ft, page->url, res->etag, res->last_modified, &x);
        report_page(ft, page, NA_FULLTEXT_OK, "ok", NULL, &x);
    }
    na_extract_cleanup(&x);
}

static void on_page(struct na_fetch_res *res, void *ctx) {
    na_fulltext_t *ft = ctx;
    struct page *page = res->opaque;
    struct site *s = page->site;
    /* the items may all have gone (their wait passed): the result is
     * still worth the cache */
    page_result(ft, page, res);
    char *url = page->url;
    page->url = NULL;
    page_free(ft, page);
    transfer_end(ft, s, url);
    free(url);
}

/* ---------------------------------------------------------------------------
 * the turn */

/* Start what @p s may start. @returns false when no slot is left anywhere. */
static bool run_site(na_fulltext_t *ft, struct site *s, int64_t now) {
    while (s->wait_head && !s->wait_head->items) { /* nobody waits for it */
        page_free(ft, dequeue_page(&s->wait_head, &s->wait_tail));
    }
    if (s->wait_head && !s->robots_running) {
        if (s->robots_until_ms > now && (s->robots || s->robots_fail)) {
            while (s->wait_head) {
                admit(ft, dequeue_page(&s->wait_head, &s->wait_tail));
            }
        } else {
            enum na_fulltext_slot slot = ft->slots.acquire(ft->slots.ctx, s->robots_url);
            if (slot == NA_FULLTEXT_SLOT_ALL) {
                return false;
            }
            if (slot == NA_FULLTEXT_SLOT_OK && !start_robots(ft, s)) {
                ft->slots.release(ft->slots.ctx, s->robots_url);
            }
        }
    }
    while (s->queue_head) {
        struct page *page = s->queue_head;
        if (!page->items) { /* every item's wait passed */
            dequeue_page(&s->queue_head, &s->queue_tail);
            page_free(ft, page);
            continue;
        }
        if (s->backoff_until_ms > now) { /* the site failed since it was queued */
            dequeue_page(&s->queue_head, &s->queue_tail);
            report_page(ft, page, NA_FULLTEXT_FAILED, "backoff",
                        "the site failed recently; backing off", NULL);
            page_free(ft, page);
            continue;
        }
        enum na_fulltext_slot slot = ft->slots.acquire(ft->slots.ctx, page->url);
        if (slot != NA_FULLTEXT_SLOT_OK) {
            return slot != NA_FULLTEXT_SLOT_ALL;
        }
        dequeue_page(&s->queue_head, &s->queue_tail);
        if (!start_page(ft, page)) {
            ft->slots.release(ft->slots.ctx, page->url);
            report_page(ft, page, NA_FULLTEXT_FAILED, "nomem", NULL, NULL);
            page_free(ft, page);
        }
    }
    return true;
}

int64_t na_fulltext_run(na_fulltext_t *ft) {
    int64_t now = na_mono_ms();
    /* waits that ended, oldest first */
    while (ft->head && ft->head->deadline_ms <= now) {
        struct item *it = ft->head;
        struct page *page = it->page;
        report(ft, it, NA_FULLTEXT_FAILED, "wait",
               "the page took longer than full_text_wait", NULL);
        if (!page->items && page->state == P_ROBOTS) {
            /* nobody wants it any more: out of its site's wait list */
            struct site *s = page->site;
            struct page **pp = &s->wait_head;
            struct page *prev = NULL;
            while (*pp && *pp != page) {
                prev = *pp;
                pp = &(*pp)->next;
            }
            if (*pp) {
                *pp = page->next;
                if (s->wait_tail == page) {
                    s->wait_tail = prev;
                }
            }
            page_free(ft, page);
        }
    }
    /* sites with work: start what may start */
    struct site *list = ft->active;
    ft->active = NULL;
    bool slots_left = true;
    while (list) {
        struct site *s = list;
        list = s->next_active;
        s->active = false;
        s->next_active = NULL;
        if (slots_left) {
            slots_left = run_site(ft, s, now);
        }
        if (s->wait_head || s->queue_head) {
            site_activate(ft, s);
        }
    }
    return ft->head ? (ft->head->deadline_ms > now ? ft->head->deadline_ms - now : 0)
                    : -1;
}

size_t na_fulltext_cancel(na_fulltext_t *ft, const void *owner, const char *reason) {
    size_t n = 0;
    struct item *it = ft->head;
    while (it) {
        struct item *next = it->next;
        if (!owner || it->owner == owner) {
            report(ft, it, NA_FULLTEXT_FAILED, reason, NULL, NULL);
            n++;
        }
        it = next;
    }
    /* pages nobody waits for are dropped when their turn comes */
    return n;
}

/* ---------------------------------------------------------------------------
 * policy helpers */

/* Characters (code points) of @p s, up to @p stop. */
static size_t chars_upto(const char *s, size_t stop) {
    size_t n = 0;
    for (; s && *s && n < stop; s++) {
        n += ((unsigned char)*s & 0xc0) != 0x80;
    }
    return n;
}

bool na_fulltext_wanted(enum na_fulltext_mode mode, const struct na_article *a,
                        size_t min_chars) {
    const char *text = a->content && *a->content ? a->content : a->summary;
    switch (mode) {
    case NA_FULLTEXT_ON:
        return true;
    case NA_FULLTEXT_AUTO:
        return chars_upto(text, min_chars) < min_chars;
    case NA_FULLTEXT_OFF:
    default:
        return false;
    }
}

na_err_t na_fulltext_apply(struct na_article *a, const struct na_extract *x) {
    char *content = NULL, *summary = NULL, *title = NULL, *lang = NULL;
    char **authors = NULL;
    size_t authors_cnt = 0;
    bool oom = false;
    const char *feed_text = a->summary && *a->summary ? a->summary : a->content;

    if (!x->text) {
        return NA_OK;
    }
    content = dup_or_null(x->text, &oom);
    if (feed_text && feed_text != a->summary) {
        size_t len = na_utf8_cut(feed_text, strlen(feed_text), NA_MAX_SUMMARY_BYTES);
        summary = na_strndup(feed_text, len);
        oom |= !summary;
    }
    if (!a->title || !*a->title) {
        title = dup_or_null(x->title, &oom);
    }
    if (!a->lang) {
        lang = dup_or_null(x->lang, &oom);
    }
    for (size_t i = 0; !a->authors_cnt && i < x->authors_cnt && !oom; i++) {
        oom = na_article_list_add(&authors, &authors_cnt, NA_MAX_AUTHORS,
                                  x->authors[i]) != NA_OK;
    }
    if (oom) {
        free(content);
        free(summary);
        free(title);
        free(lang);
        for (size_t i = 0; i < authors_cnt; i++) {
            free(authors[i]);
        }
        free(authors);
        return NA_ERR_NOMEM;
    }
    free(a->content);
    a->content = content;
    if (summary) {
        free(a->summary);
        a->summary = summary;
    }
    if (title) {
        free(a->title);
        a->title = title;
    }
    if (lang) {
        a->lang = lang;
    }
    if (authors_cnt) {
        a->authors = authors;
        a->authors_cnt = authors_cnt;
    }
    if (a->published_at == NA_TIME_UNKNOWN) {
        a->published_at = x->published_at;
    }
    return NA_OK;
}
