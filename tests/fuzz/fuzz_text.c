/*
 * libFuzzer target: the text parsers under the feed formats: HTML to
 * plain text (html.c), feed dates (date.c) and link resolution and
 * canonical URLs (url.c). The first input byte picks the parser.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "date.h"
#include "html.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(char *s, bool http) {
    if (s && !na_utf8_valid(s, strlen(s))) {
        abort();
    }
    if (s && http && strncmp(s, "http://", 7) && strncmp(s, "https://", 8)) {
        abort();
    }
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s;
    int64_t t;
    if (size < 1 || size > 1024 * 1024) {
        return 0;
    }
    s = na_strndup((const char *)data + 1, size - 1); /* stops at a NUL byte */
    if (!s) {
        return 0;
    }
    switch (data[0] % 4) {
    case 0:
        check_text(na_html_to_text((const char *)data + 1, size - 1), false);
        check_text(na_html_plain_text((const char *)data + 1, size - 1), false);
        break;
    case 1:
        if (!na_date_parse(s, &t)) {
            char buf[NA_RFC3339_LEN];
            na_time_format_rfc3339(t, buf); /* any accepted date prints */
        }
        break;
    case 2: {
        char *u = na_url_resolve("https://fuzz.example.org/a/b/?q=1#f", s);
        char *c = u ? na_url_canonical(u) : NULL;
        check_text(u, true);
        check_text(c, true);
        break;
    }
    default:
        check_text(na_url_canonical(s), true);
        break;
    }
    free(s);
    return 0;
}
