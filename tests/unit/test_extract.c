/*
 * Article extraction (producer/extract.h). Every folder of tests/data/pages/
 * is one page written for the project in the shape of a real news site:
 *   page.html      the page as served (any encoding)
 *   expected.txt   the story it should yield (paragraphs; compared by words)
 *   meta.json      {"url": .., "content_type": .. (optional, the HTTP
 *                  header), "expect": {"title", "authors", "published_at",
 *                  "lang"}: each key given must match (null: must be absent)}
 *
 * Quality is measured by words, as a bag: a word is a run of letters and
 * digits (ASCII letters lower-cased; a CJK ideograph is a word of its own).
 * Precision = words of the extraction also in the expected text / words
 * extracted; recall = the same / words expected. The suite fails when
 * precision or recall over all pages (words summed) is below 0.95, or when
 * any one page is below 0.80. NA_EXTRACT_SHOW=<case> prints that case's
 * text; every run prints the per-page table.
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
#include <unistd.h>

#include "extract.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

#define MIN_PAGES 40
#define MIN_TOTAL 0.95
#define MIN_PAGE 0.80
#define MIN_HELDOUT 0.90

static char *path2(const char *dir, const char *name) {
    struct na_buf b;
    na_buf_init(&b);
    na_buf_printf(&b, "%s/%s", dir, name);
    char *s = na_buf_steal(&b);
    assert_non_null(s);
    return s;
}

static char *read_all(const char *dir, const char *name, size_t *len, bool must) {
    char *p = path2(dir, name);
    char errstr[256];
    char *buf = NULL;
    size_t n = 0;
    if (!must && access(p, F_OK)) {
        free(p);
        return NULL;
    }
    if (na_read_file(p, 2 * NA_MAX_PAGE_BYTES, &buf, &n, errstr, sizeof(errstr))) {
        print_error("%s\n", errstr);
        fail();
    }
    free(p);
    if (len) {
        *len = n;
    }
    return buf;
}

/* ---- words ---- */

struct words {
    char **v;
    size_t cnt, size;
};

static void words_add(struct words *w, const char *s, size_t n) {
    if (w->cnt == w->size) {
        w->size = w->size ? 2 * w->size : 256;
        w->v = realloc(w->v, w->size * sizeof(*w->v));
        assert_non_null(w->v);
    }
    char *word = na_strndup(s, n);
    assert_non_null(word);
    for (size_t i = 0; i < n; i++) {
        if (word[i] >= 'A' && word[i] <= 'Z') {
            word[i] = (char)(word[i] + 32);
        }
    }
    w->v[w->cnt++] = word;
}

