#include "date.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "newsalert/timeutil.h"

#define DATE_MAX_LEN 128

struct zone {
    const char *name;
    int offset_min;
};

static const struct zone zones[] = {
    {"UT", 0},         {"UTC", 0},        {"GMT", 0},        {"Z", 0},
    {"EST", -5 * 60},  {"EDT", -4 * 60},  {"CST", -6 * 60},  {"CDT", -5 * 60},
    {"MST", -7 * 60},  {"MDT", -6 * 60},  {"PST", -8 * 60},  {"PDT", -7 * 60},
    {"AKST", -9 * 60}, {"AKDT", -8 * 60}, {"HST", -10 * 60}, {"WET", 0},
    {"WEST", 60},      {"BST", 60},       {"CET", 60},       {"CEST", 120},
    {"EET", 120},      {"EEST", 180},     {"MSK", 180},      {"IST", 330},
    {"HKT", 480},      {"SGT", 480},      {"AWST", 480},     {"JST", 540},
    {"KST", 540},      {"ACST", 570},     {"AEST", 600},     {"AEDT", 660},
    {"NZST", 720},     {"NZDT", 780},
};

static const char *const months[] = {"january",   "february", "march",    "april",
                                     "may",       "june",     "july",     "august",
                                     "september", "october",  "november", "december"};

static const char *const wdays[] = {"sunday",   "monday", "tuesday", "wednesday",
                                    "thursday", "friday", "saturday"};

struct parsed {
    int day;  /* 0 = not seen */
    int mon;  /* 1..12, 0 = not seen */
    int year; /* -1 = not seen */
    int year_digits;
    int hh, mm, ss;
    bool have_time;
    bool have_zone;   /* a zone name or offset was seen */
    bool have_offset; /* a numeric offset was seen */
    int offset_min;
};

static bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

static bool is_sep(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',';
}

/* Index of the name of which @p w is a prefix of at least 3 letters, or -1. */
static int prefix_index(const char *w, size_t n, const char *const *names, int cnt) {
    if (n < 3) {
        return -1;
    }
    for (int k = 0; k < cnt; k++) {
        if (strlen(names[k]) >= n && !strncasecmp(names[k], w, n)) {
            return k;
        }
    }
    return -1;
}

static bool zone_lookup(const char *w, size_t n, int *offset_min) {
    for (size_t k = 0; k < sizeof(zones) / sizeof(zones[0]); k++) {
        if (strlen(zones[k].name) == n && !strncasecmp(zones[k].name, w, n)) {
            *offset_min = zones[k].offset_min;
            return true;
        }
    }
    if (n == 1 && is_alpha(w[0]) && w[0] != 'J' && w[0] != 'j') {
        *offset_min = 0; /* military letter: no information, see date.h */
        return true;
    }
    return false;
}

static bool complete(const struct parsed *d) {
    return d->day && d->mon && d->year >= 0 && (d->have_time || d->have_zone);
}

