#include "html.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "newsalert/util.h"

/*
 * Why a hand-written state machine rather than libxml2's HTML parser: the
 * fragments are small, we only want their text, and a parser that builds a
 * tree costs an allocation per node, recurses over nesting and would need
 * its own error, entity and encoding settings reviewed; this loop is linear,
 * allocation-free apart from the output buffer, and has no limits to tune.
 */

/* Pending separator before the next text, strongest wins. */
enum brk {
    BRK_NONE = 0,
    BRK_SPACE,
    BRK_LINE,
    BRK_PARA,
};

struct text_out {
    struct na_buf buf;
    enum brk pending;
};

struct entity {
    const char *name;
    uint32_t cp;
};

/* HTML 4.01's named character references plus &apos;, sorted by strcmp(). */
static const struct entity entities[] = {
    {"AElig", 0x00c6},   {"Aacute", 0x00c1},  {"Acirc", 0x00c2},    {"Agrave", 0x00c0},
    {"Alpha", 0x0391},   {"Aring", 0x00c5},   {"Atilde", 0x00c3},   {"Auml", 0x00c4},
    {"Beta", 0x0392},    {"Ccedil", 0x00c7},  {"Chi", 0x03a7},      {"Dagger", 0x2021},
    {"Delta", 0x0394},   {"ETH", 0x00d0},     {"Eacute", 0x00c9},   {"Ecirc", 0x00ca},
    {"Egrave", 0x00c8},  {"Epsilon", 0x0395}, {"Eta", 0x0397},      {"Euml", 0x00cb},
    {"Gamma", 0x0393},   {"Iacute", 0x00cd},  {"Icirc", 0x00ce},    {"Igrave", 0x00cc},
    {"Iota", 0x0399},    {"Iuml", 0x00cf},    {"Kappa", 0x039a},    {"Lambda", 0x039b},
    {"Mu", 0x039c},      {"Ntilde", 0x00d1},  {"Nu", 0x039d},       {"OElig", 0x0152},
    {"Oacute", 0x00d3},  {"Ocirc", 0x00d4},   {"Ograve", 0x00d2},   {"Omega", 0x03a9},
    {"Omicron", 0x039f}, {"Oslash", 0x00d8},  {"Otilde", 0x00d5},   {"Ouml", 0x00d6},
    {"Phi", 0x03a6},     {"Pi", 0x03a0},      {"Prime", 0x2033},    {"Psi", 0x03a8},
    {"Rho", 0x03a1},     {"Scaron", 0x0160},  {"Sigma", 0x03a3},    {"THORN", 0x00de},
    {"Tau", 0x03a4},     {"Theta", 0x0398},   {"Uacute", 0x00da},   {"Ucirc", 0x00db},
    {"Ugrave", 0x00d9},  {"Upsilon", 0x03a5}, {"Uuml", 0x00dc},     {"Xi", 0x039e},
    {"Yacute", 0x00dd},  {"Yuml", 0x0178},    {"Zeta", 0x0396},     {"aacute", 0x00e1},
    {"acirc", 0x00e2},   {"acute", 0x00b4},   {"aelig", 0x00e6},    {"agrave", 0x00e0},
    {"alefsym", 0x2135}, {"alpha", 0x03b1},   {"amp", 0x0026},      {"and", 0x2227},
    {"ang", 0x2220},     {"apos", 0x0027},    {"aring", 0x00e5},    {"asymp", 0x2248},
    {"atilde", 0x00e3},  {"auml", 0x00e4},    {"bdquo", 0x201e},    {"beta", 0x03b2},
    {"brvbar", 0x00a6},  {"bull", 0x2022},    {"cap", 0x2229},      {"ccedil", 0x00e7},
    {"cedil", 0x00b8},   {"cent", 0x00a2},    {"chi", 0x03c7},      {"circ", 0x02c6},
    {"clubs", 0x2663},   {"cong", 0x2245},    {"copy", 0x00a9},     {"crarr", 0x21b5},
    {"cup", 0x222a},     {"curren", 0x00a4},  {"dArr", 0x21d3},     {"dagger", 0x2020},
    {"darr", 0x2193},    {"deg", 0x00b0},     {"delta", 0x03b4},    {"diams", 0x2666},
    {"divide", 0x00f7},  {"eacute", 0x00e9},  {"ecirc", 0x00ea},    {"egrave", 0x00e8},
    {"empty", 0x2205},   {"emsp", 0x2003},    {"ensp", 0x2002},     {"epsilon", 0x03b5},
    {"equiv", 0x2261},   {"eta", 0x03b7},     {"eth", 0x00f0},      {"euml", 0x00eb},
    {"euro", 0x20ac},    {"exist", 0x2203},   {"fnof", 0x0192},     {"forall", 0x2200},
    {"frac12", 0x00bd},  {"frac14", 0x00bc},  {"frac34", 0x00be},   {"frasl", 0x2044},
    {"gamma", 0x03b3},   {"ge", 0x2265},      {"gt", 0x003e},       {"hArr", 0x21d4},
    {"harr", 0x2194},    {"hearts", 0x2665},  {"hellip", 0x2026},   {"iacute", 0x00ed},
    {"icirc", 0x00ee},   {"iexcl", 0x00a1},   {"igrave", 0x00ec},   {"image", 0x2111},
    {"infin", 0x221e},   {"int", 0x222b},     {"iota", 0x03b9},     {"iquest", 0x00bf},
    {"isin", 0x2208},    {"iuml", 0x00ef},    {"kappa", 0x03ba},    {"lArr", 0x21d0},
    {"lambda", 0x03bb},  {"lang", 0x2329},    {"laquo", 0x00ab},    {"larr", 0x2190},
    {"lceil", 0x2308},   {"ldquo", 0x201c},   {"le", 0x2264},       {"lfloor", 0x230a},
    {"lowast", 0x2217},  {"loz", 0x25ca},     {"lrm", 0x200e},      {"lsaquo", 0x2039},
    {"lsquo", 0x2018},   {"lt", 0x003c},      {"macr", 0x00af},     {"mdash", 0x2014},
    {"micro", 0x00b5},   {"middot", 0x00b7},  {"minus", 0x2212},    {"mu", 0x03bc},
    {"nabla", 0x2207},   {"nbsp", 0x00a0},    {"ndash", 0x2013},    {"ne", 0x2260},
    {"ni", 0x220b},      {"not", 0x00ac},     {"notin", 0x2209},    {"nsub", 0x2284},
    {"ntilde", 0x00f1},  {"nu", 0x03bd},      {"oacute", 0x00f3},   {"ocirc", 0x00f4},
    {"oelig", 0x0153},   {"ograve", 0x00f2},  {"oline", 0x203e},    {"omega", 0x03c9},
    {"omicron", 0x03bf}, {"oplus", 0x2295},   {"or", 0x2228},       {"ordf", 0x00aa},
    {"ordm", 0x00ba},    {"oslash", 0x00f8},  {"otilde", 0x00f5},   {"otimes", 0x2297},
    {"ouml", 0x00f6},    {"para", 0x00b6},    {"part", 0x2202},     {"permil", 0x2030},
    {"perp", 0x22a5},    {"phi", 0x03c6},     {"pi", 0x03c0},       {"piv", 0x03d6},
    {"plusmn", 0x00b1},  {"pound", 0x00a3},   {"prime", 0x2032},    {"prod", 0x220f},
    {"prop", 0x221d},    {"psi", 0x03c8},     {"quot", 0x0022},     {"rArr", 0x21d2},
    {"radic", 0x221a},   {"rang", 0x232a},    {"raquo", 0x00bb},    {"rarr", 0x2192},
    {"rceil", 0x2309},   {"rdquo", 0x201d},   {"real", 0x211c},     {"reg", 0x00ae},
    {"rfloor", 0x230b},  {"rho", 0x03c1},     {"rlm", 0x200f},      {"rsaquo", 0x203a},
    {"rsquo", 0x2019},   {"sbquo", 0x201a},   {"scaron", 0x0161},   {"sdot", 0x22c5},
    {"sect", 0x00a7},    {"shy", 0x00ad},     {"sigma", 0x03c3},    {"sigmaf", 0x03c2},
    {"sim", 0x223c},     {"spades", 0x2660},  {"sub", 0x2282},      {"sube", 0x2286},
    {"sum", 0x2211},     {"sup", 0x2283},     {"sup1", 0x00b9},     {"sup2", 0x00b2},
    {"sup3", 0x00b3},    {"supe", 0x2287},    {"szlig", 0x00df},    {"tau", 0x03c4},
    {"there4", 0x2234},  {"theta", 0x03b8},   {"thetasym", 0x03d1}, {"thinsp", 0x2009},
    {"thorn", 0x00fe},   {"tilde", 0x02dc},   {"times", 0x00d7},    {"trade", 0x2122},
    {"uArr", 0x21d1},    {"uacute", 0x00fa},  {"uarr", 0x2191},     {"ucirc", 0x00fb},
    {"ugrave", 0x00f9},  {"uml", 0x00a8},     {"upsih", 0x03d2},    {"upsilon", 0x03c5},
    {"uuml", 0x00fc},    {"weierp", 0x2118},  {"xi", 0x03be},       {"yacute", 0x00fd},
    {"yen", 0x00a5},     {"yuml", 0x00ff},    {"zeta", 0x03b6},     {"zwj", 0x200d},
    {"zwnj", 0x200c},
};

