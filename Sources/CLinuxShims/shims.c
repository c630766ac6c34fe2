#define _GNU_SOURCE
#include "CLinuxShims.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <stddef.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

const uint32_t KAR_EPOLLIN = EPOLLIN;
const uint32_t KAR_EPOLLOUT = EPOLLOUT;
const uint32_t KAR_EPOLLERR = EPOLLERR;
const uint32_t KAR_EPOLLHUP = EPOLLHUP;

int kar_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static int ctl(int epfd, int op, int fd, uint32_t events) {
    struct epoll_event event;
    event.events = events;
    event.data.u64 = 0;
    event.data.fd = fd;
    return epoll_ctl(epfd, op, fd, &event);
}

int kar_epoll_add(int epfd, int fd, uint32_t events) { return ctl(epfd, EPOLL_CTL_ADD, fd, events); }
int kar_epoll_mod(int epfd, int fd, uint32_t events) { return ctl(epfd, EPOLL_CTL_MOD, fd, events); }
int kar_epoll_del(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

int kar_epoll_wait(int epfd, kar_event *out, int max, int timeout_ms) {
    struct epoll_event events[512];
    if (max > 512) max = 512;
    int count = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < count; i++) {
        out[i].events = events[i].events;
        out[i].fd = events[i].data.fd;
    }
    return count;
}

int kar_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int kar_accept(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

int kar_limit_malloc_arenas(int count) { return mallopt(M_ARENA_MAX, count); }

int kar_fix_malloc_mmap_threshold(int bytes) {
    // Setting either threshold turns off glibc's dynamic adjustment, which would otherwise raise the mmap
    // threshold to the size of the largest block freed so far (up to 32 MiB) and keep such blocks in the heap.
    return mallopt(M_MMAP_THRESHOLD, bytes) && mallopt(M_TRIM_THRESHOLD, 2 * bytes);
}

int kar_malloc_trim(void) { return malloc_trim(0); }

int kar_lower_thread_priority(int niceness) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), niceness);
}

int kar_thread_niceness(void) { return getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)); }
