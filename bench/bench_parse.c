/*
 * bench_parse: feed parsing throughput (na_feed_parse()) over a generated
 * local corpus. Run by bench/fetch_parse.sh.
 *
 *   bench_parse generate DIR     write the corpus: DIR/<format>-<size>KB/NNNN.<ext>
 *   bench_parse run DIR [SEC]    parse every document of each case folder,
 *                                in passes, for at least SEC seconds (default 3)
 *
 * The corpus looks like news feeds: RSS 2.0 with content:encoded in CDATA,
 * Dublin Core creators and escaped HTML descriptions; Atom 1.0 with html
 * summaries and content; JSON Feed 1.1 with content_html. Items carry
 * about 2.5 KB of text and markup, entities and tracking parameters; the
 * item count sets the document size. Every document differs (seeded
 * generator), so no case fits in one cache line of luck.
 *
 * Output: DESIGN.md's JSON lines, per case "parse <format> <size>KB":
 * feeds_per_s (1/s), MB_per_s (MB/s, 10^6 bytes) and items_per_s (1/s).
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "feed.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

#define MAX_DOCS 4096

struct gen_case {
    const char *format; /* rss, atom, jsonfeed */
    unsigned size_kb;
    unsigned docs;
};

/* About 10-20 MB per case: large enough to leave the CPU caches. */
static const struct gen_case gen_cases[] = {
    {"rss", 5, 2000},  {"rss", 50, 300},      {"rss", 500, 30},
    {"atom", 50, 300}, {"jsonfeed", 50, 300},
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static const char *const words[] = {
    "ministry",  "exports",   "rare",      "earth",     "controls", "port",
    "council",   "shipping",  "tariff",    "minister",  "said",     "on",
    "the",       "of",        "and",       "in",        "a",        "to",
    "new",       "rules",     "trade",     "Taiwan",    "Japan",    "China",
    "licence",   "dual-use",  "items",     "market",    "prices",   "week",
    "after",     "talks",     "supply",    "chain",     "magnets",  "gallium",
    "germanium", "officials", "report",    "statement", "Tuesday",  "quota",
    "board",     "vote",      "harbour",   "pilots",    "vessels",  "industry",
    "growth",    "policy",    "analysts",  "expect",    "decision", "review",
    "sanctions", "firms",     "investors", "shares",    "fell",     "rose",
    "percent",   "billion",   "agency",
};

static void sentence(struct na_buf *b, unsigned min_words, unsigned max_words) {
    unsigned n = min_words + rnd() % (max_words - min_words + 1);
    for (unsigned i = 0; i < n; i++) {
        const char *w = words[rnd() % (sizeof(words) / sizeof(words[0]))];
        if (i == 0) {
            char first = w[0] >= 'a' && w[0] <= 'z' ? (char)(w[0] - 'a' + 'A') : w[0];
            na_buf_append(b, &first, 1);
            na_buf_puts(b, w + 1);
        } else {
            na_buf_puts(b, " ");
            na_buf_puts(b, w);
        }
    }
}

/* HTML body of an item: paragraphs, a link, entities. */
static char *html_body(unsigned paragraphs) {
    struct na_buf b;
    na_buf_init(&b);
    for (unsigned p = 0; p < paragraphs; p++) {
        na_buf_puts(&b, "<p>");
        for (unsigned s = 0; s < 3; s++) {
            sentence(&b, 8, 18);
            na_buf_puts(&b, s == 1 ? " &amp; more &#8212; " : ". ");
        }
        if (p == 0) {
            na_buf_printf(&b, "<a href=\"/related/%u?utm_source=feed\">Read more</a> ",
                          rnd() % 100000);
        }
        na_buf_puts(&b, "&#8220;quoted&#8221;</p>\n");
    }
    return na_buf_steal(&b);
}

static void xml_escape(struct na_buf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '<') {
            na_buf_puts(b, "&lt;");
        } else if (*s == '>') {
            na_buf_puts(b, "&gt;");
        } else if (*s == '&') {
            na_buf_puts(b, "&amp;");
        } else {
            na_buf_append(b, s, 1);
        }
    }
}