/* windows-1252 for &#128;..&#159; (0 = undefined there). */
static const uint16_t cp1252[32] = {
    0x20ac, 0,      0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
    0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0,      0x017d, 0,
    0,      0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
    0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0,      0x017e, 0x0178,
};

struct block_tag {
    const char *name;
    enum brk brk;
};

/* Elements that separate text; every other tag is inline and vanishes. */
static const struct block_tag block_tags[] = {
    {"address", BRK_PARA},    {"article", BRK_PARA},    {"aside", BRK_PARA},
    {"blockquote", BRK_PARA}, {"br", BRK_LINE},         {"caption", BRK_LINE},
    {"center", BRK_LINE},     {"dd", BRK_LINE},         {"details", BRK_PARA},
    {"div", BRK_LINE},        {"dl", BRK_PARA},         {"dt", BRK_LINE},
    {"fieldset", BRK_PARA},   {"figcaption", BRK_LINE}, {"figure", BRK_PARA},
    {"footer", BRK_PARA},     {"form", BRK_PARA},       {"h1", BRK_PARA},
    {"h2", BRK_PARA},         {"h3", BRK_PARA},         {"h4", BRK_PARA},
    {"h5", BRK_PARA},         {"h6", BRK_PARA},         {"header", BRK_PARA},
    {"hgroup", BRK_PARA},     {"hr", BRK_PARA},         {"li", BRK_LINE},
    {"main", BRK_PARA},       {"nav", BRK_PARA},        {"ol", BRK_PARA},
    {"p", BRK_PARA},          {"pre", BRK_PARA},        {"section", BRK_PARA},
    {"summary", BRK_LINE},    {"table", BRK_PARA},      {"tbody", BRK_LINE},
    {"td", BRK_SPACE},        {"tfoot", BRK_LINE},      {"th", BRK_SPACE},
    {"thead", BRK_LINE},      {"tr", BRK_LINE},         {"ul", BRK_PARA},
};

