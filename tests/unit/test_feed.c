/*
 * Feed parsing: every folder of tests/data/feeds/ is one case with
 *   input.xml or input.json   the document
 *   base-url.txt              (optional) the document URL, first line
 *   expected.jsonl            the article/v1 lines, without fetched_at,
 *                             compared as JSON values (key order free)
 *   expected-feed.json        (optional) feed-level fields
 *   expected-error.txt        instead of the two above: a substring of the
 *                             error line (NA_ERR_* must not be NA_OK)
 *   forbidden.txt             (optional) substrings, one a line, that must
 *                             appear in no output line and no error
 * Articles get source {"id":"test","name":"test","feed_url": base URL or
 * "file:input"}. NA_UPDATE_FIXTURES=1 rewrites expected.jsonl and
 * expected-feed.json from the output, for review before committing.
 * Documents too big or too deep for a file are built in memory below.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd_parse.h"
#include "feed.h"
#include "feed_internal.h" /* NA_FEED_MAX_XML_MARKUP */
#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/metrics.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

#define MIN_FIXTURES 20

/* @returns new a + b + c; free(). */
static char *cat3(const char *a, const char *b, const char *c) {
    struct na_buf buf;
    na_buf_init(&buf);
    na_buf_puts(&buf, a);
    na_buf_puts(&buf, b);
    na_buf_puts(&buf, c);
    char *s = na_buf_steal(&buf);
    assert_non_null(s);
    return s;
}

static char *read_opt(const char *dir, const char *name, size_t *len) {
    char *path = cat3(dir, "/", name);
    char errstr[256];
    char *buf = NULL;
    size_t n = 0;
    if (access(path, F_OK)) {
        free(path);
        return NULL;
    }
    assert_int_equal(
        na_read_file(path, NA_MAX_FEED_BYTES, &buf, &n, errstr, sizeof(errstr)), NA_OK);
    free(path);
    if (len) {
        *len = n;
    }
    return buf;
}

/* Next line of the NUL-terminated text at *p (cut in place), or NULL. */
static char *next_line(char **p) {
    char *line = *p;
    if (!line || !*line) {
        return NULL;
    }
    char *nl = strchr(line, '\n');
    if (nl) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = line + strlen(line);
    }
    return line;
}

static void chomp(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) {
        s[--n] = '\0';
    }
}

/* The article as compared: article/v1 without fetched_at. */
static json_t *article_value(struct na_article *a, const char *feed_url) {
    free(a->source_id);
    free(a->source_name);
    free(a->source_feed_url);
    a->source_id = strdup("test");
    a->source_name = strdup("test");
    a->source_feed_url = strdup(feed_url);
    a->fetched_at = 1767700000;
    assert_int_equal(na_article_set_id(a), NA_OK);
    char *json = na_article_to_json(a);
    assert_non_null(json);
    json_t *v = json_loads(json, 0, NULL);
    assert_non_null(v);
    free(json);
    assert_int_equal(json_object_del(v, "fetched_at"), 0);
    return v;
}

static json_t *feed_value(const struct na_feed *feed) {
    json_t *hours = json_array();
    json_t *days = json_array();
    for (int h = 0; h < 24; h++) {
        if (feed->skip_hours & (1u << h)) {
            json_array_append_new(hours, json_integer(h));
        }
    }
    for (int d = 0; d < 7; d++) {
        if (feed->skip_days & (1u << d)) {
            json_array_append_new(days, json_integer(d));
        }
    }
    return json_pack("{s:s, s:s?, s:s?, s:s?, s:i, s:o, s:o, s:I, s:I}", "format",
                     feed->format, "title", feed->title, "link", feed->link, "lang",
                     feed->lang, "ttl_min", feed->ttl_min, "skip_hours", hours,
                     "skip_days", days, "items", (json_int_t)feed->items_cnt,
                     "items_dropped", (json_int_t)feed->items_dropped);
}

static void check_forbidden(const char *forbidden, const char *text, const char *name) {
    if (!forbidden || !text) {
        return;
    }
    char *copy = strdup(forbidden);
    char *cur = copy;
    for (char *line = next_line(&cur); line; line = next_line(&cur)) {
        chomp(line);
        if (*line && strstr(text, line)) {
            print_error("%s: forbidden \"%s\" found in: %s\n", name, line, text);
            fail();
        }
    }
    free(copy);
}

