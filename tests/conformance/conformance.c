/*
 * conformance: our feed parser against the gofeed test vectors.
 *
 *   conformance [DIR]      (default: $NA_SOURCE_DIR/../shared/conformance/gofeed)
 *
 * Each case is a feed document plus the items gofeed expects from it (see
 * DIR/README.md). Over the cases whose expected output has items, the item
 * fields article/v1 keeps are compared after one set of normalisation rules
 * applied to every case (docs/feeds-conformance.md):
 *
 *  - the document is parsed with NA_FEED_LITERAL, so that no item is
 *    dropped and no value is derived from elsewhere in the document;
 *  - title, description and content: gofeed's value goes through the same
 *    HTML-to-text conversion as ours (na_html_to_text()); on both sides
 *    whitespace runs count as one space, and an empty value is no value;
 *  - link: gofeed's link in the canonical form of na_url_canonical();
 *  - published: article/v1 publishes the publication time, else the update
 *    time, so both sides compare "published, else updated"; times compare
 *    in UTC, to the second (article/v1 keeps whole seconds);
 *  - authors: each person by name, else by email (article/v1 keeps names);
 *    authors and categories compare as ordered lists.
 *
 * A case agrees when every field agrees on every item and the item counts
 * match. The documents of parser/universal check format detection. Prints
 * per-field agreement, every disagreement, and last the line
 * "conformance: A of N cases agree". Exit status: 0 when A >= 95 % of N
 * and detection holds; when the folder is missing (one line says so), 77
 * (ctest's SKIP_RETURN_CODE: a skip, not a pass), or 1 with CI=true; 1
 * otherwise.
 */
#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "feed.h"
#include "html.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "testenv.h"
#include "url.h"

#define MAX_DOC_BYTES (16u * 1024u * 1024u)
#define GOAL_PERCENT 95u

enum field {
    F_TITLE,
    F_LINK,
    F_GUID,
    F_PUBLISHED,
    F_UPDATED,
    F_DESCRIPTION,
    F_CONTENT,
    F_AUTHORS,
    F_CATEGORIES,
    F_COUNT,
};

static const char *const field_names[F_COUNT] = {
    "title",       "link",    "guid",    "published",  "updated",
    "description", "content", "authors", "categories",
};

/* One item, each field normalised to a string ("" = no value). */
struct item {
    char *f[F_COUNT];
};

struct totals {
    unsigned cases;
    unsigned agree;
    unsigned field_agree[F_COUNT];
    unsigned detect;
    unsigned detect_ok;
};

static void item_cleanup(struct item *it) {
    for (int i = 0; i < F_COUNT; i++) {
        free(it->f[i]);
        it->f[i] = NULL;
    }
}

static void items_free(struct item *items, size_t cnt) {
    for (size_t i = 0; i < cnt; i++) {
        item_cleanup(&items[i]);
    }
    free(items);
}

/* Collapse whitespace runs (ASCII and U+00A0) to one space and trim. */
static char *squash(const char *s) {
    struct na_buf buf;
    bool space = false;
    na_buf_init(&buf);
    na_buf_puts(&buf, "");
    for (const char *p = s ? s : ""; *p; p++) {
        bool ws = *p == ' ' || *p == '\t' || *p == '\n' || *p == '\r';
        if (!ws && (unsigned char)p[0] == 0xc2 && (unsigned char)p[1] == 0xa0) {
            ws = true;
            p++;
        }
        if (ws) {
            space = buf.len > 0;
            continue;
        }
        if (space) {
            na_buf_append(&buf, " ", 1);
            space = false;
        }
        na_buf_append(&buf, p, 1);
    }
    return na_buf_steal(&buf);
}

static char *html_text(const char *s) {
    char *text;
    char *out;
    if (!s) {
        return na_strdup("");
    }
    text = na_html_to_text(s, strlen(s));
    out = squash(text);
    free(text);
    return out;
}

static char *link_norm(const char *s) {
    char *trimmed = squash(s);
    char *c = trimmed && *trimmed ? na_url_canonical(trimmed) : NULL;
    if (c) {
        free(trimmed);
        return c;
    }
    return trimmed;
}

static char *time_str(int64_t t) {
    char buf[NA_RFC3339_LEN];
    if (t == NA_TIME_UNKNOWN) {
        return na_strdup("");
    }
    na_time_format_rfc3339(t, buf);
    return na_strdup(buf);
}

/* gofeed's *Parsed value (RFC 3339, maybe with fractions) to our form. */
static char *json_time(const json_t *v) {
    int64_t t;
    if (!json_is_string(v) || na_time_parse_rfc3339(json_string_value(v), &t)) {
        return na_strdup("");
    }
    return time_str(t);
}

