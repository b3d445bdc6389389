#include "robots.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "newsalert/util.h"

/* A pattern longer than this, or with more '*' than that, is dropped. */
#define MAX_PATTERN 512u
#define MAX_STARS 10u
/* Bytes of a URL's path and query matched. */
#define MAX_PATH 2048u

struct rule {
    char *pattern; /* normalised, without a trailing '$' */
    size_t len;
    bool allow;
    bool anchored; /* ended with '$' */
};

struct na_robots_s {
    struct rule *v;
    size_t cnt;
    int all; /* -1: rules apply; 0: nothing allowed; 1: everything */
};

na_robots_t *na_robots_new_all(bool allow) {
    na_robots_t *r = calloc(1, sizeof(*r));
    if (r) {
        r->all = allow ? 1 : 0;
    }
    return r;
}

void na_robots_destroy(na_robots_t *r) {
    if (!r) {
        return;
    }
    for (size_t i = 0; i < r->cnt; i++) {
        free(r->v[i].pattern);
    }
    free(r->v);
    free(r);
}

size_t na_robots_count(const na_robots_t *r) {
    return r->cnt;
}

void na_robots_agent_token(const char *user_agent, char *out, size_t size) {
    size_t n = 0;
    for (const char *s = user_agent ? user_agent : ""; *s && n + 1 < size; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            break;
        }
        out[n++] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    out[n] = '\0';
}