static void json_escape(struct na_buf *b, const char *s) {
    na_buf_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            na_buf_append(b, "\\", 1);
            na_buf_append(b, s, 1);
        } else if (*s == '\n') {
            na_buf_puts(b, "\\n");
        } else {
            na_buf_append(b, s, 1);
        }
    }
    na_buf_puts(b, "\"");
}

static char *title(void) {
    struct na_buf b;
    na_buf_init(&b);
    sentence(&b, 6, 12);
    return na_buf_steal(&b);
}

static void rss_item(struct na_buf *b, unsigned doc, unsigned i) {
    char *t = title();
    char *summary = html_body(1);
    char *body = html_body(4);
    unsigned day = 1 + rnd() % 28;
    na_buf_puts(b, "<item>\n<title>");
    xml_escape(b, t);
    na_buf_printf(b,
                  "</title>\n<link>https://news%u.example.org/2026/01/%u/story-%u"
                  "?utm_source=rss&amp;utm_medium=feed</link>\n"
                  "<guid isPermaLink=\"false\">news%u-%u</guid>\n"
                  "<pubDate>%s, %02u Jan 2026 %02u:%02u:00 +0800</pubDate>\n"
                  "<dc:creator>Reporter %u</dc:creator>\n"
                  "<category>Trade</category><category>Section %u</category>\n"
                  "<description>",
                  doc, day, i, doc, i, day % 2 ? "Tue" : "Wed", day, rnd() % 24,
                  rnd() % 60, rnd() % 50, rnd() % 9);
    xml_escape(b, summary);
    na_buf_puts(b, "</description>\n<content:encoded><![CDATA[");
    na_buf_puts(b, body);
    na_buf_puts(b, "]]></content:encoded>\n</item>\n");
    free(t);
    free(summary);
    free(body);
}

static void atom_entry(struct na_buf *b, unsigned doc, unsigned i) {
    char *t = title();
    char *summary = html_body(1);
    char *body = html_body(4);
    unsigned day = 1 + rnd() % 28;
    na_buf_puts(b, "<entry>\n<title type=\"html\">");
    xml_escape(b, t);
    na_buf_printf(b,
                  "</title>\n<link rel=\"alternate\" type=\"text/html\" "
                  "href=\"/2026/01/%u/entry-%u\"/>\n"
                  "<id>tag:news%u.example.org,2026:%u</id>\n"
                  "<published>2026-01-%02uT%02u:%02u:00+08:00</published>\n"
                  "<updated>2026-01-%02uT%02u:%02u:30Z</updated>\n"
                  "<author><name>Reporter %u</name></author>\n"
                  "<category term=\"trade\" label=\"Trade\"/>\n"
                  "<summary type=\"html\">",
                  day, i, doc, i, day, rnd() % 24, rnd() % 60, day, rnd() % 24,
                  rnd() % 60, rnd() % 50);
    xml_escape(b, summary);
    na_buf_puts(b, "</summary>\n<content type=\"html\">");
    xml_escape(b, body);
    na_buf_puts(b, "</content>\n</entry>\n");
    free(t);
    free(summary);
    free(body);
}

static void json_item(struct na_buf *b, unsigned doc, unsigned i, bool first) {
    char *t = title();
    char *summary = title();
    char *body = html_body(5);
    unsigned day = 1 + rnd() % 28;
    na_buf_printf(b,
                  "%s{\"id\":\"news%u-%u\",\"url\":\"https://news%u.example.org/2026/01/"
                  "%u/item-%u?utm_campaign=x\",\"title\":",
                  first ? "" : ",\n", doc, i, doc, day, i);
    json_escape(b, t);
    na_buf_puts(b, ",\"summary\":");
    json_escape(b, summary);
    na_buf_puts(b, ",\"content_html\":");
    json_escape(b, body);
    na_buf_printf(
        b,
        ",\"date_published\":\"2026-01-%02uT%02u:%02u:00Z\","
        "\"authors\":[{\"name\":\"Reporter %u\"}],\"tags\":[\"trade\",\"s%u\"]}",
        day, rnd() % 24, rnd() % 60, rnd() % 50, rnd() % 9);
    free(t);
    free(summary);
    free(body);
}

