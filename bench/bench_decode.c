/*
 * bench_decode: article/v1 decoding throughput on one core, the single-pass
 * reader (na_article_from_json(), common/article_decode.c) beside the
 * jansson decoder it replaced (tests/ref/article_jansson.c) and, when they
 * are installed, two other JSON readers doing the same job. Run by
 * bench/decode.sh.
 *
 *   bench_decode FILE [SECONDS]
 *
 * FILE holds one article/v1 record a line (bench/gen_articles.py's fourth
 * column). Before timing, every record must decode to the same article
 * with the reader and with jansson (na_article_decoders_agree()); a
 * difference is printed and the program exits 1.
 *
 * Cases, each decoding the records in turn for SECONDS of CPU time
 * (default 3):
 *   reader    na_article_from_json()
 *   jansson   json_loadb(JSON_REJECT_DUPLICATES) to a tree, then the fields
 *             copied out: what the daemons ran before the reader
 *   json-c    json_tokener_parse_ex() to a tree, the fields copied out the
 *             same way (no duplicate-name check: it keeps the last one)
 *   cjson     cJSON_ParseWithLength() to a tree, the fields copied out (no
 *             duplicate-name check; it keeps the first one)
 * The json-c and cJSON cases do the same copies, caps and time parsing as
 * the two article decoders but none of their checks (types, id, schema),
 * so they show the cost of the tree, not a drop-in decoder.
 *
 * Output: DESIGN.md's JSON lines, per case "decoder=NAME":
 * articles_per_s and MB_per_s (10^6 bytes of JSON per CPU second).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "article_jansson.h"
#include "newsalert/article.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

#ifdef NA_HAVE_JSONC
#include <json-c/json.h>
#endif
#ifdef NA_HAVE_CJSON
#include <cjson/cJSON.h>
#endif

struct record {
    char *buf;
    size_t len;
};

typedef int (*decode_fn)(const struct record *r, struct na_article *a);

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int decode_reader(const struct record *r, struct na_article *a) {
    char errstr[256];
    return na_article_from_json(r->buf, r->len, a, errstr, sizeof(errstr)) ? -1 : 0;
}

static int decode_jansson(const struct record *r, struct na_article *a) {
    char errstr[256];
    return na_article_from_json_jansson(r->buf, r->len, a, errstr, sizeof(errstr)) ? -1
                                                                                   : 0;
}

#if defined(NA_HAVE_JSONC) || defined(NA_HAVE_CJSON)
/* What the tree readers do with each string and time member. */
static int copy_str(const char *s, size_t len, size_t max, char **out) {
    if (!s) {
        return 0;
    }
    *out = na_strndup(s, na_utf8_cut(s, len, max));
    return *out ? 0 : -1;
}

static int copy_time(const char *s, int64_t *out) {
    return s && na_time_parse_rfc3339(s, out) ? -1 : 0;
}
#endif

#ifdef NA_HAVE_JSONC
static const char *jc_str(struct json_object *obj, const char *key, size_t *len) {
    struct json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string)) {
        return NULL;
    }
    *len = (size_t)json_object_get_string_len(v);
    return json_object_get_string(v);
}

static int jc_list(struct json_object *obj, const char *key, size_t max, char ***list,
                   size_t *cnt) {
    struct json_object *v;
    if (!json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_array)) {
        return 0;
    }
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        struct json_object *item = json_object_array_get_idx(v, i);
        if (json_object_is_type(item, json_type_string) &&
            na_article_list_add(list, cnt, max, json_object_get_string(item))) {
            return -1;
        }
    }
    return 0;
}

