/*
 * Bare TCP ping-pong over loopback, no Erlang: the floor under the 1-client echo shape. The bench runs the
 * same client against this program's server and against a bare Node.js server (bench/bare-echo.ts), so the
 * ratio of the two says what a Node.js process costs per round trip on this machine before any
 * distribution protocol, decoding or process scheduling is added.
 *
 * Usage: pingpong server
 *          listens on 127.0.0.1 (an ephemeral port), prints "READY <port>", echoes every byte it reads on
 *          each connection (one read, one write, as a C-node does); exits at the end of stdin.
 *        pingpong client <port> <size> <warm_ms> <measure_ms>
 *          sends <size> bytes, waits for them back, again and again; prints "{Count,Micros}" for the
 *          measured window (the format bench_client prints).
 * Both sides set TCP_NODELAY, as every distribution connection does.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 65536

static void die(const char *what) {
    fprintf(stderr, "pingpong: %s: %s\n", what, strerror(errno));
    exit(1);
}

static long long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void nodelay(int fd) {
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) die("TCP_NODELAY");
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int server(void) {
    static char buf[MAX_SIZE];
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(lfd, 8) < 0) die("listen");
    if (getsockname(lfd, (struct sockaddr *)&a, &alen) < 0) die("getsockname");
    printf("READY %d\n", ntohs(a.sin_port));
    fflush(stdout);
    /* fds[0]: listen socket, fds[1]: stdin (its end stops the server), fds[2]: the connection, if any. */
    struct pollfd fds[3] = {{.fd = lfd, .events = POLLIN}, {.fd = 0, .events = POLLIN}, {.fd = -1, .events = POLLIN}};
    for (;;) {
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR) continue;
            die("poll");
        }
        if (fds[1].revents) {
            char c;
            if (read(0, &c, 1) <= 0) return 0;
        }
        if (fds[0].revents & POLLIN) {
            int fd = accept(lfd, NULL, NULL);
            if (fd >= 0) {
                if (fds[2].fd >= 0) close(fds[2].fd);
                nodelay(fd);
                fds[2].fd = fd;
            }
        }
        if (fds[2].fd >= 0 && fds[2].revents) {
            ssize_t n = read(fds[2].fd, buf, sizeof buf);
            if (n <= 0 || write_all(fds[2].fd, buf, (size_t)n) < 0) {
                close(fds[2].fd);
                fds[2].fd = -1;
            }
        }
    }
}

static int client(int port, int size, int warm_ms, int measure_ms) {
    static char buf[MAX_SIZE];
    if (size <= 0 || size > MAX_SIZE) {
        fprintf(stderr, "pingpong: size must be 1..%d\n", MAX_SIZE);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    nodelay(fd);
    memset(buf, 'x', (size_t)size);
    long long count = 0, start = now_us(), measured_from = start + (long long)warm_ms * 1000, stop = measured_from + (long long)measure_ms * 1000;
    int measuring = 0;
    for (;;) {
        long long t = now_us();
        if (!measuring && t >= measured_from) {
            measuring = 1;
            count = 0;
            measured_from = t;
        }
        if (t >= stop) break;
        if (write_all(fd, buf, (size_t)size) < 0) die("write");
        for (int got = 0; got < size;) {
            ssize_t n = read(fd, buf + got, (size_t)(size - got));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) die("read");
            got += (int)n;
        }
        count++;
    }
    printf("{%lld,%lld}\n", count, now_us() - measured_from);
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc == 2 && strcmp(argv[1], "server") == 0) return server();
    if (argc == 6 && strcmp(argv[1], "client") == 0)
        return client(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: pingpong server | pingpong client <port> <size> <warm_ms> <measure_ms>\n");
    return 2;
}