static const char *jstr(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void list_add(struct na_buf *buf, const char *s) {
    char *n = squash(s);
    if (n && *n) {
        if (buf->len > 0) {
            na_buf_puts(buf, " | ");
        }
        na_buf_puts(buf, n);
    }
    free(n);
}

/* A person: name, else email. */
static void person_add(struct na_buf *buf, const json_t *p) {
    const char *name = jstr(p, "name");
    char *n = squash(name);
    if (n && *n) {
        list_add(buf, n);
    } else {
        list_add(buf, jstr(p, "email"));
    }
    free(n);
}

static char *persons(const json_t *item, const char *list_key, const char *one_key) {
    struct na_buf buf;
    const json_t *arr = json_object_get(item, list_key);
    const json_t *one = json_object_get(item, one_key);
    size_t i;
    json_t *v;
    na_buf_init(&buf);
    na_buf_puts(&buf, "");
    if (json_is_array(arr) && json_array_size(arr) > 0) {
        json_array_foreach(arr, i, v) {
            person_add(&buf, v);
        }
    } else if (json_is_object(one)) {
        person_add(&buf, one);
    }
    return na_buf_steal(&buf);
}

static char *strings(const json_t *arr) {
    struct na_buf buf;
    size_t i;
    json_t *v;
    na_buf_init(&buf);
    na_buf_puts(&buf, "");
    if (json_is_array(arr)) {
        json_array_foreach(arr, i, v) {
            if (json_is_string(v)) {
                list_add(&buf, json_string_value(v));
            }
        }
    }
    return na_buf_steal(&buf);
}

/* gofeed's universal model (translator/). */
static void expected_universal(const json_t *j, struct item *it) {
    const json_t *pub = json_object_get(j, "publishedParsed");
    if (!json_is_string(pub)) {
        pub = json_object_get(j, "updatedParsed");
    }
    it->f[F_TITLE] = html_text(jstr(j, "title"));
    it->f[F_LINK] = link_norm(jstr(j, "link"));
    it->f[F_GUID] = squash(jstr(j, "guid"));
    it->f[F_PUBLISHED] = json_time(pub);
    it->f[F_UPDATED] = json_time(json_object_get(j, "updatedParsed"));
    it->f[F_DESCRIPTION] = html_text(jstr(j, "description"));
    it->f[F_CONTENT] = html_text(jstr(j, "content"));
    it->f[F_AUTHORS] = persons(j, "authors", "author");
    it->f[F_CATEGORIES] = strings(json_object_get(j, "categories"));
}

/* gofeed's JSON Feed model (parser/json/): the format's own member names. */
static void expected_jsonfeed(const json_t *j, struct item *it) {
    const char *link = jstr(j, "url");
    const char *content = jstr(j, "content_html");
    const json_t *pub = json_object_get(j, "date_published");
    if (!link || !*link) {
        link = jstr(j, "external_url");
    }
    if (!content || !*content) {
        content = jstr(j, "content_text");
    }
    if (!json_is_string(pub) || !*json_string_value(pub)) {
        pub = json_object_get(j, "date_modified");
    }
    it->f[F_TITLE] = html_text(jstr(j, "title"));
    it->f[F_LINK] = link_norm(link);
    it->f[F_GUID] = squash(jstr(j, "id"));
    it->f[F_PUBLISHED] = json_time(pub);
    it->f[F_UPDATED] = json_time(json_object_get(j, "date_modified"));
    it->f[F_DESCRIPTION] = html_text(jstr(j, "summary"));
    it->f[F_CONTENT] = html_text(content);
    it->f[F_AUTHORS] = persons(j, "authors", "author");
    it->f[F_CATEGORIES] = strings(json_object_get(j, "tags"));
}

static char *names(char **v, size_t cnt) {
    struct na_buf buf;
    na_buf_init(&buf);
    na_buf_puts(&buf, "");
    for (size_t i = 0; i < cnt; i++) {
        list_add(&buf, v[i]);
    }
    return na_buf_steal(&buf);
}

static void ours(const struct na_article *a, struct item *it) {
    int64_t pub = a->published_at != NA_TIME_UNKNOWN ? a->published_at : a->updated_at;
    it->f[F_TITLE] = squash(a->title);
    it->f[F_LINK] = squash(a->url);
    it->f[F_GUID] = squash(a->guid);
    it->f[F_PUBLISHED] = time_str(pub);
    it->f[F_UPDATED] = time_str(a->updated_at);
    it->f[F_DESCRIPTION] = squash(a->summary);
    it->f[F_CONTENT] = squash(a->content);
    it->f[F_AUTHORS] = names(a->authors, a->authors_cnt);
    it->f[F_CATEGORIES] = names(a->categories, a->categories_cnt);
}

static bool items_ok(const struct item *items, size_t cnt) {
    for (size_t i = 0; i < cnt; i++) {
        for (int f = 0; f < F_COUNT; f++) {
            if (!items[i].f[f]) {
                return false;
            }
        }
    }
    return true;
}

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) {
        snprintf(p, n, "%s/%s", dir, name);
    }
    return p;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s);
    size_t m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/*
 * One case: @p doc_path the feed, @p exp_path gofeed's output, @p jsonfeed_model
 * whether that output uses gofeed's JSON Feed model. Cases without expected
 * items are not counted.
 */
