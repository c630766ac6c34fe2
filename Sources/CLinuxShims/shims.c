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
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

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

typedef struct {
    uintptr_t start, end;
} kar_range;

/// Code and constants of the executable or of a shared library: what the dynamic loader mapped, which stays mapped
/// for the life of the process (nothing here calls dlclose). Data files that the process maps itself are not
/// candidates: one could be unmapped between reading smaps and madvise, its addresses reused by anonymous memory,
/// and MADV_DONTNEED would zero that memory.
static int kar_is_loaded_image(const char *path, const char *executable) {
    if (path[0] != '/') return 0;
    if (executable[0] != '\0' && strcmp(path, executable) == 0) return 1;
    const char *name = strrchr(path, '/') + 1;
    const char *so = strstr(name, ".so");
    return so != NULL && (so[3] == '\0' || so[3] == '.');
}

long kar_release_file_pages(void) {
    // Collected first, released after the file is closed: smaps must not change under the reader.
    kar_range ranges[1024];
    size_t count = 0;
    long released = 0;
    char executable[512] = "";
    ssize_t length = readlink("/proc/self/exe", executable, sizeof executable - 1);
    executable[length > 0 ? length : 0] = '\0';
    FILE *smaps = fopen("/proc/self/smaps", "re");
    if (smaps == NULL) return -1;
    char line[1024];
    int candidate = 0;
    uintptr_t start = 0, end = 0;
    long rss_kib = 0;
    while (fgets(line, sizeof line, smaps) != NULL) {
        unsigned long a, b, inode;
        char perms[8], path[512] = "";
        int header = (line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f');
        if (header && sscanf(line, "%lx-%lx %7s %*s %*s %lu %511s", &a, &b, perms, &inode, path) >= 4) {
            // A mapping's header: private, not writable, of the executable or a shared library.
            candidate = perms[1] == '-' && perms[3] == 'p' && perms[0] == 'r' && inode != 0
                && kar_is_loaded_image(path, executable);
            start = a;
            end = b;
            rss_kib = 0;
            continue;
        }
        long value;
        if (sscanf(line, "Rss: %ld kB", &value) == 1) {
            rss_kib = value;
        } else if (sscanf(line, "Anonymous: %ld kB", &value) == 1) {
            // Pages written before the mapping became read-only (RELRO: relocated pointers) are private copies that
            // the file does not hold: such a mapping is never dropped.
            if (candidate && value == 0 && rss_kib > 0 && count < sizeof ranges / sizeof ranges[0]) {
                ranges[count++] = (kar_range){start, end};
                released += rss_kib * 1024;
            }
            candidate = 0;
        }
    }
    fclose(smaps);
    for (size_t i = 0; i < count; i++) {
        madvise((void *)ranges[i].start, ranges[i].end - ranges[i].start, MADV_DONTNEED);
    }
    return released;
}

int kar_lower_thread_priority(int niceness) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), niceness);
}

int kar_thread_niceness(void) { return getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)); }
