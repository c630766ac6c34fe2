#ifndef CLINUXSHIMS_H
#define CLINUXSHIMS_H

#include <stdint.h>

/// epoll and eventfd, which Swift's Glibc module does not export, behind plain C functions.
/// `struct epoll_event` is packed on x86_64; these helpers keep that layout out of Swift.

typedef struct {
    uint32_t events;
    int32_t fd;
} kar_event;

extern const uint32_t KAR_EPOLLIN;
extern const uint32_t KAR_EPOLLOUT;
extern const uint32_t KAR_EPOLLERR;
extern const uint32_t KAR_EPOLLHUP;

int kar_epoll_create(void);
int kar_epoll_add(int epfd, int fd, uint32_t events);
int kar_epoll_mod(int epfd, int fd, uint32_t events);
int kar_epoll_del(int epfd, int fd);
/// Waits for at most `max` (up to 512) events; returns their count, or -1 with errno set.
int kar_epoll_wait(int epfd, kar_event *out, int max, int timeout_ms);

int kar_eventfd(void);
/// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC.
int kar_accept(int fd);

/// glibc malloc tuning: at most `count` arenas (mallopt M_ARENA_MAX), and returning freed pages (malloc_trim).
int kar_limit_malloc_arenas(int count);
/// Blocks of `bytes` or more are mmap'd (and unmapped when freed) instead of coming from the heap.
int kar_fix_malloc_mmap_threshold(int bytes);
int kar_malloc_trim(void);
/// Unmaps the clean pages of the read-only, private mappings of the executable and its shared libraries (code and
/// constants) from this process: they stay in the page cache and come back with a minor fault on the next access.
/// Mappings holding private copies (RELRO) are left alone. Returns the bytes that were resident in the dropped
/// mappings, or -1.
long kar_release_file_pages(void);

/// Lowers the calling thread's CPU priority to `niceness` (Linux priorities are per thread; raising one's own
/// niceness needs no privilege). Returns 0, or -1 with errno set.
int kar_lower_thread_priority(int niceness);
/// The calling thread's niceness.
int kar_thread_niceness(void);

#endif