int32_t na_html_entity_lookup(const char *name, size_t len) {
    size_t lo = 0;
    size_t hi = sizeof(entities) / sizeof(entities[0]);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *e = entities[mid].name;
        int cmp = strncmp(e, name, len);
        if (!cmp && e[len] != '\0') {
            cmp = 1; /* e is longer, so it sorts after name */
        }
        if (!cmp) {
            return (int32_t)entities[mid].cp;
        }
        if (cmp < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return -1;
}

size_t na_html_utf8_encode(uint32_t cp, char out[4]) {
    if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
        cp = 0xfffd;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_alpha(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

static int hex_val(unsigned char c) {
    if (is_digit(c)) {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static void out_ws(struct text_out *o, enum brk brk) {
    if (brk > o->pending) {
        o->pending = brk;
    }
}

static void out_bytes(struct text_out *o, const char *s, size_t n) {
    if (o->pending != BRK_NONE && o->buf.len > 0) {
        if (o->pending == BRK_SPACE) {
            na_buf_append(&o->buf, " ", 1);
        } else if (o->pending == BRK_LINE) {
            na_buf_append(&o->buf, "\n", 1);
        } else {
            na_buf_append(&o->buf, "\n\n", 2);
        }
    }
    o->pending = BRK_NONE;
    na_buf_append(&o->buf, s, n);
}

static void out_cp(struct text_out *o, uint32_t cp) {
    char utf8[4];
    if (cp == 0) {
        cp = 0xfffd;
    } else if (cp >= 0x80 && cp <= 0x9f) {
        cp = cp1252[cp - 0x80] ? cp1252[cp - 0x80] : 0xfffd;
    }
    if (cp < 0x20 || cp == 0x7f || cp == 0xa0) {
        out_ws(o, BRK_SPACE);
        return;
    }
    out_bytes(o, utf8, na_html_utf8_encode(cp, utf8));
}

/* true when s[0..len) needs no na_utf8_sanitize(): valid UTF-8 and no
 * control byte but newline and tab (the common case, kept without a copy) */
static bool is_clean(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
            return false;
        }
    }
    return na_utf8_valid(s, len);
}

static char *out_finish(struct text_out *o) {
    char *s = NULL;
    if (o->buf.oom) {
        na_buf_cleanup(&o->buf);
        return NULL;
    }
    if (is_clean(o->buf.data ? o->buf.data : "", o->buf.len)) {
        return na_buf_steal(&o->buf);
    }
    s = na_utf8_sanitize(o->buf.data ? o->buf.data : "", o->buf.len);
    na_buf_cleanup(&o->buf);
    return s;
}

/* Plain text [s, s+len) with whitespace runs turned into separators. */
static void out_plain(struct text_out *o, const char *s, size_t len, bool keep_lines) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (is_space(c) ||
            (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] == 0xa0)) {
            int newlines = 0;
            while (i < len) {
                c = (unsigned char)s[i];
                if (c == '\n') {
                    newlines++;
                } else if (c == '\r') {
                    if (i + 1 >= len || s[i + 1] != '\n') {
                        newlines++;
                    }
                } else if (c == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] == 0xa0) {
                    i++;
                } else if (!is_space(c)) {
                    break;
                }
                i++;
            }
            if (keep_lines && newlines >= 2) {
                out_ws(o, BRK_PARA);
            } else if (keep_lines && newlines == 1) {
                out_ws(o, BRK_LINE);
            } else {
                out_ws(o, BRK_SPACE);
            }
            continue;
        }
        size_t j = i + 1;
        while (j < len && !is_space((unsigned char)s[j]) && (unsigned char)s[j] != 0xc2) {
            j++;
        }
        out_bytes(o, s + i, j - i);
        i = j;
    }
}

