#include "heap.h"

#include <stdlib.h>

bool heap_init(struct heap *h, uint32_t ids)
{
    h->e = calloc(ids ? ids : 1, sizeof *h->e);
    h->pos = calloc(ids ? ids : 1, sizeof *h->pos);
    h->n = 0;
    h->cap = ids;
    return h->e && h->pos;
}

static void place(struct heap *h, uint32_t i, struct heap_entry x)
{
    h->e[i] = x;
    h->pos[x.id] = i + 1;
}

static void sift_up(struct heap *h, uint32_t i)
{
    struct heap_entry x = h->e[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (h->e[parent].at <= x.at)
            break;
        place(h, i, h->e[parent]);
        i = parent;
    }
    place(h, i, x);
}

static void sift_down(struct heap *h, uint32_t i)
{
    struct heap_entry x = h->e[i];
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= h->n)
            break;
        if (child + 1 < h->n && h->e[child + 1].at < h->e[child].at)
            child++;
        if (x.at <= h->e[child].at)
            break;
        place(h, i, h->e[child]);
        i = child;
    }
    place(h, i, x);
}

void heap_set(struct heap *h, uint32_t id, uint64_t at)
{
    uint32_t p = h->pos[id];
    if (p == 0) {
        uint32_t i = h->n++;
        place(h, i, (struct heap_entry){.at = at, .id = id});
        sift_up(h, i);
        return;
    }
    uint32_t i = p - 1;
    uint64_t old = h->e[i].at;
    h->e[i].at = at;
    if (at < old)
        sift_up(h, i);
    else
        sift_down(h, i);
}

void heap_remove(struct heap *h, uint32_t id)
{
    uint32_t p = h->pos[id];
    if (p == 0)
        return;
    uint32_t i = p - 1;
    h->pos[id] = 0;
    uint32_t last = --h->n;
    if (i == last)
        return;
    uint64_t old = h->e[i].at;
    place(h, i, h->e[last]);
    if (h->e[i].at < old)
        sift_up(h, i);
    else
        sift_down(h, i);
}
