/* The one reader of the article-reading subcommands (see input.h). */
#include "input.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "newsalert/hash.h"
#include "newsalert/limits.h"
#include "newsalert/timeutil.h"
#include "newsalert/util.h"

static const char *str_field(const json_t *obj, const char *key) {
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A text member: a string, or absent or null. */
static na_err_t dup_field(const json_t *obj, const char *key, char **out, char *errstr,
                          size_t errstr_size) {
    json_t *v = json_object_get(obj, key);
    if (v && !json_is_null(v) && !json_is_string(v)) {
        snprintf(errstr, errstr_size, "%s: not a string", key);
        return NA_ERR_INVALID;
    }
    if (!v || json_is_null(v) || *out) {
        return NA_OK;
    }
    *out = na_strdup(json_string_value(v));
    return *out ? NA_OK : NA_ERR_NOMEM;
}

/* Unix seconds of 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the times
 * RFC 3339 text (and so article/v1) can give. */
#define TIME_FIRST_S (-62167219200LL)
#define TIME_LAST_S 253402300799LL

/* A time member: RFC 3339 text or Unix seconds; absent or null: unknown. */
static na_err_t time_field(const json_t *obj, const char *key, int64_t *out, char *errstr,
                           size_t errstr_size) {
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v)) {
        if (na_time_parse_rfc3339(json_string_value(v), out)) {
            snprintf(errstr, errstr_size, "%s: not an RFC 3339 time", key);
            return NA_ERR_INVALID;
        }
    } else if (json_is_integer(v)) {
        /* Past the years 0 to 9999 the story engine's sums of times would
         * overflow: such a number is no time. */
        json_int_t s = json_integer_value(v);
        if (s < TIME_FIRST_S || s > TIME_LAST_S) {
            snprintf(errstr, errstr_size,
                     "%s: Unix seconds out of range (years 0 to 9999)", key);
            return NA_ERR_INVALID;
        }
        *out = (int64_t)s;
    } else if (v && !json_is_null(v)) {
        snprintf(errstr, errstr_size, "%s: not a time", key);
        return NA_ERR_INVALID;
    }
    return NA_OK;
}

na_err_t na_input_article(const json_t *obj, struct na_article *a, char *errstr,
                          size_t errstr_size) {
    const char *id = str_field(obj, "id");
    na_err_t err;

    if (!json_is_object(obj)) {
        snprintf(errstr, errstr_size, "not a JSON object");
        return NA_ERR_INVALID;
    }
    json_t *idv = json_object_get(obj, "id");
    if (idv && !json_is_null(idv) && !json_is_string(idv)) {
        snprintf(errstr, errstr_size, "id: not a string");
        return NA_ERR_INVALID;
    }
    if ((err = dup_field(obj, "title", &a->title, errstr, errstr_size)) ||
        (err = dup_field(obj, "summary", &a->summary, errstr, errstr_size)) ||
        (err = dup_field(obj, "content", &a->content, errstr, errstr_size)) ||
        (err = dup_field(obj, "text", &a->content, errstr, errstr_size)) ||
        (err = dup_field(obj, "url", &a->url, errstr, errstr_size)) ||
        (err = time_field(obj, "published_at", &a->published_at, errstr, errstr_size)) ||
        (err = time_field(obj, "fetched_at", &a->fetched_at, errstr, errstr_size))) {
        return err;
    }
    if (id && *id) {
        if (strlen(id) > NA_SHA256_HEX_LEN) {
            snprintf(errstr, errstr_size, "id: longer than %d bytes", NA_SHA256_HEX_LEN);
            return NA_ERR_INVALID;
        }
        snprintf(a->id, sizeof(a->id), "%s", id);
    } else {
        const char *parts[] = {a->title ? a->title : "", a->summary ? a->summary : "",
                               a->content ? a->content : "", NULL};
        if ((err = na_sha256_hex_parts(parts, a->id))) {
            snprintf(errstr, errstr_size, "id: %s", na_err2str(err));
            return err;
        }
    }
    return NA_OK;
}

/*
 * Read one line of at most max bytes into buf (without the newline; NUL
 * bytes are kept, the caller uses buf->len).
 * @returns false at end of input; *too_long when the line was longer (the
 *          rest of it is skipped).
 */
