#define _GNU_SOURCE /* strcasestr */
#include "httpstub.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int read_request(int c, char *head, size_t head_size, char **body) {
    size_t n = 0;
    *body = NULL;
    while (n < head_size - 1) {
        ssize_t r = read(c, head + n, 1);
        if (r <= 0) {
            return -1;
        }
        n++;
        head[n] = '\0';
        if (n >= 4 && !memcmp(head + n - 4, "\r\n\r\n", 4)) {
            break;
        }
    }
    const char *cl = strcasestr(head, "content-length:");
    size_t len = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
    *body = calloc(1, len + 1);
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(c, *body + got, len - got);
        if (r <= 0) {
            free(*body);
            *body = NULL;
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

static void answer(int c, int status, const char *body) {
    char head[256];
    size_t len = strlen(body);
    snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n\r\n", status,
             len);
    if (write(c, head, strlen(head)) < 0 || write(c, body, len) < 0) {
        return;
    }
}

static void *serve_conn(void *arg) {
    struct na_stub *s = ((void **)arg)[0];
    int c = (int)(long)((void **)arg)[1];
    char head[4096];
    char *body;
    free(arg);
    while (!s->stop && read_request(c, head, sizeof(head), &body) == 0) {
        char method[8] = "", path[128] = "";
        sscanf(head, "%7s %127s", method, path);
        pthread_mutex_lock(&s->lock);
        if (!strcmp(method, "GET")) {
            const char *doc = NULL;
            int status = 404;
            for (int i = 0; i < NA_STUB_MAX_PATHS && s->paths[i]; i++) {
                if (!strcmp(s->paths[i], path)) {
                    doc = s->bodies[i];
                    status = s->statuses[i] ? s->statuses[i] : 200;
                }
            }
            s->gets++;
            pthread_mutex_unlock(&s->lock);
            answer(c, status, doc ? doc : "");
            free(body);
            continue;
        }
        int status = s->post_status ? s->post_status : 200;
        s->posts_seen++;
        if (status < 300 && s->posts_cnt < NA_STUB_MAX_POSTS) {
            struct na_stub_post *p = &s->posts[s->posts_cnt++];
            snprintf(p->path, sizeof(p->path), "%s", path);
            const char *id = strcasestr(head, "webhook-id: ");
            if (id) {
                sscanf(id + 12, "%79s", p->webhook_id);
            }
            p->body = body;
            body = NULL;
        }
        pthread_mutex_unlock(&s->lock);
        free(body);
        answer(c, status, "ok");
    }
    close(c);
    return NULL;
}

static void *serve(void *arg) {
    struct na_stub *s = arg;
    while (!s->stop) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0) {
            break;
        }
        void **pair = malloc(2 * sizeof(void *));
        pthread_t t;
        pair[0] = s;
        pair[1] = (void *)(long)c;
        if (pthread_create(&t, NULL, serve_conn, pair)) {
            close(c);
            free(pair);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

int na_stub_start(struct na_stub *s) {
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    int one = 1;
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->fd, (struct sockaddr *)&addr, sizeof(addr)) || listen(s->fd, 64)) {
        close(s->fd);
        return -1;
    }
    getsockname(s->fd, (struct sockaddr *)&addr, &alen);
    s->port = ntohs(addr.sin_port);
    return pthread_create(&s->thread, NULL, serve, s) ? -1 : 0;
}

void na_stub_set(struct na_stub *s, const char *path, const char *body) {
    na_stub_set_status(s, path, 200, body);
}

void na_stub_set_status(struct na_stub *s, const char *path, int status,
                        const char *body) {
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < NA_STUB_MAX_PATHS; i++) {
        if (!s->paths[i] || !strcmp(s->paths[i], path)) {
            s->paths[i] = path;
            s->bodies[i] = body;
            s->statuses[i] = status;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

void na_stub_stop(struct na_stub *s) {
    s->stop = 1;
    shutdown(s->fd, SHUT_RDWR);
    close(s->fd);
    pthread_join(s->thread, NULL);
    /* Connection threads notice stop at their next request; give them a
     * moment before the recorded bodies go. */
    usleep(50000);
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->posts_cnt; i++) {
        free(s->posts[i].body);
        s->posts[i].body = NULL;
    }
    pthread_mutex_unlock(&s->lock);
}

int na_stub_unique_posts(struct na_stub *s) {
    int unique = 0;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->posts_cnt; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) {
            seen = !strcmp(s->posts[i].webhook_id, s->posts[j].webhook_id);
        }
        unique += !seen;
    }
    pthread_mutex_unlock(&s->lock);
    return unique;
}