static void write_file(const char *dir, const char *name, const char *data) {
    char *path = cat3(dir, "/", name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(data, fp);
    fclose(fp);
    free(path);
}

static void run_case(const char *dir, const char *name) {
    struct na_feed feed;
    char errstr[512] = "";
    size_t len = 0;
    char *input = read_opt(dir, "input.xml", &len);
    if (!input) {
        input = read_opt(dir, "input.json", &len);
    }
    if (!input) {
        print_error("%s: no input.xml or input.json\n", name);
        fail();
    }
    char *base_url = read_opt(dir, "base-url.txt", NULL);
    char *want_err = read_opt(dir, "expected-error.txt", NULL);
    char *want_lines = read_opt(dir, "expected.jsonl", NULL);
    char *want_feed = read_opt(dir, "expected-feed.json", NULL);
    char *forbidden = read_opt(dir, "forbidden.txt", NULL);
    bool update = getenv("NA_UPDATE_FIXTURES") != NULL;
    if (base_url) {
        chomp(base_url);
    }

    na_feed_init(&feed);
    na_err_t err = na_feed_parse(input, len, base_url, &feed, errstr, sizeof(errstr));
    check_forbidden(forbidden, errstr, name);
    if (want_err) {
        chomp(want_err);
        if (!err || !strstr(errstr, want_err)) {
            print_error("%s: want error containing \"%s\", got %s: %s\n", name, want_err,
                        na_err2str(err), errstr);
            fail();
        }
        assert_int_equal(feed.items_cnt, 0);
        assert_null(feed.items);
        /* one line of valid UTF-8 */
        assert_null(strpbrk(errstr, "\r\n"));
        assert_true(na_utf8_valid(errstr, strlen(errstr)));
        goto out;
    }
    if (err) {
        print_error("%s: %s: %s\n", name, na_err2str(err), errstr);
        fail();
    }

    struct na_buf actual;
    na_buf_init(&actual);
    const char *feed_url = base_url ? base_url : "file:input";
    json_t *want = NULL;
    for (size_t i = 0; i < feed.items_cnt; i++) {
        json_t *got = article_value(&feed.items[i], feed_url);
        char *line = json_dumps(got, JSON_COMPACT | JSON_PRESERVE_ORDER);
        assert_non_null(line);
        check_forbidden(forbidden, line, name);
        na_buf_printf(&actual, "%s\n", line);
        free(line);
        json_decref(got);
    }
    json_t *fv = feed_value(&feed);
    char *feed_json = json_dumps(fv, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (update) {
        write_file(dir, "expected.jsonl", actual.data ? actual.data : "");
        write_file(dir, "expected-feed.json", feed_json);
        print_message("%s: expected files rewritten\n", name);
    } else {
        if (!want_lines) {
            print_error("%s: no expected.jsonl\n", name);
            fail();
        }
        /* compare line by line as JSON values */
        size_t n = 0;
        char *copy = strdup(want_lines);
        char *cur = copy;
        for (char *line = next_line(&cur); line; line = next_line(&cur)) {
            json_error_t jerr;
            if (!*line) {
                continue;
            }
            want = json_loads(line, 0, &jerr);
            if (!want) {
                print_error("%s: expected.jsonl line %zu: %s\n", name, n + 1, jerr.text);
                fail();
            }
            if (n >= feed.items_cnt) {
                print_error("%s: %zu items, expected.jsonl has more\n", name,
                            feed.items_cnt);
                fail();
            }
            json_t *got = article_value(&feed.items[n], feed_url);
            if (!json_equal(got, want)) {
                char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
                char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
                print_error("%s: item %zu differs\n want: %s\n got:  %s\n", name, n, w,
                            g);
                free(g);
                free(w);
                fail();
            }
            json_decref(got);
            json_decref(want);
            want = NULL;
            n++;
        }
        free(copy);
        if (n != feed.items_cnt) {
            print_error("%s: %zu items, expected.jsonl has %zu\n", name, feed.items_cnt,
                        n);
            fail();
        }
        if (want_feed) {
            json_t *wf = json_loads(want_feed, 0, NULL);
            assert_non_null(wf);
            if (!json_equal(wf, fv)) {
                print_error("%s: feed differs\n want: %s\n got:  %s\n", name, want_feed,
                            feed_json);
                fail();
            }
            json_decref(wf);
        }
    }
    free(feed_json);
    json_decref(fv);
    na_buf_cleanup(&actual);
out:
    na_feed_cleanup(&feed);
    free(input);
    free(base_url);
    free(want_err);
    free(want_lines);
    free(want_feed);
    free(forbidden);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_fixtures(void **state) {
    (void)state;
    const char *src = getenv("NA_SOURCE_DIR");
    char *names[512];
    size_t cnt = 0;
    assert_non_null(src);
    char *root = cat3(src, "/tests/data/feeds", "");
    DIR *d = opendir(root);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (de->d_name[0] == '.') {
            continue;
        }
        char *path = cat3(root, "/", de->d_name);
        int rc = stat(path, &st);
        free(path);
        if (rc || !S_ISDIR(st.st_mode)) {
            continue;
        }
        assert_true(cnt < sizeof(names) / sizeof(names[0]));
        names[cnt++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(names, cnt, sizeof(names[0]), cmp_str);
    assert_true(cnt >= MIN_FIXTURES);
    for (size_t i = 0; i < cnt; i++) {
        char *dir = cat3(root, "/", names[i]);
        run_case(dir, names[i]);
        free(dir);
        free(names[i]);
    }
    free(root);
    print_message("%zu feed fixtures\n", cnt);
}

static void expect_error(const char *doc, size_t len, na_err_t want, const char *needle) {
    struct na_feed feed;
    char errstr[512] = "";
    na_feed_init(&feed);
    na_err_t err = na_feed_parse(doc, len, NULL, &feed, errstr, sizeof(errstr));
    if (err != want || !strstr(errstr, needle)) {
        print_error("want %s \"%s\", got %s \"%s\"\n", na_err2str(want), needle,
                    na_err2str(err), errstr);
        fail();
    }
    assert_int_equal(feed.items_cnt, 0);
    assert_null(feed.items);
    assert_null(feed.title);
    na_feed_cleanup(&feed);
}

static size_t parse_ok(const char *doc, size_t len, struct na_feed *feed) {
    char errstr[512] = "";
    na_err_t err = na_feed_parse(doc, len, NULL, feed, errstr, sizeof(errstr));
    if (err) {
        print_error("%s: %s\n", na_err2str(err), errstr);
        fail();
    }
    return feed->items_cnt;
}

/* A document over NA_MAX_FEED_BYTES is refused before parsing; one of
 * exactly NA_MAX_FEED_BYTES is parsed. */
static void test_oversized(void **state) {
    (void)state;
    const char *head = "<rss><channel>";
    const char *tail = "<item><title>Last one</title></item></channel></rss>";
    size_t len = NA_MAX_FEED_BYTES;
    char *doc = malloc(len + 1);
    assert_non_null(doc);
    /* filler: comments of 4 KiB (libxml2 refuses single nodes over 10 MB) */
    memset(doc, 'x', len + 1);
    memcpy(doc, head, strlen(head));
    for (size_t off = strlen(head); off + 4096 <= len - strlen(tail); off += 4096) {
        memcpy(doc + off, "<!--", 4);
        memcpy(doc + off + 4096 - 3, "-->", 3);
    }
    size_t fill_end = strlen(head) + (len - strlen(tail) - strlen(head)) / 4096 * 4096;
    memset(doc + fill_end, ' ', len - strlen(tail) - fill_end);
    memcpy(doc + len - strlen(tail), tail, strlen(tail));
    struct na_feed feed;
    na_feed_init(&feed);
    assert_int_equal(parse_ok(doc, len, &feed), 1);
    assert_string_equal(feed.items[0].title, "Last one");
    na_feed_cleanup(&feed);
    doc[len] = ' ';
    expect_error(doc, len + 1, NA_ERR_TOO_LARGE, "exceeds");
    free(doc);
}

/* Tiny nodes cost libxml2 far more than their bytes: a document with more
 * markup than NA_FEED_MAX_XML_MARKUP is refused before it is parsed. */
static void test_too_many_nodes(void **state) {
    (void)state;
    struct na_buf buf;
    struct na_feed feed;
    na_buf_init(&buf);
    na_buf_puts(&buf, "<rss><channel><item><title>t</title></item>");
    while (buf.len < 4u * (NA_FEED_MAX_XML_MARKUP + 10)) {
        na_buf_puts(&buf, "<a/>");
    }
    na_buf_puts(&buf, "</channel></rss>");
    expect_error(buf.data, buf.len, NA_ERR_TOO_LARGE, "tags and entity references");
    na_buf_cleanup(&buf);
    /* entity references count too; predefined and character ones do not */
    na_buf_init(&buf);
    na_buf_puts(&buf, "<!DOCTYPE rss [<!ENTITY e \"x\">]><rss><channel><item><title>");
    for (unsigned i = 0; i < NA_FEED_MAX_XML_MARKUP / 4; i++) {
        na_buf_puts(&buf, "&amp;&lt;&#65;&e;");
    }
    na_buf_puts(&buf, "</title></item></channel></rss>");
    na_feed_init(&feed);
    assert_int_equal(parse_ok(buf.data, buf.len, &feed), 1);
    na_feed_cleanup(&feed);
    for (unsigned i = 0; i < NA_FEED_MAX_XML_MARKUP; i++) {
        na_buf_puts(&buf, "&e;");
    }
    expect_error(buf.data, buf.len, NA_ERR_TOO_LARGE, "tags and entity references");
    na_buf_cleanup(&buf);
}

/* Tiny JSON values cost jansson far more than their bytes (16 MiB of
 * "[]," took 770 MB to parse): a document with more values and member
 * names than NA_FEED_MAX_JSON_VALUES is refused before it is parsed. Commas
 * and colons inside strings are text, not values. */
static void test_too_many_json_values(void **state) {
    (void)state;
    struct na_buf buf;
    struct na_feed feed;
    const char *head = "{\"version\":\"https://jsonfeed.org/version/1.1\",\"items\":"
                       "[{\"id\":\"1\",\"title\":\"One\"}],\"x\":";
    na_buf_init(&buf);
    na_buf_puts(&buf, head);
    na_buf_puts(&buf, "[[]");
    for (unsigned i = 0; i < NA_FEED_MAX_JSON_VALUES; i++) {
        na_buf_puts(&buf, ",[]");
    }
    na_buf_puts(&buf, "]}");
    expect_error(buf.data, buf.len, NA_ERR_TOO_LARGE, "more than 1000000 values");
    na_buf_cleanup(&buf);
    /* numbers, counted by the commas between them */
    na_buf_init(&buf);
    na_buf_puts(&buf, head);
    na_buf_puts(&buf, "[0");
    for (unsigned i = 0; i < NA_FEED_MAX_JSON_VALUES; i++) {
        na_buf_puts(&buf, ",0");
    }
    na_buf_puts(&buf, "]}");
    expect_error(buf.data, buf.len, NA_ERR_TOO_LARGE, "more than 1000000 values");
    na_buf_cleanup(&buf);
    /* the same count of commas and colons inside a string: one value */
    na_buf_init(&buf);
    na_buf_puts(&buf, head);
    na_buf_puts(&buf, "\"");
    for (unsigned i = 0; i < NA_FEED_MAX_JSON_VALUES; i++) {
        na_buf_puts(&buf, i % 2 ? ",[" : ":{");
    }
    na_buf_puts(&buf, "\"}");
    na_feed_init(&feed);
    assert_int_equal(parse_ok(buf.data, buf.len, &feed), 1);
    assert_string_equal(feed.items[0].title, "One");
    na_feed_cleanup(&feed);
    na_buf_cleanup(&buf);
}

static char *nested_xml(unsigned depth) {
    struct na_buf buf;
    na_buf_init(&buf);
    na_buf_puts(&buf, "<rss><channel><title>Deep</title>");
    for (unsigned i = 0; i < depth; i++) {
        na_buf_puts(&buf, "<x>");
    }
    for (unsigned i = 0; i < depth; i++) {
        na_buf_puts(&buf, "</x>");
    }
    na_buf_puts(&buf, "<item><title>After</title></item></channel></rss>");
    return na_buf_steal(&buf);
}

static void test_deep_xml(void **state) {
    (void)state;
    struct na_feed feed;
    char *doc = nested_xml(10000); /* libxml2's own limit (256) refuses it */
    expect_error(doc, strlen(doc), NA_ERR_PARSE,
                 "XML error at line 1: nesting deeper than 256");
    free(doc);
    doc = nested_xml(100); /* under libxml2's limit, over ours */
    expect_error(doc, strlen(doc), NA_ERR_PARSE, "nesting deeper than 64");
    free(doc);
    doc = nested_xml(50);
    na_feed_init(&feed);
    assert_int_equal(parse_ok(doc, strlen(doc), &feed), 1);
    assert_string_equal(feed.title, "Deep");
    na_feed_cleanup(&feed);
    free(doc);
}

static char *nested_json(unsigned depth, bool in_string) {
    struct na_buf buf;
    na_buf_init(&buf);
    na_buf_puts(&buf, "{\"version\":\"https://jsonfeed.org/version/1.1\",\"items\":"
                      "[{\"title\":\"Shallow\",\"x\":");
    if (in_string) {
        na_buf_puts(&buf, "\"");
    }
    for (unsigned i = 0; i < depth; i++) {
        na_buf_puts(&buf, "[");
    }
    for (unsigned i = 0; i < depth; i++) {
        na_buf_puts(&buf, in_string ? "]\\\"" : "]");
    }
    if (in_string) {
        na_buf_puts(&buf, "\"");
    }
    na_buf_puts(&buf, "}]}");
    return na_buf_steal(&buf);
}

static void test_deep_json(void **state) {
    (void)state;
    struct na_feed feed;
    char *doc = nested_json(10000, false);
    expect_error(doc, strlen(doc), NA_ERR_PARSE, "nesting deeper than 64");
    free(doc);
    doc = nested_json(70, false);
    expect_error(doc, strlen(doc), NA_ERR_PARSE, "nesting deeper than 64");
    free(doc);
    doc = nested_json(50, false);
    na_feed_init(&feed);
    assert_int_equal(parse_ok(doc, strlen(doc), &feed), 1);
    na_feed_cleanup(&feed);
    free(doc);
    /* brackets (and escaped quotes) inside a string are not nesting */
    doc = nested_json(10000, true);
    na_feed_init(&feed);
    assert_int_equal(parse_ok(doc, strlen(doc), &feed), 1);
    assert_string_equal(feed.items[0].title, "Shallow");
    na_feed_cleanup(&feed);
    free(doc);
}

/* Items past NA_MAX_FEED_ITEMS are dropped and counted, in both syntaxes. */
static void test_many_items(void **state) {
    (void)state;
    struct na_buf xml, json;
    struct na_feed feed;
    const unsigned n = NA_MAX_FEED_ITEMS + 3;
    na_buf_init(&xml);
    na_buf_init(&json);
    na_buf_puts(&xml, "<rss><channel>");
    na_buf_puts(&json, "{\"version\":\"https://jsonfeed.org/version/1.1\",\"items\":[");
    for (unsigned i = 0; i < n; i++) {
        na_buf_printf(&xml, "<item><link>https://example.org/n/%u</link></item>", i);
        na_buf_printf(&json, "%s{\"id\":\"%u\",\"url\":\"https://example.org/n/%u\"}",
                      i ? "," : "", i, i);
    }
    na_buf_puts(&xml, "</channel></rss>");
    na_buf_puts(&json, "]}");
    struct na_buf *docs[2] = {&xml, &json};
    for (int k = 0; k < 2; k++) {
        na_feed_init(&feed);
        assert_int_equal(parse_ok(docs[k]->data, docs[k]->len, &feed), NA_MAX_FEED_ITEMS);
        assert_int_equal(feed.items_dropped, 3);
        assert_string_equal(feed.items[NA_MAX_FEED_ITEMS - 1].url,
                            "https://example.org/n/4999");
        na_feed_cleanup(&feed);
    }
    na_buf_cleanup(&xml);
    na_buf_cleanup(&json);
}

/* @p tmpl with "@PATH@" replaced by @p path; free(). */
static char *with_path(const char *tmpl, const char *path) {
    struct na_buf buf;
    const char *at;
    na_buf_init(&buf);
    while ((at = strstr(tmpl, "@PATH@"))) {
        na_buf_append(&buf, tmpl, (size_t)(at - tmpl));
        na_buf_puts(&buf, path);
        tmpl = at + 6;
    }
    na_buf_puts(&buf, tmpl);
    return na_buf_steal(&buf);
}

/* External entities and DTDs that point at a local file never bring its
 * contents into the output, whichever way they are referenced. */
static void test_xxe_local_file(void **state) {
    (void)state;
    char path[] = "/tmp/na_test_feed_secret_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *secret = "SECRET-MARKER-7f3a <item><title>smuggled</title></item>";
    assert_int_equal(write(fd, secret, strlen(secret)), (ssize_t)strlen(secret));
    close(fd);

    static const char *const templates[] = {
        "<!DOCTYPE rss [<!ENTITY x SYSTEM \"file://@PATH@\">]>"
        "<rss><channel><item><title>a&x;b</title><description>&x;</description>"
        "<link>https://example.org/&x;</link></item></channel></rss>",
        "<!DOCTYPE rss SYSTEM \"file://@PATH@\"><rss><channel><item><title>t</title>"
        "</item></channel></rss>",
        "<!DOCTYPE rss [<!ENTITY % p SYSTEM \"file://@PATH@\"> %p;]>"
        "<rss><channel><item><title>t</title></item></channel></rss>",
        "<!DOCTYPE feed [<!ENTITY x SYSTEM \"file://@PATH@\">]>"
        "<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><id>i</id><title "
        "type=\"xhtml\"><div xmlns=\"http://www.w3.org/1999/xhtml\">&x;</div></title>"
        "<content type=\"html\">&x;</content></entry></feed>",
        "<!DOCTYPE rss [<!ENTITY x SYSTEM \"file://@PATH@\"><!ENTITY y \"&x;\">]>"
        "<rss><channel><item><title>&y;</title></item></channel></rss>",
    };
    for (size_t k = 0; k < sizeof(templates) / sizeof(templates[0]); k++) {
        char errstr[512] = "";
        struct na_feed feed;
        char *doc = with_path(templates[k], path);
        na_feed_init(&feed);
        na_err_t err =
            na_feed_parse(doc, strlen(doc), NULL, &feed, errstr, sizeof(errstr));
        assert_null(strstr(errstr, "SECRET"));
        if (!err) {
            for (size_t i = 0; i < feed.items_cnt; i++) {
                char *json = na_article_to_json(&feed.items[i]);
                assert_non_null(json);
                assert_null(strstr(json, "SECRET"));
                assert_null(strstr(json, "smuggled"));
                free(json);
            }
        }
        na_feed_cleanup(&feed);
        free(doc);
    }
    unlink(path);
}

/* A feed struct parsed into twice holds only the second result. */
static void test_reuse_and_failure_leaves_clean(void **state) {
    (void)state;
    struct na_feed feed;
    char errstr[256];
    const char *rss = "<rss><channel><title>One</title><item><title>a</title></item>"
                      "</channel></rss>";
    const char *atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Two</title>"
                       "<entry><title>b</title></entry><entry><title>c</title></entry>"
                       "</feed>";
    na_feed_init(&feed);
    assert_int_equal(parse_ok(rss, strlen(rss), &feed), 1);
    assert_int_equal(parse_ok(atom, strlen(atom), &feed), 2);
    assert_string_equal(feed.title, "Two");
    assert_string_equal(feed.format, "atom");
    assert_int_equal(
        na_feed_parse("<rss><channel>", 14, NULL, &feed, errstr, sizeof(errstr)),
        NA_ERR_PARSE);
    assert_int_equal(feed.items_cnt, 0);
    assert_null(feed.title);
    assert_null(feed.format);
    /* a NULL errstr is allowed */
    assert_int_equal(na_feed_parse("", 0, NULL, &feed, NULL, 0), NA_ERR_PARSE);
    na_feed_cleanup(&feed);
    na_feed_cleanup(NULL);
}

/* Run na_cmd_parse() with stdout and stderr captured. */
static int run_cmd(char **argv, int argc, char **out, char **err) {
    char opath[] = "/tmp/na_test_cmd_out_XXXXXX";
    char epath[] = "/tmp/na_test_cmd_err_XXXXXX";
    int ofd = mkstemp(opath);
    int efd = mkstemp(epath);
    assert_true(ofd >= 0 && efd >= 0);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1);
    int saved_err = dup(2);
    dup2(ofd, 1);
    dup2(efd, 2);
    int rc = na_cmd_parse(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    close(ofd);
    close(efd);
    char errstr[256];
    size_t len;
    assert_int_equal(na_read_file(opath, 1 << 20, out, &len, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(na_read_file(epath, 1 << 20, err, &len, errstr, sizeof(errstr)),
                     NA_OK);
    unlink(opath);
    unlink(epath);
    return rc;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++) {
        n += *s == '\n';
    }
    return n;
}

static void test_cmd_parse(void **state) {
    (void)state;
    char *out = NULL;
    char *err = NULL;
    char *path = NULL;
    char missing[] = "/nonexistent/feed.xml";
    char parse[] = "parse";
    char help[] = "--help";
    char base_opt[] = "--base-url";
    char base[] = "https://wire.example.org/feeds/main.xml";
    char bogus[] = "--bogus";
    const char *src = getenv("NA_SOURCE_DIR");
    assert_non_null(src);

    char *a_help[] = {parse, help};
    assert_int_equal(run_cmd(a_help, 2, &out, &err), 0);
    assert_non_null(strstr(out, "Usage: newsalert-producer parse"));
    assert_string_equal(err, "");
    free(out);
    free(err);

    char *a_none[] = {parse};
    assert_int_equal(run_cmd(a_none, 1, &out, &err), 2);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "missing FILE"));
    free(out);
    free(err);

    char *a_bogus[] = {parse, bogus, missing};
    assert_int_equal(run_cmd(a_bogus, 3, &out, &err), 2);
    assert_non_null(strstr(err, "unknown option --bogus"));
    free(out);
    free(err);

    char *a_missing[] = {parse, missing};
    assert_int_equal(run_cmd(a_missing, 2, &out, &err), 1);
    assert_string_equal(out, "");
    assert_int_equal(count_lines(err), 1);
    assert_non_null(strstr(err, "newsalert-producer: parse: /nonexistent/feed.xml: "));
    free(out);
    free(err);

    free(path);
    path = cat3(src, "/tests/data/feeds/malformed-xml", "/input.xml");
    char *a_bad[] = {parse, path};
    assert_int_equal(run_cmd(a_bad, 2, &out, &err), 1);
    assert_string_equal(out, "");
    assert_int_equal(count_lines(err), 1);
    assert_non_null(strstr(err, "input.xml: XML error at line"));
    free(out);
    free(err);

    free(path);
    path = cat3(src, "/tests/data/feeds/rss20-basic", "/input.xml");
    char *a_ok[] = {parse, base_opt, base, path};
    int64_t before = na_now_ms() / 1000;
    assert_int_equal(run_cmd(a_ok, 4, &out, &err), 0);
    assert_string_equal(err, "");
    assert_true(count_lines(out) >= 3);
    /* every line is a valid article/v1 record with the CLI's source fields */
    char *cur = out;
    for (char *line = next_line(&cur); line; line = next_line(&cur)) {
        struct na_article a;
        char errstr[256];
        na_article_init(&a);
        assert_int_equal(
            na_article_from_json(line, strlen(line), &a, errstr, sizeof(errstr)), NA_OK);
        assert_string_equal(a.source_id, "cli");
        assert_string_equal(a.source_name, path);
        assert_string_equal(a.source_feed_url, base);
        assert_true(a.fetched_at >= before && a.fetched_at <= before + 60);
        na_article_cleanup(&a);
    }
    free(out);
    free(err);

    free(path);
    path = cat3(src, "/tests/data/feeds/rss-empty-channel", "/input.xml");
    char *a_empty[] = {parse, path};
    assert_int_equal(run_cmd(a_empty, 2, &out, &err), 0);
    assert_string_equal(out, "");
    assert_string_equal(err, "");
    free(out);
    free(err);
    free(path);
}

/* Every output string of a successful parse is valid UTF-8 within caps. */
static void check_feed_sane(const struct na_feed *feed) {
    assert_true(feed->items_cnt <= NA_MAX_FEED_ITEMS);
    for (size_t i = 0; i < feed->items_cnt; i++) {
        const struct na_article *a = &feed->items[i];
        const char *fields[] = {a->url,     a->guid,    a->title,
                                a->summary, a->content, a->lang};
        const size_t caps[] = {NA_MAX_URL_BYTES,     NA_MAX_URL_BYTES,
                               NA_MAX_TITLE_BYTES,   NA_MAX_SUMMARY_BYTES,
                               NA_MAX_CONTENT_BYTES, 35};
        for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
            if (fields[f]) {
                assert_true(strlen(fields[f]) <= caps[f]);
                assert_true(na_utf8_valid(fields[f], strlen(fields[f])));
            }
        }
        assert_true(a->authors_cnt <= NA_MAX_AUTHORS);
        assert_true(a->categories_cnt <= NA_MAX_CATEGORIES);
        for (size_t k = 0; k < a->authors_cnt; k++) {
            assert_true(na_utf8_valid(a->authors[k], strlen(a->authors[k])));
        }
        for (size_t k = 0; k < a->categories_cnt; k++) {
            assert_true(na_utf8_valid(a->categories[k], strlen(a->categories[k])));
        }
        if (a->url) {
            assert_true(!strncmp(a->url, "http://", 7) ||
                        !strncmp(a->url, "https://", 8));
        }
    }
}

/* Cheap deterministic fuzzing: each fixture input with bytes flipped,
 * inserted, deleted and the tail cut off must parse or fail cleanly (the
 * sanitizers watch memory), and what parses must be sane. */
static void test_mutated_fixtures(void **state) {
    (void)state;
    static const char *const cases[] = {
        "rss20-basic",        "rss10-rdf",
        "atom10-xml-base",    "atom03",
        "jsonfeed10",         "jsonfeed11",
        "rss-cdata-entities", "rss-html-summaries",
        "wrong-json-types",   "rss091-html-entities",
    };
    static const char junk[] = "<>&;\"'[]{}:,/#\\\x00\xff\xc3!-?=";
    const char *src = getenv("NA_SOURCE_DIR");
    uint32_t rnd = 12345;
    size_t parsed = 0;
    size_t failed = 0;
    assert_non_null(src);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        size_t len = 0;
        char *dir = cat3(src, "/tests/data/feeds/", cases[c]);
        char *orig = read_opt(dir, "input.xml", &len);
        if (!orig) {
            orig = read_opt(dir, "input.json", &len);
        }
        assert_non_null(orig);
        free(dir);
        for (int round = 0; round < 150; round++) {
            char *doc = malloc(len + 16);
            size_t n = len;
            assert_non_null(doc);
            memcpy(doc, orig, len);
            int edits = 1 + round % 4;
            for (int e = 0; e < edits && n > 0; e++) {
                rnd = rnd * 1103515245u + 12345u;
                size_t pos = (rnd >> 8) % n;
                char ch = junk[(rnd >> 4) % (sizeof(junk) - 1)];
                switch ((rnd >> 2) % 4) {
                case 0:
                    doc[pos] = ch;
                    break;
                case 1:
                    memmove(doc + pos + 1, doc + pos, n - pos);
                    doc[pos] = ch;
                    n++;
                    break;
                case 2:
                    memmove(doc + pos, doc + pos + 1, n - pos - 1);
                    n--;
                    break;
                default:
                    n = pos;
                    break;
                }
            }
            struct na_feed feed;
            char errstr[512] = "";
            na_feed_init(&feed);
            na_err_t err = na_feed_parse(doc, n, "https://fuzz.example.org/feed", &feed,
                                         errstr, sizeof(errstr));
            if (err) {
                failed++;
                assert_true(errstr[0] != '\0');
                assert_null(strchr(errstr, '\n'));
                assert_true(na_utf8_valid(errstr, strlen(errstr)));
                assert_int_equal(feed.items_cnt, 0);
            } else {
                parsed++;
                check_feed_sane(&feed);
            }
            na_feed_cleanup(&feed);
            free(doc);
        }
        free(orig);
    }
    print_message("mutations: %zu parsed, %zu refused\n", parsed, failed);
    assert_true(parsed > 0 && failed > 0);
}

/* NA_FEED_LITERAL: no item dropped, nothing derived; the default derives. */
static void test_literal_flag(void **state) {
    (void)state;
    static const char rdf[] =
        "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" "
        "xmlns=\"http://purl.org/rss/1.0/\"><channel rdf:about=\"https://r.example/\">"
        "<title>R</title><link>https://r.example/</link><dc:language "
        "xmlns:dc=\"http://purl.org/dc/elements/1.1/\">fr</dc:language></channel>"
        "<item rdf:about=\"https://r.example/1\"><description>d</description>"
        "<dcterms:modified xmlns:dcterms=\"http://purl.org/dc/terms/\">"
        "2026-01-06T08:00:00Z</dcterms:modified></item>"
        "<item><dc:subject xmlns:dc=\"http://purl.org/dc/elements/1.1/\">nothing to "
        "name it by</dc:subject></item></rdf:RDF>";
    static const char atom[] =
        "<feed xmlns=\"http://www.w3.org/2005/Atom\"><author><name>Feed Author</name>"
        "</author><entry><title>t</title></entry></feed>";
    struct na_feed feed;
    char errstr[256];
    na_feed_init(&feed);

    assert_int_equal(
        na_feed_parse(rdf, sizeof(rdf) - 1, NULL, &feed, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(feed.items_cnt, 1);
    assert_int_equal(feed.items_dropped, 1);
    assert_string_equal(feed.items[0].guid, "https://r.example/1");
    assert_string_equal(feed.items[0].url, "https://r.example/1");
    assert_string_equal(feed.items[0].lang, "fr");
    assert_int_equal(feed.items[0].published_at, 1767686400);

    assert_int_equal(na_feed_parse_ex(rdf, sizeof(rdf) - 1, NULL, NA_FEED_LITERAL, &feed,
                                      errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(feed.items_cnt, 2);
    assert_int_equal(feed.items_dropped, 0);
    assert_null(feed.items[0].guid);
    assert_null(feed.items[0].url);
    assert_null(feed.items[0].lang);
    assert_int_equal(feed.items[0].published_at, NA_TIME_UNKNOWN);
    assert_int_equal(feed.items[0].updated_at, 1767686400);
    assert_int_equal(feed.items[1].categories_cnt, 1);
    assert_string_equal(feed.items[1].categories[0], "nothing to name it by");

    assert_int_equal(
        na_feed_parse(atom, sizeof(atom) - 1, NULL, &feed, errstr, sizeof(errstr)),
        NA_OK);
    assert_int_equal(feed.items[0].authors_cnt, 1);
    assert_string_equal(feed.items[0].authors[0], "Feed Author");
    assert_int_equal(na_feed_parse_ex(atom, sizeof(atom) - 1, NULL, NA_FEED_LITERAL,
                                      &feed, errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(feed.items[0].authors_cnt, 0);
    na_feed_cleanup(&feed);
}

static const char *item_id(struct na_article *a) {
    free(a->source_feed_url);
    a->source_feed_url = strdup("https://news.example/live.xml");
    assert_non_null(a->source_feed_url);
    assert_int_equal(na_article_set_id(a), NA_OK);
    return a->id;
}

/* Issue: live-blog posts merged. The fragment was dropped, the id came from
 * the link, and "#post-3" got the id of "#post-2": never produced. */
static void test_live_blog_posts_keep_fragments_and_ids(void **state) {
    (void)state;
    static const char rss[] =
        "<rss version=\"2.0\"><channel><title>Live</title>"
        "<link>https://news.example/</link>"
        "<item><title>Drills begin</title><link>https://news.example/live/taiwan#post-2"
        "</link><guid isPermaLink=\"false\">live-2</guid></item>"
        "<item><title>Ministry responds</title>"
        "<link>https://News.Example/live/taiwan?utm_source=rss#post-3</link>"
        "<guid isPermaLink=\"false\">live-3</guid></item>"
        /* the page itself, without fragment: the id it always had */
        "<item><title>Live: Taiwan strait</title>"
        "<link>https://news.example/live/taiwan</link><guid>page</guid></item>"
        /* one item per link: the fragment goes, as before */
        "<item><title>Rare earths</title><link>https://news.example/a#comments</link>"
        "<guid>a</guid></item>"
        /* the very same link, guids of their own: told apart by the guid */
        "<item><title>Update 1</title><link>https://news.example/ticker</link>"
        "<guid>t-1</guid></item>"
        "<item><title>Update 2</title><link>https://news.example/ticker#x</link>"
        "<guid>t-2</guid></item>"
        "<item><title>Update 3</title><link>https://news.example/ticker#x</link>"
        "<guid>t-3</guid></item>"
        /* link and guid shared: one article */
        "<item><title>Twice</title><link>https://news.example/b</link>"
        "<guid>b</guid></item>"
        "<item><title>Twice</title><link>https://news.example/b</link>"
        "<guid>b</guid></item>"
        "</channel></rss>";
    struct na_feed feed;
    char errstr[256];
    char id[9][NA_SHA256_HEX_LEN + 1];
    char want[NA_SHA256_HEX_LEN + 1];
    na_feed_init(&feed);
    assert_int_equal(
        na_feed_parse(rss, sizeof(rss) - 1, NULL, &feed, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(feed.items_cnt, 9);
    for (size_t i = 0; i < 9; i++) {
        snprintf(id[i], sizeof(id[i]), "%s", item_id(&feed.items[i]));
    }
    assert_string_equal(feed.items[0].url, "https://news.example/live/taiwan#post-2");
    assert_string_equal(feed.items[1].url, "https://news.example/live/taiwan#post-3");
    assert_string_equal(feed.items[2].url, "https://news.example/live/taiwan");
    assert_false(feed.items[0].id_by_guid || feed.items[1].id_by_guid ||
                 feed.items[2].id_by_guid);
    assert_string_not_equal(id[0], id[1]);
    assert_string_not_equal(id[0], id[2]);
    assert_string_not_equal(id[1], id[2]);
    assert_int_equal(na_sha256_hex("https://news.example/live/taiwan#post-3", 39, want),
                     NA_OK);
    assert_string_equal(id[1], want);
    assert_int_equal(na_sha256_hex("https://news.example/live/taiwan", 32, want), NA_OK);
    assert_string_equal(id[2], want);
    /* alone on its link: the id of the canonical URL without fragment */
    assert_string_equal(feed.items[3].url, "https://news.example/a");
    assert_int_equal(na_sha256_hex("https://news.example/a", 22, want), NA_OK);
    assert_string_equal(id[3], want);
    /* "#x" twice does not tell Update 2 from 3: their guids do */
    assert_string_equal(feed.items[4].url, "https://news.example/ticker");
    assert_false(feed.items[4].id_by_guid);
    assert_string_equal(feed.items[5].url, "https://news.example/ticker");
    assert_string_equal(feed.items[6].url, "https://news.example/ticker");
    assert_true(feed.items[5].id_by_guid && feed.items[6].id_by_guid);
    const char *parts[] = {"https://news.example/live.xml", "t-3", NULL};
    assert_int_equal(na_sha256_hex_parts(parts, want), NA_OK);
    assert_string_equal(id[6], want);
    assert_string_not_equal(id[4], id[5]);
    assert_string_not_equal(id[5], id[6]);
    assert_string_equal(id[7], id[8]);

    /* literal parsing: links as na_url_canonical() gives them */
    assert_int_equal(na_feed_parse_ex(rss, sizeof(rss) - 1, NULL, NA_FEED_LITERAL, &feed,
                                      errstr, sizeof(errstr)),
                     NA_OK);
    assert_string_equal(feed.items[0].url, "https://news.example/live/taiwan");
    assert_string_equal(feed.items[1].url, "https://news.example/live/taiwan");
    assert_false(feed.items[5].id_by_guid);
    na_feed_cleanup(&feed);
}

/* A live blog whose posts have fragment links only in their permalink
 * guids (no <link>), and an Atom one: the same rule. */
static void test_live_blog_guid_links_and_atom(void **state) {
    (void)state;
    static const char rss[] =
        "<rss version=\"2.0\"><channel><title>Live</title>"
        "<item><title>One</title><guid>https://n.example/live#p1</guid></item>"
        "<item><title>Two</title><guid>https://n.example/live#p2</guid></item>"
        "</channel></rss>";
    static const char atom[] =
        "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Live</title>"
        "<entry><title>One</title><id>urn:p1</id>"
        "<link href=\"https://n.example/live#p1\"/></entry>"
        "<entry><title>Two</title><id>urn:p2</id>"
        "<link href=\"https://n.example/live#p2\"/></entry></feed>";
    struct na_feed feed;
    char errstr[256];
    na_feed_init(&feed);
    assert_int_equal(
        na_feed_parse(rss, sizeof(rss) - 1, NULL, &feed, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(feed.items_cnt, 2);
    assert_string_equal(feed.items[0].url, "https://n.example/live#p1");
    assert_string_equal(feed.items[1].url, "https://n.example/live#p2");
    assert_int_equal(
        na_feed_parse(atom, sizeof(atom) - 1, NULL, &feed, errstr, sizeof(errstr)),
        NA_OK);
    assert_int_equal(feed.items_cnt, 2);
    assert_string_equal(feed.items[0].url, "https://n.example/live#p1");
    assert_string_equal(feed.items[1].url, "https://n.example/live#p2");
    na_feed_cleanup(&feed);
}

static double metric(const char *name, const char *labels) {
    return na_metric_value(na_metrics_get(NA_METRIC_COUNTER, name, "test", labels));
}

/* Every parse is counted by format and outcome; items kept and dropped. */
static void test_metrics_counted(void **state) {
    (void)state;
    static const char rss[] = "<rss version=\"2.0\"><channel><item><title>a</title>"
                              "</item><item><category>no name</category></item>"
                              "<item><link>https://m.example/b</link></item>"
                              "</channel></rss>";
    static const char bad[] = "<rss><channel></rss>";
    static const char json[] = "[1, 2]";
    struct na_feed feed;
    char errstr[256];
    const char *ok = "format=\"rss\",result=\"ok\"";
    const char *malformed = "format=\"unknown\",result=\"malformed\"";
    const char *unsupported = "format=\"unknown\",result=\"unsupported\"";
    double ok0 = metric("newsalert_feed_documents_total", ok);
    double bad0 = metric("newsalert_feed_documents_total", malformed);
    double uns0 = metric("newsalert_feed_documents_total", unsupported);
    double items0 = metric("newsalert_feed_items_total", "format=\"rss\"");
    double dropped0 = metric("newsalert_feed_items_dropped_total", "format=\"rss\"");
    double empty0 = metric("newsalert_feed_items_empty_total", "format=\"rss\"");

    na_feed_init(&feed);
    assert_int_equal(
        na_feed_parse(rss, sizeof(rss) - 1, NULL, &feed, errstr, sizeof(errstr)), NA_OK);
    assert_int_equal(
        na_feed_parse(bad, sizeof(bad) - 1, NULL, &feed, errstr, sizeof(errstr)),
        NA_ERR_PARSE);
    assert_int_equal(
        na_feed_parse(json, sizeof(json) - 1, NULL, &feed, errstr, sizeof(errstr)),
        NA_ERR_UNSUPPORTED);
    na_feed_cleanup(&feed);
    assert_true(metric("newsalert_feed_documents_total", ok) == ok0 + 1);
    assert_true(metric("newsalert_feed_documents_total", malformed) == bad0 + 1);
    assert_true(metric("newsalert_feed_documents_total", unsupported) == uns0 + 1);
    assert_true(metric("newsalert_feed_items_total", "format=\"rss\"") == items0 + 2);
    assert_true(metric("newsalert_feed_items_dropped_total", "format=\"rss\"") ==
                dropped0 + 1);
    assert_true(metric("newsalert_feed_items_empty_total", "format=\"rss\"") ==
                empty0 + 1);
}

/* ---- every item (issue: "the whole article, not the teaser", point 4) ---- */

enum { F_TITLE = 1, F_LINK = 2, F_GUID = 4, F_DESC = 8, F_CONTENT = 16, F_ALL = 31 };

#define COMBO_FEED_URL "https://combo.example/feed"

/* One document of @p format ("rss", "rdf", "atom", "jsonfeed") whose only
 * item carries exactly the fields of @p mask; free(). */
static char *combo_doc(const char *format, unsigned mask) {
    struct na_buf b;
    na_buf_init(&b);
    if (!strcmp(format, "rss")) {
        na_buf_puts(&b, "<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/"
                        "modules/content/\"><channel><title>C</title><item>");
        if (mask & F_TITLE) {
            na_buf_puts(&b, "<title>Port closes at dawn</title>");
        }
        if (mask & F_LINK) {
            na_buf_puts(&b, "<link>https://combo.example/a/1?utm_source=x</link>");
        }
        if (mask & F_GUID) {
            na_buf_puts(&b, "<guid isPermaLink=\"false\">combo-guid-7</guid>");
        }
        if (mask & F_DESC) {
            na_buf_puts(&b, "<description>&lt;p&gt;Harbour staff were told to "
                            "leave.&lt;/p&gt;</description>");
        }
        if (mask & F_CONTENT) {
            na_buf_puts(&b, "<content:encoded><![CDATA[<p>The whole story of the "
                            "harbour.</p>]]></content:encoded>");
        }
        na_buf_puts(&b, "</item></channel></rss>");
    } else if (!strcmp(format, "rdf")) {
        na_buf_puts(&b, "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-"
                        "ns#\" xmlns=\"http://purl.org/rss/1.0/\" xmlns:content=\""
                        "http://purl.org/rss/1.0/modules/content/\"><channel rdf:about="
                        "\"https://combo.example/\"><title>C</title></channel><item");
        na_buf_puts(&b, mask & F_GUID ? " rdf:about=\"urn:combo:guid-7\">" : ">");
        if (mask & F_TITLE) {
            na_buf_puts(&b, "<title>Port closes at dawn</title>");
        }
        if (mask & F_LINK) {
            na_buf_puts(&b, "<link>https://combo.example/a/1?utm_source=x</link>");
        }
        if (mask & F_DESC) {
            na_buf_puts(&b, "<description>Harbour staff were told to leave."
                            "</description>");
        }
        if (mask & F_CONTENT) {
            na_buf_puts(&b, "<content:encoded>&lt;p&gt;The whole story of the "
                            "harbour.&lt;/p&gt;</content:encoded>");
        }
        na_buf_puts(&b, "</item></rdf:RDF>");
    } else if (!strcmp(format, "atom")) {
        na_buf_puts(&b, "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>C</title>"
                        "<entry>");
        if (mask & F_TITLE) {
            na_buf_puts(&b, "<title>Port closes at dawn</title>");
        }
        if (mask & F_LINK) {
            na_buf_puts(&b, "<link rel=\"alternate\" href=\"https://combo.example/a/1?"
                            "utm_source=x\"/>");
        }
        if (mask & F_GUID) {
            na_buf_puts(&b, "<id>urn:combo:guid-7</id>");
        }
        if (mask & F_DESC) {
            na_buf_puts(&b, "<summary>Harbour staff were told to leave.</summary>");
        }
        if (mask & F_CONTENT) {
            na_buf_puts(&b, "<content type=\"html\">&lt;p&gt;The whole story of the "
                            "harbour.&lt;/p&gt;</content>");
        }
        na_buf_puts(&b, "</entry></feed>");
    } else {
        bool first = true;
        na_buf_puts(&b, "{\"version\":\"https://jsonfeed.org/version/1.1\","
                        "\"title\":\"C\",\"items\":[{");
#define MEMBER(text)                                                                     \
    do {                                                                                 \
        na_buf_puts(&b, first ? "" : ",");                                               \
        na_buf_puts(&b, text);                                                           \
        first = false;                                                                   \
    } while (0)
        if (mask & F_TITLE) {
            MEMBER("\"title\":\"Port closes at dawn\"");
        }
        if (mask & F_LINK) {
            MEMBER("\"url\":\"https://combo.example/a/1?utm_source=x\"");
        }
        if (mask & F_GUID) {
            MEMBER("\"id\":\"urn:combo:guid-7\"");
        }
        if (mask & F_DESC) {
            MEMBER("\"summary\":\"Harbour staff were told to leave.\"");
        }
        if (mask & F_CONTENT) {
            MEMBER("\"content_html\":\"<p>The whole story of the harbour.</p>\"");
        }
#undef MEMBER
        na_buf_puts(&b, "}]}");
    }
    char *s = na_buf_steal(&b);
    assert_non_null(s);
    return s;
}

/* The id docs/producer.md promises for an item carrying @p mask. */
static void combo_id(const char *format, unsigned mask, char id[NA_SHA256_HEX_LEN + 1]) {
    const char *guid = !strcmp(format, "rss") ? "combo-guid-7" : "urn:combo:guid-7";
    if (mask & F_LINK) {
        const char *url = "https://combo.example/a/1";
        assert_int_equal(na_sha256_hex(url, strlen(url), id), NA_OK);
    } else if (mask & (F_GUID | F_TITLE)) {
        const char *parts[] = {COMBO_FEED_URL,
                               mask & F_GUID ? guid : "Port closes at dawn", NULL};
        assert_int_equal(na_sha256_hex_parts(parts, id), NA_OK);
    } else {
        const char *parts[] = {COMBO_FEED_URL, "",
                               mask & F_DESC ? "Harbour staff were told to leave."
                                             : "The whole story of the harbour.",
                               NULL};
        assert_int_equal(na_sha256_hex_parts(parts, id), NA_OK);
    }
}

/* Each of the 32 combinations of title, link, guid, description and
 * content, in each format: any one of them makes an article with the fields
 * it carries and the id of the rule; none of them drops the item, counted
 * as empty. */
static void test_every_item_combination(void **state) {
    (void)state;
    static const char *const formats[] = {"rss", "rdf", "atom", "jsonfeed"};
    char errstr[256];
    char want_id[NA_SHA256_HEX_LEN + 1];
    for (size_t f = 0; f < 4; f++) {
        char labels[64];
        snprintf(labels, sizeof(labels), "format=\"%s\"", formats[f]);
        for (unsigned mask = 0; mask <= F_ALL; mask++) {
            struct na_feed feed;
            char *doc = combo_doc(formats[f], mask);
            double empty0 = metric("newsalert_feed_items_empty_total", labels);
            na_feed_init(&feed);
            if (na_feed_parse(doc, strlen(doc), COMBO_FEED_URL, &feed, errstr,
                              sizeof(errstr))) {
                print_error("%s mask %u: %s\n", formats[f], mask, errstr);
                fail();
            }
            assert_string_equal(feed.format, formats[f]);
            if (mask == 0) {
                assert_int_equal(feed.items_cnt, 0);
                assert_int_equal(feed.items_dropped, 1);
                assert_int_equal(feed.items_empty, 1);
                assert_true(metric("newsalert_feed_items_empty_total", labels) ==
                            empty0 + 1);
                na_feed_cleanup(&feed);
                free(doc);
                continue;
            }
            if (feed.items_cnt != 1) {
                print_error("%s mask %u: %zu items\n", formats[f], mask, feed.items_cnt);
                fail();
            }
            assert_int_equal(feed.items_empty, 0);
            struct na_article *a = &feed.items[0];
            assert_true(!!(mask & F_TITLE) == (a->title != NULL));
            assert_true(!!(mask & F_LINK) == (a->url != NULL));
            assert_true(!!(mask & F_GUID) == (a->guid != NULL));
            assert_true(!!(mask & F_DESC) == (a->summary != NULL));
            assert_true(!!(mask & F_CONTENT) == (a->content != NULL));
            if (a->url) {
                assert_string_equal(a->url, "https://combo.example/a/1");
            }
            if (a->summary) {
                assert_string_equal(a->summary, "Harbour staff were told to leave.");
            }
            if (a->content) {
                assert_string_equal(a->content, "The whole story of the harbour.");
            }
            a->source_feed_url = strdup(COMBO_FEED_URL);
            assert_int_equal(na_article_set_id(a), NA_OK);
            combo_id(formats[f], mask, want_id);
            if (strcmp(a->id, want_id)) {
                print_error("%s mask %u: id %s, want %s\n", formats[f], mask, a->id,
                            want_id);
                fail();
            }
            na_feed_cleanup(&feed);
            free(doc);
        }
    }
}

/* Items known by their text alone: two of them get two ids (not one id
 * of an empty key), neither collides with a title or GUID of that text,
 * and `newsalert-producer parse` prints them. */
static void test_text_only_items(void **state) {
    (void)state;
    static const char rss[] =
        "<rss version=\"2.0\"><channel><title>T</title>"
        "<item><description>First notice: the ferry is cancelled.</description></item>"
        "<item><description>Second notice: the bridge reopens.</description></item>"
        "<item><title>First notice: the ferry is cancelled.</title></item>"
        "<item><guid isPermaLink=\"false\">notice-3</guid></item>"
        "<item><category>only a category</category></item>"
        "</channel></rss>";
    struct na_feed feed;
    char errstr[256];
    na_feed_init(&feed);
    assert_int_equal(na_feed_parse(rss, sizeof(rss) - 1, "https://t.example/f", &feed,
                                   errstr, sizeof(errstr)),
                     NA_OK);
    assert_int_equal(feed.items_cnt, 4);
    assert_int_equal(feed.items_empty, 1);
    for (size_t i = 0; i < feed.items_cnt; i++) {
        feed.items[i].source_feed_url = strdup("https://t.example/f");
        assert_int_equal(na_article_set_id(&feed.items[i]), NA_OK);
    }
    for (size_t i = 0; i < feed.items_cnt; i++) {
        for (size_t j = i + 1; j < feed.items_cnt; j++) {
            assert_string_not_equal(feed.items[i].id, feed.items[j].id);
        }
    }
    na_feed_cleanup(&feed);

    /* the command line prints what was dropped before */
    char path[] = "/tmp/na_test_text_only_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, rss, sizeof(rss) - 1), (ssize_t)(sizeof(rss) - 1));
    close(fd);
    char parse[] = "parse";
    char *argv[] = {parse, path};
    char *out = NULL, *err = NULL;
    assert_int_equal(run_cmd(argv, 2, &out, &err), 0);
    assert_string_equal(err, "");
    assert_int_equal(count_lines(out), 4);
    assert_non_null(strstr(out, "\"summary\":\"Second notice: the bridge reopens.\""));
    free(out);
    free(err);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_mutated_fixtures),
        cmocka_unit_test(test_oversized),
        cmocka_unit_test(test_too_many_nodes),
        cmocka_unit_test(test_deep_xml),
        cmocka_unit_test(test_deep_json),
        cmocka_unit_test(test_too_many_json_values),
        cmocka_unit_test(test_many_items),
        cmocka_unit_test(test_xxe_local_file),
        cmocka_unit_test(test_reuse_and_failure_leaves_clean),
        cmocka_unit_test(test_cmd_parse),
        cmocka_unit_test(test_literal_flag),
        cmocka_unit_test(test_live_blog_posts_keep_fragments_and_ids),
        cmocka_unit_test(test_live_blog_guid_links_and_atom),
        cmocka_unit_test(test_metrics_counted),
        cmocka_unit_test(test_every_item_combination),
        cmocka_unit_test(test_text_only_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