static bool read_line(FILE *fp, struct na_buf *buf, size_t max, bool *too_long) {
    char chunk[4096];
    size_t n = 0;
    bool any = false;
    int c;
    buf->len = 0;
    if (buf->data) {
        buf->data[0] = '\0';
    }
    *too_long = false;
    while ((c = getc(fp)) != EOF) {
        any = true;
        if (c == '\n') {
            break;
        }
        if (buf->len + n >= max) {
            *too_long = true;
            continue;
        }
        chunk[n++] = (char)c;
        if (n == sizeof(chunk)) {
            na_buf_append(buf, chunk, n);
            n = 0;
        }
    }
    na_buf_append(buf, chunk, n);
    if (buf->len && buf->data[buf->len - 1] == '\r') {
        buf->data[--buf->len] = '\0';
    }
    return any;
}

size_t na_input_bom(const char *s, size_t len) {
    return len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3) ? 3 : 0;
}

/* One non-blank line: its article, then the callback. @returns 0 or 1. */
static int one_line(const char *cmd, const char *where, const char *line, size_t len,
                    unsigned flags, na_input_cb *cb, void *ctx) {
    struct na_article a;
    json_t *obj = NULL;
    json_error_t jerr;
    char errstr[512] = "";
    na_err_t err;
    int bad = 0;

    na_article_init(&a);
    if (line[0] == '{' || line[0] == '[') {
        obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!obj) {
            snprintf(errstr, sizeof(errstr), "%d: %s", jerr.column, jerr.text);
            err = NA_ERR_INVALID;
        } else {
            err = na_input_article(obj, &a, errstr, sizeof(errstr));
        }
    } else if (flags & NA_INPUT_PLAIN) {
        a.content = na_utf8_sanitize(line, len);
        err = a.content ? NA_OK : NA_ERR_NOMEM;
        if (!err) {
            err = na_sha256_hex(line, len, a.id);
        }
    } else {
        snprintf(errstr, sizeof(errstr), "not a JSON object");
        err = NA_ERR_INVALID;
    }
    if (err) {
        fprintf(stderr, "newsalert-consumer %s: %s: %s\n", cmd, where,
                errstr[0] ? errstr : na_err2str(err));
        bad = 1;
    } else {
        bad = cb(ctx, where, obj, &a);
    }
    json_decref(obj);
    na_article_cleanup(&a);
    return bad;
}

int na_input_each(const char *cmd, const char *path, unsigned flags, na_input_cb *cb,
                  void *ctx) {
    bool is_stdin = !strcmp(path, "-");
    FILE *fp = is_stdin ? stdin : fopen(path, "r");
    struct na_buf line;
    size_t line_no = 0;
    bool too_long;
    int bad = 0;

    if (!fp) {
        fprintf(stderr, "newsalert-consumer %s: %s: %s\n", cmd, path, strerror(errno));
        return NA_INPUT_UNREAD;
    }
    na_buf_init(&line);
    while (read_line(fp, &line, NA_MAX_ARTICLE_BYTES, &too_long)) {
        char where[600];
        size_t i = 0;
        line_no++;
        snprintf(where, sizeof(where), "%s:%zu", path, line_no);
        if (line.oom) {
            fprintf(stderr, "newsalert-consumer %s: out of memory\n", cmd);
            bad = 1;
            break;
        }
        if (too_long) {
            fprintf(stderr, "newsalert-consumer %s: %s: line longer than %u bytes\n", cmd,
                    where, NA_MAX_ARTICLE_BYTES);
            bad = 1;
            continue;
        }
        const char *s = line.data ? line.data : "";
        if (line_no == 1) {
            i = na_input_bom(s, line.len); /* else a JSON line read as text */
        }
        while (i < line.len && (s[i] == ' ' || s[i] == '\t')) {
            i++;
        }
        if (i < line.len) {
            bad |= one_line(cmd, where, s + i, line.len - i, flags, cb, ctx);
        }
        if (is_stdin) {
            fflush(stdout); /* interactive use and pipes see each result */
        }
    }
    if (ferror(fp)) {
        fprintf(stderr, "newsalert-consumer %s: %s: read error\n", cmd, path);
        bad = NA_INPUT_UNREAD;
    }
    if (!is_stdin) {
        fclose(fp);
    }
    na_buf_cleanup(&line);
    return bad;
}