static void run_case(struct totals *tot, const char *label, const char *doc_path,
                     const char *exp_path, bool jsonfeed_model) {
    json_error_t jerr;
    json_t *exp = json_load_file(exp_path, 0, &jerr);
    const json_t *exp_items = exp ? json_object_get(exp, "items") : NULL;
    struct item *want = NULL;
    struct item *got = NULL;
    size_t want_cnt = 0;
    size_t got_cnt = 0;
    char *doc = NULL;
    size_t doc_len = 0;
    struct na_feed feed;
    char errstr[512] = "";
    bool field_ok[F_COUNT];
    bool all = true;

    na_feed_init(&feed);
    if (!exp) {
        printf("ERROR %s: expected output: %s\n", label, jerr.text);
        tot->cases++;
        goto out;
    }
    if (!json_is_array(exp_items) || json_array_size(exp_items) == 0) {
        goto out; /* no items: not a case of ours */
    }
    tot->cases++;
    want_cnt = json_array_size(exp_items);
    want = calloc(want_cnt, sizeof(*want));
    if (!want) {
        goto out;
    }
    for (size_t i = 0; i < want_cnt; i++) {
        const json_t *j = json_array_get(exp_items, i);
        if (jsonfeed_model) {
            expected_jsonfeed(j, &want[i]);
        } else {
            expected_universal(j, &want[i]);
        }
    }
    if (na_read_file(doc_path, MAX_DOC_BYTES, &doc, &doc_len, errstr, sizeof(errstr)) ||
        na_feed_parse_ex(doc, doc_len, NULL, NA_FEED_LITERAL, &feed, errstr,
                         sizeof(errstr))) {
        printf("DISAGREE %s: parse failed: %s\n", label, errstr);
        goto out;
    }
    got_cnt = feed.items_cnt;
    got = calloc(got_cnt ? got_cnt : 1, sizeof(*got));
    if (!got) {
        goto out;
    }
    for (size_t i = 0; i < got_cnt; i++) {
        ours(&feed.items[i], &got[i]);
    }
    if (!items_ok(want, want_cnt) || !items_ok(got, got_cnt)) {
        printf("ERROR %s: out of memory\n", label);
        goto out;
    }
    if (got_cnt != want_cnt) {
        printf("DISAGREE %s: %zu items, expected %zu\n", label, got_cnt, want_cnt);
        goto out;
    }
    for (int f = 0; f < F_COUNT; f++) {
        field_ok[f] = true;
        for (size_t i = 0; i < want_cnt; i++) {
            if (strcmp(want[i].f[f], got[i].f[f])) {
                field_ok[f] = false;
                printf("DISAGREE %s: item %zu %s: expected \"%s\", got \"%s\"\n", label,
                       i + 1, field_names[f], want[i].f[f], got[i].f[f]);
            }
        }
        all = all && field_ok[f];
    }
    for (int f = 0; f < F_COUNT; f++) {
        tot->field_agree[f] += field_ok[f];
    }
    tot->agree += all;
out:
    items_free(want, want_cnt);
    items_free(got, got_cnt);
    na_feed_cleanup(&feed);
    free(doc);
    json_decref(exp);
}

/* translator/rss|atom: NAME.xml + NAME.json; translator/json and parser/json:
 * NAME.json + NAME_expected.json. */
