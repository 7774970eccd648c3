/*
 * One timer per client in a binary min-heap keyed by deadline (monotonic ns).
 * Every client always has at most one pending action (start, retransmit,
 * restart after a refusal, next keepalive), so setting a timer replaces the old
 * one in place: O(log N), no allocation after heap_init.
 */
#ifndef TD_LOADGEN_HEAP_H
#define TD_LOADGEN_HEAP_H

#include <stdbool.h>
#include <stdint.h>

struct heap_entry {
    uint64_t at;
    uint32_t id;
};

struct heap {
    struct heap_entry *e;
    uint32_t *pos;  /* per id: index in e + 1, 0 = not scheduled */
    uint32_t n, cap;
};

bool heap_init(struct heap *h, uint32_t ids);
void heap_set(struct heap *h, uint32_t id, uint64_t at);  /* insert or move */
void heap_remove(struct heap *h, uint32_t id);
/* Earliest entry, or false when empty. */
static inline bool heap_top(const struct heap *h, uint64_t *at, uint32_t *id)
{
    if (h->n == 0)
        return false;
    *at = h->e[0].at;
    *id = h->e[0].id;
    return true;
}

#endif