/* Offset of @p needle in s[from..len) or len when absent; ASCII case-blind. */
static size_t find_ci(const char *s, size_t len, size_t from, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = from; i + n <= len; i++) {
        if (!strncasecmp(s + i, needle, n)) {
            return i;
        }
    }
    return len;
}

static bool starts_ci(const char *s, size_t len, const char *prefix) {
    size_t n = strlen(prefix);
    return len >= n && !strncasecmp(s, prefix, n);
}

static enum brk tag_brk(const char *name, size_t n) {
    for (size_t k = 0; k < sizeof(block_tags) / sizeof(block_tags[0]); k++) {
        if (strlen(block_tags[k].name) == n &&
            !strncasecmp(block_tags[k].name, name, n)) {
            return block_tags[k].brk;
        }
    }
    return BRK_NONE;
}

/* HTML element names (HTML 5 and common older ones), sorted. A '<' that
 * starts none of these (nor a custom "x-y" or namespaced "o:p" element) is
 * text: feed titles often carry "<Updates>" or "x<y" meant literally. */
static const char *const html_elements[] = {
    "a",        "abbr",     "acronym", "address",    "area",       "article",
    "aside",    "audio",    "b",       "base",       "basefont",   "bdi",
    "bdo",      "big",      "blink",   "blockquote", "body",       "br",
    "button",   "canvas",   "caption", "center",     "cite",       "code",
    "col",      "colgroup", "data",    "datalist",   "dd",         "del",
    "details",  "dfn",      "dialog",  "dir",        "div",        "dl",
    "dt",       "em",       "embed",   "fieldset",   "figcaption", "figure",
    "font",     "footer",   "form",    "frame",      "frameset",   "h1",
    "h2",       "h3",       "h4",      "h5",         "h6",         "head",
    "header",   "hgroup",   "hr",      "html",       "i",          "iframe",
    "img",      "input",    "ins",     "kbd",        "label",      "legend",
    "li",       "link",     "main",    "map",        "mark",       "marquee",
    "math",     "menu",     "meta",    "meter",      "nav",        "nobr",
    "noframes", "noscript", "object",  "ol",         "optgroup",   "option",
    "output",   "p",        "param",   "picture",    "pre",        "progress",
    "q",        "rp",       "rt",      "ruby",       "s",          "samp",
    "script",   "section",  "select",  "small",      "source",     "span",
    "strike",   "strong",   "style",   "sub",        "summary",    "sup",
    "svg",      "table",    "tbody",   "td",         "template",   "textarea",
    "tfoot",    "th",       "thead",   "time",       "title",      "tr",
    "track",    "tt",       "u",       "ul",         "var",        "video",
    "wbr",
};

