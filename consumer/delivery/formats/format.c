#include "format.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct na_format *const formats[] = {
    &na_format_json,    &na_format_slack, &na_format_mattermost,
    &na_format_discord, &na_format_teams, &na_format_googlechat,
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
    return "json|slack|mattermost|discord|teams|googlechat";
}

struct na_digest_item *na_digest_item_new(const struct na_alert *alert) {
    struct na_digest_item *it = calloc(1, sizeof(*it));
    const struct na_article *a = alert->article;
    if (!it) {
        return NULL;
    }
    memcpy(it->alert_id, alert->id, sizeof(it->alert_id));
    it->score = alert->match->score;
    it->topic = na_strdup(alert->match->topic);
    it->title = na_format_truncate(a->title ? a->title : "", 300);
    it->url = na_format_http_url(a->url) ? na_strdup(a->url) : NULL;
    it->source = na_format_truncate(a->source_name ? a->source_name : "", 100);
    if (!it->topic || !it->title || !it->source ||
        (na_format_http_url(a->url) && !it->url)) {
        na_digest_item_free(it);
        return NULL;
    }
    return it;
}

void na_digest_item_free(struct na_digest_item *item) {
    if (!item) {
        return;
    }
    free(item->topic);
    free(item->title);
    free(item->url);
    free(item->source);
    free(item);
}

bool na_format_http_url(const char *url) {
    if (!url || !(!strncasecmp(url, "https://", 8) || !strncasecmp(url, "http://", 7))) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f || *p == '<' || *p == '>' || *p == '"' ||
            *p == '|') {
            return false;
        }
    }
    return true;
}

char *na_format_party_text(const struct na_party *p) {
    struct na_buf b;
    na_buf_init(&b);
    na_buf_puts(&b, p->name);
    if (*p->alias && strcmp(p->alias, p->name)) {
        na_buf_printf(&b, " (as \"%s\")", p->alias);
    }
    if (*p->source) {
        na_buf_printf(&b, " \xc2\xb7 %s", p->source);
    }
    if (*p->programs) {
        na_buf_printf(&b, " \xc2\xb7 programs %s", p->programs);
    }
    if (*p->country) {
        na_buf_printf(&b, " \xc2\xb7 country %s", p->country);
    }
    if (b.oom) {
        na_buf_cleanup(&b);
        return NULL;
    }
    return na_buf_steal(&b);
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

void na_format_buf_cut(struct na_buf *buf, size_t max) {
    if (buf->len <= max || !buf->data) {
        return;
    }
    size_t cut = max >= 3 ? na_utf8_cut(buf->data, buf->len, max - 3) : 0;
    buf->len = cut;
    buf->data[cut] = '\0';
    if (max >= 3) {
        na_buf_puts(buf, "\xe2\x80\xa6");
    }
}

/* A control byte (article/v1 takes "\u0001") means nothing in a chat message,
 * and is six bytes once the payload is JSON, which the formats' size
 * budgets (at most twice the text) do not allow for. */
static bool control_byte(char c) {
    return (unsigned char)c < 0x20 || c == 0x7f;
}

void na_format_slack_escape(struct na_buf *out, const char *s, size_t max) {
    char *t = na_format_truncate(s, max);
    for (const char *p = t; p && *p; p++) {
        if (control_byte(*p)) {
            na_buf_puts(out, " ");
            continue;
        }
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

void na_format_md_escape(struct na_buf *out, const char *s, size_t max,
                         enum na_md_mode mode) {
    char *t = na_format_truncate(s, max);
    for (const char *p = t; p && *p; p++) {
        if (control_byte(*p)) {
            na_buf_puts(out, " ");
        } else if (*p == '@') {
            na_buf_puts(out, "@\xe2\x80\x8b"); /* @ + U+200B */
        } else if ((mode == NA_MD_HTML || mode == NA_MD_MATTERMOST) &&
                   (*p == '&' || *p == '<' || *p == '>')) {
            na_buf_puts(out, *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : "&gt;");
        } else if ((mode == NA_MD_BACKSLASH && strchr("\\*_~`|<>[]()#-", *p)) ||
                   (mode == NA_MD_MATTERMOST && strchr("\\*_~`|[]()#-", *p))) {
            char esc[2] = {'\\', *p};
            na_buf_append(out, esc, 2);
        } else if (mode == NA_MD_ZWSP && strchr("*_[]~`#<>", *p)) {
            na_buf_append(out, p, 1);
            na_buf_puts(out, "\xe2\x80\x8b");
        } else {
            na_buf_append(out, p, 1);
        }
    }
    free(t);
}

na_err_t na_format_dump_steal(json_t *root, struct na_buf *out) {
    char *text = root ? json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) {
        return NA_ERR_NOMEM;
    }
    na_buf_puts(out, text);
    free(text);
    return out->oom ? NA_ERR_NOMEM : NA_OK;
}
