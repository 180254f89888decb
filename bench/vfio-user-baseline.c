// The C floor for bench/vfio-user.ts: the same vfio-user messages over the same kind
// of socket between two processes, with nothing but the protocol's own work on each
// side. A forked server answers REGION_READ from a register array, and DMA_MAP /
// DMA_UNMAP by mmapping and unmapping the client's memfd; the client blocks on each
// reply, as a VMM's vCPU does. Prints "<region read ns> <map+unmap pair ns>".
//
// Usage: vfio-user-baseline ITERATIONS
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { CMD_DMA_MAP = 2, CMD_DMA_UNMAP = 3, CMD_REGION_READ = 9, CMD_QUIT = 0xffff };
enum { TYPE_REPLY = 1 };
enum { MAP_BYTES = 1 << 20 };

struct header {
  uint16_t msg_id, command;
  uint32_t size, flags, error;
};
struct region_access {
  uint64_t offset;
  uint32_t region, count;
};
struct dma_map {
  uint32_t argsz, flags;
  uint64_t offset, address, size;
};
struct dma_unmap {
  uint32_t argsz, flags;
  uint64_t address, size;
};

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void send_all(int fd, const void *buf, size_t len, int pass_fd) {
  struct iovec iov = {(void *)buf, len};
  char control[CMSG_SPACE(sizeof(int))];
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (pass_fd >= 0) {
    memset(control, 0, sizeof control);
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  if (sendmsg(fd, &msg, MSG_NOSIGNAL) != (ssize_t)len) die("sendmsg");
}

/** Reads exactly len bytes; the fd that came with them, if any, goes to *got_fd. */
static void recv_all(int fd, void *buf, size_t len, int *got_fd) {
  size_t done = 0;
  while (done < len) {
    struct iovec iov = {(char *)buf + done, len - done};
    char control[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) die("recvmsg");
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c && c->cmsg_type == SCM_RIGHTS && got_fd) memcpy(got_fd, CMSG_DATA(c), sizeof(int));
    done += (size_t)n;
  }
}

static void serve(int sock) {
  uint32_t registers[16] = {0x53474d31};
  void *mapped = NULL;
  for (;;) {
    struct header h;
    int fd = -1;
    recv_all(sock, &h, sizeof h, &fd);
    uint8_t body[64];
    if (h.size > sizeof h + sizeof body) exit(2);
    recv_all(sock, body, h.size - sizeof h, &fd);
    if (h.command == CMD_QUIT) exit(0);
    struct header r = {h.msg_id, h.command, sizeof r, TYPE_REPLY, 0};
    if (h.command == CMD_REGION_READ) {
      struct { struct header h; struct region_access a; uint32_t data; } reply;
      memcpy(&reply.a, body, sizeof reply.a);
      reply.data = registers[(reply.a.offset / 4) % 16];
      r.size = sizeof reply;
      reply.h = r;
      send_all(sock, &reply, sizeof reply, -1);
    } else if (h.command == CMD_DMA_MAP) {
      struct dma_map m;
      memcpy(&m, body, sizeof m);
      mapped = mmap(NULL, m.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)m.offset);
      if (mapped == MAP_FAILED) die("mmap");
      close(fd);
      send_all(sock, &r, sizeof r, -1);
    } else if (h.command == CMD_DMA_UNMAP) {
      struct { struct header h; struct dma_unmap u; } reply;
      memcpy(&reply.u, body, sizeof reply.u);
      munmap(mapped, reply.u.size);
      r.size = sizeof reply;
      reply.h = r;
      send_all(sock, &reply, sizeof reply, -1);
    }
  }
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv) {
  long iterations = argc > 1 ? atol(argv[1]) : 10000;
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) die("socketpair");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(pair[0]);
    serve(pair[1]);
  }
  close(pair[1]);
  int sock = pair[0];
  int memfd = memfd_create("baseline", MFD_CLOEXEC);
  if (memfd < 0 || ftruncate(memfd, MAP_BYTES) < 0) die("memfd");

  uint16_t id = 0;
  struct { struct header h; struct region_access a; } read_req = {{0, CMD_REGION_READ, sizeof read_req, 0, 0}, {0, 0, 4}};
  struct { struct header h; struct region_access a; uint32_t data; } read_reply;
  double start = now_ns();
  for (long i = 0; i < iterations; i++) {
    read_req.h.msg_id = id++;
    send_all(sock, &read_req, sizeof read_req, -1);
    recv_all(sock, &read_reply, sizeof read_reply, NULL);
    if (read_reply.h.msg_id != read_req.h.msg_id || read_reply.data != 0x53474d31) exit(3);
  }
  double read_ns = (now_ns() - start) / iterations;

  struct { struct header h; struct dma_map m; } map_req = {{0, CMD_DMA_MAP, sizeof map_req, 0, 0}, {32, 3, 0, 0x100000, MAP_BYTES}};
  struct { struct header h; struct dma_unmap u; } unmap_req = {{0, CMD_DMA_UNMAP, sizeof unmap_req, 0, 0}, {24, 0, 0x100000, MAP_BYTES}};
  struct header map_reply;
  struct { struct header h; struct dma_unmap u; } unmap_reply;
  start = now_ns();
  for (long i = 0; i < iterations; i++) {
    map_req.h.msg_id = id++;
    send_all(sock, &map_req, sizeof map_req, memfd);
    recv_all(sock, &map_reply, sizeof map_reply, NULL);
    unmap_req.h.msg_id = id++;
    send_all(sock, &unmap_req, sizeof unmap_req, -1);
    recv_all(sock, &unmap_reply, sizeof unmap_reply, NULL);
    if (map_reply.error || unmap_reply.h.error) exit(4);
  }
  double pair_ns = (now_ns() - start) / iterations;

  struct header quit = {id, CMD_QUIT, sizeof quit, 0, 0};
  send_all(sock, &quit, sizeof quit, -1);
  waitpid(pid, NULL, 0);
  printf("%.0f %.0f\n", read_ns, pair_ns);
  return 0;
}