static char *gen_doc(const char *format, size_t target, unsigned doc) {
    struct na_buf b;
    unsigned i = 0;
    bool rss = !strcmp(format, "rss");
    bool atom = !strcmp(format, "atom");
    na_buf_init(&b);
    if (rss) {
        na_buf_printf(
            &b,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<rss version=\"2.0\" "
            "xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" "
            "xmlns:dc=\"http://purl.org/dc/elements/1.1/\" "
            "xmlns:atom=\"http://www.w3.org/2005/Atom\">\n<channel>\n"
            "<title>News Wire %u</title>\n<link>https://news%u.example.org/</link>\n"
            "<description>Latest stories</description>\n<language>en-us</language>\n"
            "<atom:link href=\"https://news%u.example.org/feed.xml\" rel=\"self\" "
            "type=\"application/rss+xml\"/>\n<ttl>15</ttl>\n",
            doc, doc, doc);
    } else if (atom) {
        na_buf_printf(
            &b,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
            "<feed xmlns=\"http://www.w3.org/2005/Atom\" xml:lang=\"en\">\n"
            "<title>News Wire %u</title>\n"
            "<link rel=\"alternate\" href=\"https://news%u.example.org/\"/>\n"
            "<link rel=\"self\" href=\"https://news%u.example.org/atom.xml\"/>\n"
            "<id>tag:news%u.example.org,2026:feed</id>\n"
            "<updated>2026-01-06T08:00:00Z</updated>\n",
            doc, doc, doc, doc);
    } else {
        na_buf_printf(
            &b,
            "{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"News Wire "
            "%u\",\"home_page_url\":\"https://news%u.example.org/\",\"language\":"
            "\"en\",\"items\":[\n",
            doc, doc);
    }
    /* close enough: the last item may pass the target by one item */
    while (b.len + 40 < target || i == 0) {
        if (rss) {
            rss_item(&b, doc, i);
        } else if (atom) {
            atom_entry(&b, doc, i);
        } else {
            json_item(&b, doc, i, i == 0);
        }
        i++;
    }
    na_buf_puts(&b, rss ? "</channel>\n</rss>\n" : atom ? "</feed>\n" : "]}\n");
    return na_buf_steal(&b);
}

