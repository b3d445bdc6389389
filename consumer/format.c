#include "format.h"

#include <stdlib.h>
#include <string.h>

static const struct na_format *const formats[] = {
    &na_format_json,
    &na_format_slack,
};

const struct na_format *na_format_find(const char *name) {
    for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        if (!strcmp(formats[i]->name, name)) {
            return formats[i];
        }
    }
    return NULL;
}

const char *na_format_names(void) {
    return "json, slack";
}

char *na_format_truncate(const char *s, size_t max) {
    size_t len = strlen(s ? s : "");
    struct na_buf buf;
    if (!s) {
        return na_strdup("");
    }
    if (len <= max) {
        return na_strdup(s);
    }
    na_buf_init(&buf);
    size_t cut = max >= 3 ? na_utf8_cut(s, len, max - 3) : 0;
    na_buf_append(&buf, s, cut);
    na_buf_puts(&buf, "\xe2\x80\xa6"); /* U+2026 … (3 bytes) */
    return na_buf_steal(&buf);
}

void na_format_slack_escape(struct na_buf *out, const char *s, size_t max) {
    char *t = na_format_truncate(s, max);
    for (const char *p = t; p && *p; p++) {
        switch (*p) {
        case '&':
            na_buf_puts(out, "&amp;");
            break;
        case '<':
            na_buf_puts(out, "&lt;");
            break;
        case '>':
            na_buf_puts(out, "&gt;");
            break;
        default:
            na_buf_append(out, p, 1);
        }
    }
    free(t);
}
