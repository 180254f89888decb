/* The C baseline of bench/ioctl.ts: the cost of one ioctl(FIONREAD) on a memfd, the
 * same call the addon makes, in a tight loop. Usage: ioctl-baseline ITERATIONS RUNS
 * THREADS. Prints the best run's nanoseconds per call.
 *
 * THREADS=1 starts one idle thread first. Linux looks an fd up without touching its
 * reference count only in a single-threaded process (fdget's fast path); Node always
 * runs several threads, so the fair baseline for the addon has one too. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void *idle(void *unused) {
  (void)unused;
  for (;;) pause();
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s ITERATIONS RUNS THREADS(0|1)\n", argv[0]);
    return 2;
  }
  long iterations = atol(argv[1]);
  int runs = atoi(argv[2]);
  pthread_t thread;
  if (atoi(argv[3]) == 1 && pthread_create(&thread, NULL, idle, NULL) != 0) {
    perror("pthread_create");
    return 1;
  }
  int fd = memfd_create("ioctl-baseline", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, 4096) < 0) {
    perror("memfd");
    return 1;
  }
  double best = 1e300;
  volatile int sink = 0;
  for (int run = 0; run < runs + 1; run++) { /* run 0 warms up */
    double start = now_ns();
    for (long i = 0; i < iterations; i++) {
      int available = 0;
      if (ioctl(fd, FIONREAD, &available) < 0 || available != 4096) {
        perror("ioctl");
        return 1;
      }
      sink += available;
    }
    double per_call = (now_ns() - start) / (double)iterations;
    if (run > 0 && per_call < best) best = per_call;
  }
  printf("%.3f\n", best);
  close(fd);
  return sink == 0;
}