static int decode_jsonc(const struct record *r, struct na_article *a) {
    struct json_tokener *tok = json_tokener_new();
    struct json_object *root = NULL;
    struct json_object *src;
    const char *s;
    size_t len = 0;
    int rc = -1;
    if (!tok) {
        return -1;
    }
    root = json_tokener_parse_ex(tok, r->buf, (int)r->len);
    if (!root || !json_object_is_type(root, json_type_object)) {
        goto out;
    }
    s = jc_str(root, "id", &len);
    if (!s || len != NA_SHA256_HEX_LEN) {
        goto out;
    }
    memcpy(a->id, s, NA_SHA256_HEX_LEN + 1);
    s = jc_str(root, "url", &len);
    if (copy_str(s, len, NA_MAX_URL_BYTES, &a->url)) {
        goto out;
    }
    s = jc_str(root, "title", &len);
    if (copy_str(s, len, NA_MAX_TITLE_BYTES, &a->title)) {
        goto out;
    }
    s = jc_str(root, "summary", &len);
    if (copy_str(s, len, NA_MAX_SUMMARY_BYTES, &a->summary)) {
        goto out;
    }
    s = jc_str(root, "content", &len);
    if (copy_str(s, len, NA_MAX_CONTENT_BYTES, &a->content)) {
        goto out;
    }
    s = jc_str(root, "lang", &len);
    if (copy_str(s, len, 64, &a->lang) ||
        jc_list(root, "authors", NA_MAX_AUTHORS, &a->authors, &a->authors_cnt) ||
        jc_list(root, "categories", NA_MAX_CATEGORIES, &a->categories,
                &a->categories_cnt) ||
        copy_time(jc_str(root, "published_at", &len), &a->published_at) ||
        copy_time(jc_str(root, "fetched_at", &len), &a->fetched_at)) {
        goto out;
    }
    if (json_object_object_get_ex(root, "source", &src) &&
        json_object_is_type(src, json_type_object)) {
        s = jc_str(src, "id", &len);
        if (copy_str(s, len, 256, &a->source_id)) {
            goto out;
        }
        s = jc_str(src, "name", &len);
        if (copy_str(s, len, 1024, &a->source_name)) {
            goto out;
        }
        s = jc_str(src, "feed_url", &len);
        if (copy_str(s, len, NA_MAX_URL_BYTES, &a->source_feed_url)) {
            goto out;
        }
    }
    rc = 0;
out:
    json_object_put(root);
    json_tokener_free(tok);
    return rc;
}
#endif

#ifdef NA_HAVE_CJSON
static const char *cj_str(const cJSON *obj, const char *key, size_t *len) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsString(v)) {
        return NULL;
    }
    *len = strlen(v->valuestring);
    return v->valuestring;
}

static int cj_list(const cJSON *obj, const char *key, size_t max, char ***list,
                   size_t *cnt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    const cJSON *item;
    if (!cJSON_IsArray(v)) {
        return 0;
    }
    cJSON_ArrayForEach(item, v) {
        if (cJSON_IsString(item) &&
            na_article_list_add(list, cnt, max, item->valuestring)) {
            return -1;
        }
    }
    return 0;
}

static int decode_cjson(const struct record *r, struct na_article *a) {
    cJSON *root = cJSON_ParseWithLength(r->buf, r->len);
    const cJSON *src;
    const char *s;
    size_t len = 0;
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        goto out;
    }
    s = cj_str(root, "id", &len);
    if (!s || len != NA_SHA256_HEX_LEN) {
        goto out;
    }
    memcpy(a->id, s, NA_SHA256_HEX_LEN + 1);
    s = cj_str(root, "url", &len);
    if (copy_str(s, len, NA_MAX_URL_BYTES, &a->url)) {
        goto out;
    }
    s = cj_str(root, "title", &len);
    if (copy_str(s, len, NA_MAX_TITLE_BYTES, &a->title)) {
        goto out;
    }
    s = cj_str(root, "summary", &len);
    if (copy_str(s, len, NA_MAX_SUMMARY_BYTES, &a->summary)) {
        goto out;
    }
    s = cj_str(root, "content", &len);
    if (copy_str(s, len, NA_MAX_CONTENT_BYTES, &a->content)) {
        goto out;
    }
    s = cj_str(root, "lang", &len);
    if (copy_str(s, len, 64, &a->lang) ||
        cj_list(root, "authors", NA_MAX_AUTHORS, &a->authors, &a->authors_cnt) ||
        cj_list(root, "categories", NA_MAX_CATEGORIES, &a->categories,
                &a->categories_cnt) ||
        copy_time(cj_str(root, "published_at", &len), &a->published_at) ||
        copy_time(cj_str(root, "fetched_at", &len), &a->fetched_at)) {
        goto out;
    }
    src = cJSON_GetObjectItemCaseSensitive(root, "source");
    if (cJSON_IsObject(src)) {
        s = cj_str(src, "id", &len);
        if (copy_str(s, len, 256, &a->source_id)) {
            goto out;
        }
        s = cj_str(src, "name", &len);
        if (copy_str(s, len, 1024, &a->source_name)) {
            goto out;
        }
        s = cj_str(src, "feed_url", &len);
        if (copy_str(s, len, NA_MAX_URL_BYTES, &a->source_feed_url)) {
            goto out;
        }
    }
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}
#endif

