#include "newsalert/log.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum na_log_level log_level = NA_LOG_INFO;
static enum na_log_format log_format = NA_LOG_FORMAT_LOGFMT;

static const char *level_names[] = {"error", "warn", "info", "debug"};

void na_log_set_level(enum na_log_level level) {
    log_level = level;
}

int na_log_level_parse(const char *name, enum na_log_level *level) {
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (!strcmp(name, level_names[i])) {
            *level = (enum na_log_level)i;
            return 0;
        }
    }
    return -1;
}

void na_log_set_format(enum na_log_format format) {
    log_format = format;
}

int na_log_enabled(enum na_log_level level) {
    return level <= log_level;
}

#define LOGQ_SLOTS 8
#define LOGQ_MAX 400

/* @p o, or where the UTF-8 character that buf[from..o) ends inside of
 * starts: text cut at a byte budget must not end inside a character (a
 * JSON line is then not UTF-8, and readers drop it). */
static size_t utf8_whole(const char *buf, size_t from, size_t o) {
    size_t i = o;
    while (i > from && o - i < 4 && ((unsigned char)buf[i - 1] & 0xc0) == 0x80) {
        i--;
    }
    if (i == from || o - i >= 4) {
        return o; /* no lead byte before the continuation bytes: as it is */
    }
    unsigned char lead = (unsigned char)buf[i - 1];
    size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    return o - (i - 1) < want ? i - 1 : o;
}

const char *na_log_q(const char *s) {
    static _Thread_local char ring[LOGQ_SLOTS][LOGQ_MAX + 16];
    static _Thread_local unsigned next;
    char *out = ring[next++ % LOGQ_SLOTS];
    size_t o = 0;

    out[o++] = '"';
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (o >= LOGQ_MAX) {
            o = utf8_whole(out, 1, o);
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, 8, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* Is @p s a number as JSON writes it (no leading zero, no "+", ".5", "1.",
 * hex, nan or inf, all of which strtod() reads) that a reader can hold as
 * a double? Other values are written as strings. */
static bool json_number(const char *s) {
    const char *p = s;
    p += *p == '-';
    if (*p == '0') {
        p++;
    } else if (isdigit((unsigned char)*p)) {
        while (isdigit((unsigned char)*p)) {
            p++;
        }
    } else {
        return false;
    }
    if (*p == '.') {
        if (!isdigit((unsigned char)*++p)) {
            return false;
        }
        while (isdigit((unsigned char)*p)) {
            p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        p += *p == '+' || *p == '-';
        if (!isdigit((unsigned char)*p)) {
            return false;
        }
        while (isdigit((unsigned char)*p)) {
            p++;
        }
    }
    if (*p) {
        return false;
    }
    errno = 0;
    double v = strtod(s, NULL);
    return !errno && isfinite(v);
}

/* Append logfmt pairs from @p kv to @p buf as JSON members. Values that
 * were quoted with na_log_q() are JSON-compatible already except for \x
 * escapes, which are rewritten as \u00XX. */
static size_t kv_to_json(char *buf, size_t size, size_t o, const char *kv) {
    const char *p = kv;
    while (*p && o + 16 < size) {
        while (*p == ' ') {
            p++;
        }
        if (!*p) {
            break;
        }
        const char *key = p;
        while (*p && *p != '=' && *p != ' ') {
            p++;
        }
        size_t keylen = (size_t)(p - key);
        /* The key whole and room for its value, or the line ends here: a
         * key cut at the end left o past the buffer, and its value was
         * written there. */
        if (o + keylen + 16 >= size) {
            break;
        }
        o += (size_t)snprintf(buf + o, size - o, ",\"%.*s\":", (int)keylen, key);
        if (*p != '=') {
            o += (size_t)snprintf(buf + o, size - o, "true");
            continue;
        }
        p++;
        if (*p == '"') {
            size_t from = o + 1;
            buf[o++] = *p++;
            while (*p && *p != '"' && o + 8 < size) {
                if (*p == '\\' && p[1] == 'x' && p[2] && p[3]) {
                    o += (size_t)snprintf(buf + o, size - o, "\\u00%c%c", p[2], p[3]);
                    p += 4;
                } else if (*p == '\\' && p[1]) {
                    buf[o++] = *p++;
                    buf[o++] = *p++;
                } else {
                    buf[o++] = *p++;
                }
            }
            if (*p == '"') {
                p++;
            } else {
                o = utf8_whole(buf, from, o); /* cut at the line's end */
            }
            buf[o++] = '"';
        } else {
            const char *val = p;
            while (*p && *p != ' ') {
                p++;
            }
            size_t vlen = (size_t)(p - val);
            char tmp[64];
            int numeric = 0;
            if (vlen > 0 && vlen < sizeof(tmp)) {
                memcpy(tmp, val, vlen);
                tmp[vlen] = '\0';
                numeric = json_number(tmp);
            }
            if (numeric) {
                o += (size_t)snprintf(buf + o, size - o, "%.*s", (int)vlen, val);
            } else {
                o += (size_t)snprintf(buf + o, size - o, "\"");
                size_t from = o, i = 0;
                for (; i < vlen && o + 8 < size; i++) {
                    char c = val[i];
                    if (c == '"' || c == '\\') {
                        buf[o++] = '\\';
                    }
                    buf[o++] = c;
                }
                if (i < vlen) {
                    o = utf8_whole(buf, from, o); /* cut at the line's end */
                }
                buf[o++] = '"';
            }
        }
    }
    if (o >= size) {
        o = size - 1;
    }
    return o;
}

void na_log(enum na_log_level level, const char *comp, const char *event, const char *fmt,
            ...) {
    char kv[4096];
    char line[8192];
    struct timespec ts;
    struct tm tm;
    char tsbuf[64];
    size_t o;

    if (!na_log_enabled(level)) {
        return;
    }
    kv[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(kv, sizeof(kv), fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof(kv)) {
            kv[utf8_whole(kv, 0, sizeof(kv) - 1)] = '\0';
        }
    }
    /* One event, one line, whatever the values held. */
    for (char *c = kv; *c; c++) {
        if (*c == '\n' || *c == '\r') {
            *c = ' ';
        }
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(tsbuf, sizeof(tsbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec, (int)(ts.tv_nsec / 1000000) % 1000);

    if (log_format == NA_LOG_FORMAT_JSON) {
        o = (size_t)snprintf(line, sizeof(line),
                             "{\"ts\":\"%s\",\"level\":\"%s\",\"comp\":\"%s\","
                             "\"event\":\"%s\"",
                             tsbuf, level_names[level], comp, event);
        if (o < sizeof(line)) {
            o = kv_to_json(line, sizeof(line) - 3, o, kv);
        }
        if (o > sizeof(line) - 3) {
            o = sizeof(line) - 3;
        }
        line[o++] = '}';
    } else {
        o = (size_t)snprintf(line, sizeof(line), "ts=%s level=%s comp=%s event=%s%s%s",
                             tsbuf, level_names[level], comp, event, kv[0] ? " " : "",
                             kv);
        if (o > sizeof(line) - 2) {
            o = sizeof(line) - 2;
        }
    }
    line[o++] = '\n';
    ssize_t r = write(STDERR_FILENO, line, o);
    (void)r;
}
