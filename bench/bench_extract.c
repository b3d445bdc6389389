/*
 * bench_extract: article extraction throughput (na_extract_page()) on one
 * core. Run by bench/extract.sh.
 *
 *   bench_extract PAGES_DIR [SECONDS]
 *
 * PAGES_DIR is tests/data/pages: every case's page.html, with the
 * Content-Type of its meta.json, extracted in passes for at least SECONDS
 * (default 3) per case. Two cases:
 *
 *   fixtures        the pages as they are (2-9 KB: the story and the
 *                   furniture around it, without the weight of a real
 *                   site);
 *   fixtures+300KB  each page with what makes real news pages 0.3-1 MB:
 *                   150 KB of inline script state, 50 KB of inline CSS,
 *                   a 60 KB navigation of links before the story and
 *                   40 KB of teaser cards after it (seeded, each page
 *                   different), so that parsing and walking cost what they
 *                   cost on a real page.
 *
 * Output: DESIGN.md's JSON lines, per case: pages_per_s (1/s) and MB_per_s
 * (10^6 bytes of HTML per second).
 */
#include <dirent.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extract.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

#define MAX_PAGES 512

struct page {
    char *html;
    size_t len;
    char *content_type;
};

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static void filler(struct na_buf *b, size_t bytes, const char *kind) {
    size_t start = b->len;
    while (b->len - start < bytes && !b->oom) {
        unsigned n = rnd();
        if (!strcmp(kind, "script")) {
            na_buf_printf(b, "\"k%u\":{\"id\":%u,\"slug\":\"story-%x\",\"ts\":%u},",
                          n % 997, n, n, n / 3);
        } else if (!strcmp(kind, "style")) {
            na_buf_printf(b, ".c%x{margin:%upx;color:#%06x}", n, n % 40, n & 0xffffff);
        } else if (!strcmp(kind, "nav")) {
            na_buf_printf(
                b, "<li class=\"nav-item\"><a href=\"/section/%x\">Section %u</a></li>",
                n, n % 500);
        } else {
            na_buf_printf(
                b,
                "<div class=\"card\"><a href=\"/story/%x\"><img src=\"/i/%x.jpg\">"
                "<h3>Headline number %u about the council and the port</h3></a>"
                "<span class=\"time\">%u minutes ago</span></div>",
                n, n, n % 10000, n % 60);
        }
    }
}

/* @p p with the weight of a real site around its story. */
static struct page padded(const struct page *p) {
    struct na_buf b;
    struct page out = {NULL, 0, p->content_type};
    const char *head = strstr(p->html, "<head>");
    const char *body = strstr(p->html, "<body");
    const char *end = strstr(p->html, "</body>");
    na_buf_init(&b);
    if (!head || !body || !end) {
        return out;
    }
    head += 6;
    body = strchr(body, '>');
    na_buf_append(&b, p->html, (size_t)(head - p->html));
    na_buf_puts(&b, "<script>window.__STATE__={");
    filler(&b, 150000, "script");
    na_buf_puts(&b, "\"end\":1};</script><style>");
    filler(&b, 50000, "style");
    na_buf_puts(&b, "</style>");
    na_buf_append(&b, head, (size_t)(body + 1 - head));
    na_buf_puts(&b, "<nav class=\"mega\"><ul>");
    filler(&b, 60000, "nav");
    na_buf_puts(&b, "</ul></nav>");
    na_buf_append(&b, body + 1, (size_t)(end - body - 1));
    na_buf_puts(&b, "<section class=\"more-stories\">");
    filler(&b, 40000, "cards");
    na_buf_puts(&b, "</section>");
    na_buf_puts(&b, end);
    out.len = b.len;
    out.html = na_buf_steal(&b);
    return out;
}

static size_t load(const char *dir, struct page *pages) {
    DIR *d = opendir(dir);
    struct dirent *de;
    size_t n = 0;
    char path[4096], errstr[256];
    if (!d) {
        perror(dir);
        exit(1);
    }
    while ((de = readdir(d)) && n < MAX_PAGES) {
        char *meta = NULL;
        size_t len;
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s/page.html", dir, de->d_name);
        if (na_read_file(path, NA_MAX_PAGE_BYTES, &pages[n].html, &pages[n].len, errstr,
                         sizeof(errstr))) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s/meta.json", dir, de->d_name);
        if (!na_read_file(path, 1 << 20, &meta, &len, errstr, sizeof(errstr))) {
            json_t *root = json_loads(meta, 0, NULL);
            const char *ct = json_string_value(json_object_get(root, "content_type"));
            pages[n].content_type = ct ? strdup(ct) : NULL;
            json_decref(root);
            free(meta);
        }
        n++;
    }
    closedir(d);
    return n;
}

static void run(const char *name, const struct page *pages, size_t n, double secs) {
    int64_t t0 = na_mono_ms(), elapsed;
    size_t done = 0, bytes = 0, with_text = 0;
    do {
        for (size_t i = 0; i < n; i++) {
            struct na_extract x;
            char errstr[256];
            if (!pages[i].html) {
                continue;
            }
            na_extract_init(&x);
            if (!na_extract_page(pages[i].html, pages[i].len, pages[i].content_type, &x,
                                 errstr, sizeof(errstr)) &&
                x.text) {
                with_text++;
            }
            na_extract_cleanup(&x);
            done++;
            bytes += pages[i].len;
        }
        elapsed = na_mono_ms() - t0;
    } while (elapsed < (int64_t)(secs * 1000));
    double s = (double)elapsed / 1000.0;
    fprintf(stderr, "bench_extract: %s: %zu pages (%zu with text), %.1f MB in %.2f s\n",
            name, done, with_text, (double)bytes / 1e6, s);
    printf("{\"bench\":\"extract\",\"case\":\"%s\",\"metric\":\"pages_per_s\",\"value\":%"
           ".0f,"
           "\"unit\":\"1/s\"}\n",
           name, (double)done / s);
    printf(
        "{\"bench\":\"extract\",\"case\":\"%s\",\"metric\":\"MB_per_s\",\"value\":%.1f,"
        "\"unit\":\"MB/s\"}\n",
        name, (double)bytes / 1e6 / s);
    fflush(stdout);
}

int main(int argc, char **argv) {
    static struct page pages[MAX_PAGES], heavy[MAX_PAGES];
    double secs = argc > 2 ? atof(argv[2]) : 3.0;
    if (argc < 2) {
        fprintf(stderr, "usage: bench_extract PAGES_DIR [SECONDS]\n");
        return 2;
    }
    size_t n = load(argv[1], pages);
    size_t avg = 0, avg_heavy = 0;
    for (size_t i = 0; i < n; i++) {
        heavy[i] = padded(&pages[i]);
        avg += pages[i].len;
        avg_heavy += heavy[i].len;
    }
    if (!n) {
        fprintf(stderr, "bench_extract: no pages in %s\n", argv[1]);
        return 1;
    }
    fprintf(stderr, "bench_extract: %zu pages, %zu bytes on average (%zu padded)\n", n,
            avg / n, avg_heavy / n);
    run("fixtures", pages, n, secs);
    run("fixtures+300KB", heavy, n, secs);
    for (size_t i = 0; i < n; i++) {
        free(pages[i].html);
        free(pages[i].content_type);
        free(heavy[i].html);
    }
    return 0;
}
