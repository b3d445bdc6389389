/* Google Chat incoming webhooks: a `text` notification line plus one
 * cardsV2 card (header, a text paragraph, a button to the article). Limits:
 * message text 4,096 characters, message 32,000 bytes; card text is an
 * HTML subset, so article text there has & < > as entities; `text` uses
 * Chat's own Markdown-like syntax, where <users/all> would mention
 * everyone: there < > become entities too and '@' gets a zero-width
 * space. Write quota: about one message per second per space. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "newsalert/timeutil.h"

#define GC_TEXT_MAX 4000
#define GC_TITLE_MAX 300
#define GC_PARA_MAX 3000
#define GC_PAYLOAD_MAX 30000

static json_t *card(const char *id, const char *title, const char *subtitle,
                    const char *para, const char *url) {
    json_t *widgets = json_pack("[{s:{s:s}}]", "textParagraph", "text", para);
    if (widgets && url) {
        json_array_append_new(widgets,
                              json_pack("{s:{s:[{s:s, s:{s:{s:s}}}]}}", "buttonList",
                                        "buttons", "text", "Read the article", "onClick",
                                        "openLink", "url", url));
    }
    return json_pack("[{s:s, s:{s:{s:s, s:s}, s:[{s:o}]}}]", "cardId", id, "card",
                     "header", "title", title, "subtitle", subtitle, "sections",
                     "widgets", widgets);
}

static na_err_t render(const struct na_alert *alert, struct na_buf *out) {
    const struct na_article *a = alert->article;
    const struct na_match *m = alert->match;
    struct na_buf text, title, para, sub;
    char ts[NA_RFC3339_LEN] = "";
    na_err_t err = NA_ERR_NOMEM;

    na_buf_init(&text);
    na_buf_init(&title);
    na_buf_init(&para);
    na_buf_init(&sub);
    na_buf_printf(&text, "[%s] ", m->topic);
    na_format_md_escape(&text, a->title ? a->title : "", 1000, NA_MD_HTML);
    na_format_buf_cut(&text, GC_TEXT_MAX);
    na_format_md_escape(&title, a->title && *a->title ? a->title : "(untitled)",
                        GC_TITLE_MAX, NA_MD_HTML);
    na_buf_printf(&sub, "%s \xc2\xb7 %.2f \xc2\xb7 ", m->topic, m->score);
    na_format_md_escape(&sub, a->source_name ? a->source_name : "unknown source", 200,
                        NA_MD_HTML);
    if (a->published_at != NA_TIME_UNKNOWN) {
        na_time_format_rfc3339(a->published_at, ts);
        na_buf_printf(&sub, " \xc2\xb7 %s", ts);
    }
    na_buf_puts(&para, "<b>Evidence:</b> ");
    for (size_t i = 0; i < m->evidence_cnt && i < 10; i++) {
        na_buf_puts(&para, i ? ", " : "");
        na_format_md_escape(
            &para, m->evidence[i].matched ? m->evidence[i].matched : m->evidence[i].term,
            80, NA_MD_HTML);
        na_buf_printf(&para, " (%s)", m->evidence[i].field);
    }
    for (size_t i = 0; i < m->parties_cnt && i < NA_FORMAT_PARTIES_MAX; i++) {
        char *t = na_format_party_text(&m->parties[i]);
        na_buf_puts(&para,
                    i ? "<br>\xe2\x80\xa2 " : "<br><b>Parties:</b><br>\xe2\x80\xa2 ");
        na_format_md_escape(&para, t ? t : "", 300, NA_MD_HTML);
        free(t);
    }
    if (m->parties_cnt > NA_FORMAT_PARTIES_MAX) {
        na_buf_printf(&para, "<br>+%zu more", m->parties_cnt - NA_FORMAT_PARTIES_MAX);
    }
    if (m->snippet && *m->snippet) {
        na_buf_puts(&para, "<br>");
        na_format_md_escape(&para, m->snippet, 600, NA_MD_HTML);
    }
    /* The cut may only ever drop whole entities' tails: it cuts at the end. */
    na_format_buf_cut(&para, GC_PARA_MAX);
    if (text.oom || title.oom || para.oom || sub.oom) {
        goto out;
    }
    const char *url = na_format_http_url(a->url) && strlen(a->url) < 2000 ? a->url : NULL;
    err = na_format_dump_steal(
        json_pack("{s:s, s:o}", "text", text.data, "cardsV2",
                  card(alert->id, title.data, sub.data, para.data, url)),
        out);
out:
    na_buf_cleanup(&text);
    na_buf_cleanup(&title);
    na_buf_cleanup(&para);
    na_buf_cleanup(&sub);
    return err;
}

/* One card: a paragraph with one line per alert, under GC_PARA_MAX. */
static na_err_t render_digest(const struct na_digest_item *const *items, size_t cnt,
                              struct na_buf *out) {
    struct na_buf para, line;
    size_t shown = 0;
    char head[64];
    na_err_t err = NA_ERR_NOMEM;

    na_buf_init(&para);
    na_buf_init(&line);
    snprintf(head, sizeof(head), "%zu news alerts", cnt);
    for (size_t i = 0; i < cnt; i++) {
        const struct na_digest_item *it = items[i];
        line.len = 0;
        na_buf_printf(&line, "\xe2\x80\xa2 <b>%s</b> %.2f ", it->topic, it->score);
        na_format_md_escape(&line, it->title && *it->title ? it->title : "(untitled)",
                            200, NA_MD_HTML);
        if (it->url && strlen(it->url) < 500) {
            /* Digest URLs are http(s) without < > " (na_format_http_url). */
            na_buf_printf(&line, " <a href=\"%s\">link</a>", it->url);
        }
        na_buf_puts(&line, "<br>");
        if (line.oom || para.len + line.len + 32 > GC_PARA_MAX * 4) {
            break;
        }
        na_buf_append(&para, line.data, line.len);
        shown++;
    }
    if (shown < cnt) {
        na_buf_printf(&para, "and %zu more", cnt - shown);
    }
    if (!para.oom && !line.oom) {
        err = na_format_dump_steal(json_pack("{s:s, s:o}", "text", head, "cardsV2",
                                             card("digest", head, "newsalert",
                                                  para.data ? para.data : "", NULL)),
                                   out);
    }
    if (!err && out->len > GC_PAYLOAD_MAX) {
        err = NA_ERR_TOO_LARGE;
    }
    na_buf_cleanup(&para);
    na_buf_cleanup(&line);
    return err;
}

/* Chat's write quota is per space, about one message per second. */
const struct na_format na_format_googlechat = {"googlechat", render, render_digest, 1.0,
                                               3.0};