/* Code point at s (valid UTF-8), its length in *n. */
static uint32_t cp_at(const unsigned char *s, size_t *n) {
    if (s[0] < 0x80) {
        *n = 1;
        return s[0];
    }
    if ((s[0] & 0xe0) == 0xc0) {
        *n = 2;
        return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
    }
    if ((s[0] & 0xf0) == 0xe0) {
        *n = 3;
        return (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 |
               (s[2] & 0x3f);
    }
    *n = 4;
    return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
           (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

static bool is_cjk(uint32_t cp) {
    return (cp >= 0x3400 && cp <= 0x9fff) || (cp >= 0xf900 && cp <= 0xfaff);
}

static bool is_word_cp(uint32_t cp) {
    if (cp < 0x80) {
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               (cp >= '0' && cp <= '9');
    }
    /* punctuation and symbols of Latin-1, general punctuation, CJK and
     * full-width punctuation are not letters */
    return !(cp <= 0xbf || cp == 0xd7 || cp == 0xf7 || (cp >= 0x2000 && cp <= 0x2bff) ||
             (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xff00 && cp <= 0xff20) ||
             cp == 0xfffd || cp >= 0x1f000);
}

static void tokenize(const char *text, struct words *w) {
    const unsigned char *s = (const unsigned char *)(text ? text : "");
    while (*s) {
        size_t n;
        uint32_t cp = cp_at(s, &n);
        if (is_cjk(cp)) {
            words_add(w, (const char *)s, n);
            s += n;
            continue;
        }
        if (!is_word_cp(cp)) {
            s += n;
            continue;
        }
        const unsigned char *start = s;
        while (*s) {
            cp = cp_at(s, &n);
            if (!is_word_cp(cp) || is_cjk(cp)) {
                break;
            }
            s += n;
        }
        words_add(w, (const char *)start, (size_t)(s - start));
    }
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void words_free(struct words *w) {
    for (size_t i = 0; i < w->cnt; i++) {
        free(w->v[i]);
    }
    free(w->v);
}

/* Words of @p a also in @p b, counted as a multiset. */
static size_t common(struct words *a, struct words *b) {
    size_t i = 0, j = 0, n = 0;
    qsort(a->v, a->cnt, sizeof(char *), cmp_str);
    qsort(b->v, b->cnt, sizeof(char *), cmp_str);
    while (i < a->cnt && j < b->cnt) {
        int c = strcmp(a->v[i], b->v[j]);
        if (c == 0) {
            n++;
            i++;
            j++;
        } else if (c < 0) {
            i++;
        } else {
            j++;
        }
    }
    return n;
}

/* ---- metadata ---- */

static bool check_meta(const char *name, const json_t *expect,
                       const struct na_extract *x) {
    const char *key;
    json_t *v;
    bool ok = true;
    json_object_foreach((json_t *)expect, key, v) {
        if (!strcmp(key, "title") || !strcmp(key, "lang")) {
            const char *got = !strcmp(key, "title") ? x->title : x->lang;
            if (json_is_null(v) ? got != NULL
                                : !got || strcmp(got, json_string_value(v))) {
                print_error("%s: %s: got \"%s\", want %s\n", name, key,
                            got ? got : "(none)",
                            json_is_null(v) ? "none" : json_string_value(v));
                ok = false;
            }
        } else if (!strcmp(key, "published_at")) {
            char got[NA_RFC3339_LEN] = "(none)";
            if (x->published_at != NA_TIME_UNKNOWN) {
                na_time_format_rfc3339(x->published_at, got);
            }
            if (json_is_null(v) ? x->published_at != NA_TIME_UNKNOWN
                                : strcmp(got, json_string_value(v))) {
                print_error("%s: published_at: got %s, want %s\n", name, got,
                            json_is_null(v) ? "none" : json_string_value(v));
                ok = false;
            }
        } else if (!strcmp(key, "authors")) {
            bool same = json_array_size(v) == x->authors_cnt;
            for (size_t i = 0; same && i < x->authors_cnt; i++) {
                same = !strcmp(json_string_value(json_array_get(v, i)), x->authors[i]);
            }
            if (!same) {
                print_error("%s: authors: got %zu:", name, x->authors_cnt);
                for (size_t i = 0; i < x->authors_cnt; i++) {
                    print_error(" \"%s\"", x->authors[i]);
                }
                print_error("\n");
                ok = false;
            }
        } else {
            print_error("%s: meta.json: unknown expect key %s\n", name, key);
            ok = false;
        }
    }
    return ok;
}

/* ---- the pages ---- */

/* What one set of pages must reach. */
struct bar {
    const char *folder; /* under tests/data */
    const char *split;  /* only pages whose meta.json "split" is this, or NULL: all */
    size_t min_pages;
    double min_total; /* precision and recall over the set, words summed */
    double min_page;  /* each page, or 0: reported only */
    bool meta_must;   /* wrong metadata fails the set (else it is reported) */
};

/* Measure every page of @p bar's folder (and split); print the table and
 * the totals. @returns false when the set is below its bar. */
static bool measure(const struct bar *bar) {
    const char *src = getenv("NA_SOURCE_DIR");
    const char *show = getenv("NA_EXTRACT_SHOW");
    char *root;
    char *names[256];
    size_t cnt = 0, used = 0;
    DIR *d;
    struct dirent *de;
    size_t sum_common = 0, sum_got = 0, sum_want = 0;
    double sum_p = 0, sum_r = 0;
    bool low = false, ok = true;
    size_t meta_bad = 0;

    assert_non_null(src);
    char *data = path2(src, "tests/data");
    root = path2(data, bar->folder);
    free(data);
    d = opendir(root);
    assert_non_null(d);
    while ((de = readdir(d)) && cnt < 256) {
        if (de->d_name[0] != '.' && strcmp(de->d_name, "README.md")) {
            names[cnt++] = strdup(de->d_name);
        }
    }
    closedir(d);
    qsort(names, cnt, sizeof(char *), cmp_str);
    print_message("== %s%s%s\n", bar->folder, bar->split ? ", split " : "",
                  bar->split ? bar->split : "");
    print_message("%-32s %7s %7s %6s %6s %s\n", "page", "want", "got", "P", "R", "from");
    for (size_t k = 0; k < cnt; k++) {
        char *dir = path2(root, names[k]);
        size_t len = 0;
        char *meta_text = read_all(dir, "meta.json", NULL, true);
        json_error_t jerr;
        json_t *meta = json_loads(meta_text, 0, &jerr);
        if (!meta) {
            print_error("%s: meta.json: %s\n", names[k], jerr.text);
            fail();
        }
        const char *split = json_string_value(json_object_get(meta, "split"));
        if (bar->split && (!split || strcmp(split, bar->split))) {
            json_decref(meta);
            free(meta_text);
            free(dir);
            continue;
        }
        used++;
        char *page = read_all(dir, "page.html", &len, true);
        char *want = read_all(dir, "expected.txt", NULL, true);
        struct na_extract x;
        char errstr[256];
        struct words wg = {NULL, 0, 0}, ww = {NULL, 0, 0};
        na_extract_init(&x);
        na_err_t err = na_extract_page(
            page, len, json_string_value(json_object_get(meta, "content_type")), &x,
            errstr, sizeof(errstr));
        if (err) {
            print_error("%s: %s: %s\n", names[k], na_err2str(err), errstr);
            fail();
        }
        assert_true(!x.text || na_utf8_valid(x.text, strlen(x.text)));
        if (show && !strcmp(show, names[k])) {
            print_message("---- %s (title \"%s\", lang %s)\n%s\n----\n", names[k],
                          x.title ? x.title : "", x.lang ? x.lang : "-",
                          x.text ? x.text : "(none)");
        }
        tokenize(x.text, &wg);
        tokenize(want, &ww);
        size_t got_cnt = wg.cnt, want_cnt = ww.cnt;
        size_t c = common(&wg, &ww);
        double p = got_cnt ? (double)c / (double)got_cnt : 0;
        double r = want_cnt ? (double)c / (double)want_cnt : 0;
        print_message("%-32s %7zu %7zu %6.3f %6.3f %s\n", names[k], want_cnt, got_cnt, p,
                      r, x.from ? x.from : "-");
        if (p < bar->min_page || r < bar->min_page) {
            low = true;
        }
        sum_common += c;
        sum_got += got_cnt;
        sum_want += want_cnt;
        sum_p += p;
        sum_r += r;
        if (!check_meta(names[k], json_object_get(meta, "expect"), &x)) {
            meta_bad++;
        }
        words_free(&wg);
        words_free(&ww);
        na_extract_cleanup(&x);
        json_decref(meta);
        free(meta_text);
        free(want);
        free(page);
        free(dir);
    }
    double P = sum_got ? (double)sum_common / (double)sum_got : 0;
    double R = sum_want ? (double)sum_common / (double)sum_want : 0;
    print_message(
        "%zu pages, %zu words expected, %zu extracted: precision %.3f recall %.3f "
        "(per page means %.3f %.3f); %zu with wrong metadata\n",
        used, sum_want, sum_got, P, R, used ? sum_p / (double)used : 0,
        used ? sum_r / (double)used : 0, meta_bad);
    for (size_t k = 0; k < cnt; k++) {
        free(names[k]);
    }
    free(root);
    if (used < bar->min_pages) {
        print_error("%zu pages, want at least %zu\n", used, bar->min_pages);
        ok = false;
    }
    if (P < bar->min_total || R < bar->min_total) {
        print_error("precision and recall must be at least %.2f\n", bar->min_total);
        ok = false;
    }
    if (low) {
        print_error("a page is below %.2f\n", bar->min_page);
        ok = false;
    }
    if (meta_bad && bar->meta_must) {
        print_error("%zu pages with wrong metadata\n", meta_bad);
        ok = false;
    }
    return ok;
}

/* The pages written for the project (tests/data/pages/README.md). */
static void test_pages(void **state) {
    (void)state;
    const struct bar bar = {"pages", NULL, MIN_PAGES, MIN_TOTAL, MIN_PAGE, true};
    assert_true(measure(&bar));
}

/* Pages written from public reporting (tests/data/pages-reported/README.md):
 * the dev split, which the extractor may be tuned on, must meet the same
 * text bar as the pages above; the held-out split, which it must never be
 * tuned on, is measured and reported (docs/extract.md), and fails only
 * below MIN_HELDOUT, a floor against regressions set before its first run.
 * Metadata is reported, not required: these pages state their times the
 * way the sites do, some in local time without a zone. */
static void test_reported_pages(void **state) {
    (void)state;
    const struct bar dev = {"pages-reported", "dev", 8, MIN_TOTAL, MIN_PAGE, false};
    const struct bar heldout = {"pages-reported", "heldout", 8, MIN_HELDOUT, 0, false};
    bool dev_ok = measure(&dev);
    bool heldout_ok = measure(&heldout);
    assert_true(dev_ok);
    assert_true(heldout_ok);
}

/* ---- hostile and odd pages ---- */

static na_err_t extract(const char *page, size_t len, const char *ct,
                        struct na_extract *x) {
    char errstr[256];
    na_err_t err = na_extract_page(page, len, ct, x, errstr, sizeof(errstr));
    if (err) {
        assert_true(errstr[0] != '\0');
        assert_null(x->text);
    }
    assert_true(!x->text || na_utf8_valid(x->text, strlen(x->text)));
    return err;
}

static const char story[] =
    "<p>The ferry to the outer islands was cancelled on Monday because of ice in the "
    "sound, the operator said, and would not sail again before Thursday.</p>";

/* 100,000 nested elements: no recursion, linear time, no crash. libxml2
 * stops building the tree at 256 levels, so what is deeper is lost; a
 * story 200 levels down is kept. */
static void test_deep_nesting(void **state) {
    (void)state;
    struct na_buf b;
    struct na_extract x;
    na_extract_init(&x);
    for (int depth = 200; depth <= 100000; depth += 99800) {
        na_buf_init(&b);
        na_buf_puts(&b, "<html><body>");
        for (int i = 0; i < depth; i++) {
            na_buf_puts(&b, "<div>");
        }
        na_buf_puts(&b, story);
        na_buf_puts(&b, "</body></html>");
        assert_false(b.oom);
        int64_t t0 = na_mono_ms();
        assert_int_equal(extract(b.data, b.len, NULL, &x), NA_OK);
        print_message("%d nested divs: %lld ms\n", depth, (long long)(na_mono_ms() - t0));
        if (depth == 200) {
            assert_non_null(x.text);
            assert_non_null(strstr(x.text, "ferry to the outer islands"));
        }
        na_buf_cleanup(&b);
    }
    na_extract_cleanup(&x);
}

/* More tags than NA_EXTRACT_MAX_MARKUP, or more bytes than
 * NA_MAX_PAGE_BYTES: refused before parsing. */
static void test_caps(void **state) {
    (void)state;
    struct na_buf b;
    struct na_extract x;
    na_buf_init(&b);
    for (unsigned i = 0; i <= NA_EXTRACT_MAX_MARKUP; i++) {
        na_buf_puts(&b, "<b>");
    }
    na_extract_init(&x);
    assert_int_equal(extract(b.data, b.len, "text/html", &x), NA_ERR_TOO_LARGE);
    na_buf_cleanup(&b);
    char *big = malloc(NA_MAX_PAGE_BYTES + 1);
    assert_non_null(big);
    memset(big, 'a', NA_MAX_PAGE_BYTES + 1);
    assert_int_equal(extract(big, NA_MAX_PAGE_BYTES + 1, NULL, &x), NA_ERR_TOO_LARGE);
    free(big);
}

/* Not HTML: refused by its type or its magic; plain text is read as text. */
static void test_not_html(void **state) {
    (void)state;
    struct na_extract x;
    na_extract_init(&x);
    assert_int_equal(extract("\x89PNG\r\n", 6, "image/png", &x), NA_ERR_UNSUPPORTED);
    assert_int_equal(extract("%PDF-1.7\n...", 12, NULL, &x), NA_ERR_UNSUPPORTED);
    assert_int_equal(extract("%PDF-1.7\n...", 12, "application/pdf; q=1", &x),
                     NA_ERR_UNSUPPORTED);
    static const char text[] = "Wire copy.\n\nSecond paragraph of <plain> text.";
    assert_int_equal(extract(text, sizeof(text) - 1, "text/plain; charset=utf-8", &x),
                     NA_OK);
    assert_string_equal(x.text, "Wire copy.\n\nSecond paragraph of <plain> text.");
    na_extract_cleanup(&x);
}

/* Pages without a story: no text, not an error. */
static void test_no_story(void **state) {
    (void)state;
    struct na_extract x;
    static const char links_only[] =
        "<html><body><ul><li><a href='/a'>Ferry cancelled because of the ice in "
        "the sound</a></li><li><a href='/b'>Bridge reopens after two weeks of "
        "repairs to the deck</a></li></ul></body></html>";
    static const char scripts[] = "<html><head><script>var a = 'a long script "
                                  "string, with commas, that is not a story at "
                                  "all';</script></head><body></body></html>";
    na_extract_init(&x);
    assert_int_equal(extract(links_only, sizeof(links_only) - 1, NULL, &x), NA_OK);
    assert_null(x.text);
    assert_null(x.from);
    assert_int_equal(extract(scripts, sizeof(scripts) - 1, NULL, &x), NA_OK);
    assert_null(x.text);
    /* blocks of nothing but no-break spaces beside the story */
    static const char nbsp[] =
        "<meta name='author' content='A. Writer'><div><div>&nbsp;</div><p>The ferry to "
        "the outer islands was cancelled on Monday because of ice in the sound, the "
        "operator said.</p><div>\xc2\xa0 \xc2\xa0</div><p>It would not sail again "
        "before Thursday, when the ice is expected to clear, a spokesman added.</p>"
        "</div>";
    assert_int_equal(extract(nbsp, sizeof(nbsp) - 1, NULL, &x), NA_OK);
    assert_non_null(strstr(x.text, "before Thursday"));
    na_err_t err = extract("", 0, NULL, &x);
    assert_true(err == NA_ERR_PARSE || (err == NA_OK && !x.text));
    na_extract_cleanup(&x);
}

/* Encodings: bad bytes in a UTF-8 page, a label nobody knows, a BOM that
 * says otherwise than the meta, NUL bytes. */
/* The page is its len bytes, not a C string: an XML declaration without
 * an encoding made the charset prescan search past the end of the buffer
 * for one. */
static void test_unterminated_buffer(void **state) {
    (void)state;
    static const char page[] = "<?xml version=\"1.0\"?>\n<html><body><p>Short.</p>";
    size_t len = sizeof(page) - 1;
    char *buf = malloc(len); /* no NUL after the page */
    struct na_extract x;
    assert_non_null(buf);
    memcpy(buf, page, len);
    na_extract_init(&x);
    assert_int_equal(na_extract_page(buf, len, "text/html", &x, NULL, 0), NA_OK);
    na_extract_cleanup(&x);
    free(buf);
}

static void test_encodings(void **state) {
    (void)state;
    struct na_extract x;
    struct na_buf b;
    na_extract_init(&x);
    na_buf_init(&b);
    na_buf_puts(&b, "<meta charset='utf-8'><p>Caf\xe9 owners in the old town said "
                    "the \xff new rules, which take effect in May, would cost them "
                    "dearly.</p>");
    assert_int_equal(extract(b.data, b.len, NULL, &x), NA_OK);
    assert_non_null(strstr(x.text, "Caf\xef\xbf\xbd owners"));
    na_buf_cleanup(&b);

    na_buf_puts(&b, "<meta charset='x-no-such-charset'><p>Caf\xe9 owners in the old "
                    "town said the new rules, which take effect in May, would cost "
                    "them dearly.</p>");
    assert_int_equal(extract(b.data, b.len, NULL, &x), NA_OK);
    assert_non_null(strstr(x.text, "Caf\xc3\xa9 owners")); /* not UTF-8: windows-1252 */
    na_buf_cleanup(&b);

    na_buf_puts(&b, "\xef\xbb\xbf<meta charset='iso-8859-1'><p>Caf\xc3\xa9 owners in "
                    "the old town said the new rules, which take effect in May, would "
                    "cost them dearly.</p>");
    assert_int_equal(extract(b.data, b.len, NULL, &x), NA_OK);
    assert_non_null(strstr(x.text, "Caf\xc3\xa9 owners")); /* the BOM wins */
    na_buf_cleanup(&b);

    static const char nul[] = "<p>Harbour\0 staff in the old town said the new rules, "
                              "which take effect in May, would cost them dearly.</p>";
    assert_int_equal(extract(nul, sizeof(nul) - 1, NULL, &x), NA_OK);
    assert_non_null(strstr(x.text, "staff in the old town"));
    assert_null(memchr(x.text, '\0', strlen(x.text)));
    na_extract_cleanup(&x);
}

/* A NUL byte in a page that is converted to UTF-8 (a charset named by
 * the HTTP header or a meta, a UTF-16 byte order mark) is a space, as in
 * a UTF-8 page: the conversion's result was read as a C string, so the
 * page ended at the NUL and its story was lost. */
static void test_nul_in_a_converted_page(void **state) {
    (void)state;
    struct na_extract x;
    na_extract_init(&x);
    static const char latin[] = "<html><head><title>Caf\xe9\0s</title></head><body><p>"
                                "Caf\xe9 owners in the old town said the new rules, "
                                "which take effect in May, would cost them dearly.</p>"
                                "</body></html>";
    assert_int_equal(
        extract(latin, sizeof(latin) - 1, "text/html; charset=iso-8859-1", &x), NA_OK);
    assert_non_null(x.text);
    assert_non_null(strstr(x.text, "Caf\xc3\xa9 owners in the old town"));
    na_extract_cleanup(&x);

    static const char meta[] = "<meta charset='windows-1252'>\0<p>Caf\xe9 owners in the "
                               "old town said the new rules, which take effect in May, "
                               "would cost them dearly.</p>";
    assert_int_equal(extract(meta, sizeof(meta) - 1, NULL, &x), NA_OK);
    assert_non_null(x.text);
    assert_non_null(strstr(x.text, "Caf\xc3\xa9 owners in the old town"));
    na_extract_cleanup(&x);

    /* UTF-16LE with a byte order mark, a U+0000 before the story */
    static const char ascii[] = "<p>\0Harbour staff in the old town said the new rules, "
                                "which take effect in May, would cost them dearly.</p>";
    char utf16[2 + 2 * sizeof(ascii)];
    size_t n = 0;
    utf16[n++] = '\xff';
    utf16[n++] = '\xfe';
    for (size_t i = 0; i < sizeof(ascii) - 1; i++) {
        utf16[n++] = ascii[i];
        utf16[n++] = '\0';
    }
    assert_int_equal(extract(utf16, n, NULL, &x), NA_OK);
    assert_non_null(x.text);
    assert_non_null(strstr(x.text, "Harbour staff in the old town"));
    na_extract_cleanup(&x);
}

/* Broken or hostile JSON-LD is ignored; a body in it is taken only when the
 * page has less than half its words. */
static void test_jsonld(void **state) {
    (void)state;
    struct na_extract x;
    struct na_buf b;
    na_extract_init(&x);
    na_buf_init(&b);
    na_buf_puts(&b, "<script type='application/ld+json'>{\"@type\": \"NewsArticle\", "
                    "\"articleBody\": [[[[</script>");
    na_buf_puts(&b, story);
    assert_int_equal(extract(b.data, b.len, NULL, &x), NA_OK);
    assert_string_equal(x.from, "page");
    na_buf_cleanup(&b);

    /* a short articleBody does not replace the page's story */
    na_buf_puts(&b, "<script type='application/ld+json'>{\"@type\": [\"Thing\", "
                    "\"NewsArticle\"], \"articleBody\": \"Ferry cancelled.\", "
                    "\"author\": [\"A. One\", {\"name\": \"B. Two\"}, [\"nested\"]], "
                    "\"inLanguage\": \"nb-NO\"}</script>");
    na_buf_puts(&b, story);
    assert_int_equal(extract(b.data, b.len, NULL, &x), NA_OK);
    assert_string_equal(x.from, "page");
    assert_int_equal(x.authors_cnt, 2);
    assert_string_equal(x.authors[1], "B. Two");
    assert_string_equal(x.lang, "nb-NO");
    na_buf_cleanup(&b);

    /* nested @graph deeper than we look: ignored, no crash */
    na_buf_puts(&b, "<script type='application/ld+json'>");
    for (int i = 0; i < 50; i++) {
        na_buf_puts(&b, "{\"@graph\": [");
    }
    na_buf_puts(&b, "{\"@type\": \"NewsArticle\", \"articleBody\": \"deep\"}");
    for (int i = 0; i < 50; i++) {
        na_buf_puts(&b, "]}");
    }
    na_buf_puts(&b, "</script>");
    na_buf_puts(&b, story);
    assert_int_equal(extract(b.data, b.len, NULL, &x), NA_OK);
    assert_string_equal(x.from, "page");
    na_buf_cleanup(&b);
    na_extract_cleanup(&x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages),
        cmocka_unit_test(test_reported_pages),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_not_html),
        cmocka_unit_test(test_no_story),
        cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_nul_in_a_converted_page),
        cmocka_unit_test(test_unterminated_buffer),
        cmocka_unit_test(test_jsonld),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
