#include "cmd_parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "feed.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

#define PROG "newsalert-producer"

static void usage(FILE *fp) {
    fprintf(fp, "Usage: " PROG " parse [--base-url URL] FILE|-\n"
                "\n"
                "Parse one RSS, RDF, Atom or JSON Feed document (FILE, or stdin for -)\n"
                "and print each item as one article/v1 JSON line on stdout.\n"
                "\n"
                "Options:\n"
                "  --base-url URL  URL the document came from: relative links resolve\n"
                "                  against it, and it is the articles' source.feed_url\n"
                "                  (default: file:FILE)\n"
                "  -h, --help      show this help\n"
                "\n"
                "Exit status: 0 success (also with no items), 1 unreadable or\n"
                "unparsable document, 2 bad usage.\n");
}

/* One line "what arg" and the synopsis; exit code 2. */
static int bad_usage(const char *what, const char *arg) {
    fprintf(stderr, PROG ": parse: %s%s\n", what, arg);
    fprintf(stderr, "Usage: " PROG " parse [--base-url URL] FILE|-  (--help for more)\n");
    return 2;
}

/* Set the fields the parser leaves to the caller, as the fetcher does. */
static na_err_t finish_article(struct na_article *a, const char *feed_url,
                               const char *name, int64_t now) {
    free(a->source_id);
    free(a->source_name);
    free(a->source_feed_url);
    a->source_id = na_strdup("cli");
    a->source_name = na_strdup(name);
    a->source_feed_url = na_strdup(feed_url);
    if (!a->source_id || !a->source_name || !a->source_feed_url) {
        return NA_ERR_NOMEM;
    }
    a->fetched_at = now;
    return na_article_set_id(a);
}

int na_cmd_parse(int argc, char **argv) {
    const char *base_url = NULL;
    const char *path = NULL;
    char *buf = NULL;
    char *feed_url = NULL;
    size_t len = 0;
    struct na_feed feed;
    char errstr[512] = "";
    int rc = 1;
    int i;
    na_err_t err;

    na_feed_init(&feed);
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(arg, "--base-url")) {
            if (i + 1 >= argc) {
                return bad_usage("needs a value: ", arg);
            }
            base_url = argv[++i];
        } else if (!strncmp(arg, "--base-url=", 11)) {
            base_url = arg + 11;
        } else if (!strcmp(arg, "--")) {
            i++;
            break;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return bad_usage("unknown option ", arg);
        } else {
            break;
        }
    }
    if (i >= argc) {
        return bad_usage("missing FILE (use - for stdin)", "");
    }
    if (i + 1 < argc) {
        return bad_usage("unexpected argument ", argv[i + 1]);
    }
    path = argv[i];
    if (base_url && !*base_url) {
        return bad_usage("--base-url is empty", "");
    }

    err = na_read_file(path, NA_MAX_FEED_BYTES, &buf, &len, errstr, sizeof(errstr));
    if (err) {
        /* na_read_file() names the path itself */
        fprintf(stderr, PROG ": parse: %s\n", errstr);
        goto out;
    }
    err = na_feed_parse(buf, len, base_url, &feed, errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, PROG ": parse: %s: %s\n", path, errstr);
        goto out;
    }
    if (base_url) {
        feed_url = na_strdup(base_url);
    } else {
        size_t n = strlen(path) + sizeof("file:");
        feed_url = malloc(n);
        if (feed_url) {
            snprintf(feed_url, n, "file:%s", path);
        }
    }
    if (!feed_url) {
        fprintf(stderr, PROG ": parse: %s: out of memory\n", path);
        goto out;
    }
    int64_t now = na_now_ms() / 1000;
    const char *name = strcmp(path, "-") ? path : "stdin";
    for (size_t k = 0; k < feed.items_cnt; k++) {
        struct na_article *a = &feed.items[k];
        char *json = NULL;
        if (finish_article(a, feed_url, name, now) || !(json = na_article_to_json(a))) {
            fprintf(stderr, PROG ": parse: %s: out of memory\n", path);
            goto out;
        }
        fputs(json, stdout);
        fputc('\n', stdout);
        free(json);
    }
    if (fflush(stdout) || ferror(stdout)) {
        fprintf(stderr, PROG ": parse: %s: writing stdout: %s\n", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    na_feed_cleanup(&feed);
    free(buf);
    free(feed_url);
    return rc;
}
