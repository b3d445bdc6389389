#include "url.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "newsalert/util.h"

static bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_xdigit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Offset where the authority (host part) of @p s ends, 0 when it has none. */
static size_t authority_end(const char *s, size_t len) {
    size_t p = 0;
    if (len >= 2 && s[0] == '/' && s[1] == '/') {
        p = 2;
    } else if (len > 0 && is_alpha(s[0])) {
        size_t k = 1;
        while (k < len && (is_alpha(s[k]) || (s[k] >= '0' && s[k] <= '9') ||
                           s[k] == '+' || s[k] == '-' || s[k] == '.')) {
            k++;
        }
        if (k + 2 < len && s[k] == ':' && s[k + 1] == '/' && s[k + 2] == '/') {
            p = k + 3;
        }
    }
    if (p == 0) {
        return 0;
    }
    while (p < len && s[p] != '/' && s[p] != '?' && s[p] != '#') {
        p++;
    }
    return p;
}

/* A reference as libcurl wants it: trimmed, tabs and line breaks removed,
 * bytes that may not appear raw percent-encoded after the host. */
static char *prepare(const char *ref) {
    static const char hex[] = "0123456789ABCDEF";
    struct na_buf buf;
    const unsigned char *s = (const unsigned char *)ref;
    size_t len = strlen(ref);

    while (len > 0 && s[0] <= ' ') {
        s++;
        len--;
    }
    while (len > 0 && s[len - 1] <= ' ') {
        len--;
    }
    if (len == 0) {
        return NULL;
    }
    size_t host_end = authority_end((const char *)s, len);
    na_buf_init(&buf);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (c == '\t' || c == '\n' || c == '\r') {
            continue;
        }
        if (i >= host_end &&
            (c <= ' ' || c >= 0x7f || c == '"' || c == '<' || c == '>' || c == '`')) {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            na_buf_append(&buf, esc, 3);
        } else {
            na_buf_append(&buf, &c, 1);
        }
    }
    return na_buf_steal(&buf);
}

static bool is_http(CURLU *h) {
    char *scheme = NULL;
    bool ok = false;
    if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK) {
        ok = !strcmp(scheme, "http") || !strcmp(scheme, "https");
    }
    curl_free(scheme);
    return ok;
}

/*
 * The URL of @p h as a malloc()ed string (curl's own must be curl_free()d),
 * or NULL when it is not valid UTF-8 without control bytes: libcurl takes
 * raw bytes in the host and user name (for IDN), and a host such as
 * "ex\xb8.org" would otherwise come out as is.
 */
static char *get_url(CURLU *h, unsigned int flags) {
    char *s = NULL;
    char *out = NULL;
    if (curl_url_get(h, CURLUPART_URL, &s, flags) == CURLUE_OK &&
        na_utf8_valid(s, strlen(s))) {
        bool ctl = false;
        for (const unsigned char *c = (const unsigned char *)s; *c && !ctl; c++) {
            ctl = *c < 0x20 || *c == 0x7f;
        }
        out = ctl ? NULL : na_strdup(s);
    }
    curl_free(s);
    return out;
}

char *na_url_resolve(const char *base, const char *ref) {
    CURLU *h = NULL;
    char *pref = NULL;
    char *out = NULL;

    if (!ref) {
        return NULL;
    }
    pref = prepare(ref);
    if (!pref) {
        goto out;
    }
    h = curl_url();
    if (!h) {
        goto out;
    }
    if (base && *base && curl_url_set(h, CURLUPART_URL, base, 0) != CURLUE_OK) {
        /* an unusable base is no base */
        curl_url_cleanup(h);
        h = curl_url();
        if (!h) {
            goto out;
        }
    }
    if (curl_url_set(h, CURLUPART_URL, pref, 0) != CURLUE_OK || !is_http(h)) {
        goto out;
    }
    out = get_url(h, 0);
out:
    curl_url_cleanup(h);
    free(pref);
    return out;
}

static bool is_tracking(const char *name, size_t n) {
    static const char *const names[] = {"fbclid", "gclid", "mc_cid", "mc_eid", "ref_src"};
    if (n >= 4 && !strncasecmp(name, "utm_", 4)) {
        return true;
    }
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        if (strlen(names[k]) == n && !strncasecmp(name, names[k], n)) {
            return true;
        }
    }
    return false;
}

/* @p query without tracking parameters and empty segments. */
static char *filter_query(const char *query) {
    struct na_buf buf;
    const char *p = query;
    na_buf_init(&buf);
    while (*p) {
        const char *end = strchr(p, '&');
        size_t seg = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', seg);
        size_t name = eq ? (size_t)(eq - p) : seg;
        if (seg > 0 && !is_tracking(p, name)) {
            if (buf.len > 0) {
                na_buf_append(&buf, "&", 1);
            }
            na_buf_append(&buf, p, seg);
        }
        p += seg;
        if (*p == '&') {
            p++;
        }
    }
    return na_buf_steal(&buf);
}

char *na_url_canonical(const char *url) {
    return na_url_canonical_ex(url, 0);
}

char *na_url_canonical_ex(const char *url, unsigned flags) {
    CURLU *h = NULL;
    char *purl = NULL;
    char *host = NULL;
    char *query = NULL;
    char *kept = NULL;
    char *out = NULL;
    bool ok = false;

    if (!url) {
        return NULL;
    }
    purl = prepare(url);
    h = curl_url();
    if (!purl || !h || curl_url_set(h, CURLUPART_URL, purl, 0) != CURLUE_OK ||
        !is_http(h)) {
        goto out;
    }
    if (curl_url_set(h, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
        curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
        (!(flags & NA_URL_KEEP_FRAGMENT) &&
         curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK)) {
        goto out;
    }
    if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        goto out;
    }
    for (char *c = host; *c; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            *c = (char)(*c - 'A' + 'a');
        }
    }
    if (curl_url_set(h, CURLUPART_HOST, host, 0) != CURLUE_OK) {
        goto out;
    }
    if (curl_url_get(h, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
        kept = filter_query(query);
        if (!kept ||
            curl_url_set(h, CURLUPART_QUERY, *kept ? kept : NULL, 0) != CURLUE_OK) {
            goto out;
        }
    }
    out = get_url(h, CURLU_NO_DEFAULT_PORT);
    if (!out) {
        goto out;
    }
    for (char *c = out; *c; c++) {
        if (c[0] == '%' && is_xdigit(c[1]) && is_xdigit(c[2])) {
            for (int k = 1; k <= 2; k++) {
                if (c[k] >= 'a' && c[k] <= 'f') {
                    c[k] = (char)(c[k] - 'a' + 'A');
                }
            }
            c += 2;
        }
    }
    ok = true;
out:
    if (!ok) {
        free(out);
        out = NULL;
    }
    curl_url_cleanup(h);
    curl_free(host);
    curl_free(query);
    free(kept);
    free(purl);
    return out;
}

char *na_url_origin(const char *url) {
    CURLU *h = NULL;
    char *scheme = NULL;
    char *host = NULL;
    char *port = NULL;
    char *out = NULL;
    struct na_buf buf;

    na_buf_init(&buf);
    if (!url || !(h = curl_url()) ||
        curl_url_set(h, CURLUPART_URL, url, 0) != CURLUE_OK || !is_http(h) ||
        curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        goto out;
    }
    for (char *c = host; *c; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            *c = (char)(*c - 'A' + 'a');
        }
    }
    na_buf_printf(&buf, "%s://%s:%s", scheme, host, port);
    out = na_buf_steal(&buf);
out:
    na_buf_cleanup(&buf);
    curl_url_cleanup(h);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    return out;
}