static int generate(const char *dir) {
    char path[4096 + 32]; /* sub + "/NNNN.json" */
    if (mkdir(dir, 0755) && errno != EEXIST) {
        fprintf(stderr, "bench_parse: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    for (size_t c = 0; c < sizeof(gen_cases) / sizeof(gen_cases[0]); c++) {
        const struct gen_case *g = &gen_cases[c];
        const char *ext = strcmp(g->format, "jsonfeed") ? "xml" : "json";
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s/%s-%uKB", dir, g->format, g->size_kb);
        if (mkdir(sub, 0755) && errno != EEXIST) {
            fprintf(stderr, "bench_parse: %s: %s\n", sub, strerror(errno));
            return 1;
        }
        for (unsigned d = 0; d < g->docs; d++) {
            char *doc = gen_doc(g->format, (size_t)g->size_kb * 1000u, d);
            FILE *fp = NULL;
            snprintf(path, sizeof(path), "%s/%04u.%s", sub, d, ext);
            /* plain writes: a corpus in a temporary folder needs no fsync */
            if (!doc || !(fp = fopen(path, "wb")) ||
                fwrite(doc, 1, strlen(doc), fp) != strlen(doc) || fclose(fp)) {
                fprintf(stderr, "bench_parse: %s: %s\n", path,
                        doc ? strerror(errno) : "no memory");
                free(doc);
                return 1;
            }
            free(doc);
        }
    }
    return 0;
}

struct doc {
    char *buf;
    size_t len;
};

static int compare_names(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* One case folder: load, warm up, then passes for at least @p min_s. */
static int run_case(const char *dir, const char *name, double min_s) {
    struct dirent **list = NULL;
    struct doc *docs = NULL;
    size_t ndocs = 0;
    size_t bytes = 0;
    int rc = 1;
    char path[4096];
    char fmt[32] = "";
    unsigned size_kb = 0;
    int n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    n = scandir(path, &list, NULL, compare_names);
    if (n < 0) {
        fprintf(stderr, "bench_parse: %s: %s\n", path, strerror(errno));
        return 1;
    }
    docs = calloc((size_t)n, sizeof(*docs));
    for (int i = 0; docs && i < n; i++) {
        char file[4096 + 256];
        char errstr[256];
        if (list[i]->d_name[0] != '.' && ndocs < MAX_DOCS) {
            snprintf(file, sizeof(file), "%s/%s", path, list[i]->d_name);
            if (na_read_file(file, NA_MAX_FEED_BYTES, &docs[ndocs].buf, &docs[ndocs].len,
                             errstr, sizeof(errstr))) {
                fprintf(stderr, "bench_parse: %s\n", errstr);
                goto out;
            }
            bytes += docs[ndocs++].len;
        }
    }
    if (!docs || ndocs == 0 || sscanf(name, "%31[a-z]-%uKB", fmt, &size_kb) != 2) {
        fprintf(stderr, "bench_parse: %s: no documents or bad folder name\n", path);
        goto out;
    }

    uint64_t feeds = 0;
    uint64_t items = 0;
    uint64_t parsed_bytes = 0;
    int64_t t0 = 0;
    int64_t elapsed_us = 0;
    for (int pass = 0;; pass++) {
        if (pass == 1) { /* pass 0 warms up and checks */
            t0 = na_mono_us();
            feeds = items = parsed_bytes = 0;
        }
        for (size_t i = 0; i < ndocs; i++) {
            struct na_feed feed;
            char errstr[256];
            na_feed_init(&feed);
            if (na_feed_parse(docs[i].buf, docs[i].len, "https://bench.example.org/feed",
                              &feed, errstr, sizeof(errstr)) ||
                feed.items_cnt == 0 || strcmp(feed.format, fmt)) {
                fprintf(stderr, "bench_parse: %s/%zu: %s\n", name, i,
                        errstr[0] ? errstr : "no items or wrong format");
                na_feed_cleanup(&feed);
                goto out;
            }
            items += feed.items_cnt;
            na_feed_cleanup(&feed);
        }
        feeds += ndocs;
        parsed_bytes += bytes;
        if (pass >= 1) {
            elapsed_us = na_mono_us() - t0;
            if (elapsed_us >= (int64_t)(min_s * 1e6)) {
                break;
            }
        }
    }
    double s = (double)elapsed_us / 1e6;
    printf("{\"bench\":\"fetch\",\"case\":\"parse %s %uKB\",\"metric\":\"feeds_per_s\","
           "\"value\":%.0f,\"unit\":\"1/s\"}\n",
           fmt, size_kb, (double)feeds / s);
    printf("{\"bench\":\"fetch\",\"case\":\"parse %s %uKB\",\"metric\":\"MB_per_s\","
           "\"value\":%.1f,\"unit\":\"MB/s\"}\n",
           fmt, size_kb, (double)parsed_bytes / 1e6 / s);
    printf("{\"bench\":\"fetch\",\"case\":\"parse %s %uKB\",\"metric\":\"items_per_s\","
           "\"value\":%.0f,\"unit\":\"1/s\"}\n",
           fmt, size_kb, (double)items / s);
    fflush(stdout);
    fprintf(stderr, "bench_parse: %s: %zu documents, %.1f MB, %.2f s\n", name, ndocs,
            (double)bytes / 1e6, s);
    rc = 0;
out:
    for (size_t i = 0; i < ndocs; i++) {
        free(docs[i].buf);
    }
    free(docs);
    for (int i = 0; i < n; i++) {
        free(list[i]);
    }
    free(list);
    return rc;
}

static int run(const char *dir, double min_s) {
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, compare_names);
    int rc = 0;
    if (n < 0) {
        fprintf(stderr, "bench_parse: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    for (int i = 0; i < n; i++) {
        if (list[i]->d_name[0] != '.' && !rc) {
            rc = run_case(dir, list[i]->d_name, min_s);
        }
        free(list[i]);
    }
    free(list);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "generate")) {
        return generate(argv[2]);
    }
    if (argc >= 3 && !strcmp(argv[1], "run")) {
        double min_s = 3;
        if (argc >= 4) {
            char *end = NULL;
            min_s = strtod(argv[3], &end);
            if (!end || *end || min_s <= 0 || min_s > 3600) {
                fprintf(stderr, "bench_parse: bad SECONDS %s\n", argv[3]);
                return 2;
            }
        }
        return run(argv[2], min_s);
    }
    fprintf(stderr, "usage: bench_parse generate DIR | run DIR [SECONDS]\n");
    return 2;
}
