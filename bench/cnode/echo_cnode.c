/*
 * Echo C-node on OTP's erl_interface (ei): the "C-node" anchor of the ts-cnode benchmark.
 * See erl_interface's ei_connect(3) ("ei_publish", "ei_accept", "ei_xreceive_msg", "ei_send").
 *
 * Usage: echo_cnode <alive> <host> <cookie>
 *   Publishes <alive>@<host> in the EPMD on ERL_EPMD_PORT (ei reads the variable itself), accepts any
 *   number of connections, and serves the registered name `echo`: a REG_SEND of {Pid, Payload} sends
 *   Payload back to Pid. Prints "READY <node> <port>" on stdout once published; exits at the end of stdin
 *   (so it never outlives the bench that started it).
 *
 * Written the way a careful C-node is: one poll() loop over the listen socket and every connection
 * (all Erlang processes of one client node share that node's connection), one ei_x_buff reused for
 * every message (it only grows), and the reply is sent straight out of the receive buffer: the
 * Payload's encoded bytes already sit after the decoded pid, so the byte before them is overwritten
 * with the version magic and ei_send writes [header, that slice] without re-encoding or copying.
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
#include <unistd.h>

#include "ei.h"

#define MAX_FDS 256
#define FIRST_CONN 2
#define ECHO_NAME "echo"
/* VERSION_MAGIC of the External Term Format (ei keeps its own name for it private). */
#define VERSION_MAGIC 131
#define BAD_MESSAGE (-1)
#define SEND_FAILED (-2)

static void die(const char *what) {
    fprintf(stderr, "echo_cnode: %s (erl_errno %d, errno %d: %s)\n", what, erl_errno, errno, strerror(errno));
    exit(1);
}

/* {Pid, Payload} addressed to `echo`: reply Payload to Pid from inside buf.
   Returns 0, BAD_MESSAGE for any other term (ignored), or SEND_FAILED when the connection is broken. */
static int echo_reply(int fd, char *buf, int len) {
    int index = 0, version, arity;
    erlang_pid to;
    if (ei_decode_version(buf, &index, &version) < 0) return BAD_MESSAGE;
    if (ei_decode_tuple_header(buf, &index, &arity) < 0 || arity != 2) return BAD_MESSAGE;
    if (ei_decode_pid(buf, &index, &to) < 0) return BAD_MESSAGE;
    if (index >= len) return BAD_MESSAGE;
    /* The payload starts at buf[index]; the byte before it (the pid's last creation byte) is no longer
       needed, so it becomes the payload's version magic. */
    buf[index - 1] = (char)VERSION_MAGIC;
    return ei_send(fd, &to, buf + index - 1, len - index + 1) < 0 ? SEND_FAILED : 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: echo_cnode <alive> <host> <cookie>   (EPMD port from ERL_EPMD_PORT)\n");
        return 2;
    }
    const char *alive = argv[1], *host = argv[2], *cookie = argv[3];
    char nodename[MAXNODELEN + 1];
    if (snprintf(nodename, sizeof nodename, "%s@%s", alive, host) >= (int)sizeof nodename) die("node name too long");

    signal(SIGPIPE, SIG_IGN);
    ei_init();
    ei_cnode ec;
    struct in_addr any = {.s_addr = htonl(INADDR_ANY)};
    if (ei_connect_xinit(&ec, host, alive, nodename, &any, cookie, 0) < 0) die("ei_connect_xinit failed");

    int port = 0;
    int lfd = ei_listen(&ec, &port, 16);
    if (lfd < 0) die("ei_listen failed");
    if (ei_publish(&ec, port) < 0) die("ei_publish failed (is an EPMD listening on ERL_EPMD_PORT?)");
    printf("READY %s %d\n", ei_thisnodename(&ec), port);
    fflush(stdout);

    /* fds[0]: the listen socket; fds[1]: stdin, whose end (the bench went away) stops the node;
       fds[FIRST_CONN..]: one per connected node. */
    struct pollfd fds[MAX_FDS];
    int nfds = FIRST_CONN;
    fds[0].fd = lfd;
    fds[0].events = POLLIN;
    fds[1].fd = STDIN_FILENO;
    fds[1].events = POLLIN;

    ei_x_buff x;
    if (ei_x_new(&x) < 0) die("ei_x_new failed");
    erlang_msg msg;

    for (;;) {
        int n = poll(fds, (nfds_t)nfds, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("poll failed");
        }
        if (fds[1].revents != 0) {
            char junk[256];
            ssize_t r = read(STDIN_FILENO, junk, sizeof junk);
            if (r <= 0) {
                ei_unpublish(&ec);
                return 0;
            }
        }
        for (int i = nfds - 1; i >= FIRST_CONN; i--) {
            if (fds[i].revents == 0) continue;
            int fd = fds[i].fd;
            int r = ei_xreceive_msg(fd, &msg, &x);
            int drop = 0;
            if (r == ERL_MSG) {
                if (msg.msgtype == ERL_REG_SEND && strcmp(msg.toname, ECHO_NAME) == 0) {
                    if (echo_reply(fd, x.buff, x.index) == SEND_FAILED) drop = 1;
                }
                /* Anything else (links, exits, sends to other names) is ignored, as by an unregistered name. */
            } else if (r == ERL_ERROR) {
                drop = 1;
            }
            /* ERL_TICK: ei has already answered it. */
            if (drop) {
                ei_close_connection(fd);
                fds[i] = fds[--nfds];
            }
        }
        if (fds[0].revents & POLLIN) {
            ErlConnect conn;
            int fd = ei_accept(&ec, lfd, &conn);
            if (fd < 0) {
                fprintf(stderr, "echo_cnode: ei_accept failed (erl_errno %d)\n", erl_errno);
            } else if (nfds == MAX_FDS) {
                ei_close_connection(fd);
            } else {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                fds[nfds].fd = fd;
                fds[nfds].events = POLLIN;
                fds[nfds].revents = 0;
                nfds++;
            }
        }
    }
}