/* Decode every record in passes for @p seconds of CPU time; one JSON line
 * per metric. @returns 0, or 1 when a record fails to decode. */
static int run_case(const char *name, decode_fn fn, const struct record *recs, size_t n,
                    double seconds) {
    size_t done = 0;
    size_t bytes = 0;
    double t0 = cpu_s();
    double t;
    do {
        for (size_t i = 0; i < n; i++) {
            struct na_article a;
            na_article_init(&a);
            if (fn(&recs[i], &a)) {
                fprintf(stderr, "bench_decode: %s refused record %zu\n", name, i + 1);
                na_article_cleanup(&a);
                return 1;
            }
            na_article_cleanup(&a);
            bytes += recs[i].len;
        }
        done += n;
        t = cpu_s() - t0;
    } while (t < seconds);
    printf("{\"bench\":\"decode\",\"case\":\"decoder=%s\",\"metric\":\"articles_per_s\","
           "\"value\":%.0f,\"unit\":\"1/s\"}\n",
           name, (double)done / t);
    printf("{\"bench\":\"decode\",\"case\":\"decoder=%s\",\"metric\":\"MB_per_s\","
           "\"value\":%.1f,\"unit\":\"MB/s\"}\n",
           name, (double)bytes / t / 1e6);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    struct record *recs = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    double seconds = 3.0;
    char why[1024];
    int rc = 1;
    FILE *f;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: bench_decode FILE [SECONDS]\n");
        return 2;
    }
    if (argc == 3) {
        char *end;
        seconds = strtod(argv[2], &end);
        if (*end || seconds <= 0) {
            fprintf(stderr, "bench_decode: bad SECONDS \"%s\"\n", argv[2]);
            return 2;
        }
    }
    f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    while ((got = getline(&line, &line_cap, f)) > 0) {
        size_t len = (size_t)got;
        if (line[len - 1] == '\n') {
            len--;
        }
        if (!len) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            struct record *grown = realloc(recs, cap * sizeof(*recs));
            if (!grown) {
                goto out;
            }
            recs = grown;
        }
        recs[n].buf = na_strndup(line, len);
        recs[n].len = len;
        if (!recs[n].buf) {
            goto out;
        }
        n++;
    }
    if (!n) {
        fprintf(stderr, "bench_decode: no records in %s\n", argv[1]);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!na_article_decoders_agree(recs[i].buf, recs[i].len, why, sizeof(why))) {
            fprintf(stderr, "bench_decode: record %zu: %s\n", i + 1, why);
            goto out;
        }
    }
    if (run_case("reader", decode_reader, recs, n, seconds) ||
        run_case("jansson", decode_jansson, recs, n, seconds)) {
        goto out;
    }
#ifdef NA_HAVE_JSONC
    if (run_case("json-c", decode_jsonc, recs, n, seconds)) {
        goto out;
    }
#endif
#ifdef NA_HAVE_CJSON
    if (run_case("cjson", decode_cjson, recs, n, seconds)) {
        goto out;
    }
#endif
    rc = 0;
out:
    if (f) {
        fclose(f);
    }
    free(line);
    for (size_t i = 0; i < n; i++) {
        free(recs[i].buf);
    }
    free(recs);
    return rc;
}
