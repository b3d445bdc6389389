/*
 * bench_feedserver: a small, fast HTTP/1.1 feed server for the polling
 * benchmark (bench/fetch_poll.sh). One thread, epoll, keep-alive.
 *
 *   bench_feedserver [PORT]     (0 or none: any free port)
 *
 * Prints the port on stdout, then serves until SIGTERM/SIGINT; prints the
 * number of requests answered (200 and 304) on stderr at exit. Every path is
 * a small RSS document with ETag "v1": a request with If-None-Match: "v1"
 * gets 304, any other 200.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256
#define BUF_SIZE 8192
#define MAX_FD 65536

struct conn {
    char in[BUF_SIZE];
    size_t in_len;
};

static volatile sig_atomic_t running = 1;
static struct conn *conns[MAX_FD];
static unsigned long long answered_200, answered_304;

static void on_signal(int sig) {
    (void)sig;
    running = 0;
}

static void set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL, 0);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void conn_close(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    if (fd >= 0 && fd < MAX_FD) {
        free(conns[fd]);
        conns[fd] = NULL;
    }
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1; /* small answers: a full socket buffer is a dead client */
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Answer one request head [head, head+len); @returns 0 or -1 to close. */
static int answer(int fd, const char *head, size_t len) {
    char path[512] = "/";
    char out[2048];
    char body[1024];
    const char *sp = memchr(head, ' ', len);
    int not_modified = 0;
    if (sp) {
        const char *end = memchr(sp + 1, ' ', len - (size_t)(sp + 1 - head));
        size_t n = end ? (size_t)(end - sp - 1) : 0;
        if (n > 0 && n < sizeof(path)) {
            memcpy(path, sp + 1, n);
            path[n] = '\0';
        }
    }
    for (const char *l = head; l && l < head + len;) {
        const char *nl = memchr(l, '\n', (size_t)(head + len - l));
        if (!nl) {
            break;
        }
        if ((size_t)(nl - l) > 14 && !strncasecmp(l, "If-None-Match:", 14) &&
            memmem(l, (size_t)(nl - l), "\"v1\"", 4)) {
            not_modified = 1;
        }
        l = nl + 1;
    }
    int n;
    if (not_modified) {
        answered_304++;
        n = snprintf(out, sizeof(out),
                     "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n"
                     "Content-Length: 0\r\n\r\n");
    } else {
        answered_200++;
        int blen = snprintf(body, sizeof(body),
                            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>"
                            "<title>bench</title><link>http://bench.invalid/</link>"
                            "<item><title>Bench item for %s</title>"
                            "<link>http://bench.invalid%s/1</link>"
                            "<description>Export rules for rare earths.</description>"
                            "</item></channel></rss>\n",
                            path, path);
        n = snprintf(out, sizeof(out),
                     "HTTP/1.1 200 OK\r\nETag: \"v1\"\r\n"
                     "Content-Type: application/rss+xml\r\nContent-Length: %d\r\n\r\n%s",
                     blen, body);
    }
    return write_all(fd, out, (size_t)n);
}

static int on_readable(int fd) {
    struct conn *c = conns[fd];
    for (;;) {
        ssize_t r = read(fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
        if (r == 0) {
            return -1;
        }
        if (r < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        }
        c->in_len += (size_t)r;
        for (;;) {
            char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
            if (!end) {
                break;
            }
            size_t hl = (size_t)(end + 4 - c->in);
            if (answer(fd, c->in, hl)) {
                return -1;
            }
            memmove(c->in, c->in + hl, c->in_len - hl);
            c->in_len -= hl;
        }
        if (c->in_len == sizeof(c->in)) {
            return -1; /* a head larger than the buffer: not a client of ours */
        }
    }
}

int main(int argc, char **argv) {
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    struct epoll_event ev, events[MAX_EVENTS];
    long port = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int ep = epoll_create1(0);
    struct sigaction sa;

    if (lfd < 0 || ep < 0) {
        perror("bench_feedserver");
        return 1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((uint16_t)port);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 1024) ||
        getsockname(lfd, (struct sockaddr *)&addr, &alen)) {
        perror("bench_feedserver");
        return 1;
    }
    set_nonblock(lfd);
    printf("%d\n", ntohs(addr.sin_port));
    fflush(stdout);
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    while (running) {
        int n = epoll_wait(ep, events, MAX_EVENTS, 200);
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept(lfd, NULL, NULL)) >= 0) {
                    if (cfd >= MAX_FD || !(conns[cfd] = calloc(1, sizeof(struct conn)))) {
                        close(cfd);
                        continue;
                    }
                    set_nonblock(cfd);
                    ev.events = EPOLLIN;
                    ev.data.fd = cfd;
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev);
                }
                continue;
            }
            if (on_readable(fd)) {
                conn_close(ep, fd);
            }
        }
    }
    fprintf(stderr, "bench_feedserver: answered 200=%llu 304=%llu\n", answered_200,
            answered_304);
    return 0;
}