static int hexval(char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static bool unreserved(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* Percent escapes of unreserved characters decoded, others in upper case,
 * so that "/%7Ejoe" and "/~joe" match; bytes that a URL carries only
 * percent-encoded (non-ASCII, spaces, controls, as url.h encodes them)
 * encoded, so that "/caf\xc3\xa9" matches "/caf%C3%A9" (RFC 9309 2.2.2).
 * @returns new string; free(). */
static char *normalise(const char *s, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    char *out = len <= (SIZE_MAX - 1) / 3 ? malloc(3 * len + 1) : NULL;
    size_t n = 0;
    if (!out) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        unsigned char u = (unsigned char)s[i];
        if (u <= ' ' || u >= 0x7f || u == '"' || u == '<' || u == '>' || u == '`') {
            out[n++] = '%';
            out[n++] = hex[u >> 4];
            out[n++] = hex[u & 15];
            continue;
        }
        if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            int c = hi << 4 | lo;
            if (unreserved(c)) {
                out[n++] = (char)c;
            } else {
                out[n++] = '%';
                out[n++] = (char)(s[i + 1] >= 'a' ? s[i + 1] - 32 : s[i + 1]);
                out[n++] = (char)(s[i + 2] >= 'a' ? s[i + 2] - 32 : s[i + 2]);
            }
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    out[n] = '\0';
    return out;
}

/* Offset of the first @p w in s[from..slen), or SIZE_MAX; @p fail has room
 * for wlen entries; adds the characters compared to *steps.
 * Knuth-Morris-Pratt: linear in slen + wlen, where a naive search of
 * "aaa..ab" in "aaa..a" costs their product. */
static size_t find(const char *s, size_t slen, size_t from, const char *w, size_t wlen,
                   uint16_t *fail, size_t *steps) {
    size_t k = 0;
    if (wlen == 0) {
        return from;
    }
    if (wlen > slen - from) {
        return SIZE_MAX;
    }
    fail[0] = 0;
    for (size_t i = 1; i < wlen; i++) {
        while (k && w[i] != w[k]) {
            k = fail[k - 1];
            (*steps)++;
        }
        k += w[i] == w[k];
        fail[i] = (uint16_t)k;
        (*steps)++;
    }
    k = 0;
    for (size_t i = from; i < slen; i++) {
        while (k && s[i] != w[k]) {
            k = fail[k - 1];
            (*steps)++;
        }
        k += s[i] == w[k];
        (*steps)++;
        if (k == wlen) {
            return i + 1 - wlen;
        }
    }
    return SIZE_MAX;
}

/* Does pattern p (with '*') match the start of s (all of s when
 * anchored)? The part before the first '*' at the start, each part
 * between stars at its first place after the one before (the earliest
 * place leaves the most room for the rest, so no other place needs a
 * try), the last part anywhere after them, or at the very end when
 * anchored: linear in plen + slen, however the pattern is made (trying
 * each place of a '*' in turn cost plen * slen per rule, seconds per URL
 * for a robots.txt of long patterns). Adds the characters compared to
 * *steps. */
static bool match(const char *p, size_t plen, const char *s, size_t slen, bool anchored,
                  size_t *steps) {
    uint16_t fail[3 * MAX_PATTERN]; /* a normalised pattern is at most that */
    const char *star = memchr(p, '*', plen);
    size_t head = star ? (size_t)(star - p) : plen;
    size_t i, j;
    *steps += head;
    if (head > slen || memcmp(p, s, head)) {
        return false;
    }
    if (!star) {
        return !anchored || head == slen;
    }
    j = head;     /* s matched up to here */
    i = head + 1; /* the next part of p starts here */
    for (;;) {
        const char *next = memchr(p + i, '*', plen - i);
        size_t part = (next ? (size_t)(next - p) : plen) - i;
        if (!next && anchored) {
            *steps += part;
            return slen - j >= part && !memcmp(s + slen - part, p + i, part);
        }
        size_t at = find(s, slen, j, p + i, part, fail, steps);
        if (at == SIZE_MAX) {
            return false;
        }
        if (!next) {
            return true;
        }
        j = at + part;
        i += part + 1;
    }
}

/* Is @p line's field @p name (without case, then ':')? Sets *value. */
static bool field(const char *line, size_t len, const char *name, const char **value,
                  size_t *vlen) {
    size_t n = strlen(name);
    size_t i = 0;
    if (len < n || strncasecmp(line, name, n)) {
        return false;
    }
    i = n;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) {
        i++;
    }
    if (i >= len || line[i] != ':') {
        return false;
    }
    i++;
    while (i < len && (line[i] == ' ' || line[i] == '\t')) {
        i++;
    }
    size_t end = len;
    while (end > i && (line[end - 1] == ' ' || line[end - 1] == '\t')) {
        end--;
    }
    *value = line + i;
    *vlen = end - i;
    return true;
}

static bool add_rule(na_robots_t *r, size_t *size, const char *v, size_t vlen,
                     bool allow) {
    size_t stars = 0;
    bool anchored = vlen && v[vlen - 1] == '$';
    if (anchored) {
        vlen--;
    }
    for (size_t i = 0; i < vlen; i++) {
        stars += v[i] == '*';
    }
    if (!vlen || vlen > MAX_PATTERN || stars > MAX_STARS ||
        r->cnt >= NA_ROBOTS_MAX_RULES) {
        return true; /* empty (allows all), or too costly to match: ignored */
    }
    if (r->cnt == *size) {
        size_t ns = *size ? *size * 2 : 16;
        struct rule *nv = realloc(r->v, ns * sizeof(*nv));
        if (!nv) {
            return false;
        }
        r->v = nv;
        *size = ns;
    }
    char *pat = normalise(v, vlen);
    if (!pat) {
        return false;
    }
    r->v[r->cnt].pattern = pat;
    r->v[r->cnt].len = strlen(pat);
    r->v[r->cnt].allow = allow;
    r->v[r->cnt].anchored = anchored;
    r->cnt++;
    return true;
}

/* Does a user-agent line's value name @p want? "*" only names "*"; a
 * product token matches without case, up to a '/' or a space. */
static bool agent_matches(const char *v, size_t vlen, const char *want) {
    size_t n = strlen(want);
    if (!strcmp(want, "*")) {
        return vlen == 1 && v[0] == '*';
    }
    return vlen >= n && !strncasecmp(v, want, n) &&
           (vlen == n || v[n] == '/' || v[n] == ' ');
}

/* One pass over the groups; @p want is the agent token to take rules for
 * ("*" for the fallback). @returns false on no memory; *matched tells
 * whether any group named @p want. */
static bool collect(na_robots_t *r, size_t *size, const char *buf, size_t len,
                    const char *want, bool *matched) {
    bool in_agents = false; /* reading the user-agent lines of a group */
    bool take = false;      /* the current group is ours */
    size_t pos = 0;
    *matched = false;
    while (pos < len) {
        const char *line = buf + pos;
        size_t n = 0;
        while (pos + n < len && buf[pos + n] != '\n' && buf[pos + n] != '\r') {
            n++;
        }
        pos += n;
        while (pos < len && (buf[pos] == '\n' || buf[pos] == '\r')) {
            pos++;
        }
        /* RFC 9309's lines may start with whitespace (*WS) */
        while (n > 0 && (line[0] == ' ' || line[0] == '\t')) {
            line++;
            n--;
        }
        const char *hash = memchr(line, '#', n);
        if (hash) {
            n = (size_t)(hash - line);
        }
        const char *v;
        size_t vlen;
        if (field(line, n, "user-agent", &v, &vlen)) {
            if (!in_agents) {
                take = false; /* a new group starts */
            }
            in_agents = true;
            if (agent_matches(v, vlen, want)) {
                take = true;
                *matched = true;
            }
            continue;
        }
        bool allow = field(line, n, "allow", &v, &vlen);
        bool disallow = !allow && field(line, n, "disallow", &v, &vlen);
        if (allow || disallow) {
            in_agents = false;
            if (take && !add_rule(r, size, v, vlen, allow)) {
                return false;
            }
        }
        /* other lines (sitemap, crawl-delay, garbage) are ignored, as if
         * absent: they neither end a run of user-agent lines nor a group */
    }
    return true;
}

na_robots_t *na_robots_parse(const char *buf, size_t len, const char *agent) {
    na_robots_t *r = calloc(1, sizeof(*r));
    size_t size = 0;
    bool matched = false;
    if (!r) {
        return NULL;
    }
    r->all = -1;
    if (len > NA_ROBOTS_MAX_BYTES) {
        len = NA_ROBOTS_MAX_BYTES;
    }
    if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3)) {
        buf += 3; /* a UTF-8 byte order mark is not part of the first line */
        len -= 3;
    }
    if (agent && *agent && !collect(r, &size, buf, len, agent, &matched)) {
        na_robots_destroy(r);
        return NULL;
    }
    if (!matched && !collect(r, &size, buf, len, "*", &matched)) {
        na_robots_destroy(r);
        return NULL;
    }
    return r;
}