static bool is_element_name(const char *name, size_t n) {
    if (memchr(name, '-', n) || memchr(name, ':', n)) {
        return true;
    }
    size_t lo = 0;
    size_t hi = sizeof(html_elements) / sizeof(html_elements[0]);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *e = html_elements[mid];
        int cmp = strncasecmp(e, name, n);
        if (!cmp && e[n] != '\0') {
            cmp = 1;
        }
        if (!cmp) {
            return true;
        }
        if (cmp < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

static bool is_raw_text(const char *name, size_t n) {
    return (n == 6 && !strncasecmp(name, "script", 6)) ||
           (n == 5 && !strncasecmp(name, "style", 5));
}

/* Skip the body of a <script>/<style>: return the offset of its end tag. */
static size_t skip_raw(const char *s, size_t len, size_t p, const char *name, size_t n) {
    while (p < len) {
        const char *lt = memchr(s + p, '<', len - p);
        if (!lt) {
            return len;
        }
        size_t q = (size_t)(lt - s);
        if (q + 2 + n <= len && s[q + 1] == '/' && !strncasecmp(s + q + 2, name, n) &&
            (q + 2 + n == len || is_space((unsigned char)s[q + 2 + n]) ||
             s[q + 2 + n] == '>' || s[q + 2 + n] == '/')) {
            return q;
        }
        p = q + 1;
    }
    return len;
}

/* s[i] is '<'; consume a tag, comment or declaration; return where to go on. */
static size_t do_tag(struct text_out *o, const char *s, size_t len, size_t i) {
    size_t p = i + 1;
    size_t q;
    bool closing = false;

    if (starts_ci(s + p, len - p, "!--")) {
        q = find_ci(s, len, p + 3, "-->");
        return q == len ? len : q + 3;
    }
    if (starts_ci(s + p, len - p, "![CDATA[")) {
        q = find_ci(s, len, p + 8, "]]>");
        out_plain(o, s + p + 8, q - (p + 8), false);
        return q == len ? len : q + 3;
    }
    if (p < len && (s[p] == '!' || s[p] == '?')) {
        const char *gt = memchr(s + p, '>', len - p);
        return gt ? (size_t)(gt - s) + 1 : len;
    }
    if (p < len && s[p] == '/') {
        closing = true;
        p++;
    }
    if (p >= len || !is_alpha((unsigned char)s[p])) {
        /* "a < b", "</ x": a literal '<' as browsers show it */
        out_bytes(o, "<", 1);
        return i + 1;
    }
    size_t name = p;
    while (p < len && (is_alpha((unsigned char)s[p]) || is_digit((unsigned char)s[p]) ||
                       s[p] == '-' || s[p] == ':' || s[p] == '_')) {
        p++;
    }
    size_t name_len = p - name;
    if (!is_element_name(s + name, name_len) ||
        (p < len && !is_space((unsigned char)s[p]) && s[p] != '>' && s[p] != '/')) {
        out_bytes(o, "<", 1); /* "<Updates>", "x<y": text, not a tag */
        return i + 1;
    }
    char quote = 0;
    char prev = 0;
    while (p < len) {
        char c = s[p];
        if (quote) {
            if (c == quote) {
                quote = 0;
                prev = c;
            }
            p++;
            continue;
        }
        if (c == '>') {
            break;
        }
        if ((c == '"' || c == '\'') && prev == '=') {
            quote = c;
        }
        if (!is_space((unsigned char)c)) {
            prev = c;
        }
        p++;
    }
    if (p >= len) {
        return len; /* unterminated tag: the rest is not text */
    }
    bool self_closing = s[p - 1] == '/';
    p++;
    out_ws(o, tag_brk(s + name, name_len));
    if (!closing && !self_closing && is_raw_text(s + name, name_len)) {
        p = skip_raw(s, len, p, s + name, name_len);
    }
    return p;
}

/* s[i] is '&'; decode a character reference; return where to go on. */
static size_t do_ref(struct text_out *o, const char *s, size_t len, size_t i) {
    size_t p = i + 1;
    if (p < len && s[p] == '#') {
        bool hex = false;
        uint32_t v = 0;
        p++;
        if (p < len && (s[p] == 'x' || s[p] == 'X')) {
            hex = true;
            p++;
        }
        size_t digits = p;
        while (p < len) {
            int d = hex ? hex_val((unsigned char)s[p])
                        : (is_digit((unsigned char)s[p]) ? s[p] - '0' : -1);
            if (d < 0) {
                break;
            }
            if (v <= 0x10ffff) {
                v = v * (hex ? 16u : 10u) + (uint32_t)d;
            }
            p++;
        }
        if (p == digits) {
            out_bytes(o, "&", 1);
            return i + 1;
        }
        if (p < len && s[p] == ';') {
            p++;
        }
        out_cp(o, v > 0x10ffff ? 0xfffd : v);
        return p;
    }
    size_t name = p;
    while (p < len && p - name < 32 &&
           (is_alpha((unsigned char)s[p]) || is_digit((unsigned char)s[p]))) {
        p++;
    }
    if (p > name && p < len && s[p] == ';') {
        int32_t cp = na_html_entity_lookup(s + name, p - name);
        if (cp >= 0) {
            out_cp(o, (uint32_t)cp);
        } else {
            out_bytes(o, s + i, p + 1 - i); /* unknown: as written */
        }
        return p + 1;
    }
    /* Legacy references that browsers accept without ';' ("&amp", "&lt3"),
     * when no letter follows ("&ampere" stays as written). */
    static const char *const legacy[] = {"amp", "lt", "gt", "quot", "nbsp"};
    for (size_t k = 0; k < sizeof(legacy) / sizeof(legacy[0]); k++) {
        size_t n = strlen(legacy[k]);
        if (p - name >= n && !memcmp(s + name, legacy[k], n) &&
            (name + n >= len || !is_alpha((unsigned char)s[name + n]))) {
            out_cp(o, (uint32_t)na_html_entity_lookup(legacy[k], n));
            return name + n;
        }
    }
    out_bytes(o, "&", 1);
    return i + 1;
}

static bool is_special(unsigned char c) {
    return c == '<' || c == '&' || c == 0xc2 || is_space(c);
}

char *na_html_to_text(const char *html, size_t len) {
    struct text_out o;
    size_t i = 0;

    na_buf_init(&o.buf);
    o.pending = BRK_NONE;
    while (i < len) {
        unsigned char c = (unsigned char)html[i];
        if (c == '<') {
            i = do_tag(&o, html, len, i);
        } else if (c == '&') {
            i = do_ref(&o, html, len, i);
        } else if (is_space(c)) {
            out_ws(&o, BRK_SPACE);
            i++;
        } else if (c == 0xc2 && i + 1 < len && (unsigned char)html[i + 1] == 0xa0) {
            out_ws(&o, BRK_SPACE);
            i += 2;
        } else {
            size_t j = i + 1;
            while (j < len && !is_special((unsigned char)html[j])) {
                j++;
            }
            out_bytes(&o, html + i, j - i);
            i = j;
        }
    }
    return out_finish(&o);
}

char *na_html_plain_text(const char *text, size_t len) {
    struct text_out o;
    na_buf_init(&o.buf);
    o.pending = BRK_NONE;
    out_plain(&o, text, len, true);
    return out_finish(&o);
}

void na_html_flatten(char *s) {
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '\n') {
            if (w == s || w[-1] != ' ') {
                *w++ = ' ';
            }
            continue;
        }
        *w++ = *r;
    }
    *w = '\0';
}
