#include "CCurl.h"

CURLcode kar_curl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode kar_curl_easy_setopt_pointer(CURL *handle, CURLoption option, const void *value) {
    return curl_easy_setopt(handle, option, value);
}

CURLcode kar_curl_easy_setopt_callback(CURL *handle, CURLoption option, kar_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}

CURLcode kar_curl_easy_setopt_blob(CURL *handle, CURLoption option, const void *data, size_t length) {
    struct curl_blob blob;
    blob.data = (void *)data;
    blob.len = length;
    blob.flags = CURL_BLOB_COPY;
    return curl_easy_setopt(handle, option, &blob);
}

CURLcode kar_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLcode kar_curl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, value);
}

CURLMcode kar_curl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) {
    return curl_multi_setopt(multi, option, value);
}

CURL *kar_curl_multi_done(CURLM *multi, CURLcode *result) {
    int queued = 0;
    CURLMsg *message;
    while ((message = curl_multi_info_read(multi, &queued)) != NULL) {
        if (message->msg == CURLMSG_DONE) {
            *result = message->data.result;
            return message->easy_handle;
        }
    }
    return NULL;
}

// MARK: - The socket-interface driver

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct kar_curl_driver {
    CURLM *multi;
    int epoll_fd;
    int wake_fd;
    /// Monotonic deadline of libcurl's timer in milliseconds, or -1 when none is set.
    int64_t deadline_ms;
};

static int64_t kar_now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/// libcurl's socket callback: keeps the epoll set in step with what libcurl wants of each socket. A socket seen for
/// the first time is added and marked through libcurl's per-socket pointer (`curl_multi_assign`, which libcurl
/// forgets when it removes the socket), so later changes are one EPOLL_CTL_MOD and never a failed MOD and an ADD.
static int kar_socket_callback(CURL *easy, curl_socket_t fd, int what, void *context, void *socket_context) {
    (void)easy;
    kar_curl_driver *driver = context;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(driver->epoll_fd, EPOLL_CTL_DEL, fd, NULL);  // the socket may already be closed: ignored
        return 0;
    }
    struct epoll_event event = {0};
    event.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    event.data.fd = fd;
    if (socket_context != NULL && epoll_ctl(driver->epoll_fd, EPOLL_CTL_MOD, fd, &event) == 0) return 0;
    // New to us, or (should libcurl have closed and reopened the number in between) no longer in the set.
    if (epoll_ctl(driver->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0 && errno == EEXIST) {
        epoll_ctl(driver->epoll_fd, EPOLL_CTL_MOD, fd, &event);
    }
    curl_multi_assign(driver->multi, fd, driver);
    return 0;
}

static int kar_timer_callback(CURLM *multi, long timeout_ms, void *context) {
    (void)multi;
    kar_curl_driver *driver = context;
    driver->deadline_ms = timeout_ms < 0 ? -1 : kar_now_ms() + timeout_ms;
    return 0;
}

kar_curl_driver *kar_curl_driver_create(CURLM *multi) {
    kar_curl_driver *driver = calloc(1, sizeof *driver);
    if (driver == NULL) return NULL;
    driver->multi = multi;
    driver->deadline_ms = -1;
    driver->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    driver->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (driver->epoll_fd < 0 || driver->wake_fd < 0) {
        int saved = errno;
        kar_curl_driver_destroy(driver);
        errno = saved;
        return NULL;
    }
    struct epoll_event event = {0};
    event.events = EPOLLIN;
    event.data.fd = driver->wake_fd;
    epoll_ctl(driver->epoll_fd, EPOLL_CTL_ADD, driver->wake_fd, &event);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, kar_socket_callback);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, driver);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, kar_timer_callback);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, driver);
    return driver;
}

int kar_curl_driver_run(kar_curl_driver *driver, int max_wait_ms) {
    int wait_ms = max_wait_ms;
    if (driver->deadline_ms >= 0) {
        int64_t left = driver->deadline_ms - kar_now_ms();
        if (left < wait_ms) wait_ms = left < 0 ? 0 : (int)left;
    }
    struct epoll_event events[64];
    int count = epoll_wait(driver->epoll_fd, events, 64, wait_ms);
    if (count < 0) return errno == EINTR ? 0 : -1;
    int woken = 0;
    int running = 0;
    for (int i = 0; i < count; i++) {
        int fd = events[i].data.fd;
        if (fd == driver->wake_fd) {
            uint64_t value;
            while (read(driver->wake_fd, &value, sizeof value) > 0) {
            }
            woken = 1;
            continue;
        }
        int flags = (events[i].events & EPOLLIN ? CURL_CSELECT_IN : 0)
            | (events[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0)
            | (events[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(driver->multi, fd, flags, &running);
    }
    if (driver->deadline_ms >= 0 && kar_now_ms() >= driver->deadline_ms) {
        driver->deadline_ms = -1;  // the timer callback sets a new one if libcurl wants it
        curl_multi_socket_action(driver->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    return woken;
}

void kar_curl_driver_kick(kar_curl_driver *driver) {
    int running = 0;
    driver->deadline_ms = -1;
    curl_multi_socket_action(driver->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

void kar_curl_driver_wake(kar_curl_driver *driver) {
    uint64_t one = 1;
    ssize_t ignored = write(driver->wake_fd, &one, sizeof one);
    (void)ignored;
}

void kar_curl_driver_destroy(kar_curl_driver *driver) {
    if (driver == NULL) return;
    if (driver->epoll_fd >= 0) close(driver->epoll_fd);
    if (driver->wake_fd >= 0) close(driver->wake_fd);
    free(driver);
}