/* Read up to @p max digits at *p; returns the count read. */
static int read_num(const char **p, int max, int *out) {
    int n = 0;
    int v = 0;
    while (n < max && is_digit(**p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    *out = v;
    return n;
}

/* "08:00", "8:00:00", "08:00:00.123" at *p. */
static bool read_time(const char **p, struct parsed *d) {
    if (!read_num(p, 2, &d->hh) || **p != ':') {
        return false;
    }
    (*p)++;
    if (read_num(p, 2, &d->mm) != 2) {
        return false;
    }
    d->ss = 0;
    if (**p == ':') {
        (*p)++;
        if (read_num(p, 2, &d->ss) != 2) {
            return false;
        }
        if (**p == '.' || **p == ',') {
            if (!is_digit((*p)[1])) {
                return false;
            }
            (*p)++;
            while (is_digit(**p)) {
                (*p)++;
            }
        }
    }
    d->have_time = true;
    return true;
}

/* "+0800", "-05:00", "+8" at *p (sign included). */
static bool read_offset(const char **p, int *offset_min) {
    int sign = **p == '-' ? -1 : 1;
    int v, hh, mm = 0;
    (*p)++;
    int n = read_num(p, 4, &v);
    if (n == 4) {
        hh = v / 100;
        mm = v % 100;
    } else if (n == 3) {
        hh = v / 100;
        mm = v % 100;
    } else if (n >= 1) {
        hh = v;
        if (**p == ':') {
            (*p)++;
            if (read_num(p, 2, &mm) != 2) {
                return false;
            }
        }
    } else {
        return false;
    }
    if (is_digit(**p) || hh > 23 || mm > 59) {
        return false;
    }
    *offset_min = sign * (hh * 60 + mm);
    return true;
}

static bool leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static na_err_t finish(struct parsed *d, int64_t *t) {
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year = d->year;
    if (!d->day || !d->mon || d->year < 0) {
        return NA_ERR_INVALID;
    }
    if (d->year_digits <= 2) {
        year += year < 50 ? 2000 : 1900;
    } else if (d->year_digits == 3) {
        year += 1900;
    }
    if (year < 1000 || year > 9999) {
        return NA_ERR_INVALID;
    }
    int dim = mdays[d->mon - 1] + (d->mon == 2 && leap(year));
    if (d->day > dim || d->hh > 23 || d->mm > 59 || d->ss > 60) {
        return NA_ERR_INVALID;
    }
    *t = days_from_civil(year, d->mon, d->day) * 86400 + d->hh * 3600 + d->mm * 60 +
         d->ss - (int64_t)d->offset_min * 60;
    return NA_OK;
}

/* RFC 822 and its relatives: fields recognised by their shape. */
static na_err_t parse_822(const char *s, int64_t *t) {
    struct parsed d;
    const char *p = s;
    bool last_was_day = false;

    memset(&d, 0, sizeof(d));
    d.year = -1;
    while (*p) {
        if (is_sep(*p) || (*p == '-' && !d.have_time)) {
            p++;
            continue;
        }
        if (*p == '(') {
            if (complete(&d)) {
                break;
            }
            return NA_ERR_INVALID;
        }
        bool was_day = last_was_day;
        last_was_day = false;
        if (is_alpha(*p)) {
            const char *w = p;
            while (is_alpha(*p)) {
                p++;
            }
            size_t n = (size_t)(p - w);
            int k;
            if (*p == '.') {
                p++;
            }
            if (!d.mon && (k = prefix_index(w, n, months, 12)) >= 0) {
                d.mon = k + 1;
            } else if (!d.day && !d.mon && prefix_index(w, n, wdays, 7) >= 0) {
                /* day name: ignored */
            } else if (was_day && n == 2 &&
                       (!strncasecmp(w, "st", 2) || !strncasecmp(w, "nd", 2) ||
                        !strncasecmp(w, "rd", 2) || !strncasecmp(w, "th", 2))) {
                /* "6th" */
            } else if (d.have_time && n == 2 &&
                       (!strncasecmp(w, "am", 2) || !strncasecmp(w, "pm", 2))) {
                if (d.hh < 1 || d.hh > 12) {
                    return NA_ERR_INVALID;
                }
                d.hh = d.hh % 12 + ((w[0] == 'p' || w[0] == 'P') ? 12 : 0);
            } else if ((d.have_time || (d.day && d.mon && d.year >= 0)) && !d.have_zone &&
                       zone_lookup(w, n, &d.offset_min)) {
                d.have_zone = true;
                if ((*p == '+' || *p == '-') && d.offset_min == 0 && n <= 3) {
                    /* "GMT+0800" */
                    if (!read_offset(&p, &d.offset_min)) {
                        return NA_ERR_INVALID;
                    }
                    d.have_offset = true;
                }
            } else if (complete(&d)) {
                break; /* trailing words */
            } else {
                return NA_ERR_INVALID;
            }
            continue;
        }
        if (is_digit(*p)) {
            const char *num = p;
            while (is_digit(*p)) {
                p++;
            }
            size_t n = (size_t)(p - num);
            if (*p == ':') {
                if (d.have_time) {
                    return complete(&d) ? finish(&d, t) : NA_ERR_INVALID;
                }
                p = num;
                if (!read_time(&p, &d)) {
                    return NA_ERR_INVALID;
                }
                continue;
            }
            int v = 0;
            const char *q = num;
            if (n > 4) {
                return complete(&d) ? finish(&d, t) : NA_ERR_INVALID;
            }
            read_num(&q, 4, &v);
            if (n <= 2 && !d.day) {
                d.day = v;
                last_was_day = true;
            } else if (d.year < 0 && (d.day || n >= 3)) {
                d.year = v;
                d.year_digits = (int)n;
            } else if (complete(&d)) {
                break;
            } else {
                return NA_ERR_INVALID;
            }
            continue;
        }
        if ((*p == '+' || *p == '-') && d.have_time && !d.have_offset) {
            if (!read_offset(&p, &d.offset_min)) {
                return NA_ERR_INVALID; /* a zone we cannot read: no guessing */
            }
            d.have_offset = true;
            d.have_zone = true;
            continue;
        }
        if (complete(&d)) {
            break;
        }
        return NA_ERR_INVALID;
    }
    return finish(&d, t);
}

/* A zone named by the table (not a military letter other than Z, which
 * ISO 8601 does not know either). */
static bool zone_named(const char *w, size_t n, int *offset_min) {
    return (n > 1 || w[0] == 'Z' || w[0] == 'z') && zone_lookup(w, n, offset_min);
}

/* The UTC offset (minutes) that the ISO date-time @p s (already valid,
 * parsed as @p t) states with Z or +hh:mm, or false when it states none. */
static bool iso_offset(const char *s, int64_t t, int *offset_min) {
    char local[DATE_MAX_LEN + 1];
    size_t len = strlen(s);
    int64_t lt;
    for (size_t i = 11; i < len; i++) {
        if (s[i] == 'Z' || s[i] == 'z' || s[i] == '+' || s[i] == '-') {
            memcpy(local, s, i);
            local[i] = '\0';
            if (na_time_parse_rfc3339(local, &lt)) {
                return false;
            }
            *offset_min = (int)((lt - t) / 60);
            return true;
        }
    }
    return false;
}

/* @returns true when the @p n bytes at @p w are @p word, case aside. */
static bool word_is(const char *w, size_t n, const char *word) {
    return strlen(word) == n && !strncasecmp(w, word, n);
}

/*
 * What follows a valid ISO date-time @p s (parsed as *t) after a space:
 * @p rest. ISO 8601 and RFC 3339 have no zone names, but feeds append them:
 * a zone of the RFC 822 table counts (it must agree with an offset written
 * too), a word that looks like an unknown zone abbreviation (one to five
 * capitals) refuses the date rather than reading it as UTC, and other
 * words are trailing junk as in the RFC 822 reader.
 */
static na_err_t iso_trailer(const char *s, const char *rest, int64_t *t) {
    const char *w = rest;
    size_t n = 0;
    int zone_min, stated_min;
    bool upper = true;
    if (strlen(s) == 10) {
        /* A date alone, then a time it could not read ("2026-01-06
         * 8:00:00", "... at 08:00"): midnight would be the wrong instant. */
        for (const char *c = rest; *c; c++) {
            if (is_digit(c[0]) && (c[1] == ':' || c[1] == '.') && is_digit(c[2])) {
                return NA_ERR_INVALID;
            }
        }
    }
    while (is_alpha(w[n]) || (w[n] == '.' && n > 0)) {
        upper = upper && (w[n] == '.' || (w[n] >= 'A' && w[n] <= 'Z'));
        n++;
    }
    if (n == 0) {
        return NA_OK; /* "(comment)", digits, punctuation: trailing junk */
    }
    while (n > 1 && w[n - 1] == '.') {
        n--;
    }
    if (word_is(w, n, "am") || word_is(w, n, "a.m") || word_is(w, n, "pm") ||
        word_is(w, n, "p.m")) {
        /* "2026-01-06 08:00 PM": the 12-hour clock, as the RFC 822 reader
         * takes it; an hour of 0 or above 12 with it is no time at all. */
        int hh = strlen(s) >= 16 ? (s[11] - '0') * 10 + (s[12] - '0') : 0;
        int to = (w[0] == 'p' || w[0] == 'P') ? hh % 12 + 12 : hh % 12;
        if (hh < 1 || hh > 12) {
            return NA_ERR_INVALID;
        }
        *t += (int64_t)(to - hh) * 3600;
        return NA_OK;
    }
    if (zone_named(w, n, &zone_min)) {
        if (w[n] == '+' || w[n] == '-' || w[n] == ':' || is_digit(w[n])) {
            return NA_ERR_INVALID; /* "GMT+0800" after an ISO time: no guessing */
        }
        if (iso_offset(s, *t, &stated_min)) {
            return stated_min == zone_min ? NA_OK : NA_ERR_INVALID;
        }
        *t -= (int64_t)zone_min * 60;
        return NA_OK;
    }
    if (upper && n <= 5 && !is_alpha(w[n])) {
        return NA_ERR_INVALID; /* an unknown zone: no guessing */
    }
    return NA_OK;
}

/* ISO 8601 / RFC 3339, with a trailing zone name, word or "(comment)"
 * tolerated (see iso_trailer()) and "T08:00:00 +08:00" (a space before the
 * offset) accepted. */
static na_err_t parse_iso(char *s, int64_t *t) {
    size_t len = strlen(s);
    if (!na_time_parse_rfc3339(s, t)) {
        return NA_OK;
    }
    for (size_t i = 10; i + 1 < len; i++) {
        if (s[i] == ' ' && (s[i + 1] == '+' || s[i + 1] == '-')) {
            memmove(s + i, s + i + 1, len - i);
            len--;
            if (!na_time_parse_rfc3339(s, t)) {
                return NA_OK;
            }
            break;
        }
    }
    /* "2026-01-06T08:00:00+00:00Z": an offset and a Z; the offset rules */
    if (len > 16 && (s[len - 1] == 'Z' || s[len - 1] == 'z') &&
        (strchr(s + 10, '+') || strchr(s + 10, '-'))) {
        s[len - 1] = '\0';
        if (!na_time_parse_rfc3339(s, t)) {
            return NA_OK;
        }
        s[len - 1] = 'Z';
    }
    /* longest prefix first, so "2026-01-06 08:00:00 junk" keeps its time */
    int tries = 0;
    for (size_t i = len; i > 10 && tries < 8; i--) {
        if (s[i - 1] == ' ' || s[i - 1] == '(') {
            char c = s[i - 1];
            tries++;
            s[i - 1] = '\0';
            na_err_t err = na_time_parse_rfc3339(s, t);
            if (!err && c == ' ') {
                /* the longest valid date-time: what follows decides (a
                 * shorter prefix would only drop the time) */
                err = iso_trailer(s, s + i, t);
                s[i - 1] = c;
                return err;
            }
            s[i - 1] = c;
            if (!err) {
                return NA_OK;
            }
        }
    }
    return NA_ERR_INVALID;
}

na_err_t na_date_parse(const char *s, int64_t *t) {
    char buf[DATE_MAX_LEN + 1];
    size_t len;
    int64_t v = 0;
    na_err_t err;

    if (!s) {
        return NA_ERR_INVALID;
    }
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
        s++;
    }
    len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                       s[len - 1] == '\r')) {
        len--;
    }
    if (len == 0 || len > DATE_MAX_LEN) {
        return NA_ERR_INVALID;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    /* "2026/01/06 08:00": slashes for dashes, year first, seen in the wild */
    if (len >= 10 && is_digit(buf[0]) && is_digit(buf[1]) && is_digit(buf[2]) &&
        is_digit(buf[3]) && buf[4] == '/' && buf[7] == '/') {
        buf[4] = '-';
        buf[7] = '-';
    }
    if (len >= 10 && is_digit(buf[0]) && is_digit(buf[1]) && is_digit(buf[2]) &&
        is_digit(buf[3]) && buf[4] == '-') {
        err = parse_iso(buf, &v);
    } else {
        err = parse_822(buf, &v);
    }
    if (!err) {
        *t = v;
    }
    return err;
}