static int run_dir(struct totals *tot, const char *root, const char *sub,
                   bool json_inputs, bool jsonfeed_model) {
    char *dir = path_join(root, sub);
    struct dirent **list = NULL;
    int n = dir ? scandir(dir, &list, NULL, alphasort) : -1;
    if (n < 0) {
        printf("conformance: %s: cannot read\n", dir ? dir : sub);
        free(dir);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        const char *in_ext = json_inputs ? ".json" : ".xml";
        if (ends_with(name, in_ext) && !ends_with(name, "_expected.json")) {
            size_t stem = strlen(name) - strlen(in_ext);
            char exp_name[512];
            char label[600];
            snprintf(exp_name, sizeof(exp_name), "%.*s%s", (int)stem, name,
                     json_inputs ? "_expected.json" : ".json");
            snprintf(label, sizeof(label), "%s/%s", sub, name);
            char *doc = path_join(dir, name);
            char *exp = path_join(dir, exp_name);
            struct stat st;
            if (doc && exp && !stat(exp, &st)) {
                run_case(tot, label, doc, exp, jsonfeed_model);
            }
            free(doc);
            free(exp);
        }
        free(list[i]);
    }
    free(list);
    free(dir);
    return 0;
}

/* parser/universal: the format named by the file name is detected, and
 * unknown, invalid and empty documents yield no items. */
static void run_detection(struct totals *tot, const char *root) {
    char *dir = path_join(root, "parser/universal");
    struct dirent **list = NULL;
    int n = dir ? scandir(dir, &list, NULL, alphasort) : -1;
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        const char *want = NULL;
        char *path = NULL;
        char *doc = NULL;
        size_t len = 0;
        struct na_feed feed;
        char errstr[512] = "";
        na_err_t err;
        bool ok;

        if (name[0] == '.') {
            goto next;
        }
        if (!strncmp(name, "atom", 4)) {
            want = "atom";
        } else if (!strncmp(name, "rdf", 3)) {
            want = "rdf";
        } else if (!strncmp(name, "rss", 3)) {
            want = "rss";
        } else if (!strncmp(name, "unknown", 7) || !strncmp(name, "invalid", 7) ||
                   !strncmp(name, "empty", 5)) {
            want = NULL;
        } else if (ends_with(name, ".json")) {
            want = "jsonfeed";
        } else {
            goto next;
        }
        na_feed_init(&feed);
        path = path_join(dir, name);
        err = path ? na_read_file(path, MAX_DOC_BYTES, &doc, &len, errstr, sizeof(errstr))
                   : NA_ERR_NOMEM;
        if (!err) {
            err = na_feed_parse(doc, len, NULL, &feed, errstr, sizeof(errstr));
        }
        ok = want ? !err && feed.format && !strcmp(feed.format, want)
                  : err || feed.items_cnt == 0;
        tot->detect++;
        tot->detect_ok += ok;
        if (!ok) {
            printf("DETECT parser/universal/%s: expected %s, got %s%s%s\n", name,
                   want ? want : "refusal or no items",
                   err ? "error: " : (feed.format ? feed.format : "?"), err ? errstr : "",
                   err ? "" : " with items");
        }
        na_feed_cleanup(&feed);
        free(doc);
        free(path);
    next:
        free(list[i]);
    }
    free(list);
    free(dir);
}

int main(int argc, char **argv) {
    struct totals tot;
    char *root = NULL;
    struct stat st;
    int rc = 1;

    memset(&tot, 0, sizeof(tot));
    if (argc > 1) {
        root = na_strdup(argv[1]);
    } else {
        const char *src = getenv("NA_SOURCE_DIR");
        root = path_join(src && *src ? src : ".", "../shared/conformance/gofeed");
    }
    if (!root) {
        return 1;
    }
    if (stat(root, &st) || !S_ISDIR(st.st_mode)) {
        bool ci = na_test_in_ci();
        printf("conformance: %s: no test vectors at %s\n",
               ci ? "failed (CI=true: a skip is a failure)" : "skipped", root);
        free(root);
        return ci ? 1 : NA_TEST_SKIP_RETURN_CODE;
    }
    printf("conformance: gofeed test vectors at %s\n", root);
    if (run_dir(&tot, root, "translator/rss", false, false) ||
        run_dir(&tot, root, "translator/atom", false, false) ||
        run_dir(&tot, root, "translator/json", true, false) ||
        run_dir(&tot, root, "parser/json", true, true)) {
        goto out;
    }
    run_detection(&tot, root);
    printf("field agreement over %u cases:\n", tot.cases);
    for (int f = 0; f < F_COUNT; f++) {
        printf("  %-12s %u/%u\n", field_names[f], tot.field_agree[f], tot.cases);
    }
    printf("detection: %u of %u documents as expected\n", tot.detect_ok, tot.detect);
    printf("conformance: %u of %u cases agree\n", tot.agree, tot.cases);
    if (tot.cases > 0 && tot.agree * 100u >= tot.cases * GOAL_PERCENT &&
        tot.detect_ok == tot.detect) {
        rc = 0;
    }
out:
    free(root);
    return rc;
}