bool na_robots_allowed_steps(const na_robots_t *r, const char *url, size_t *steps) {
    const char *path;
    const char *scheme_end = strstr(url, "://");
    *steps = 0;
    if (r->all >= 0) {
        return r->all == 1;
    }
    path = scheme_end ? strpbrk(scheme_end + 3, "/?#") : url;
    if (!path || *path == '#') {
        path = "/";
    }
    size_t plen = strcspn(path, "#");
    if (plen > MAX_PATH) {
        plen = MAX_PATH;
    }
    char *norm = normalise(path, plen);
    if (!norm) {
        return false;
    }
    size_t nlen = strlen(norm);
    if (norm[0] == '?') {
        /* "https://host?q" has the path "/" */
        char *with = malloc(nlen + 2);
        if (!with) {
            free(norm);
            return false;
        }
        with[0] = '/';
        memcpy(with + 1, norm, nlen + 1);
        free(norm);
        norm = with;
        nlen++;
    }
    if (!strcmp(norm, "/robots.txt")) {
        free(norm);
        return true;
    }
    size_t best = 0;
    bool allowed = true, found = false;
    for (size_t i = 0; i < r->cnt; i++) {
        const struct rule *ru = &r->v[i];
        if (!match(ru->pattern, ru->len, norm, nlen, ru->anchored, steps)) {
            continue;
        }
        size_t weight = ru->len + ru->anchored;
        if (!found || weight > best || (weight == best && ru->allow)) {
            best = weight;
            allowed = ru->allow;
            found = true;
        }
    }
    free(norm);
    return allowed;
}

bool na_robots_allowed(const na_robots_t *r, const char *url) {
    size_t steps = 0;
    return na_robots_allowed_steps(r, url, &steps);
}
